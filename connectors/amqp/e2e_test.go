package amqp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/event/eventtest"
)

// backbone stands in for the log: an append-only slice. Deliver appends
// a batch as a whole, so "deliver returned nil" means "in the backbone".
type backbone struct {
	mu     sync.Mutex
	events []event.Event
}

func (b *backbone) deliver(_ context.Context, batch []event.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, batch...)
	return nil
}

func (b *backbone) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.events)
}

func (b *backbone) slice(from, to int) []event.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.events[from:min(to, len(b.events))])
}

// TestEndToEndForcedCloses streams messages RabbitMQ queue → Source →
// backbone → Sink → exchange → queue while every connection is force-closed
// twice on the way in and once on the way out, and proves that every
// published message arrived at the end at least once, with its key, headers
// and properties. Duplicates are counted and reported; at-least-once
// allows them.
func TestEndToEndForcedCloses(t *testing.T) {
	n := 50000
	if testing.Short() {
		n = 5000
	}
	a := newAdmin(t)
	in, out, x := testName(t, "e2e-in"), testName(t, "e2e-out"), testName(t, "e2e-x")
	a.queue(in, nil)
	a.queue(out, nil)
	a.exchange(x, amqp091.ExchangeTopic, out, "orders.#")

	published := eventtest.MakeEvents("e2e", n, 16, false)
	for i := range published {
		e := &published[i]
		e.Timestamp = time.Unix(1700000000+int64(i), 0)
		e.Headers = append(e.Headers,
			h(HeaderContentType, "application/json"), h(HeaderMessageID, "m-"+strconv.Itoa(i)),
			h(HeaderCorrelationID, "c-"+strconv.Itoa(i%7)), h(HeaderReplyTo, "replies"), h(HeaderType, "order.created"),
			h(HeaderAppID, "shop"), h(HeaderPriority, "3"), h(HeaderTimestamp, strconv.FormatInt(e.Timestamp.Unix(), 10)))
	}
	if err := a.publish(t.Context(), in, published); err != nil {
		t.Fatalf("publish: %v", err)
	}

	// Stage 1: queue → Source → backbone, with two forced closes.
	var bb backbone
	src, err := NewSource(SourceConfig{URL: rabbitURL(), Queue: in, Name: "bridge-test-e2e-source"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, bb.deliver) }()
	closes := 0
	for _, at := range []int{n * 3 / 10, n * 7 / 10} {
		waitFor(t, 60*time.Second, func() error {
			if got := bb.len(); got < at {
				return fmt.Errorf("backbone has %d events, waiting for %d", got, at)
			}
			return nil
		})
		closeAllConnections(t)
		closes++
	}
	waitFor(t, 120*time.Second, func() error {
		if missing := distinctMissing(bb.slice(0, bb.len()), n); missing > 0 {
			return fmt.Errorf("%d of %d messages not in the backbone", missing, n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("source Run: %v", err)
	}
	inDup := bb.len() - n
	t.Logf("source: %d messages, %d in the backbone (%d duplicates) across %d forced closes", n, bb.len(), inDup, closes)

	// Stage 2: backbone → Sink → exchange → queue, with one forced close.
	a.channel()
	sink := newTestSink(t, SinkConfig{Exchange: x, Name: "bridge-test-e2e-sink"})
	sent := make(chan int, 1)
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- forward(&bb, sink, sent) }()
	waitFor(t, 60*time.Second, func() error {
		select {
		case v := <-sent:
			if v >= bb.len()/2 {
				return nil
			}
			return fmt.Errorf("sink sent %d", v)
		default:
			return errors.New("sink has not reported progress")
		}
	})
	closeAllConnections(t)
	if err := <-sinkDone; err != nil {
		t.Fatalf("sink: %v", err)
	}

	// The far end holds every message with its key, headers and properties.
	r := a.reader(out)
	var got []event.Event
	waitFor(t, 120*time.Second, func() error {
		evs, err := r(t.Context())
		got = append(got, evs...)
		if missing := distinctMissing(got, n); missing > 0 {
			return fmt.Errorf("%d of %d messages not at the target (read %d): %v", missing, n, len(got), err)
		}
		return nil
	})
	for _, g := range got {
		i := seq(g)
		w := published[i]
		if !slices.Equal(perName(g.Headers), perName(w.Headers)) || string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) {
			t.Fatalf("message %d changed:\n got %q key %q\nwant %q key %q", i, perName(g.Headers), g.Key, perName(w.Headers), w.Key)
		}
	}
	t.Logf("target: %d messages for %d published (%d duplicates)", len(got), n, len(got)-n)
}

func seq(e event.Event) int {
	v, _ := e.Header("seq")
	i, err := strconv.Atoi(string(v))
	if err != nil {
		return -1
	}
	return i
}

func distinctMissing(evs []event.Event, n int) int {
	seen := make([]bool, n)
	count := 0
	for _, e := range evs {
		if i := seq(e); i >= 0 && i < n && !seen[i] {
			seen[i] = true
			count++
		}
	}
	return n - count
}

// forward is a minimal pipeline: it sends the backbone in batches of 500
// with the routing key of the event's key, retrying the failed items of a
// batch with a pause until all are confirmed, and reports progress.
func forward(bb *backbone, s *Sink, progress chan int) error {
	total := bb.len()
	for from := 0; from < total; from += 500 {
		batch := bb.slice(from, from+500)
		params := make([]event.Params, len(batch))
		for i := range batch {
			params[i].RoutingKey = "orders." + string(batch[i].Key)
		}
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt > 200 {
				return fmt.Errorf("batch at %d: gave up after %d attempts", from, attempt)
			}
			err := s.SendParams(context.Background(), batch, params)
			if err == nil {
				break
			}
			if errors.Is(err, event.ErrPermanent) {
				return fmt.Errorf("batch at %d: %w", from, err)
			}
			var be *event.BatchError
			if errors.As(err, &be) {
				// Keep only the failed items, in order.
				keep := make([]int, len(be.Failed))
				for i, f := range be.Failed {
					keep[i] = f.Index
				}
				var nb []event.Event
				var np []event.Params
				for _, i := range keep {
					nb, np = append(nb, batch[i]), append(np, params[i])
				}
				batch, params = nb, np
			}
			time.Sleep(100 * time.Millisecond)
		}
		select {
		case <-progress:
		default:
		}
		progress <- from + 500
	}
	return nil
}

// TestMain fails fast with a clear message when RabbitMQ is absent, rather
// than every test timing out on its own, and runs the tests in a vhost of
// their own.
func TestMain(m *testing.M) {
	if os.Getenv("BRIDGE_TEST_AMQP_URL") == "" {
		for _, args := range [][]string{{"add_vhost", testVhost}, {"set_permissions", "-p", testVhost, "guest", ".*", ".*", ".*"}} {
			if out, err := exec.Command("rabbitmqctl", args...).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "rabbitmqctl %v: %v: %s\n", args, err, out)
				os.Exit(1)
			}
		}
	}
	stop := heapWatchdog(4 << 30)
	defer stop()
	conn, err := amqp091.Dial(rabbitURL())
	if err != nil {
		fmt.Fprintf(os.Stderr, "RabbitMQ is not reachable at %s: %v\n", redact(rabbitURL()), err)
		os.Exit(1)
	}
	_ = conn.Close()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		fmt.Fprintln(os.Stderr, "rabbitmqctl is needed to force-close connections:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	_ = exec.Command("rabbitmqctl", "delete_vhost", testVhost).Run()
	os.Exit(code)
}

// heapWatchdog crashes the test binary with every goroutine's stack when
// the live heap passes limit, so that a runaway test names itself in the
// output instead of being killed silently by the kernel's OOM killer (seen
// once in CI: 23 GB, not reproduced since).
func heapWatchdog(limit uint64) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > limit {
				// runtime.Stack stops the world, so even a goroutine
				// running on another thread shows its stack (a panic's
				// traceback cannot); the heap profile names what grew.
				buf := make([]byte, 8<<20)
				buf = buf[:runtime.Stack(buf, true)]
				fmt.Fprintf(os.Stderr, "heap watchdog: %d MiB live, over %d MiB; goroutines:\n%s\n", ms.HeapAlloc>>20, limit>>20, buf)
				fmt.Fprintln(os.Stderr, "heap watchdog: allocations by stack (in-use):")
				_ = pprof.Lookup("heap").WriteTo(os.Stderr, 1)
				os.Exit(3)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}
