package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/bridgeio/bridge/event"
)

// inEvent is one event as POSTed: {"key":"k","headers":{"h":"v"},"value":<any JSON>}.
// value_base64 carries raw bytes instead of value; timestamp is optional.
type inEvent struct {
	Key         *string           `json:"key"`
	Headers     map[string]string `json:"headers"`
	Value       json.RawMessage   `json:"value"`
	ValueBase64 *string           `json:"value_base64"`
	Timestamp   *time.Time        `json:"timestamp"`
}

// BadEventError names the event of a POST body that could not be decoded.
type BadEventError struct {
	Index int // -1 when the body as a whole is malformed
	Err   error
}

func (e *BadEventError) Error() string {
	if e.Index < 0 {
		return "malformed request body: " + e.Err.Error()
	}
	return fmt.Sprintf("event %d: %v", e.Index, e.Err)
}

func (e *BadEventError) Unwrap() error { return e.Err }

// decodeEvents parses one event object or an array of them. The value is
// kept as its JSON text, except that a JSON string is stored as the string's
// own text (posting "value":"hello" stores the five bytes hello): producers
// that post text mean the text, not a quoted JSON document.
func decodeEvents(body []byte, source string, now time.Time) ([]event.Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &BadEventError{Index: -1, Err: errors.New("empty body")}
	}
	if body[0] != '[' {
		var in inEvent
		if err := strictUnmarshal(body, &in); err != nil {
			return nil, &BadEventError{Index: 0, Err: err}
		}
		ev, err := in.toEvent(source, now)
		if err != nil {
			return nil, &BadEventError{Index: 0, Err: err}
		}
		return []event.Event{ev}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if _, err := dec.Token(); err != nil {
		return nil, &BadEventError{Index: -1, Err: err}
	}
	var evs []event.Event
	for i := 0; dec.More(); i++ {
		var in inEvent
		if err := dec.Decode(&in); err != nil {
			return nil, &BadEventError{Index: i, Err: err}
		}
		ev, err := in.toEvent(source, now)
		if err != nil {
			return nil, &BadEventError{Index: i, Err: err}
		}
		evs = append(evs, ev)
	}
	if _, err := dec.Token(); err != nil {
		return nil, &BadEventError{Index: len(evs), Err: err}
	}
	if dec.More() {
		return nil, &BadEventError{Index: -1, Err: errors.New("data after the closing bracket")}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &BadEventError{Index: -1, Err: errors.New("data after the closing bracket")}
	}
	if len(evs) == 0 {
		return nil, &BadEventError{Index: -1, Err: errors.New("empty array: no events")}
	}
	return evs, nil
}

// readSmallJSON decodes a request body of at most 1 MiB into v, strictly
// (unknown fields are errors). When optional, an empty or blank body
// leaves v as it is. On failure it answers 400, naming what ("replay
// body"), and returns false.
func readSmallJSON(w http.ResponseWriter, r *http.Request, v any, what string, optional bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil && (!optional || len(bytes.TrimSpace(body)) > 0) {
		err = strictUnmarshal(body, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", what+": "+err.Error())
		return false
	}
	return true
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the event object")
	}
	return nil
}

func (in *inEvent) toEvent(source string, now time.Time) (event.Event, error) {
	ev := event.Event{Source: source, Timestamp: now}
	if in.Timestamp != nil {
		ev.Timestamp = *in.Timestamp
	}
	if in.Key != nil {
		ev.Key = []byte(*in.Key)
	}
	switch {
	case in.ValueBase64 != nil && in.Value != nil:
		return ev, errors.New("value and value_base64 are exclusive")
	case in.ValueBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*in.ValueBase64)
		if err != nil {
			return ev, fmt.Errorf("value_base64: %w", err)
		}
		ev.Value = b
	case len(in.Value) > 0 && in.Value[0] == '"':
		var s string
		if err := json.Unmarshal(in.Value, &s); err != nil {
			return ev, fmt.Errorf("value: %w", err)
		}
		ev.Value = []byte(s)
	case len(in.Value) > 0 && !bytes.Equal(in.Value, []byte("null")):
		ev.Value = in.Value
	}
	if len(in.Headers) > 0 {
		ev.Headers = make([]event.Header, 0, len(in.Headers))
		for _, k := range sortedKeys(in.Headers) {
			ev.Headers = append(ev.Headers, event.Header{Key: k, Value: []byte(in.Headers[k])})
		}
	}
	return ev, nil
}

// outEvent is one event as GET returns it.
type outEvent struct {
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Key         *string           `json:"key"`
	Headers     map[string]string `json:"headers"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 string            `json:"value_base64,omitempty"`
	Timestamp   string            `json:"timestamp"`
	Source      string            `json:"source,omitempty"`
}

func toOut(ev *event.Event) outEvent {
	o := outEvent{Partition: ev.Partition, Offset: ev.Offset, Headers: map[string]string{},
		Timestamp: ev.Timestamp.UTC().Format(time.RFC3339Nano), Source: ev.Source}
	if ev.Key != nil {
		k := string(ev.Key)
		o.Key = &k
	}
	for _, h := range ev.Headers {
		o.Headers[h.Key] = string(h.Value)
	}
	if len(ev.Value) > 0 && json.Valid(ev.Value) {
		o.Value = ev.Value
	} else if len(ev.Value) > 0 {
		o.ValueBase64 = base64.StdEncoding.EncodeToString(ev.Value)
	}
	return o
}
