package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
)

const rabbitURL = "amqp://guest:guest@127.0.0.1:5672/"

// TestAMQPDeclareFromConfig: the declare blocks of an amqp source and an
// amqp target reach RabbitMQ. The target's exchange, queue and binding
// exist after the first send and the message is routed through them; the
// source's queue exists once it consumes.
func TestAMQPDeclareFromConfig(t *testing.T) {
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	xName, qName, srcQueue := "cfg-x-"+suffix, "cfg-q-"+suffix, "cfg-src-"+suffix
	cfg := strings.NewReplacer("XNAME", xName, "QNAME", qName, "SRCQ", srcQueue, "URL", rabbitURL).Replace(`
connections:
  r: { type: amqp, url: "URL" }
backbone:
  topics: { orders: {} }
sources:
  - { name: legacy, type: amqp, connection: r, queue: SRCQ, topic: orders, key_from_message_id: true,
      declare: { queues: [{ name: SRCQ }] } }
pipelines:
  - name: out
    from: orders
    routes:
      - to:
          amqp:
            connection: r
            exchange: XNAME
            routing_key: '"orders." + body.region'
            declare:
              exchanges: [{ name: XNAME, type: topic }]
              queues: [{ name: QNAME }]
              bindings: [{ queue: QNAME, exchange: XNAME, key: "orders.*" }]
`)
	plan, err := pipelines.Parse("cfg.yaml", []byte(cfg), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	conn, err := amqp091.Dial(rabbitURL)
	if err != nil {
		t.Fatalf("RabbitMQ at %s: %v", rabbitURL, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, q := range []string{qName, srcQueue} {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
		_ = ch.ExchangeDelete(xName, false, false)
	}()

	c := connectors{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	target := &plan.Pipelines[0].Routes[0].To
	sink, err := c.sink(target, plan.Config.Connections["r"])
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ps, ok := sink.(event.ParamSink)
	if !ok {
		t.Fatalf("%T is not a ParamSink", sink)
	}
	if err := ps.SendParams(ctx, []event.Event{{Key: []byte("o-1"), Value: []byte(`{"region":"eu"}`)}},
		[]event.Params{{RoutingKey: "orders.eu"}}); err != nil {
		t.Fatalf("send through the declared topology: %v", err)
	}
	d, ok, err := ch.Get(qName, true)
	if err != nil || !ok {
		t.Fatalf("queue %s declared and bound by the target holds nothing: %v %v", qName, ok, err)
	}
	if string(d.Body) != `{"region":"eu"}` {
		t.Fatalf("body %q", d.Body)
	}

	src, err := c.source(plan.Sources[0].Config, plan.Config.Connections["r"])
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(sctx, func(context.Context, []event.Event) error { return nil }) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := passive(conn, srcQueue); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("source did not declare queue %s", srcQueue)
		}
		time.Sleep(50 * time.Millisecond)
	}
	scancel()
	<-done
}

// passive checks that a queue exists, on its own channel (a failed passive
// declare closes the channel).
func passive(conn *amqp091.Connection, name string) (amqp091.Queue, error) {
	ch, err := conn.Channel()
	if err != nil {
		return amqp091.Queue{}, err
	}
	defer ch.Close()
	return ch.QueueDeclarePassive(name, true, false, false, false, nil)
}

// TestAMQPDefaultExchangeTarget: an amqp target with no exchange publishes
// to AMQP's default exchange, each event routed to the queue its
// routing_key expression names. Validation accepts it, and so must the
// sink that `bridge run` builds from it.
func TestAMQPDefaultExchangeTarget(t *testing.T) {
	qName := fmt.Sprintf("cfg-default-x-%d", time.Now().UnixNano())
	cfg := strings.NewReplacer("QNAME", qName, "URL", rabbitURL).Replace(`
connections:
  r: { type: amqp, url: "URL" }
backbone:
  topics: { orders: {} }
pipelines:
  - name: out
    from: orders
    routes:
      - to:
          amqp:
            connection: r
            routing_key: '"QNAME"'
            declare: { queues: [{ name: QNAME }] }
`)
	plan, err := pipelines.Parse("cfg.yaml", []byte(cfg), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	conn, err := amqp091.Dial(rabbitURL)
	if err != nil {
		t.Fatalf("RabbitMQ at %s: %v", rabbitURL, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = ch.QueueDelete(qName, false, false, false) }()

	c := connectors{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sink, err := c.sink(&plan.Pipelines[0].Routes[0].To, plan.Config.Connections["r"])
	if err != nil {
		t.Fatalf("a default-exchange target that validates must build: %v", err)
	}
	defer sink.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ps := sink.(event.ParamSink)
	if err := ps.SendParams(ctx, []event.Event{{Value: []byte("to the default exchange")}},
		[]event.Params{{RoutingKey: qName}}); err != nil {
		t.Fatalf("send via the default exchange: %v", err)
	}
	d, ok, err := ch.Get(qName, true)
	if err != nil || !ok || string(d.Body) != "to the default exchange" {
		t.Fatalf("queue %s: ok=%v err=%v body=%q", qName, ok, err, d.Body)
	}
	// An event whose key names no queue is a failed item (mandatory), not
	// a silent drop.
	err = ps.SendParams(ctx, []event.Event{{Value: []byte("nowhere")}}, []event.Params{{RoutingKey: qName + "-absent"}})
	var be *event.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("an unroutable message = %v, want a *event.BatchError", err)
	}
}
