package amqpapi

import (
	"context"
	"net"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// testBroker is a Server on 127.0.0.1:0 over a queue manager in a
// temporary directory.
type testBroker struct {
	t      testing.TB
	dir    string
	qm     *queue.Manager
	srv    *Server
	url    string
	cancel context.CancelFunc
	done   chan error
}

type brokerOption func(*Options)

func startBroker(t testing.TB, opts ...brokerOption) *testBroker {
	t.Helper()
	return startBrokerIn(t, t.TempDir(), opts...)
}

func startBrokerIn(t testing.TB, dir string, opts ...brokerOption) *testBroker {
	t.Helper()
	return startBrokerWith(t, dir, "always", opts...)
}

// startBrokerWith starts a broker whose queues use the fsync policy.
func startBrokerWith(t testing.TB, dir, fsync string, opts ...brokerOption) *testBroker {
	t.Helper()
	qm, err := queue.Open(queue.Options{Dir: dir + "/queues", Fsync: fsync})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Queues: qm, Dir: dir + "/amqp"}
	for _, opt := range opts {
		opt(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &testBroker{t: t, dir: dir, qm: qm, srv: srv, url: "amqp://guest:guest@" + ln.Addr().String() + "/", cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- srv.Run(ctx, ln) }()
	t.Cleanup(b.stop)
	return b
}

// stop shuts the server down and closes the queues; idempotent.
func (b *testBroker) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		if err != nil {
			b.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		b.t.Error("Run did not return within 15s of cancel")
	}
	if err := b.qm.Close(); err != nil {
		b.t.Errorf("close queues: %v", err)
	}
}

func (b *testBroker) dial(t testing.TB) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(b.url)
	if err != nil {
		t.Fatalf("dial %s: %v", b.url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func mustChannel(t testing.TB, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

// waitFor polls check until it returns nil or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recv waits for one delivery.
func recv(t testing.TB, ds <-chan amqp.Delivery, timeout time.Duration) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(timeout):
		t.Fatalf("no delivery within %v", timeout)
	}
	return amqp.Delivery{}
}

// noRecv asserts that nothing is delivered for d.
func noRecv(t testing.TB, ds <-chan amqp.Delivery, d time.Duration) {
	t.Helper()
	select {
	case got, ok := <-ds:
		if ok {
			t.Fatalf("unexpected delivery %q (tag %d)", got.Body, got.DeliveryTag)
		}
	case <-time.After(d):
	}
}
