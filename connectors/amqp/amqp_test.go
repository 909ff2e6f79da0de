package amqp

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/event/eventtest"
)

var features = eventtest.Features{
	BatchLimit:    100, // no AMQP limit; the sink publishes any batch pipelined
	BinaryValues:  true,
	BinaryHeaders: true,
	Ordered:       true,
	SystemHeader:  isSystemHeader,
	Wait:          30 * time.Second,
}

func TestSinkSuite(t *testing.T) {
	eventtest.RunSinkSuite(t, features, func(t *testing.T) (event.Sink, eventtest.Reader) {
		a := newAdmin(t)
		q := testName(t, "sinkq")
		a.queue(q, nil)
		s, err := NewSink(SinkConfig{URL: rabbitURL(), RoutingKey: q, Name: "bridge-test-sink"})
		if err != nil {
			t.Fatal(err)
		}
		return s, a.reader(q)
	})
}

func TestSourceSuite(t *testing.T) {
	eventtest.RunSourceSuite(t, features, func(t *testing.T) eventtest.SourceEnv {
		a := newAdmin(t)
		q := testName(t, "srcq")
		a.queue(q, nil)
		return eventtest.SourceEnv{
			NewSource: func() event.Source {
				s, err := NewSource(SourceConfig{URL: rabbitURL(), Queue: q, Name: "bridge-test-source", BatchSize: 8})
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			Publish: func(ctx context.Context, evs []event.Event) error { return a.publish(ctx, q, evs) },
		}
	})
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name string
		err  func() error
		want []error
	}{
		{"source without url and queue", func() error { _, err := NewSource(SourceConfig{}); return err }, []error{ErrNoURL, ErrNoQueue}},
		{"source negative batch", func() error {
			_, err := NewSource(SourceConfig{URL: "amqp://x", Queue: "q", BatchSize: -1})
			return err
		}, nil},
		{"sink without target", func() error { _, err := NewSink(SinkConfig{URL: "amqp://x"}); return err }, []error{ErrNoTarget}},
		{"sink without url", func() error { _, err := NewSink(SinkConfig{Exchange: "x"}); return err }, []error{ErrNoURL}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
		})
	}
}

func TestRedactHidesPassword(t *testing.T) {
	for _, u := range []string{"amqp://guest:s3cret@host:5672/vh", "amqps://u:s3cret@h/"} {
		if got := redact(u); got == u || strings.Contains(got, "s3cret") {
			t.Errorf("redact(%q) = %q", u, got)
		}
	}
}

func TestSinkErrors(t *testing.T) {
	a := newAdmin(t)
	bound := testName(t, "bound")
	a.queue(bound, nil)
	full := testName(t, "full")
	// A queue that refuses publishes past 2 messages: RabbitMQ nacks them.
	a.queue(full, amqp091.Table{"x-max-length": int32(2), "x-overflow": "reject-publish"})
	x := testName(t, "x")
	a.exchange(x, amqp091.ExchangeDirect, bound, "ok")
	if err := a.channel().QueueBind(full, "full", x, false, nil); err != nil {
		t.Fatal(err)
	}
	evs := eventtest.MakeEvents("err", 6, 2, false)

	t.Run("unroutable is permanent per item", func(t *testing.T) {
		s := newTestSink(t, SinkConfig{Exchange: x, RoutingKey: "ok"})
		params := []event.Params{{}, {RoutingKey: "nowhere"}, {RoutingKey: "ok"}, {RoutingKey: "nowhere"}}
		err := s.SendParams(t.Context(), evs[:4], params)
		assertFailed(t, err, []int{1, 3}, true)
	})
	t.Run("unroutable without mandatory is dropped silently", func(t *testing.T) {
		no := false
		s := newTestSink(t, SinkConfig{Exchange: x, RoutingKey: "nowhere", Mandatory: &no})
		if err := s.Send(t.Context(), evs[:2]); err != nil {
			t.Fatalf("send: %v", err)
		}
	})
	t.Run("nack is retryable per item", func(t *testing.T) {
		s := newTestSink(t, SinkConfig{Exchange: x, RoutingKey: "full"})
		err := s.Send(t.Context(), evs[:5])
		assertFailed(t, err, []int{2, 3, 4}, false)
	})
	t.Run("missing exchange is permanent", func(t *testing.T) {
		s := newTestSink(t, SinkConfig{Exchange: testName(t, "missing"), RoutingKey: "k"})
		err := s.Send(t.Context(), evs[:2])
		if !errors.Is(err, event.ErrPermanent) {
			t.Fatalf("send to a missing exchange: %v, want permanent", err)
		}
		// The sink recovers for the next batch (which fails the same way).
		if err := s.Send(t.Context(), evs[:1]); !errors.Is(err, event.ErrPermanent) {
			t.Fatalf("second send: %v", err)
		}
	})
	t.Run("wrong password is permanent", func(t *testing.T) {
		s := newTestSink(t, SinkConfig{URL: "amqp://guest:wrong-s3cret@127.0.0.1:5672/", Exchange: x, RoutingKey: "ok"})
		err := s.Send(t.Context(), evs[:1])
		if !errors.Is(err, event.ErrPermanent) {
			t.Fatalf("send with a wrong password: %v, want permanent", err)
		}
		if strings.Contains(err.Error(), "wrong-s3cret") {
			t.Fatalf("error leaks the password: %v", err)
		}
	})
	t.Run("connection refused is retryable", func(t *testing.T) {
		s := newTestSink(t, SinkConfig{URL: "amqp://guest:guest@127.0.0.1:1/", Exchange: x, RoutingKey: "ok"})
		err := s.Send(t.Context(), evs[:1])
		if err == nil || errors.Is(err, event.ErrPermanent) {
			t.Fatalf("send to a closed port: %v, want a retryable error", err)
		}
	})
}

// TestSinkFinishOnShutDownChannel: when the broker has shut the channel
// down, amqp091 has closed its return and close notifications. finishLocked
// must treat a closed notification as gone, not as an endless stream of
// empty returns: that loop once grew the heap past 5 GB in CI when a
// publish failed on a channel the server had just closed (a missing
// exchange), before the close was seen.
func TestSinkFinishOnShutDownChannel(t *testing.T) {
	missing := testName(t, "missing")
	s := newTestSink(t, SinkConfig{Exchange: missing, RoutingKey: "k"})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectLocked(); err != nil {
		t.Fatal(err)
	}
	ch := s.ch
	if err := ch.Publish(missing, "k", false, false, amqp091.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !ch.IsClosed(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("RabbitMQ did not close the channel after a publish to a missing exchange")
		}
	}
	// Both notifications are closed now; the close error is consumed, as
	// if an earlier wait had seen it without this Send dropping the channel.
	<-s.closes
	evs := eventtest.MakeEvents("shut", 2, 1, false)
	done := make(chan error, 1)
	go func() {
		done <- s.finishLocked(t.Context(), evs, nil, nil, amqp091.ErrClosed, len(evs))
	}()
	select {
	case err := <-done:
		assertFailed(t, err, []int{0, 1}, false)
	case <-time.After(10 * time.Second):
		t.Fatal("finishLocked spins on the closed notifications")
	}
}

func newTestSink(t *testing.T, cfg SinkConfig) *Sink {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = rabbitURL()
	}
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func assertFailed(t *testing.T, err error, want []int, permanent bool) {
	t.Helper()
	var be *event.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("error %v, want *event.BatchError", err)
	}
	var got []int
	for _, f := range be.Failed {
		got = append(got, f.Index)
		if errors.Is(f.Err, event.ErrPermanent) != permanent {
			t.Errorf("item %d: %v, want permanent=%v", f.Index, f.Err, permanent)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("failed items %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("failed items %v, want %v", got, want)
		}
	}
}

func TestSinkReconnectsAfterForcedClose(t *testing.T) {
	a := newAdmin(t)
	q := testName(t, "reconnect")
	a.queue(q, nil)
	base := runtime.NumGoroutine()
	s, err := NewSink(SinkConfig{URL: rabbitURL(), RoutingKey: q, Name: "bridge-test-reconnect"})
	if err != nil {
		t.Fatal(err)
	}
	evs := eventtest.MakeEvents("rc", 4, 1, false)
	if err := s.Send(t.Context(), evs[:2]); err != nil {
		t.Fatal(err)
	}
	closeAllConnections(t)
	// The connection may still look open for a moment; the first Send
	// after the close either fails retryably or succeeds on a new one.
	waitFor(t, 20*time.Second, func() error {
		err := s.Send(t.Context(), evs[2:])
		if errors.Is(err, event.ErrPermanent) {
			t.Fatalf("send after a forced close: %v, want retryable", err)
		}
		return err
	})
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The dropped connection and the new one are both released.
	checkNoLeak(t, base)
	r := a.reader(q)
	var got []event.Event
	waitFor(t, 10*time.Second, func() error {
		evs, _ := r(t.Context())
		got = append(got, evs...)
		if len(got) < 4 {
			return errors.New("read " + strconv.Itoa(len(got)) + " of 4")
		}
		return nil
	})
}

func TestSourceRecoversWithoutLeaks(t *testing.T) {
	a := newAdmin(t)
	q := testName(t, "recover")
	a.queue(q, nil)
	base := runtime.NumGoroutine()
	src, err := NewSource(SourceConfig{URL: rabbitURL(), Queue: q, Name: "bridge-test-recover", BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	deliver := func(_ context.Context, batch []event.Event) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range batch {
			seen[string(e.Value)]++
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, deliver) }()
	want := 0
	for round := range 3 {
		evs := eventtest.MakeEvents("round"+strconv.Itoa(round), 20, 2, false)
		if err := a.publish(t.Context(), q, evs); err != nil {
			// The admin connection was closed too; reopen and retry.
			a.channel()
			if err := a.publish(t.Context(), q, evs); err != nil {
				t.Fatal(err)
			}
		}
		want += len(evs)
		waitFor(t, 30*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(seen) < want {
				return errors.New("delivered " + strconv.Itoa(len(seen)) + " of " + strconv.Itoa(want))
			}
			return nil
		})
		closeAllConnections(t)
		a.channel()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	_ = a.conn.Close()
	checkNoLeak(t, base)
}

func TestSourcePermanentFailures(t *testing.T) {
	cases := []struct {
		name string
		cfg  SourceConfig
	}{
		{"missing queue", SourceConfig{URL: rabbitURL(), Queue: testName(t, "absent")}},
		{"wrong password", SourceConfig{URL: "amqp://guest:nope@127.0.0.1:5672/", Queue: "q"}},
		{"declaration conflicts", SourceConfig{URL: rabbitURL(), Queue: "q", Declare: &Topology{
			Exchanges: []Exchange{{Name: "amq.direct", Kind: "fanout"}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewSource(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = src.Run(ctx, func(context.Context, []event.Event) error { return nil })
			if !errors.Is(err, event.ErrPermanent) {
				t.Fatalf("Run: %v, want a permanent error", err)
			}
		})
	}
}

func TestDeclareTopology(t *testing.T) {
	a := newAdmin(t)
	q, x := testName(t, "declq"), testName(t, "declx")
	t.Cleanup(func() {
		a.deleteQueue(q)
		ch := a.channel()
		_ = ch.ExchangeDelete(x, false, false)
	})
	top := &Topology{
		Exchanges: []Exchange{{Name: x, Kind: "topic"}},
		Queues:    []Queue{{Name: q, Args: map[string]any{"x-queue-type": "quorum"}}},
		Bindings:  []Binding{{Queue: q, Exchange: x, Key: "orders.#"}},
	}
	s := newTestSink(t, SinkConfig{Exchange: x, RoutingKey: "orders.eu", Declare: top})
	evs := eventtest.MakeEvents("decl", 3, 1, false)
	if err := s.Send(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(SourceConfig{URL: rabbitURL(), Queue: q, Declare: top})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	n := 0
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(_ context.Context, b []event.Event) error {
			mu.Lock()
			n += len(b)
			mu.Unlock()
			return nil
		})
	}()
	waitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if n != 3 {
			return errors.New("consumed " + strconv.Itoa(n) + " of 3")
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestFailingDeliverBacksOff checks that a deliver that always fails is
// retried with a growing pause (100ms doubling), not in a hot loop.
func TestFailingDeliverBacksOff(t *testing.T) {
	a := newAdmin(t)
	q := testName(t, "backoff")
	a.queue(q, nil)
	if err := a.publish(t.Context(), q, eventtest.MakeEvents("b", 1, 1, false)); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(SourceConfig{URL: rabbitURL(), Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = src.Run(ctx, func(context.Context, []event.Event) error {
		calls.Add(1)
		return errors.New("backbone down")
	})
	if err != nil {
		t.Fatal(err)
	}
	// Pauses of at least 50, 100, 200, 400, 800ms (jitter halves at most)
	// fit 6 calls into 2s; a hot loop would make thousands.
	if n := calls.Load(); n < 2 || n > 7 {
		t.Fatalf("deliver called %d times in 2s, want 2..7", n)
	}
}

// TestRequeueKeepsOrder is the regression test of a reordering: after a
// failed deliver, the source nacked (with requeue) only the deliveries the
// channel happened to hold, while RabbitMQ kept pushing more up to the
// prefetch; those overtook the requeued batch, so events entered the
// backbone out of queue order (found by the e2e soak, under a full disk).
// Now the consumer is cancelled and drained before the nack: after any
// number of failed delivers, the first occurrences of the messages come in
// queue order.
func TestRequeueKeepsOrder(t *testing.T) {
	a := newAdmin(t)
	q := testName(t, "requeue-order")
	a.queue(q, nil)
	const total = 3000
	if err := a.publish(t.Context(), q, eventtest.MakeEvents("o", total, 1, false)); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(SourceConfig{URL: rabbitURL(), Queue: q, BatchSize: 50, Prefetch: 2000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var calls int
	seen := map[string]bool{}
	var order []string
	err = src.Run(ctx, func(_ context.Context, evs []event.Event) error {
		calls++
		if calls%4 == 1 && calls < 40 { // fail now and then, with deliveries streaming in
			return errors.New("backbone full")
		}
		for _, ev := range evs {
			if v := string(ev.Value); !seen[v] {
				seen[v] = true
				order = append(order, v)
			}
		}
		if len(seen) == total {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Fatalf("%d of %d messages delivered", len(seen), total)
	}
	want := eventtest.MakeEvents("o", total, 1, false)
	for i, v := range order {
		if v != string(want[i].Value) {
			t.Fatalf("message %d delivered first was %q, want %q: the requeued batch was overtaken", i, v, want[i].Value)
		}
	}
}

// TestDialTimeoutBoundsASilentBroker: a peer that accepts TCP but never
// speaks AMQP fails the send after DialTimeout, not after the package's
// default, for the sink and the source alike.
func TestDialTimeoutBoundsASilentBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	url := "amqp://guest:guest@" + ln.Addr().String() + "/"
	const timeout = 300 * time.Millisecond

	sink, err := NewSink(SinkConfig{URL: url, Exchange: "x", DialTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = sink.Send(context.Background(), []event.Event{{Value: []byte("v")}})
	if err == nil {
		t.Fatal("a send to a silent broker succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the sink gave up after %v, want about %v", took, timeout)
	}

	src, err := NewSource(SourceConfig{URL: url, Queue: "q", DialTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start = time.Now()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(context.Context, []event.Event) error { return nil }) }()
	// The source retries a failed dial with backoff; each attempt must end
	// after the timeout, so more than one attempt fits in 2s.
	time.Sleep(2 * time.Second)
	mu.Lock()
	attempts := len(conns)
	mu.Unlock()
	cancel()
	<-done
	if attempts < 3 { // the sink's one, and at least two of the source's
		t.Fatalf("%d connections in %v: the source's dial is not bounded by DialTimeout", attempts, time.Since(start))
	}
}
