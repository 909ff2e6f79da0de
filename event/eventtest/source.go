package eventtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

// SourceEnv is one isolated upstream (a fresh queue) for the source suite.
type SourceEnv struct {
	// NewSource returns a new source reading the upstream. The suite calls
	// it again to restart after a stop; it runs at most one at a time.
	NewSource func() event.Source
	// Publish writes events upstream, mapping key, value and headers as the
	// connector's documentation says a producer should (for example the key
	// in the header bridge-key).
	Publish func(ctx context.Context, evs []event.Event) error
}

// NewSourceEnvFunc returns a fresh upstream; it registers its own cleanup.
type NewSourceEnvFunc func(t *testing.T) SourceEnv

// RunSourceSuite runs the source conformance cases, each as a subtest with
// its own upstream. f.Wait bounds each wait for redelivery, so it must exceed
// the upstream's redelivery delay (an SQS visibility timeout).
func RunSourceSuite(t *testing.T, f Features, newEnv NewSourceEnvFunc) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, f Features, env SourceEnv)
	}{
		{"DeliversAll", sourceDeliversAll},
		{"FailedDeliverIsRedelivered", sourceFailedDeliver},
		{"StopDuringDeliverRedelivers", sourceStopDuringDeliver},
		{"RestartAfterFailure", sourceRestart},
		{"CancelWhileIdle", sourceCancelIdle},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, f, newEnv(t)) })
	}
}

// collector records accepted events and counts deliver calls. Sources may
// call deliver from several goroutines.
type collector struct {
	mu       sync.Mutex
	accepted []event.Event
	calls    int
	// verdict decides the result of call number n (1-based) for batch.
	verdict func(ctx context.Context, n int, batch []event.Event) error
}

func (c *collector) deliver(ctx context.Context, batch []event.Event) error {
	c.mu.Lock()
	c.calls++
	n := c.calls
	verdict := c.verdict
	c.mu.Unlock()
	if verdict != nil {
		if err := verdict(ctx, n, batch); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.accepted = append(c.accepted, batch...)
	c.mu.Unlock()
	return nil
}

func (c *collector) snapshot() ([]event.Event, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event.Event(nil), c.accepted...), c.calls
}

// running is a source's Run in a goroutine owned by the test.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(src event.Source, deliver event.DeliverFunc) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- src.Run(ctx, deliver) }()
	return r
}

// stop cancels Run and checks that it returns nil within 10 seconds.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run after cancel returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
}

// failIfDone fails the test if Run already returned (a source must not give
// up on its own while the upstream is healthy).
func (r *running) failIfDone() error {
	select {
	case err := <-r.done:
		return fmt.Errorf("the source's Run returned early: %v", err)
	default:
		return nil
	}
}

func publish(t *testing.T, env SourceEnv, evs []event.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.Publish(ctx, evs); err != nil {
		t.Fatalf("publish %d events: %v", len(evs), err)
	}
}

// waitAccepted waits until every event of want was accepted at least once
// and returns how often each was accepted.
func waitAccepted(t *testing.T, f Features, prefix string, want []event.Event, c *collector, r *running) []int {
	t.Helper()
	var counts []int
	waitFor(t, f.wait(), func() error {
		if err := r.failIfDone(); err != nil {
			return err
		}
		got, _ := c.snapshot()
		counts = make([]int, len(want))
		for _, g := range got {
			i := seqOf(prefix, g)
			if i < 0 || i >= len(want) {
				return fmt.Errorf("unexpected event value %q", g.Value)
			}
			counts[i]++
		}
		for i, n := range counts {
			if n == 0 {
				return fmt.Errorf("event %d not delivered (%d accepted in all)", i, len(got))
			}
		}
		return nil
	})
	return counts
}

func sourceDeliversAll(t *testing.T, f Features, env SourceEnv) {
	prefix := "all"
	want := MakeEvents(prefix, 25, 3, f.BinaryValues)
	publish(t, env, want)
	c := &collector{}
	r := start(env.NewSource(), c.deliver)
	counts := waitAccepted(t, f, prefix, want, c, r)
	r.stop(t)
	got, _ := c.snapshot()
	for i, n := range counts {
		if n != 1 {
			t.Errorf("event %d accepted %d times, want 1 (no failure happened)", i, n)
		}
	}
	matchAll(t, f, prefix, want, got)
	if f.Ordered {
		last := map[string]int{}
		for _, g := range got {
			i, k := seqOf(prefix, g), string(g.Key)
			if prev, ok := last[k]; ok && i < prev {
				t.Fatalf("key %s: event %d delivered after event %d", k, i, prev)
			}
			last[k] = i
		}
	}
}

var errRefused = errors.New("eventtest: deliver refused")

func sourceFailedDeliver(t *testing.T, f Features, env SourceEnv) {
	prefix := "retry"
	want := MakeEvents(prefix, 10, 2, false)
	publish(t, env, want)
	c := &collector{verdict: func(_ context.Context, n int, _ []event.Event) error {
		if n <= 3 {
			return errRefused
		}
		return nil
	}}
	r := start(env.NewSource(), c.deliver)
	waitAccepted(t, f, prefix, want, c, r)
	r.stop(t)
	if _, calls := c.snapshot(); calls < 4 {
		t.Fatalf("deliver called %d times, want at least 4 (3 refusals then success)", calls)
	}
}

func sourceStopDuringDeliver(t *testing.T, f Features, env SourceEnv) {
	prefix := "stop"
	want := MakeEvents(prefix, 10, 2, false)
	publish(t, env, want)
	entered := make(chan struct{}, 1)
	// The first source's deliver never succeeds: it blocks until the source
	// is stopped, as a backbone append would that never becomes durable.
	first := &collector{verdict: func(ctx context.Context, _ int, _ []event.Event) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}}
	r1 := start(env.NewSource(), first.deliver)
	select {
	case <-entered:
	case <-time.After(f.wait()):
		t.Fatal("deliver was never called")
	}
	r1.stop(t)
	second := &collector{}
	r2 := start(env.NewSource(), second.deliver)
	waitAccepted(t, f, prefix, want, second, r2)
	r2.stop(t)
}

func sourceRestart(t *testing.T, f Features, env SourceEnv) {
	prefix := "restart"
	want := MakeEvents(prefix, 20, 2, false)
	publish(t, env, want)
	// The first source accepts one batch, then every later deliver fails.
	first := &collector{verdict: func(_ context.Context, n int, _ []event.Event) error {
		if n == 1 {
			return nil
		}
		return errRefused
	}}
	r1 := start(env.NewSource(), first.deliver)
	waitFor(t, f.wait(), func() error {
		if err := r1.failIfDone(); err != nil {
			return err
		}
		got, calls := first.snapshot()
		if len(got) == len(want) {
			return nil // everything fit in the first batch
		}
		if calls < 2 {
			return fmt.Errorf("deliver called %d times, want 2", calls)
		}
		return nil
	})
	r1.stop(t)
	acceptedFirst, _ := first.snapshot()
	second := &collector{}
	r2 := start(env.NewSource(), second.deliver)
	rest := map[int]bool{}
	for i := range want {
		rest[i] = true
	}
	for _, e := range acceptedFirst {
		delete(rest, seqOf(prefix, e))
	}
	waitFor(t, f.wait(), func() error {
		if err := r2.failIfDone(); err != nil {
			return err
		}
		got, _ := second.snapshot()
		seen := map[int]bool{}
		for _, g := range got {
			seen[seqOf(prefix, g)] = true
		}
		for i := range rest {
			if !seen[i] {
				return fmt.Errorf("event %d, refused by the first source, not delivered after restart", i)
			}
		}
		return nil
	})
	r2.stop(t)
	// What the first source acknowledged must not come back: the ack
	// happened when deliver returned nil.
	got, _ := second.snapshot()
	for _, g := range got {
		if i := seqOf(prefix, g); !rest[i] {
			t.Errorf("event %d was accepted before the restart and delivered again", i)
		}
	}
}

func sourceCancelIdle(t *testing.T, f Features, env SourceEnv) {
	c := &collector{}
	r := start(env.NewSource(), c.deliver)
	// Long enough for the source to connect and sit in a long poll.
	time.Sleep(300 * time.Millisecond)
	if err := r.failIfDone(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r.stop(t)
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("Run took %v to return after cancel, want under 3s", d)
	}
	if got, _ := c.snapshot(); len(got) != 0 {
		t.Errorf("idle source delivered %d events from an empty upstream", len(got))
	}
}
