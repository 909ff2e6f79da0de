package amqpapi

import (
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// A mandatory message no queue takes comes back with basic.return before
// its confirm (an ack: the broker did its part), as RabbitMQ does.
func TestMandatoryReturnBeforeConfirm(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	if err := ch.Publish("amq.direct", "nobody", true, false, amqp.Publishing{MessageId: "lost", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// amqp091-go delivers returns and confirms on separate Go channels;
	// it reads frames in order, and a return is handed over before the
	// following confirm, so both arrive and the return is not late.
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.MessageId != "lost" || string(r.Body) != "x" {
			t.Fatalf("return %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no basic.return")
	}
	select {
	case c := <-confirms:
		if !c.Ack || c.DeliveryTag != 1 {
			t.Fatalf("confirm %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no confirm")
	}
}

// A publish the queue refuses (over its size limit) is nacked in confirm
// mode; the channel stays open.
func TestNackOnStoreFailure(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	if _, err := b.qm.Create(queue.Config{Name: "big", MaxMessageSize: 1024}); err != nil { // as over SQS
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, 1<<20+1) // above the largest queue message
	dc, err := ch.PublishWithDeferredConfirm("", "big", false, false, amqp.Publishing{Body: huge[:2000]})
	if err != nil {
		t.Fatal(err)
	}
	if dc.Wait() {
		t.Fatal("a message over the queue's limit was acked")
	}
	ok, err := ch.PublishWithDeferredConfirm("", "big", false, false, amqp.Publishing{Body: []byte("fits")})
	if err != nil || !ok.Wait() {
		t.Fatalf("next publish: %v", err)
	}
	// A body over the server's maximum closes the channel with 406.
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Publish("", "big", false, false, amqp.Publishing{Body: huge}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.PreconditionFailed {
			t.Fatalf("channel closed with %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed")
	}
}

// Channel errors close only their channel; the connection and its other
// channels keep working. Hard errors (tx.*, reused consumer tag) close the
// connection.
func TestChannelErrors(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	keep := mustChannel(t, conn)
	if _, err := keep.QueueDeclare("exists", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func(*amqp.Channel) error
		code int
	}{
		{"passive declare of a missing queue", func(c *amqp.Channel) error {
			_, err := c.QueueDeclarePassive("missing", true, false, false, false, nil)
			return err
		}, amqp.NotFound},
		{"publish to a missing exchange", func(c *amqp.Channel) error {
			return asyncClose(c, func() error { return c.Publish("missing", "k", false, false, amqp.Publishing{}) })
		}, amqp.NotFound},
		{"inequivalent redeclare", func(c *amqp.Channel) error {
			_, err := c.QueueDeclare("exists", false, false, false, false, nil)
			return err
		}, amqp.PreconditionFailed},
		{"bind to a missing exchange", func(c *amqp.Channel) error { return c.QueueBind("exists", "k", "missing", false, nil) }, amqp.NotFound},
		{"unknown delivery tag", func(c *amqp.Channel) error {
			return asyncClose(c, func() error { return c.Ack(42, false) })
		}, amqp.PreconditionFailed},
		{"reserved name", func(c *amqp.Channel) error {
			_, err := c.QueueDeclare("amq.mine", true, false, false, false, nil)
			return err
		}, amqp.AccessRefused},
		{"unsupported argument", func(c *amqp.Channel) error {
			_, err := c.QueueDeclare("ttl", true, false, false, false, amqp.Table{"x-message-ttl": int32(1000)})
			return err
		}, amqp.PreconditionFailed},
		{"delete a built-in exchange", func(c *amqp.Channel) error { return c.ExchangeDelete("amq.topic", false, false) }, amqp.AccessRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := mustChannel(t, conn)
			err := tc.do(ch)
			if !isCode(err, tc.code) {
				t.Fatalf("got %v, want code %d", err, tc.code)
			}
			if _, err := keep.QueueDeclarePassive("exists", true, false, false, false, nil); err != nil {
				t.Fatalf("the other channel broke: %v", err)
			}
		})
	}
	if conn.IsClosed() {
		t.Fatal("a channel error closed the connection")
	}
	t.Run("tx refused with 540, closing the connection", func(t *testing.T) {
		c2 := b.dial(t)
		ch := mustChannel(t, c2)
		err := ch.Tx()
		if !isCode(err, amqp.NotImplemented) {
			t.Fatalf("tx.select: %v", err)
		}
		waitFor(t, 5*time.Second, func() error {
			if !c2.IsClosed() {
				return errors.New("connection still open")
			}
			return nil
		})
	})
}

// Server-named, exclusive queues belong to their connection: others are
// refused (405), and the queue is deleted when the connection closes.
func TestServerNamedExclusiveQueue(t *testing.T) {
	b := startBroker(t)
	c1, c2 := b.dial(t), b.dial(t)
	ch1 := mustChannel(t, c1)
	q, err := ch1.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Name) < 10 || q.Name[:8] != "amq.gen-" {
		t.Fatalf("server-named queue %q", q.Name)
	}
	if err := ch1.QueueBind(q.Name, "#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	ch2 := mustChannel(t, c2)
	if _, err := ch2.Consume(q.Name, "", false, false, false, false, nil); !isCode(err, amqp.ResourceLocked) {
		t.Fatalf("other connection consumed an exclusive queue: %v", err)
	}
	ch2 = mustChannel(t, c2)
	if err := ch2.Publish("amq.topic", "any.key", false, false, amqp.Publishing{Body: []byte("to exclusive")}); err != nil {
		t.Fatal(err)
	}
	ds, err := ch1.Consume("", "", true, false, false, false, nil) // "" = the last declared queue
	if err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ds, 5*time.Second); string(d.Body) != "to exclusive" {
		t.Fatalf("got %q", d.Body)
	}
	c1.Close()
	waitFor(t, 5*time.Second, func() error {
		if _, err := b.qm.Get(q.Name); err == nil {
			return fmt.Errorf("queue %s survives its connection", q.Name)
		}
		return nil
	})
}

// Deleting a queue cancels its consumers with a server-sent basic.cancel.
func TestServerCancelOnQueueDelete(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("doomed", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	cancels := ch.NotifyCancel(make(chan string, 1))
	if _, err := ch.Consume("doomed", "ctag-1", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	other := mustChannel(t, conn)
	if _, err := other.QueueDelete("doomed", false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancels:
		if tag != "ctag-1" {
			t.Fatalf("cancelled %q", tag)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no basic.cancel from the server")
	}
	// The channel is still usable.
	if _, err := ch.QueueDeclare("after", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
}

// Exchanges, bindings and queues declared durable survive a restart;
// transient ones do not.
func TestTopologySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBrokerIn(t, dir)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.ExchangeDeclare("orders", "topic", true, false, false, false, nil))
	must(ch.ExchangeDeclare("scratch", "fanout", false, false, false, false, nil))
	_, err := ch.QueueDeclare("eu", true, false, false, false, nil)
	must(err)
	_, err = ch.QueueDeclare("temp", false, false, false, false, nil)
	must(err)
	must(ch.QueueBind("eu", "order.*.eu", "orders", false, nil))
	must(ch.QueueBind("eu", "", "amq.fanout", false, nil))
	must(ch.QueueBind("eu", "", "scratch", false, nil))
	must(ch.Confirm(false))
	dc, err := ch.PublishWithDeferredConfirm("orders", "order.created.eu", false, false, amqp.Publishing{Body: []byte("before")})
	must(err)
	if !dc.Wait() {
		t.Fatal("nacked")
	}
	conn.Close()
	b.stop()

	b2 := startBrokerIn(t, dir)
	conn2 := b2.dial(t)
	ch2 := mustChannel(t, conn2)
	if _, err := ch2.QueueDeclarePassive("temp", false, false, false, false, nil); !isCode(err, amqp.NotFound) {
		t.Fatalf("transient queue after restart: %v", err)
	}
	ch2 = mustChannel(t, conn2)
	if err := ch2.ExchangeDeclarePassive("scratch", "fanout", false, false, false, false, nil); !isCode(err, amqp.NotFound) {
		t.Fatalf("transient exchange after restart: %v", err)
	}
	ch2 = mustChannel(t, conn2)
	must(ch2.ExchangeDeclare("orders", "topic", true, false, false, false, nil)) // equivalent redeclare
	must(ch2.Confirm(false))
	for _, x := range []struct{ exchange, key string }{{"orders", "order.paid.eu"}, {"amq.fanout", ""}, {"orders", "order.paid.us"}} {
		dc, err := ch2.PublishWithDeferredConfirm(x.exchange, x.key, false, false, amqp.Publishing{Body: []byte(x.exchange + "/" + x.key)})
		must(err)
		if !dc.Wait() {
			t.Fatal("nacked")
		}
	}
	ds, err := ch2.Consume("eu", "", true, false, false, false, nil)
	must(err)
	got := map[string]bool{}
	for range 3 {
		got[string(recv(t, ds, 5*time.Second).Body)] = true
	}
	noRecv(t, ds, 200*time.Millisecond)
	for _, want := range []string{"before", "orders/order.paid.eu", "amq.fanout/"} {
		if !got[want] {
			t.Fatalf("after restart got %v, missing %q", got, want)
		}
	}
}

// Back-pressure: past MaxPendingPublishBytes the server stops reading
// and tells clients that understand it with connection.blocked, then
// connection.unblocked; no publish is lost.
func TestBlockedNotification(t *testing.T) {
	b := startBroker(t, func(o *Options) { o.MaxPendingPublishBytes = 64 << 10 })
	conn := b.dial(t)
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 100)) // the client blocks if this fills
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("bp", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 200<<10)
	var last *amqp.DeferredConfirmation
	for range 20 {
		dc, err := ch.PublishWithDeferredConfirm("", "bp", false, false, amqp.Publishing{Body: body})
		if err != nil {
			t.Fatal(err)
		}
		last = dc
	}
	if !last.Wait() {
		t.Fatal("nacked")
	}
	var sawBlocked, sawUnblocked bool
	for !sawUnblocked {
		select {
		case bl := <-blocked:
			if bl.Active {
				sawBlocked = true
			} else if sawBlocked {
				sawUnblocked = true
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("blocked %v unblocked %v", sawBlocked, sawUnblocked)
		}
	}
	q, _ := b.qm.Get("bp")
	if st := q.Stats(); st.Visible != 20 {
		t.Fatalf("stored %d of 20", st.Visible)
	}
}

// asyncClose runs an asynchronous method (no reply) and returns the error
// the server closes the channel with.
func asyncClose(c *amqp.Channel, do func() error) error {
	closed := c.NotifyClose(make(chan *amqp.Error, 1))
	if err := do(); err != nil {
		return err
	}
	select {
	case e := <-closed:
		if e == nil {
			return errors.New("channel closed without an error")
		}
		return e
	case <-time.After(5 * time.Second):
		return errors.New("channel not closed")
	}
}
