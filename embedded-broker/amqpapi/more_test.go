package amqpapi

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
)

// channel.flow active=false pauses deliveries; active=true resumes them.
// basic.recover requeues every unacknowledged delivery of the channel.
func TestFlowAndRecover(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("flow", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("flow", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Flow(false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "flow", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	noRecv(t, ds, 300*time.Millisecond)
	if err := ch.Flow(true); err != nil {
		t.Fatal(err)
	}
	first := recv(t, ds, 5*time.Second)
	//lint:ignore SA1019 basic.recover is part of AMQP 0-9-1 and the listener serves it.
	if err := ch.Recover(true); err != nil {
		t.Fatal(err)
	}
	again := recv(t, ds, 5*time.Second)
	if !again.Redelivered || again.DeliveryTag == first.DeliveryTag {
		t.Fatalf("after recover: redelivered %v tag %d (first %d)", again.Redelivered, again.DeliveryTag, first.DeliveryTag)
	}
	if err := again.Ack(false); err != nil {
		t.Fatal(err)
	}
}

// An auto-delete queue goes with its last consumer; an exclusive consumer
// keeps others out (403).
func TestAutoDeleteAndExclusiveConsumer(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("auto", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("auto", "solo", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	other := mustChannel(t, conn)
	if _, err := other.Consume("auto", "second", false, false, false, false, nil); !isCode(err, amqp.AccessRefused) {
		t.Fatalf("second consumer of an exclusive one: %v", err)
	}
	if err := ch.Cancel("solo", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if _, err := b.qm.Get("auto"); err == nil {
			return fmt.Errorf("auto-delete queue still there")
		}
		return nil
	})
}

// A client that stops sending (no heartbeats) is disconnected after two
// heartbeat intervals.
func TestHeartbeatTimeout(t *testing.T) {
	b := startBroker(t)
	addr := b.url[len("amqp://guest:guest@") : len(b.url)-1]
	nc, fr := rawHandshakeTuned(t, addr, 1)
	defer nc.Close()
	start := time.Now()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break // the server closed the connection
		}
		if f.Type != wire.FrameHeartbeat {
			t.Fatalf("unexpected frame type %d", f.Type)
		}
	}
	if took := time.Since(start); took < 1500*time.Millisecond || took > 6*time.Second {
		t.Fatalf("disconnected after %v, want about 2 s", took)
	}
}
