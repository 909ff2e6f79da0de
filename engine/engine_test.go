package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// recSink records what it acknowledged and fails on demand.
type recSink struct {
	mu  sync.Mutex
	got []event.Event
	// fail decides per event whether it fails now (nil = never).
	fail func(ev *event.Event, call int) error
	// delay slows every Send (a slow target).
	delay time.Duration
	calls int
}

func (s *recSink) Name() string { return "rec" }

func (s *recSink) Send(ctx context.Context, batch []event.Event) error {
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var be event.BatchError
	for i := range batch {
		if s.fail != nil {
			if err := s.fail(&batch[i], s.calls); err != nil {
				be.Failed = append(be.Failed, event.ItemError{Index: i, Err: err})
				continue
			}
		}
		s.got = append(s.got, copyEvent(batch[i]))
	}
	if len(be.Failed) > 0 {
		return &be
	}
	return nil
}

func (s *recSink) Close(context.Context) error { return nil }

// copyEvent deep-copies what a sink keeps beyond Send: the event contract
// lets the engine reuse the bytes once Send returned.
func copyEvent(ev event.Event) event.Event {
	ev.Key = bytes.Clone(ev.Key)
	ev.Value = bytes.Clone(ev.Value)
	hs := make([]event.Header, len(ev.Headers))
	for i, h := range ev.Headers {
		hs[i] = event.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
	}
	ev.Headers = hs
	return ev
}

func (s *recSink) events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.got...)
}

func mustCompile(t *testing.T, src string, kind rules.Kind) *rules.Program {
	t.Helper()
	if src == "" {
		return nil
	}
	p, err := rules.Compile(src, kind)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return p
}

func produce(t *testing.T, b Backbone, topic string, n int, value func(i int) string) {
	t.Helper()
	var evs []event.Event
	for i := range n {
		evs = append(evs, event.Event{Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte(value(i)), Source: "test"})
	}
	if _, err := b.Append(context.Background(), topic, evs); err != nil {
		t.Fatal(err)
	}
}

type runningEngine struct {
	e      *Engine
	cancel context.CancelFunc
	done   chan error
}

func runEngine(t *testing.T, e *Engine) *runningEngine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningEngine{e: e, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *runningEngine) stop(t *testing.T) error {
	t.Helper()
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("engine did not stop")
		return nil
	}
}

func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("condition not met after %v: %v", timeout, err)
}

func testRoute(name string, sink event.Sink) *route {
	return &route{pipeline: "p", name: name, topic: "in", start: "earliest", sink: sink,
		onError: OnErrorDeadLetter, retry: RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond},
		batchSize: 64, maxBytes: 1 << 20}
}

func newTestEngine(t *testing.T, b Backbone, routes ...*route) *Engine {
	t.Helper()
	e := newEngine(b, Options{CommitInterval: 5 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err := e.addPipeline("p", "in", routes); err != nil {
		t.Fatal(err)
	}
	return e
}

// inOrderPerPartition fails the test unless the events of each partition
// appear in increasing offset order.
func inOrderPerPartition(t *testing.T, evs []event.Event) {
	t.Helper()
	last := map[int32]int64{}
	for _, ev := range evs {
		if prev, ok := last[ev.Partition]; ok && ev.Offset <= prev {
			t.Fatalf("partition %d: offset %d after %d", ev.Partition, ev.Offset, prev)
		}
		last[ev.Partition] = ev.Offset
	}
}

func TestFilterCopiesInOrderAndCheckpoints(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 3})
	produce(t, b, "in", 600, func(i int) string { return fmt.Sprintf(`{"n":%d,"big":%v}`, i, i%3 == 0) })
	sink := &recSink{}
	r := testRoute("copy", sink)
	r.filter = mustCompile(t, "body.big == true", rules.Bool)
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 10*time.Second, func() error {
		if n := len(sink.events()); n != 200 {
			return fmt.Errorf("%d events sent", n)
		}
		return nil
	})
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	got := sink.events()
	inOrderPerPartition(t, got)
	for _, ev := range got {
		id, ok := ev.Header(event.HeaderEventID)
		if !ok || string(id) != ev.ID() {
			t.Fatalf("event %s: bridge-event-id = %q", ev.ID(), id)
		}
	}
	for p := range int32(3) {
		_, end, _ := b.Offsets("in", p)
		if next, _ := b.committed(r.group(), "in", p); next != end {
			t.Fatalf("partition %d: checkpoint %d, want end %d", p, next, end)
		}
	}
	st := e.Pipelines()[0].Routes[0]
	if st.Read != 600 || st.Matched != 200 || st.Sent != 200 || st.Lag != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestCheckpointHoldsAtFailure is benthos's checkpoint case: the sink
// acknowledges some events and rejects one; the checkpoint must stop before
// the rejected event, and a restart must deliver it again.
func TestCheckpointHoldsAtFailure(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 10, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{fail: func(ev *event.Event, _ int) error {
		if ev.Offset == 6 {
			return errors.New("target refused")
		}
		return nil
	}}
	r := testRoute("r", sink)
	r.onError = OnErrorStop
	r.batchSize = 3 // batches [0,1,2] [3,4,5] [6,7,8] [9]
	r.retry.MaxAttempts = 2
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if e.Pipelines()[0].State != "stopped" {
			return errors.New("route not stopped yet")
		}
		return nil
	})
	_ = run.stop(t)
	if next, _ := b.committed(r.group(), "in", 0); next != 6 {
		t.Fatalf("checkpoint %d, want 6 (the failed event)", next)
	}
	// Restart with a healthy sink: delivery resumes at 6.
	sink2 := &recSink{}
	r2 := testRoute("r", sink2)
	e2 := newTestEngine(t, b, r2)
	run2 := runEngine(t, e2)
	waitFor(t, 5*time.Second, func() error {
		if n := len(sink2.events()); n != 4 {
			return fmt.Errorf("%d redelivered", n)
		}
		return nil
	})
	_ = run2.stop(t)
	if first := sink2.events()[0].Offset; first != 6 {
		t.Fatalf("redelivery starts at %d, want 6", first)
	}
}

func TestRetryThenSuccessKeepsOrder(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 2})
	produce(t, b, "in", 200, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{fail: func(ev *event.Event, call int) error {
		if call <= 3 {
			return errors.New("connection refused") // retryable
		}
		return nil
	}}
	r := testRoute("r", sink)
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if n := len(sink.events()); n != 200 {
			return fmt.Errorf("%d sent", n)
		}
		return nil
	})
	_ = run.stop(t)
	inOrderPerPartition(t, sink.events())
	st := e.Pipelines()[0].Routes[0]
	if st.Retries == 0 || st.DeadLettered != 0 {
		t.Fatalf("want retries and no dead letters: %+v", st)
	}
}

func TestPermanentFailureDeadLettersAtOnce(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 20, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{fail: func(ev *event.Event, _ int) error {
		if ev.Offset%5 == 0 {
			return event.Permanent(errors.New("message rejected"))
		}
		return nil
	}}
	dl := &recSink{}
	r := testRoute("r", sink)
	r.deadLetter = dl
	r.retry.MaxAttempts = 100
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if len(sink.events()) != 16 || len(dl.events()) != 4 {
			return fmt.Errorf("sent %d, dead-lettered %d", len(sink.events()), len(dl.events()))
		}
		return nil
	})
	_ = run.stop(t)
	if st := e.Pipelines()[0].Routes[0]; st.Retries != 0 {
		t.Fatalf("a permanent failure burned %d retries", st.Retries)
	}
	for _, d := range dl.events() {
		for name, want := range map[string]string{
			event.HeaderError: "message rejected", event.HeaderErrorClass: "permanent",
			event.HeaderPipeline: "p", event.HeaderRoute: "r", event.HeaderAttempts: "1",
		} {
			if v, _ := d.Header(name); string(v) != want {
				t.Fatalf("dead letter header %s = %q, want %q", name, v, want)
			}
		}
		id, _ := d.Header(event.HeaderEventID)
		if string(id) != "in/0/"+string(d.Value) {
			t.Fatalf("dead letter of value %s has origin %s", d.Value, id)
		}
	}
}

// TestRuleErrorDeadLettersExactlyThoseEvents: a filter that fails at run
// time on some events sends exactly those to the dead letter target.
func TestRuleErrorDeadLettersExactlyThoseEvents(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 2})
	produce(t, b, "in", 100, func(i int) string {
		if i%10 == 0 {
			return `{"amount":"not a number"}`
		}
		return fmt.Sprintf(`{"amount":%d}`, i)
	})
	sink, dl := &recSink{}, &recSink{}
	r := testRoute("r", sink)
	r.filter = mustCompile(t, "body.amount + 1 > 0", rules.Bool)
	r.deadLetter = dl
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if len(sink.events()) != 90 || len(dl.events()) != 10 {
			return fmt.Errorf("sent %d, dead-lettered %d", len(sink.events()), len(dl.events()))
		}
		return nil
	})
	_ = run.stop(t)
	for _, d := range dl.events() {
		if string(d.Value) != `{"amount":"not a number"}` {
			t.Fatalf("wrong event dead-lettered: %s", d.Value)
		}
	}
}

func TestOnErrorDrop(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 10, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{fail: func(ev *event.Event, _ int) error {
		if ev.Offset == 3 {
			return event.Permanent(errors.New("bad"))
		}
		return nil
	}}
	r := testRoute("r", sink)
	r.onError = OnErrorDrop
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if next, _ := b.committed(r.group(), "in", 0); next != 10 {
			return fmt.Errorf("checkpoint %d", next)
		}
		return nil
	})
	_ = run.stop(t)
	if st := e.Pipelines()[0].Routes[0]; st.Dropped != 1 || st.Sent != 9 {
		t.Fatalf("status %+v", st)
	}
}

// TestSlowRouteDoesNotHoldOthers: one route's target is down; the other
// route keeps delivering and checkpointing.
func TestSlowRouteDoesNotHoldOthers(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 50, func(i int) string { return strconv.Itoa(i) })
	down := &recSink{fail: func(*event.Event, int) error { return errors.New("connection refused") }}
	up := &recSink{}
	e := newTestEngine(t, b, testRoute("down", down), testRoute("up", up))
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if n := len(up.events()); n != 50 {
			return fmt.Errorf("healthy route sent %d", n)
		}
		return nil
	})
	_ = run.stop(t)
	if next, ok := b.committed("pipeline.p.route.down", "in", 0); ok && next != 0 {
		t.Fatalf("down route checkpoint moved to %d", next)
	}
	if next, _ := b.committed("pipeline.p.route.up", "in", 0); next != 50 {
		t.Fatalf("up route checkpoint %d", next)
	}
}

func TestPartialBatchFailureResendsOnlyFailed(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 10, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{fail: func(ev *event.Event, call int) error {
		if call == 1 && ev.Offset%2 == 1 {
			return errors.New("throttled")
		}
		return nil
	}}
	e := newTestEngine(t, b, testRoute("r", sink))
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if n := len(sink.events()); n != 10 {
			return fmt.Errorf("%d", n)
		}
		return nil
	})
	_ = run.stop(t)
	seen := map[int64]int{}
	for _, ev := range sink.events() {
		seen[ev.Offset]++
	}
	for o, n := range seen {
		if n != 1 {
			t.Fatalf("offset %d delivered %d times", o, n)
		}
	}
}

func TestReplayRewinds(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 2})
	produce(t, b, "in", 40, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{}
	e := newTestEngine(t, b, testRoute("r", sink))
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if n := len(sink.events()); n != 40 {
			return fmt.Errorf("%d", n)
		}
		return nil
	})
	if _, err := e.Replay(context.Background(), "p", ReplayFrom{Earliest: true}); err != nil {
		t.Fatal(err)
	}
	produce(t, b, "in", 1, func(int) string { return "wake" }) // wake idle cursors
	// Every original event comes again. (The wake-up event may be delivered
	// twice: once before the cursor applies the replay, once after.)
	waitFor(t, 5*time.Second, func() error {
		seen := map[string]int{}
		for _, ev := range sink.events() {
			seen[string(ev.Value)]++
		}
		for i := range 40 {
			if seen[strconv.Itoa(i)] != 2 {
				return fmt.Errorf("event %d delivered %d times", i, seen[strconv.Itoa(i)])
			}
		}
		return nil
	})
	_ = run.stop(t)
	if _, err := e.Replay(context.Background(), "nope", ReplayFrom{Earliest: true}); !errors.Is(err, ErrUnknownPipeline) {
		t.Fatalf("replay of unknown pipeline: %v", err)
	}
}

func TestStartLatestSkipsHistory(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 5, func(i int) string { return "old" })
	sink := &recSink{}
	r := testRoute("r", sink)
	r.start = "latest"
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if e.Pipelines()[0].Routes[0].Partitions[0].Position != 5 {
			return errors.New("not positioned")
		}
		return nil
	})
	produce(t, b, "in", 2, func(i int) string { return "new" })
	waitFor(t, 5*time.Second, func() error {
		if n := len(sink.events()); n != 2 {
			return fmt.Errorf("%d", n)
		}
		return nil
	})
	_ = run.stop(t)
	for _, ev := range sink.events() {
		if string(ev.Value) != "new" {
			t.Fatalf("history delivered: %s", ev.Value)
		}
	}
}

// TestShutdownDuringOutageCommitsOnlyAcked: stopping while a target is down
// must not commit the undelivered events.
func TestShutdownDuringOutageCommitsOnlyAcked(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 5, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{fail: func(ev *event.Event, _ int) error {
		if ev.Offset >= 2 {
			return errors.New("down")
		}
		return nil
	}}
	r := testRoute("r", sink)
	r.batchSize = 2
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if e.Pipelines()[0].Routes[0].Retries < 2 {
			return errors.New("not retrying yet")
		}
		return nil
	})
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if next, _ := b.committed(r.group(), "in", 0); next != 2 {
		t.Fatalf("checkpoint %d after shutdown, want 2", next)
	}
}

func TestErrorRules(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 4, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{fail: func(ev *event.Event, _ int) error {
		if ev.Offset == 1 {
			return errors.New("HTTP 400 bad request")
		}
		return nil
	}}
	dl := &recSink{}
	r := testRoute("r", sink)
	r.deadLetter = dl
	var err error
	if r.deadLetterIf, err = rules.CompileErrorRule(`error.message contains "400"`); err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if len(dl.events()) != 1 || len(sink.events()) != 3 {
			return fmt.Errorf("sent %d dl %d", len(sink.events()), len(dl.events()))
		}
		return nil
	})
	_ = run.stop(t)
	if st := e.Pipelines()[0].Routes[0]; st.Retries != 0 {
		t.Fatalf("dead_letter_if should dead-letter at once, retried %d", st.Retries)
	}
}
