package eventtest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

// memQueue is a minimal correct upstream/target: a FIFO list with
// invisible-until-acked deliveries, so the suites can be checked against
// an implementation whose behaviour is known.
type memQueue struct {
	mu    sync.Mutex
	ready []event.Event
}

type memSink struct {
	q      *memQueue
	closed bool
	mu     sync.Mutex
}

func (s *memSink) Send(_ context.Context, batch []event.Event) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errors.New("memsink: closed")
	}
	var be event.BatchError
	s.q.mu.Lock()
	for i, e := range batch {
		if string(e.Value) == "poison" {
			be.Failed = append(be.Failed, event.ItemError{Index: i, Err: event.Permanent(errors.New("poison"))})
			continue
		}
		s.q.ready = append(s.q.ready, e)
	}
	s.q.mu.Unlock()
	if len(be.Failed) > 0 {
		return &be
	}
	return nil
}

func (s *memSink) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (q *memQueue) read(context.Context) ([]event.Event, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.ready
	q.ready = nil
	return out, nil
}

type memSource struct{ q *memQueue }

// Run takes up to 4 events, delivers them and drops them only when deliver
// returned nil; otherwise they go back to the front after a pause.
func (s memSource) Run(ctx context.Context, deliver event.DeliverFunc) error {
	for ctx.Err() == nil {
		s.q.mu.Lock()
		n := min(4, len(s.q.ready))
		batch := slices.Clone(s.q.ready[:n])
		s.q.ready = s.q.ready[n:]
		s.q.mu.Unlock()
		if n == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		if err := deliver(ctx, batch); err != nil {
			s.q.mu.Lock()
			s.q.ready = append(batch, s.q.ready...)
			s.q.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

func TestSuitesOnMemQueue(t *testing.T) {
	f := Features{
		BatchLimit:    4,
		BinaryValues:  true,
		BinaryHeaders: true,
		HeaderOrder:   true,
		Ordered:       true,
		Poison:        func() event.Event { return event.Event{Value: []byte("poison")} },
		Wait:          5 * time.Second,
	}
	t.Run("Sink", func(t *testing.T) {
		RunSinkSuite(t, f, func(t *testing.T) (event.Sink, Reader) {
			q := &memQueue{}
			return &memSink{q: q}, q.read
		})
	})
	t.Run("Source", func(t *testing.T) {
		RunSourceSuite(t, f, func(t *testing.T) SourceEnv {
			q := &memQueue{}
			return SourceEnv{
				NewSource: func() event.Source { return memSource{q} },
				Publish:   (&memSink{q: q}).Send,
			}
		})
	})
}

func TestDiffEvent(t *testing.T) {
	base := event.Event{Key: []byte("k"), Value: []byte("v"), Headers: []event.Header{
		{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("3")},
	}}
	with := func(edit func(e *event.Event)) event.Event {
		e := base
		e.Headers = slices.Clone(base.Headers)
		edit(&e)
		return e
	}
	sys := func(name string) bool { return name == "sys" }
	cases := []struct {
		name    string
		f       Features
		got     event.Event
		matches bool
	}{
		{"identical", Features{HeaderOrder: true}, base, true},
		{"nil key vs empty key", Features{}, with(func(e *event.Event) { e.Key = []byte{} }), false},
		{"other value", Features{}, with(func(e *event.Event) { e.Value = []byte("w") }), false},
		{"names interleaved differently, unordered target", Features{},
			with(func(e *event.Event) { e.Headers[0], e.Headers[1] = e.Headers[1], e.Headers[0] }), true},
		{"names interleaved differently, ordered target", Features{HeaderOrder: true},
			with(func(e *event.Event) { e.Headers[0], e.Headers[1] = e.Headers[1], e.Headers[0] }), false},
		{"values of one name swapped", Features{},
			with(func(e *event.Event) { e.Headers[0], e.Headers[2] = e.Headers[2], e.Headers[0] }), false},
		{"a header missing", Features{}, with(func(e *event.Event) { e.Headers = e.Headers[:2] }), false},
		{"system header added and ignored", Features{SystemHeader: sys},
			with(func(e *event.Event) { e.Headers = append(e.Headers, event.Header{Key: "sys", Value: []byte("x")}) }), true},
		{"extra header not ignored", Features{},
			with(func(e *event.Event) { e.Headers = append(e.Headers, event.Header{Key: "sys", Value: []byte("x")}) }), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := diffEvent(tc.f, base, tc.got)
			if (d == "") != tc.matches {
				t.Fatalf("diffEvent = %q, want match=%v", d, tc.matches)
			}
		})
	}
}

func TestSeqOf(t *testing.T) {
	cases := []struct {
		value string
		want  int
	}{
		{"p-0", 0},
		{"p-42", 42},
		{"p-7\x00\xff", 7},
		{"q-1", -1},
		{"p-", -1},
		{"p-x", -1},
	}
	for _, tc := range cases {
		if got := seqOf("p", event.Event{Value: []byte(tc.value)}); got != tc.want {
			t.Errorf("seqOf(%q) = %d, want %d", tc.value, got, tc.want)
		}
	}
}
