package amqp

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/event/eventtest"
)

// rabbitURL is the RabbitMQ the tests run against (SPEC: the local server).
func rabbitURL() string {
	if u := os.Getenv("BRIDGE_TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/" + url.PathEscape(testVhost)
}

// testVhost is this test binary's own RabbitMQ vhost (created by
// TestMain): forced disconnects here touch no other package's tests, and
// theirs none of these.
var testVhost = fmt.Sprintf("bridge-amqp-test-%d", os.Getpid())

// testName returns a name unique to this run, so tests can run in parallel
// and never see another test's messages.
func testName(t testing.TB, what string) string {
	return fmt.Sprintf("bridge-test-%s-%016x", what, rand.Uint64())
}

// admin is a connection for test setup and inspection.
type admin struct {
	t    testing.TB
	conn *amqp091.Connection
	ch   *amqp091.Channel
}

func newAdmin(t testing.TB) *admin {
	t.Helper()
	conn, err := amqp091.Dial(rabbitURL())
	if err != nil {
		t.Fatalf("dial RabbitMQ at %s (is it running?): %v", redact(rabbitURL()), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	a := &admin{t: t, conn: conn, ch: ch}
	t.Cleanup(func() { _ = conn.Close() })
	return a
}

// channel returns a usable channel, re-opening the connection if a test
// force-closed it.
func (a *admin) channel() *amqp091.Channel {
	a.t.Helper()
	if a.conn.IsClosed() || a.ch.IsClosed() {
		conn, err := amqp091.Dial(rabbitURL())
		if err != nil {
			a.t.Fatalf("redial: %v", err)
		}
		ch, err := conn.Channel()
		if err != nil {
			a.t.Fatalf("channel: %v", err)
		}
		a.conn, a.ch = conn, ch
		a.t.Cleanup(func() { _ = conn.Close() })
	}
	return a.ch
}

// queue declares a durable queue that is deleted when the test ends.
func (a *admin) queue(name string, args amqp091.Table) {
	a.t.Helper()
	if _, err := a.channel().QueueDeclare(name, true, false, false, false, args); err != nil {
		a.t.Fatalf("declare queue %s: %v", name, err)
	}
	a.t.Cleanup(func() { a.deleteQueue(name) })
}

func (a *admin) deleteQueue(name string) {
	conn, err := amqp091.Dial(rabbitURL())
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_, _ = ch.QueueDelete(name, false, false, false)
	}
}

// exchange declares an exchange bound to queue with key; both are deleted
// when the test ends.
func (a *admin) exchange(name, kind, queue, key string) {
	a.t.Helper()
	if err := a.channel().ExchangeDeclare(name, kind, true, false, false, false, nil); err != nil {
		a.t.Fatalf("declare exchange %s: %v", name, err)
	}
	a.t.Cleanup(func() {
		conn, err := amqp091.Dial(rabbitURL())
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(name, false, false)
		}
	})
	if queue != "" {
		if err := a.channel().QueueBind(queue, key, name, false, nil); err != nil {
			a.t.Fatalf("bind: %v", err)
		}
	}
}

// publish writes events to queue through the default exchange, mapped as
// the package doc says a producer should, and waits for the confirms.
func (a *admin) publish(ctx context.Context, queue string, evs []event.Event) error {
	ch, err := a.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return err
	}
	const window = 1000
	pending := make([]*amqp091.DeferredConfirmation, 0, window)
	wait := func() error {
		for _, dc := range pending {
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				return fmt.Errorf("publish not confirmed (ack=%v): %v", ok, err)
			}
		}
		pending = pending[:0]
		return nil
	}
	for i := range evs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, toPublishing(&evs[i]))
		if err != nil {
			return err
		}
		if pending = append(pending, dc); len(pending) == window {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}

// reader returns an eventtest.Reader consuming queue with automatic acks.
func (a *admin) reader(queue string) eventtest.Reader {
	a.t.Helper()
	a.channel() // reopen the connection if a test closed it
	ch, err := a.conn.Channel()
	if err != nil {
		a.t.Fatalf("channel: %v", err)
	}
	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		a.t.Fatalf("consume %s: %v", queue, err)
	}
	return func(ctx context.Context) ([]event.Event, error) {
		var out []event.Event
		idle := time.NewTimer(200 * time.Millisecond)
		defer idle.Stop()
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					return out, fmt.Errorf("reader of %s: consumer closed", queue)
				}
				out = append(out, fromDelivery(&d, false, "", time.Time{}))
				if len(out) >= 5000 {
					return out, nil
				}
			case <-idle.C:
				return out, nil
			case <-ctx.Done():
				return out, ctx.Err()
			}
		}
	}
}

// closeAllConnections makes RabbitMQ close every client connection, as a
// broker restart would.
func closeAllConnections(t testing.TB) {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", "close_all_connections", "--vhost", testVhost, "test").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl close_all_connections: %v: %s", err, out)
	}
}

// waitFor polls cond until it returns nil, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoLeak waits for the goroutine count to return to base, failing with
// a dump of the remaining goroutines.
func checkNoLeak(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isSystemHeader(name string) bool { return strings.HasPrefix(name, "amqp.") }
