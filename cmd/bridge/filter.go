package main

import (
	"encoding/base64"
	"fmt"
	"sort"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// eventFilter is a client-side --filter: the same rules language as
// pipelines, evaluated on events as the API returned them.
type eventFilter struct {
	prog *rules.Program
	env  *rules.Env
}

// newEventFilter compiles src; an empty src gives a nil filter, which
// passes everything.
func newEventFilter(src string) (*eventFilter, error) {
	if src == "" {
		return nil, nil
	}
	p, err := rules.Compile(src, rules.Bool)
	if err != nil {
		return nil, fmt.Errorf("--filter: %w", err)
	}
	return &eventFilter{prog: p, env: rules.NewEnv()}, nil
}

// match reports whether ev of topic passes. An event on which the
// expression fails (a missing field compared with a number...) does not
// pass, as a pipeline filter would not select it either.
func (f *eventFilter) match(topic string, ev wireEvent) bool {
	if f == nil {
		return true
	}
	e := wireToEvent(topic, ev)
	f.env.Reset(&e)
	ok, err := f.prog.EvalBool(f.env)
	return err == nil && ok
}

// wireToEvent rebuilds an event from its API form.
func wireToEvent(topic string, w wireEvent) event.Event {
	ev := event.Event{Topic: topic, Partition: w.Partition, Offset: w.Offset, Value: []byte(w.Value)}
	if w.ValueBase64 != "" {
		if b, err := base64.StdEncoding.DecodeString(w.ValueBase64); err == nil {
			ev.Value = b
		}
	}
	if w.Key != nil {
		ev.Key = []byte(*w.Key)
	}
	if t, err := time.Parse(time.RFC3339Nano, w.Timestamp); err == nil {
		ev.Timestamp = t
	}
	keys := make([]string, 0, len(w.Headers))
	for k := range w.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ev.Headers = append(ev.Headers, event.Header{Key: k, Value: []byte(w.Headers[k])})
	}
	return ev
}
