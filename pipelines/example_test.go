package pipelines_test

import (
	"fmt"
	"os"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/rules"
)

func ExampleParse() {
	config := []byte(`
backbone:
  topics: { orders: { partitions: 6 } }
broker:
  queues: { eu: {}, us: {} }
  exchanges:
    orders:
      type: topic
      bindings: [ { queue: eu, key: "order.*.eu" }, { queue: us, key: "order.*.us" } ]
pipelines:
  - name: fanout
    from: orders
    filter: 'body.type == "order.created"'
    routes:
      - to: { exchange: ordrs, routing_key: '"order.created." + body.regio' }
`)
	_, err := pipelines.Parse("bridge.yaml", config, os.LookupEnv)
	fmt.Println(err)
	// Output:
	// bridge.yaml:15:25: pipelines[0].routes[0].to.exchange: exchange "ordrs" is not defined (did you mean "orders"?)
}

func ExampleEvaluate() {
	plan, err := pipelines.Load("examples/order-fanout.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	p := plan.Pipelines[0]
	env := rules.NewEnv() // one per goroutine, reused across events
	ev := &event.Event{Topic: "orders", Value: []byte(`{"type":"order.created","region":"eu"}`)}
	routes, err := pipelines.Evaluate(p, env, ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range routes {
		keys, _ := r.To.Render(env, p.Name, r.Name)
		fmt.Println(r.Name, r.To.Kind, r.To.Exchange, keys.RoutingKey)
	}
	// Output:
	// fulfillment exchange orders order.created.eu
}

func ExampleRunCases() {
	plan, err := pipelines.Load("examples/copy-filter.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	passed, failed, err := pipelines.RunCases(plan, "examples/copy-filter.cases.yaml", os.Stdout)
	fmt.Println(passed, failed, err)
	// Output:
	// ok   examples/copy-filter.cases.yaml:3:5: a big EUR payment is copied, keyed by account
	// ok   examples/copy-filter.cases.yaml:13:5: test traffic is dropped
	// ok   examples/copy-filter.cases.yaml:20:5: a small payment is dropped
	// ok   examples/copy-filter.cases.yaml:26:5: an amount that is a string makes the filter fail
	// 4 0 <nil>
}
