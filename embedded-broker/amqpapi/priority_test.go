package amqpapi

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// TestPriorityAndTTLAgainstRabbitMQ runs the same amqp091-go checks of
// x-max-priority, x-message-ttl, the expiration property and
// x-dead-letter-exchange against bridge and against the real RabbitMQ, so
// that what they assert is RabbitMQ's behaviour.
func TestPriorityAndTTLAgainstRabbitMQ(t *testing.T) {
	b := startBroker(t)
	targets := []struct{ name, url string }{{"bridge", b.url}, {"rabbitmq", "amqp://guest:guest@" + rabbitAddr + "/"}}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			if target.name == "rabbitmq" {
				if nc, err := net.DialTimeout("tcp", rabbitAddr, time.Second); err != nil {
					skipClients(t, "RabbitMQ is not listening on "+rabbitAddr)
				} else {
					nc.Close()
				}
			}
			conn, err := amqp.Dial(target.url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			prefix := fmt.Sprintf("q15-%d", time.Now().UnixNano())
			t.Run("priority order", func(t *testing.T) { checkPriorityOrder(t, conn, prefix+"-prio") })
			t.Run("ttl and dead-lettering", func(t *testing.T) { checkTTL(t, conn, prefix+"-ttl") })
			t.Run("argument errors", func(t *testing.T) { checkArgumentErrors(t, conn, prefix+"-args") })
		})
	}
}

// cleanupQueues deletes the test's queues on its own channel.
func cleanupQueues(t *testing.T, conn *amqp.Connection, names ...string) {
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			for _, n := range names {
				_, _ = ch.QueueDelete(n, false, false, false)
			}
			ch.Close()
		}
	})
}

// publishEach publishes each message and waits for its confirm.
func publishEach(t *testing.T, ch *amqp.Channel, queueName string, msgs ...amqp.Publishing) {
	t.Helper()
	for _, p := range msgs {
		dc, err := ch.PublishWithDeferredConfirm("", queueName, false, false, p)
		if err != nil {
			t.Fatal(err)
		}
		if !dc.Wait() {
			t.Fatalf("publish %q nacked", p.Body)
		}
	}
}

// getAll takes every ready message with basic.get (each picks the best
// one, as a consumer's deliveries do) and acknowledges it.
func getAll(t *testing.T, ch *amqp.Channel, queueName string) []amqp.Delivery {
	t.Helper()
	var out []amqp.Delivery
	for {
		d, ok, err := ch.Get(queueName, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}

func checkPriorityOrder(t *testing.T, conn *amqp.Connection, name string) {
	ch := mustChannel(t, conn)
	cleanupQueues(t, conn, name)
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-max-priority": int32(5)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	var msgs []amqp.Publishing
	for i, p := range []uint8{0, 3, 5, 1, 9, 3, 0} { // 9: above the maximum
		msgs = append(msgs, amqp.Publishing{Priority: p, Body: fmt.Appendf(nil, "%d-%d", p, i)})
	}
	publishEach(t, ch, name, msgs...)
	var got []string
	for _, d := range getAll(t, ch, name) {
		got = append(got, string(d.Body))
		if want := fmt.Sprint(d.Priority); want != string(d.Body[:len(want)]) {
			t.Errorf("delivery %q has priority property %d", d.Body, d.Priority)
		}
	}
	if want := []string{"5-2", "9-4", "3-1", "3-5", "1-3", "0-0", "0-6"}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	// Redeclaring with the same argument is fine; with another, 406.
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-max-priority": int32(5)}); err != nil {
		t.Fatalf("same redeclare: %v", err)
	}
	other := mustChannel(t, conn)
	_, err := other.QueueDeclare(name, true, false, false, false, amqp.Table{"x-max-priority": int32(6)})
	if !isCode(err, amqp.PreconditionFailed) {
		t.Fatalf("inequivalent redeclare: %v", err)
	}
}

func checkTTL(t *testing.T, conn *amqp.Connection, name string) {
	ch := mustChannel(t, conn)
	dead := name + "-dead"
	cleanupQueues(t, conn, name, dead)
	if _, err := ch.QueueDeclare(dead, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{
		"x-message-ttl": int32(400), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publishEach(t, ch, name,
		amqp.Publishing{Body: []byte("queue-ttl")},
		amqp.Publishing{Body: []byte("own-ttl"), Expiration: "100"},
		amqp.Publishing{Body: []byte("lower-wins"), Expiration: "600000"},
	)
	time.Sleep(700 * time.Millisecond)
	if got := getAll(t, ch, name); len(got) != 0 {
		t.Fatalf("expired messages delivered: %d", len(got))
	}
	var bodies []string
	waitFor(t, 5*time.Second, func() error {
		for _, d := range getAll(t, ch, dead) {
			bodies = append(bodies, string(d.Body))
		}
		if len(bodies) < 3 {
			return fmt.Errorf("dead letters so far: %v", bodies)
		}
		return nil
	})
	sort.Strings(bodies)
	if want := []string{"lower-wins", "own-ttl", "queue-ttl"}; !slices.Equal(bodies, want) {
		t.Fatalf("dead letters = %v, want %v", bodies, want)
	}
	// The dead letters lost their expiration property (RabbitMQ removes it
	// so that a republished dead letter does not expire again).
	publishEach(t, ch, name, amqp.Publishing{Body: []byte("marked"), Expiration: "50"})
	waitFor(t, 5*time.Second, func() error {
		got := getAll(t, ch, dead)
		if len(got) != 1 {
			return fmt.Errorf("%d dead letters", len(got))
		}
		if got[0].Expiration != "" || string(got[0].Body) != "marked" {
			t.Fatalf("dead letter %q has expiration %q", got[0].Body, got[0].Expiration)
		}
		return nil
	})
	// A message delivered before its TTL is not expired while it is held.
	publishEach(t, ch, name, amqp.Publishing{Body: []byte("held"), Expiration: "200"})
	d, ok, err := ch.Get(name, false)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	time.Sleep(400 * time.Millisecond)
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if st, err := ch.QueueDeclarePassive(dead, true, false, false, false, nil); err != nil || st.Messages != 0 {
		t.Fatalf("dead-letter queue after the ack: %+v %v", st, err)
	}
}

func checkArgumentErrors(t *testing.T, conn *amqp.Connection, name string) {
	cleanupQueues(t, conn, name)
	for _, tc := range []struct {
		what string
		args amqp.Table
	}{
		{"max priority 256", amqp.Table{"x-max-priority": int32(256)}},
		{"max priority a string", amqp.Table{"x-max-priority": "5"}},
		{"negative ttl", amqp.Table{"x-message-ttl": int32(-1)}},
		{"zero expires", amqp.Table{"x-expires": int32(0)}},
	} {
		ch := mustChannel(t, conn)
		_, err := ch.QueueDeclare(name, true, false, false, false, tc.args)
		if !isCode(err, amqp.PreconditionFailed) {
			t.Errorf("%s: %v, want 406", tc.what, err)
		}
	}
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	err := ch.Publish("", name, false, false, amqp.Publishing{Body: []byte("x"), Expiration: "soon"})
	if err == nil {
		// The channel error arrives asynchronously; the next call sees it.
		_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
	}
	if !isCode(err, amqp.PreconditionFailed) {
		t.Fatalf("bad expiration: %v, want 406", err)
	}
}

// TestAMQPFeaturesOnBridgeQueues: AMQP properties and queue arguments land
// on the queue package's features (checked inside bridge), and a message
// sent over SQS with bridge's request-reply attributes reaches an AMQP
// consumer with reply_to, correlation_id and priority set.
func TestAMQPFeaturesOnBridgeQueues(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("dl", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("args", true, false, false, false, amqp.Table{"x-max-priority": int8(7),
		"x-message-ttl": int64(60000), "x-expires": int32(3_600_000), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dl"}); err != nil {
		t.Fatal(err)
	}
	q, err := b.qm.Get("args")
	if err != nil {
		t.Fatal(err)
	}
	cfg := q.Config()
	if cfg.MaxPriority != 7 || cfg.MessageTTL != time.Minute || cfg.IdleTimeout != time.Hour || cfg.DeadLetterQueue != "dl" || cfg.MaxReceiveCount != queue.MaxMaxReceiveCount {
		t.Fatalf("config = %+v", cfg)
	}
	// A redeclare without the arguments is inequivalent, as in RabbitMQ.
	if _, err := mustChannel(t, conn).QueueDeclare("args", true, false, false, false, nil); !isCode(err, amqp.PreconditionFailed) {
		t.Fatalf("redeclare without arguments: %v", err)
	}
	// A queue made by the config (or SQS) may be declared without them.
	if _, err := b.qm.Create(queue.Config{Name: "from-config", MaxPriority: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("from-config", true, false, false, false, nil); err != nil {
		t.Fatalf("declare of a config queue: %v", err)
	}
	if err := ch.Publish("", "args", false, false, amqp.Publishing{Body: []byte("p"), Priority: 4, Expiration: "1500",
		ReplyTo: "replies", CorrelationId: "c-1"}); err != nil {
		t.Fatal(err)
	}
	var msg queue.Message
	waitFor(t, 5*time.Second, func() error {
		got, err := q.Receive(t.Context(), 1, time.Minute, 0)
		if err != nil || len(got) == 0 {
			return errors.New("not yet stored")
		}
		msg = got[0]
		return nil
	})
	attrs := map[string]string{}
	for _, a := range msg.Attributes {
		attrs[a.Name] = string(a.Value)
	}
	if msg.Priority != 4 || msg.ExpiresAt.Sub(msg.SentAt) != 1500*time.Millisecond ||
		attrs["bridge-reply-to"] != "replies" || attrs["bridge-correlation-id"] != "c-1" {
		t.Fatalf("stored message: priority %d, TTL %v, attributes %v", msg.Priority, msg.ExpiresAt.Sub(msg.SentAt), attrs)
	}

	// Over SQS (no AMQP envelope): the attributes become properties.
	plain, err := b.qm.Create(queue.Config{Name: "rpc", MaxPriority: 9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Send(t.Context(), []queue.SendInput{{Body: []byte("req"), Priority: 6, Attributes: []queue.Attribute{
		{Name: "bridge-correlation-id", DataType: "String", Value: []byte("c-9")},
		{Name: "bridge-reply-to", DataType: "String", Value: []byte("http://127.0.0.1:9324/000000000000/reply-1")},
	}}}); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("rpc", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := recv(t, ds, 5*time.Second)
	if d.ReplyTo != "reply-1" || d.CorrelationId != "c-9" || d.Priority != 6 {
		t.Fatalf("delivery reply_to %q correlation_id %q priority %d", d.ReplyTo, d.CorrelationId, d.Priority)
	}
}

// FuzzQueueArguments: any argument table either is refused with a 406
// channel error, or maps onto a queue config the queue package accepts,
// and a redeclare with the same table is equivalent to it.
func FuzzQueueArguments(f *testing.F) {
	for _, tbl := range []wire.Table{
		nil,
		{{Name: "x-max-priority", Value: int32(10)}},
		{{Name: "x-max-priority", Value: uint8(255)}, {Name: "x-message-ttl", Value: int64(0)}},
		{{Name: "x-expires", Value: int16(500)}, {Name: "x-queue-type", Value: "quorum"}},
		{{Name: "x-dead-letter-exchange", Value: ""}, {Name: "x-dead-letter-routing-key", Value: "dlq"}},
		{{Name: "x-dead-letter-exchange", Value: "dlx"}},
		{{Name: "x-dead-letter-exchange", Value: ""}, {Name: "x-dead-letter-routing-key", Value: "d.fifo"}},
		{{Name: "x-max-length", Value: int32(1)}},
		{{Name: "x-message-ttl", Value: "100"}},
	} {
		f.Add(wire.AppendTable(nil, tbl))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tbl, err := wire.DecodeTable(raw)
		if err != nil {
			return // the wire decoder's own fuzz target covers this
		}
		args, err := parseQueueArguments("fuzzed", tbl)
		if err != nil {
			var pe *protoError
			if !errors.As(err, &pe) || pe.code != wire.PreconditionFailed {
				t.Fatalf("error %v is not a 406", err)
			}
			return
		}
		cfg := queue.Config{Name: "fuzzed", MaxMessageSize: queue.MaxMaxMessageSize, Retention: queue.DefaultRetention, VisibilityTimeout: time.Second}
		args.apply(&cfg)
		qm, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
		if err != nil {
			t.Fatal(err)
		}
		defer qm.Close()
		if _, err := qm.Create(cfg); err != nil {
			t.Fatalf("arguments %v accepted but the queue refuses %+v: %v", tbl, cfg, err)
		}
		if err := args.checkEquivalent("fuzzed", cfg, true); err != nil {
			t.Fatalf("a redeclare with the same arguments: %v", err)
		}
	})
}
