package amqpapi

import (
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// TestAddConfigWhileServing: an exchange and a queue that a config reload
// adds become visible to connected AMQP clients: a publish routes through
// the new exchange into the new queue, and the queue cannot be deleted over
// AMQP, like the starting config's. An exchange name already declared over
// AMQP is not taken over, and that is reported.
func TestAddConfigWhileServing(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	defer conn.Close()
	ch := mustChannel(t, conn)

	if err := ch.ExchangeDeclare("runtime-x", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.qm.Create(queue.Config{Name: "added-q"}); err != nil {
		t.Fatal(err)
	}
	x, err := exchange.New("added-x", exchange.Direct, []exchange.Binding{{Queue: "added-q", Key: "k"}})
	if err != nil {
		t.Fatal(err)
	}
	clash, err := exchange.New("runtime-x", exchange.Fanout, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.srv.AddConfig([]ConfigExchange{{Exchange: x}, {Exchange: clash}}, []string{"added-q"})
	if err == nil {
		t.Fatal("taking over an exchange declared over AMQP was not reported")
	}

	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("added-x", "k", true, false, amqp.Publishing{Body: []byte("via the added exchange")})
	if err != nil {
		t.Fatal(err)
	}
	if ok := dc.Wait(); !ok {
		t.Fatal("publish to the added exchange was nacked")
	}
	ds, err := ch.Consume("added-q", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := recv(t, ds, 5*time.Second); string(d.Body) != "via the added exchange" {
		t.Fatalf("body %q", d.Body)
	}

	ch2 := mustChannel(t, conn)
	_, err = ch2.QueueDelete("added-q", false, false, false)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Fatalf("deleting a queue the config added = %v, want access-refused", err)
	}
}

// TestMessageTTLLongerThanRetention: RabbitMQ takes any x-message-ttl up
// to 2^32-1 ms. A TTL longer than a queue's default retention (4 days)
// raises the retention so the TTL decides; one longer than bridge keeps any
// message (14 days) is a 406, not an internal error. (Found by
// FuzzQueueArguments.)
func TestMessageTTLLongerThanRetention(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	defer conn.Close()
	week := int64(7 * 24 * time.Hour / time.Millisecond)
	if _, err := mustChannel(t, conn).QueueDeclare("week-ttl", true, false, false, false, amqp.Table{"x-message-ttl": week}); err != nil {
		t.Fatalf("x-message-ttl of a week: %v", err)
	}
	q, err := b.qm.Get("week-ttl")
	if err != nil {
		t.Fatalf("queue week-ttl: %v", err)
	}
	if cfg := q.Config(); cfg.MessageTTL != 7*24*time.Hour || cfg.Retention < cfg.MessageTTL {
		t.Fatalf("config %+v: want a week's TTL within the retention", cfg)
	}
	_, err = mustChannel(t, conn).QueueDeclare("month-ttl", true, false, false, false, amqp.Table{"x-message-ttl": 4 * week})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		t.Fatalf("x-message-ttl of four weeks = %v, want 406", err)
	}
}
