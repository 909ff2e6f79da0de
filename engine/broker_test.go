package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/rules"
)

// TestExchangeRouteAcrossPartitions runs one exchange route over many
// partitions at once (one cursor each, one shared sink) and checks that
// every event lands in the queue its own routing key selects, once. A
// regression test: scratch space shared by the cursors once sent events to
// the queue of another partition's event.
func TestExchangeRouteAcrossPartitions(t *testing.T) {
	qm, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
	if err != nil {
		t.Fatal(err)
	}
	defer qm.Close()
	regions := []string{"eu", "us", "apac"}
	var bindings []exchange.Binding
	for _, r := range regions {
		if _, err := qm.Create(queue.Config{Name: "q-" + r}); err != nil {
			t.Fatal(err)
		}
		bindings = append(bindings, exchange.Binding{Queue: "q-" + r, Key: "order.*." + r})
	}
	broker := NewBroker(qm)
	x, err := exchange.New("orders", exchange.Topic, bindings)
	if err != nil {
		t.Fatal(err)
	}
	broker.AddExchange(x, "")
	sink, err := newExchangeSink(broker, "orders")
	if err != nil {
		t.Fatal(err)
	}

	const n = 6000
	b := newMemBackbone(map[string]int{"in": 6})
	produce(t, b, "in", n, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"region":%q}`, i, regions[i%len(regions)])
	})
	r := testRoute("fanout", sink)
	r.batchSize = 7 // many small batches interleave across partitions
	r.routingKey = mustCompile(t, `"order.created." + body.region`, rules.String)
	runEngine(t, newTestEngine(t, b, r))

	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		for _, region := range regions {
			q, err := qm.Get("q-" + region)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := q.Receive(context.Background(), 10, time.Hour, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				body := string(m.Body)
				if !strings.Contains(body, `"region":"`+region+`"`) {
					t.Fatalf("queue q-%s got %s", region, body)
				}
				if seen[body] {
					t.Fatalf("delivered twice: %s", body)
				}
				seen[body] = true
			}
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d events reached their queue", len(seen), n)
	}
}
