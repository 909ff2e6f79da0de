package eventtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

// NewSinkFunc returns a sink writing to a fresh, empty target and a Reader
// of that target. It registers its own cleanup with t.Cleanup; the suite
// closes the sink itself.
type NewSinkFunc func(t *testing.T) (event.Sink, Reader)

// RunSinkSuite runs the sink conformance cases, each as a subtest with its
// own sink and target.
func RunSinkSuite(t *testing.T, f Features, newSink NewSinkFunc) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, f Features, newSink NewSinkFunc)
	}{
		{"RoundTrip", sinkRoundTrip},
		{"NilKeyAndEmptyBatch", sinkNilKeyAndEmptyBatch},
		{"OrderPerKeyBeyondBatchLimit", sinkOrderPerKey},
		{"PoisonIsBatchError", sinkPoison},
		{"CloseIdempotentSendAfterCloseFails", sinkClose},
	}
	for _, tc := range cases {
		if tc.name == "PoisonIsBatchError" && f.Poison == nil {
			continue // the target has no event it rejects for good
		}
		t.Run(tc.name, func(t *testing.T) { tc.run(t, f, newSink) })
	}
}

func closeSink(t *testing.T, s event.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("close sink: %v", err)
	}
}

func send(t *testing.T, s event.Sink, batch []event.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Send(ctx, batch); err != nil {
		t.Fatalf("send %d events: %v", len(batch), err)
	}
}

// readAll reads until n events arrived, then checks that nothing more comes
// within a short grace period.
func readAll(t *testing.T, f Features, r Reader, n int) []event.Event {
	t.Helper()
	var got []event.Event
	waitFor(t, f.wait(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		evs, err := r(ctx)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("read: %w", err)
		}
		got = append(got, evs...)
		if len(got) < n {
			return fmt.Errorf("read %d of %d events", len(got), n)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	extra, _ := r(ctx) // an error here is the timeout of an empty read
	got = append(got, extra...)
	if len(got) != n {
		t.Fatalf("read %d events, want exactly %d", len(got), n)
	}
	return got
}

// matchAll checks that got holds each event of want exactly once.
func matchAll(t *testing.T, f Features, prefix string, want, got []event.Event) {
	t.Helper()
	seen := make([]bool, len(want))
	for _, g := range got {
		i := seqOf(prefix, g)
		if i < 0 || i >= len(want) {
			t.Fatalf("unexpected event value %q", g.Value)
		}
		if seen[i] {
			t.Fatalf("event %d delivered twice", i)
		}
		seen[i] = true
		if d := diffEvent(f, want[i], g); d != "" {
			t.Errorf("event %d: %s", i, d)
		}
	}
}

func sinkRoundTrip(t *testing.T, f Features, newSink NewSinkFunc) {
	s, r := newSink(t)
	defer closeSink(t, s)
	prefix := "rt"
	want := MakeEvents(prefix, 6, 2, f.BinaryValues)
	for i := range want {
		want[i].Headers = append(want[i].Headers, event.Header{Key: "content-kind", Value: []byte("text/plain; charset=utf-8")})
		if f.BinaryHeaders {
			want[i].Headers = append(want[i].Headers, event.Header{Key: "bin", Value: []byte{0, 0xff, 'x', 0x80}})
		}
	}
	send(t, s, want)
	matchAll(t, f, prefix, want, readAll(t, f, r, len(want)))
}

func sinkNilKeyAndEmptyBatch(t *testing.T, f Features, newSink NewSinkFunc) {
	s, r := newSink(t)
	defer closeSink(t, s)
	if err := s.Send(t.Context(), nil); err != nil {
		t.Fatalf("send of an empty batch: %v", err)
	}
	prefix := "nokey"
	want := MakeEvents(prefix, 3, 0, false)
	send(t, s, want)
	got := readAll(t, f, r, len(want))
	matchAll(t, f, prefix, want, got)
	for _, g := range got {
		if g.Key != nil {
			t.Errorf("event %q: key %q, want nil", g.Value, g.Key)
		}
	}
}

func sinkOrderPerKey(t *testing.T, f Features, newSink NewSinkFunc) {
	s, r := newSink(t)
	defer closeSink(t, s)
	prefix := "order"
	n := 2*f.batchLimit() + 3
	want := MakeEvents(prefix, 2*n, 3, false)
	// Two Sends: order must hold inside one batch and across batches.
	send(t, s, want[:n])
	send(t, s, want[n:])
	got := readAll(t, f, r, len(want))
	matchAll(t, f, prefix, want, got)
	if !f.Ordered {
		return
	}
	last := map[string]int{}
	for _, g := range got {
		i := seqOf(prefix, g)
		k := string(g.Key)
		if prev, ok := last[k]; ok && i < prev {
			t.Fatalf("key %s: event %d arrived after event %d", k, i, prev)
		}
		last[k] = i
	}
}

func sinkPoison(t *testing.T, f Features, newSink NewSinkFunc) {
	s, r := newSink(t)
	defer closeSink(t, s)
	prefix := "poison"
	good := MakeEvents(prefix, 2, 1, false)
	batch := []event.Event{good[0], f.Poison(), good[1]}
	err := s.Send(t.Context(), batch)
	var be *event.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("send with a poison event: %v, want *event.BatchError", err)
	}
	if len(be.Failed) != 1 || be.Failed[0].Index != 1 {
		t.Fatalf("failed items %+v, want exactly index 1", be.Failed)
	}
	if !errors.Is(err, event.ErrPermanent) {
		t.Errorf("poison error %v does not wrap event.ErrPermanent", err)
	}
	matchAll(t, f, prefix, good, readAll(t, f, r, len(good)))
}

func sinkClose(t *testing.T, f Features, newSink NewSinkFunc) {
	s, r := newSink(t)
	prefix := "close"
	want := MakeEvents(prefix, 2, 1, false)
	send(t, s, want)
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Close(ctx)
		cancel()
		if err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
	err := s.Send(t.Context(), MakeEvents("after", 1, 1, false))
	if err == nil {
		t.Fatal("send after close returned nil")
	}
	if strings.TrimSpace(err.Error()) == "" {
		t.Error("send after close: empty error text")
	}
	// What was sent before Close is still there.
	matchAll(t, f, prefix, want, readAll(t, f, r, len(want)))
}
