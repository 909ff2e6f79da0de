package migrate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/internal/atomicfile"
)

// bridgeSystem is a topic of a running bridge, reached over its HTTP API
// (SPEC §6). As a source it reads the topic from offsets it keeps in the
// state dir (the topic is left intact); as a target it posts events.
// $BRIDGE_TOKEN, when set, is sent as the bearer token.
type bridgeSystem struct {
	ep          *Endpoint
	log         *slog.Logger
	http        *http.Client
	token       string
	offsetsFile string

	mu      sync.Mutex // guards offsets
	offsets map[int32]int64
}

func newBridgeSystem(e *Endpoint, stateDir string, log *slog.Logger) *bridgeSystem {
	return &bridgeSystem{ep: e, log: log, http: &http.Client{Timeout: 60 * time.Second}, token: os.Getenv("BRIDGE_TOKEN"),
		offsetsFile: filepath.Join(stateDir, "bridge-source-offsets.json")}
}

// apiEvent is an event as the HTTP API reads and writes it.
type apiEvent struct {
	Partition   int32             `json:"partition,omitempty"`
	Offset      int64             `json:"offset,omitempty"`
	Key         *string           `json:"key"`
	Headers     map[string]string `json:"headers,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
	Timestamp   string            `json:"timestamp,omitempty"`
}

type topicInfo struct {
	Partitions []struct {
		Partition   int32 `json:"partition"`
		StartOffset int64 `json:"start_offset"`
		EndOffset   int64 `json:"end_offset"`
	} `json:"partitions"`
}

// errNotFound is a 404 from the API.
var errNotFound = errors.New("not found")

func (s *bridgeSystem) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.ep.Addr+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w: %s", method, path, errNotFound, bytes.TrimSpace(data))
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge ||
		resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return event.Permanent(fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data)))
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func (s *bridgeSystem) topic(ctx context.Context) (topicInfo, error) {
	var ti topicInfo
	err := s.do(ctx, http.MethodGet, "/v1/topics/"+s.ep.Topic, nil, &ti)
	return ti, err
}

func (s *bridgeSystem) checkSource(ctx context.Context) error {
	_, err := s.topic(ctx)
	if err != nil {
		return fmt.Errorf("source topic on %s: %w", s.ep, err)
	}
	return nil
}

func (s *bridgeSystem) prepareTarget(ctx context.Context, _ int) error {
	if _, err := s.topic(ctx); err != nil {
		return fmt.Errorf("target topic on %s (it must be configured in the bridge's backbone.topics): %w", s.ep, err)
	}
	return nil
}

func (s *bridgeSystem) mark(ctx context.Context) (map[int32]int64, error) {
	ti, err := s.topic(ctx)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, p := range ti.Partitions {
		out[p.Partition] = p.EndOffset
	}
	return out, nil
}

func (s *bridgeSystem) close() {}

// loadOffsets reads the source's next offsets, kept in the state dir.
func (s *bridgeSystem) loadOffsets() (map[int32]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offsets != nil {
		return s.offsets, nil
	}
	s.offsets = map[int32]int64{}
	data, err := os.ReadFile(s.offsetsFile)
	if errors.Is(err, os.ErrNotExist) {
		return s.offsets, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &s.offsets); err != nil {
		return nil, fmt.Errorf("%s: %w", s.offsetsFile, err)
	}
	return s.offsets, nil
}

// saveOffset records that everything below next in partition is durable
// in the local log, atomically and fsynced.
func (s *bridgeSystem) saveOffset(partition int32, next int64) error {
	s.mu.Lock()
	s.offsets[partition] = next
	data, _ := json.Marshal(s.offsets)
	s.mu.Unlock()
	return atomicfile.Write(s.offsetsFile, data, 0o644)
}

func (s *bridgeSystem) depth(ctx context.Context) (int64, bool, error) {
	ti, err := s.topic(ctx)
	if err != nil {
		return 0, false, err
	}
	offs, err := s.loadOffsets()
	if err != nil {
		return 0, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, p := range ti.Partitions {
		n += max(p.EndOffset-max(offs[p.Partition], p.StartOffset), 0)
	}
	return n, true, nil
}

// page reads up to limit events of partition from offset.
func (s *bridgeSystem) page(ctx context.Context, partition int32, offset int64, limit int) ([]apiEvent, int64, error) {
	var out struct {
		Events     []apiEvent `json:"events"`
		NextOffset int64      `json:"next_offset"`
	}
	path := fmt.Sprintf("/v1/topics/%s/events?partition=%d&offset=%d&limit=%d", s.ep.Topic, partition, offset, limit)
	if err := s.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, 0, err
	}
	return out.Events, out.NextOffset, nil
}

// toEvent maps an API event to the canonical event; headers come sorted
// by name (the API has one value per name).
func (a *apiEvent) toEvent() (event.Event, error) {
	ev := event.Event{}
	if a.Key != nil {
		ev.Key = []byte(*a.Key)
	}
	switch {
	case a.ValueBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*a.ValueBase64)
		if err != nil {
			return ev, err
		}
		ev.Value = b
	case len(a.Value) > 0:
		ev.Value = a.Value
	}
	names := make([]string, 0, len(a.Headers))
	for k := range a.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		ev.Headers = append(ev.Headers, event.Header{Key: k, Value: []byte(a.Headers[k])})
	}
	if t, err := time.Parse(time.RFC3339Nano, a.Timestamp); err == nil {
		ev.Timestamp = t
	}
	return ev, nil
}

func (s *bridgeSystem) source(maxBatch int) (event.Source, error) {
	if maxBatch <= 0 || maxBatch > 1000 {
		maxBatch = 1000
	}
	return &bridgeSource{sys: s, maxBatch: maxBatch}, nil
}

// bridgeSource polls each partition of the topic from the saved offsets.
// Every event gets the header bridge-event-id = its id in the source
// bridge (TOPIC/PARTITION/OFFSET) unless it already has one, so that
// consumers and verification keep the first id the event ever had.
type bridgeSource struct {
	sys      *bridgeSystem
	maxBatch int
}

func (b *bridgeSource) Run(ctx context.Context, deliver event.DeliverFunc) error {
	offs, err := b.sys.loadOffsets()
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		ti, err := b.sys.topic(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		moved := false
		for _, p := range ti.Partitions {
			b.sys.mu.Lock()
			from := max(offs[p.Partition], p.StartOffset)
			b.sys.mu.Unlock()
			if from >= p.EndOffset {
				continue
			}
			evs, next, err := b.sys.page(ctx, p.Partition, from, b.maxBatch)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if len(evs) == 0 {
				continue
			}
			batch := make([]event.Event, 0, len(evs))
			for i := range evs {
				ev, err := evs[i].toEvent()
				if err != nil {
					return event.Permanent(fmt.Errorf("event %d/%d: %w", p.Partition, evs[i].Offset, err))
				}
				if _, ok := ev.Header(event.HeaderEventID); !ok {
					id := b.sys.ep.Topic + "/" + strconv.Itoa(int(p.Partition)) + "/" + strconv.FormatInt(evs[i].Offset, 10)
					ev.Headers = append(ev.Headers, event.Header{Key: event.HeaderEventID, Value: []byte(id)})
				}
				batch = append(batch, ev)
			}
			if err := deliver(ctx, batch); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if err := b.sys.saveOffset(p.Partition, next); err != nil {
				return err
			}
			moved = true
		}
		if !moved {
			t := time.NewTimer(500 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

func (s *bridgeSystem) sink() (event.Sink, error) { return &bridgeSink{sys: s}, nil }

// bridgeSink posts batches to the topic; the API answers once they are
// durable. Values travel base64 so that every byte is kept; headers are a
// map in the API, so of a repeated name only the last value arrives.
type bridgeSink struct{ sys *bridgeSystem }

func (b *bridgeSink) Name() string { return "bridge:" + b.sys.ep.Topic }

func (b *bridgeSink) Send(ctx context.Context, batch []event.Event) error {
	out := make([]apiEvent, len(batch))
	for i := range batch {
		ev := &batch[i]
		a := apiEvent{Headers: make(map[string]string, len(ev.Headers))}
		if ev.Key != nil {
			k := string(ev.Key)
			a.Key = &k
		}
		v := base64.StdEncoding.EncodeToString(ev.Value)
		a.ValueBase64 = &v
		for _, h := range ev.Headers {
			a.Headers[h.Key] = string(h.Value)
		}
		if !ev.Timestamp.IsZero() {
			a.Timestamp = ev.Timestamp.UTC().Format(time.RFC3339Nano)
		}
		out[i] = a
	}
	body, err := json.Marshal(out)
	if err != nil {
		return event.Permanent(err)
	}
	return b.sys.do(ctx, http.MethodPost, "/v1/topics/"+b.sys.ep.Topic+"/events", body, nil)
}

func (b *bridgeSink) Close(context.Context) error { return nil }

// readBack reads every partition from the recorded start to its end now.
func (s *bridgeSystem) readBack(ctx context.Context, from map[int32]int64, fn func(targetMessage)) error {
	ti, err := s.topic(ctx)
	if err != nil {
		return err
	}
	for _, p := range ti.Partitions {
		next := max(from[p.Partition], p.StartOffset)
		for next < p.EndOffset {
			evs, n, err := s.page(ctx, p.Partition, next, 5000)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				return fmt.Errorf("read back %s partition %d: no events at %d below the end %d", s.ep.Topic, p.Partition, next, p.EndOffset)
			}
			for i := range evs {
				ev, err := evs[i].toEvent()
				if err != nil {
					return err
				}
				fn(targetMessage{Event: ev, Partition: p.Partition,
					Position: s.ep.Topic + "/" + strconv.Itoa(int(p.Partition)) + "/" + strconv.FormatInt(evs[i].Offset, 10)})
			}
			next = n
		}
	}
	return nil
}
