package amqpapi

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

func TestPublishConfirmConsumeAck(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	q, err := ch.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("events", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "order.*", "events", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	pub := amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: "m-1", Timestamp: ts,
		Headers: amqp.Table{"region": "eu", "n": int32(7), "nested": amqp.Table{"a": true}}, Body: []byte(`{"id":1}`)}
	const n = 50
	for i := range n {
		pub.MessageId = fmt.Sprintf("m-%d", i)
		dc, err := ch.PublishWithDeferredConfirm("events", "order.created", false, false, pub)
		if err != nil {
			t.Fatal(err)
		}
		if i == n-1 && !dc.Wait() {
			t.Fatal("last publish nacked")
		}
	}
	// A confirm means durable: the queue holds every message now.
	qq, _ := b.qm.Get("orders")
	if st := qq.Stats(); st.Visible != n {
		t.Fatalf("visible %d after confirms, want %d", st.Visible, n)
	}
	cch := mustChannel(t, conn)
	ds, err := cch.Consume("orders", "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d := recv(t, ds, 5*time.Second)
		if d.DeliveryTag != uint64(i+1) || d.Redelivered || d.ConsumerTag != "c1" || d.Exchange != "events" || d.RoutingKey != "order.created" {
			t.Fatalf("delivery %d: tag %d redelivered %v ctag %s exchange %q key %q", i, d.DeliveryTag, d.Redelivered, d.ConsumerTag, d.Exchange, d.RoutingKey)
		}
		if i == 0 {
			if d.ContentType != "application/json" || d.MessageId != "m-0" || !d.Timestamp.Equal(ts) || d.DeliveryMode != 2 ||
				!reflect.DeepEqual(d.Headers, pub.Headers) || string(d.Body) != `{"id":1}` {
				t.Fatalf("properties not kept: %+v", d)
			}
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		if st := qq.Stats(); st.Visible+st.InFlight != 0 {
			return fmt.Errorf("stats after acks: %+v", st)
		}
		return nil
	})
}

// Prefetch limits the unacknowledged deliveries of a consumer; acking
// one lets the next through.
func TestPrefetchPerConsumer(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("work", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := ch.Publish("", "work", false, false, amqp.Publishing{Body: []byte{byte('0' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("work", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []amqp.Delivery
	for range 3 {
		got = append(got, recv(t, ds, 5*time.Second))
	}
	noRecv(t, ds, 200*time.Millisecond)
	if err := got[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	got = append(got, recv(t, ds, 5*time.Second))
	noRecv(t, ds, 200*time.Millisecond)
	// Multiple ack of the rest releases three more.
	if err := got[3].Ack(true); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		recv(t, ds, 5*time.Second)
	}
	noRecv(t, ds, 200*time.Millisecond)
}

// Requeue: nack and reject with requeue deliver again with redelivered
// set and a new tag; without requeue the message goes to the dead-letter
// queue (or is dropped); closing the channel requeues what it held.
func TestRequeueAndReject(t *testing.T) {
	b := startBroker(t)
	if _, err := b.qm.Create(queue.Config{Name: "dead"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.qm.Create(queue.Config{Name: "jobs", DeadLetterQueue: "dead", MaxReceiveCount: 100}); err != nil {
		t.Fatal(err)
	}
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	for _, body := range []string{"a", "b"} {
		if err := ch.Publish("", "jobs", false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("jobs", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := recv(t, ds, 5*time.Second)
	if err := first.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	seen := map[string]amqp.Delivery{}
	for len(seen) < 2 {
		d := recv(t, ds, 5*time.Second)
		if d.DeliveryTag <= first.DeliveryTag {
			t.Fatalf("tag %d not new (first %d)", d.DeliveryTag, first.DeliveryTag)
		}
		if string(d.Body) == string(first.Body) && !d.Redelivered {
			t.Fatal("requeued message not marked redelivered")
		}
		seen[string(d.Body)] = d
		if len(seen) < 2 {
			if err := d.Reject(false); err != nil { // to the dead-letter queue
				t.Fatal(err)
			}
		}
	}
	dead, _ := b.qm.Get("dead")
	waitFor(t, 5*time.Second, func() error {
		if st := dead.Stats(); st.Visible != 1 {
			return fmt.Errorf("dead-letter queue holds %d", st.Visible)
		}
		return nil
	})
	// The last one is unacked; closing the channel puts it back.
	jobs, _ := b.qm.Get("jobs")
	waitFor(t, 5*time.Second, func() error { // the move deletes from jobs after the copy is durable
		if st := jobs.Stats(); st.InFlight != 1 || st.Visible != 0 {
			return fmt.Errorf("jobs %+v", st)
		}
		return nil
	})
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if st := jobs.Stats(); st.Visible != 1 || st.InFlight != 0 {
			return fmt.Errorf("after close: %+v", st)
		}
		return nil
	})
}

// A delivered, unacknowledged message is held: it is never handed to
// another consumer while its consumer is connected, however long that
// is past the queue's visibility timeout; it comes back when the
// connection goes away.
func TestHeldWhileConnected(t *testing.T) {
	b := startBroker(t)
	if _, err := b.qm.Create(queue.Config{Name: "short", VisibilityTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	connA, connB := b.dial(t), b.dial(t)
	chA := mustChannel(t, connA)
	if err := chA.Publish("", "short", false, false, amqp.Publishing{Body: []byte("held")}); err != nil {
		t.Fatal(err)
	}
	dsA, err := chA.Consume("short", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, dsA, 5*time.Second)
	chB := mustChannel(t, connB)
	dsB, err := chB.Consume("short", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	noRecv(t, dsB, 3*time.Second) // three visibility timeouts
	q, _ := b.qm.Get("short")
	msgs, err := q.Receive(context.Background(), 10, time.Minute, 0) // an SQS receiver
	if err != nil || len(msgs) != 0 {
		t.Fatalf("SQS receive took a held message: %d, %v", len(msgs), err)
	}
	connA.Close()
	d := recv(t, dsB, 5*time.Second)
	if string(d.Body) != "held" || !d.Redelivered {
		t.Fatalf("after A left: %q redelivered %v", d.Body, d.Redelivered)
	}
}

func TestBasicGet(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("g", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ch.Get("g", false); err != nil || ok {
		t.Fatalf("get on empty: %v %v", ok, err)
	}
	for _, s := range []string{"1", "2", "3"} {
		if err := ch.Publish("", "g", false, false, amqp.Publishing{Body: []byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		q, _ := b.qm.Get("g")
		if q.Stats().Visible != 3 {
			return fmt.Errorf("not stored yet")
		}
		return nil
	})
	d, ok, err := ch.Get("g", false)
	if err != nil || !ok || d.MessageCount != 2 || d.RoutingKey != "g" {
		t.Fatalf("get: %+v %v %v", d, ok, err)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	d2, ok, err := ch.Get("g", true) // no-ack: removed at once
	if err != nil || !ok || d2.DeliveryTag <= d.DeliveryTag {
		t.Fatalf("get no-ack: %+v %v %v", d2, ok, err)
	}
	q, _ := b.qm.Get("g")
	waitFor(t, 5*time.Second, func() error {
		if st := q.Stats(); st.Visible != 1 || st.InFlight != 0 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}
