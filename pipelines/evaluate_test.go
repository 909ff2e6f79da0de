package pipelines

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

const routingDoc = `
backbone: { topics: { in: {}, a: {}, b: {}, c: {} } }
broker:
  queues: { jobs.fifo: { fifo: true } }
  exchanges: { ex: { type: topic, bindings: [ { queue: jobs.fifo, key: "#" } ] } }
pipelines:
  - name: all
    from: in
    routes:
      - to: { topic: a }
      - to: { topic: b, key: 'body.id' }
  - name: picky
    from: in
    filter: 'body.kind == "order"'
    routes:
      - name: big
        when: 'body.amount > 100'
        to: { exchange: ex, routing_key: '"order." + body.region' }
      - name: everything
        to: { queue: jobs.fifo, group_id: 'body.customer', dedup_id: 'key' }
      - name: eu
        when: 'body.region == "eu"'
        to: { topic: c }
`

func TestEvaluate(t *testing.T) {
	t.Parallel()
	plan := mustParse(t, routingDoc)
	all, picky := plan.Pipelines[0], plan.Pipelines[1]
	tests := []struct {
		name    string
		p       *Pipeline
		value   string
		want    []string
		wantErr string // rule named in the *RuleError
	}{
		{"no filter, no when: every route", all, `{"id":1}`, []string{"topic:a", "topic:b"}, ""},
		{"no filter, not JSON", all, `nope`, []string{"topic:a", "topic:b"}, ""},
		{"filter rejects", picky, `{"kind":"refund","amount":500}`, nil, ""},
		{"filter rejects a missing field", picky, `{}`, nil, ""},
		{"first when false", picky, `{"kind":"order","amount":5,"region":"eu"}`, []string{"everything", "eu"}, ""},
		{"last when false", picky, `{"kind":"order","amount":500,"region":"us"}`, []string{"big", "everything"}, ""},
		{"all routes", picky, `{"kind":"order","amount":500,"region":"eu"}`, []string{"big", "everything", "eu"}, ""},
		{"when fails at run time", picky, `{"kind":"order","amount":"lots"}`, nil, "when"},
	}
	env := rules.NewEnv()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &event.Event{Topic: "in", Value: []byte(tc.value), Key: []byte("k1")}
			routes, err := Evaluate(tc.p, env, ev)
			if tc.wantErr != "" {
				var re *RuleError
				if !errors.As(err, &re) || re.Rule != tc.wantErr || re.Pipeline != tc.p.Name {
					t.Fatalf("err = %v, want a RuleError in %s", err, tc.wantErr)
				}
				if routes != nil {
					t.Fatalf("routes %v returned with an error", routes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range routes {
				names = append(names, r.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("routes = %v, want %v", names, tc.want)
			}
		})
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	plan := mustParse(t, routingDoc)
	picky := plan.Pipelines[1]
	env := rules.NewEnv()
	tests := []struct {
		name, value string
		route       int
		want        Rendered
		wantErr     string
	}{
		{"routing key", `{"region":"eu"}`, 0, Rendered{RoutingKey: "order.eu", HasRoutingKey: true}, ""},
		{"group and dedup", `{"customer":"c-7"}`, 1,
			Rendered{GroupID: "c-7", HasGroupID: true, DedupID: "k1", HasDedupID: true}, ""},
		{"number rendered as JSON", `{"customer":42}`, 1,
			Rendered{GroupID: "42", HasGroupID: true, DedupID: "k1", HasDedupID: true}, ""},
		{"missing field is not set", `{}`, 1, Rendered{DedupID: "k1", HasDedupID: true}, ""},
		{"no rules", `{}`, 2, Rendered{}, ""},
		{"rule error", `{"region":3}`, 0, Rendered{}, "routing_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env.Reset(&event.Event{Key: []byte("k1"), Value: []byte(tc.value)})
			r := picky.Routes[tc.route]
			got, err := r.To.Render(env, picky.Name, r.Name)
			if tc.wantErr != "" {
				var re *RuleError
				if !errors.As(err, &re) || re.Rule != tc.wantErr || re.Route != r.Name {
					t.Fatalf("err = %v, want RuleError in %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Render = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestEvaluateNoAllocWhenAllRoutesMatch guards the engine's hot path: with
// no route skipped, Evaluate returns p.Routes without allocating.
func TestEvaluateNoAllocWhenAllRoutesMatch(t *testing.T) {
	plan := mustParse(t, routingDoc)
	p := plan.Pipelines[0]
	env := rules.NewEnv()
	ev := &event.Event{Topic: "in", Value: []byte(`{"id":1}`)}
	allocs := testing.AllocsPerRun(100, func() {
		routes, err := Evaluate(p, env, ev)
		if err != nil || len(routes) != 2 {
			t.Fatalf("routes %v err %v", routes, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Evaluate allocated %.1f times per event", allocs)
	}
}

func TestTargetKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[TargetKind]string{TargetTopic: "topic", TargetExchange: "exchange", TargetQueue: "queue",
		TargetKafka: "kafka", TargetAMQP: "amqp", TargetSQS: "sqs", 0: "TargetKind(0)", 99: "TargetKind(99)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	plan, err := Parse("bench.yaml", []byte(routingDoc), nil)
	if err != nil {
		b.Fatal(err)
	}
	p := plan.Pipelines[1]
	env := rules.NewEnv()
	ev := &event.Event{Topic: "in", Key: []byte("order-1"), Value: []byte(
		`{"kind":"order","order_id":"o-123456","customer":"c-42","region":"eu","amount":250.5,` +
			`"currency":"EUR","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"leave at door"}`)}
	b.ReportAllocs()
	for b.Loop() {
		routes, err := Evaluate(p, env, ev)
		if err != nil || len(routes) != 3 {
			b.Fatal(routes, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/valid/spec.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("spec.yaml", data, testEnv); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEvaluateConcurrent shares one Plan between goroutines, each with its
// own Env, as the engine does (run with -race).
func TestEvaluateConcurrent(t *testing.T) {
	t.Parallel()
	plan := mustParse(t, routingDoc)
	p := plan.Pipelines[1]
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			env := rules.NewEnv()
			for i := range 200 {
				amount := (g*200 + i) % 300
				ev := &event.Event{Value: []byte(`{"kind":"order","region":"eu","amount":` + strconv.Itoa(amount) + `}`)}
				routes, err := Evaluate(p, env, ev)
				want := 2
				if amount > 100 {
					want = 3
				}
				if err != nil || len(routes) != want {
					errs <- fmt.Errorf("amount %d: %d routes, err %v", amount, len(routes), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
