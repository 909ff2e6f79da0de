package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
)

const queueParamsConfig = `
backbone: { topics: { in: { partitions: 1 } } }
broker:
  queues:
    jobs: { max_priority: 9 }
    fanned: { max_priority: 9 }
    ordered.fifo: { fifo: true }
    dead: {}
  exchanges:
    x: { type: fanout, bindings: [ { queue: fanned }, { queue: ordered.fifo } ] }
pipelines:
  - name: p
    from: in
    on_error: dead_letter
    dead_letter: { queue: dead }
    routes:
      - name: direct
        to:
          queue: jobs
          priority: 'body.p'
          ttl: 'body.ttl'
          delay: 'body.delay'
          reply_to: 'headers["reply"]'
          correlation_id: 'body.id'
      - name: fanout
        to: { exchange: x, delay: '"1h"', ttl: '600' }
`

// buildFromYAML builds an engine from a config on a memory backbone and a
// fresh queue manager whose queues and exchanges the config declares.
func buildFromYAML(t *testing.T, src string) (*Engine, *memBackbone, *queue.Manager) {
	t.Helper()
	plan, err := pipelines.Parse("test.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	qm, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qm.Close() })
	for _, name := range []string{"dead", "jobs", "fanned", "ordered.fifo", "replays"} {
		q := plan.Config.Broker.Queues[name]
		if q == nil {
			continue
		}
		if _, err := qm.Create(queue.Config{Name: name, FIFO: q.FIFO, MaxPriority: q.MaxPriority, ContentBasedDeduplication: q.ContentBasedDeduplication}); err != nil {
			t.Fatal(err)
		}
	}
	broker := NewBroker(qm)
	for name, xc := range plan.Config.Broker.Exchanges {
		var bindings []exchange.Binding
		for _, bc := range xc.Bindings {
			bindings = append(bindings, exchange.Binding{Queue: bc.Queue, Key: bc.Key})
		}
		x, err := exchange.New(name, exchange.Kind(xc.Type), bindings)
		if err != nil {
			t.Fatal(err)
		}
		broker.AddExchange(x, "")
	}
	topics := map[string]int{}
	for name, tc := range plan.Config.Backbone.Topics {
		topics[name] = tc.Partitions
	}
	b := newMemBackbone(topics)
	e, err := Build(plan, Deps{Backbone: b, Broker: broker, Options: Options{CommitInterval: 5 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	return e, b, qm
}

// receiveAll takes every visible message of a queue.
func receiveAll(t *testing.T, qm *queue.Manager, name string) []queue.Message {
	t.Helper()
	q, err := qm.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []queue.Message
	for {
		msgs, err := q.Receive(context.Background(), 10, time.Hour, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return out
		}
		out = append(out, msgs...)
	}
}

func attrOf(m queue.Message, name string) string {
	for _, a := range m.Attributes {
		if a.Name == name {
			return string(a.Value)
		}
	}
	return ""
}

// TestRouteMessageParams: a queue route's priority, ttl, delay, reply_to
// and correlation_id rules reach the queue; an event from RabbitMQ keeps
// its AMQP priority when the route sets none; a rule that fails (a
// priority out of range) dead-letters the event; through an exchange, the
// FIFO queue gets no delay.
func TestRouteMessageParams(t *testing.T) {
	e, b, qm := buildFromYAML(t, queueParamsConfig)
	evs := []event.Event{
		{Value: []byte(`{"id":"a","p":2}`)},
		{Value: []byte(`{"id":"b","p":8,"ttl":"90s"}`), Headers: []event.Header{{Key: "reply", Value: []byte("replies-1")}}},
		{Value: []byte(`{"id":"c","delay":3600}`), Headers: []event.Header{{Key: "amqp.priority", Value: []byte("5")}}},
		{Value: []byte(`{"id":"bad","p":300}`)},
	}
	if _, err := b.Append(context.Background(), "in", evs); err != nil {
		t.Fatal(err)
	}
	runEngine(t, e)
	waitFor(t, 10*time.Second, func() error {
		q, _ := qm.Get("jobs")
		dl, _ := qm.Get("dead")
		if st, dst := q.Stats(), dl.Stats(); st.Visible+st.Delayed != 3 || dst.Visible != 1 {
			return fmt.Errorf("jobs %+v, dead %+v", st, dst)
		}
		return nil
	})
	got := receiveAll(t, qm, "jobs")
	var order []string
	for _, m := range got {
		order = append(order, attrOf(m, "bridge-correlation-id"))
	}
	if !slices.Equal(order, []string{"b", "a"}) { // c is delayed an hour
		t.Fatalf("delivery order = %v", order)
	}
	if b := got[0]; b.Priority != 8 || b.ExpiresAt.Sub(b.SentAt) != 90*time.Second || attrOf(b, "bridge-reply-to") != "replies-1" {
		t.Fatalf("message b: priority %d, TTL %v, reply-to %q", b.Priority, b.ExpiresAt.Sub(b.SentAt), attrOf(b, "bridge-reply-to"))
	}
	q, _ := qm.Get("jobs")
	peeked, _ := q.Peek(0, 10)
	var c *queue.PeekedMessage
	for i := range peeked {
		if peeked[i].State == "delayed" {
			c = &peeked[i]
		}
	}
	if c == nil || c.Priority != 5 {
		t.Fatalf("delayed message c = %+v (want the AMQP priority 5)", c)
	}
	dead := receiveAll(t, qm, "dead")
	if len(dead) != 1 || string(dead[0].Body) != `{"id":"bad","p":300}` {
		t.Fatalf("dead letters = %+v", dead)
	}
	if reason := attrOf(dead[0], event.HeaderError); reason == "" {
		t.Fatal("dead letter without bridge-error")
	}
	// Through the exchange: the standard queue delays, the FIFO one cannot.
	fanned, _ := qm.Get("fanned")
	fifo, _ := qm.Get("ordered.fifo")
	waitFor(t, 10*time.Second, func() error {
		if st, fst := fanned.Stats(), fifo.Stats(); st.Delayed != 4 || fst.Visible != 4 {
			return fmt.Errorf("fanned %+v, fifo %+v", st, fst)
		}
		return nil
	})
}
