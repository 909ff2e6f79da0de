package rules

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/bridgeio/bridge/event"
)

const filterSrc = `body.type == "order.created" && body.amount >= 100 && body.region in ["eu","us"]`

// orderEvents returns n ~200-byte JSON order events, most of which pass
// the filter.
func orderEvents(n int) []event.Event {
	regions := []string{"eu", "us", "ap"}
	evs := make([]event.Event, n)
	for i := range evs {
		v := fmt.Sprintf(`{"type":"order.created","order_id":"ord-%08d","customer_id":"cust-%05d","amount":%d.%02d,"currency":"EUR","region":%q,"items":[{"sku":"sku-%d","qty":%d}],"ts":"2026-11-25T21:00:00Z"}`,
			i, i%9973, 50+i%400, i%100, regions[i%3], i%50, 1+i%5)
		evs[i] = event.Event{Topic: "orders", Partition: int32(i % 6), Offset: int64(i), Value: []byte(v), Timestamp: time.Unix(1764100000, 0)}
	}
	return evs
}

// BenchmarkFilter evaluates the three-clause filter of issue 3 with JSON
// decoding included, with this package and, for comparison, with
// encoding/json into a map plus expr over a map environment.
func BenchmarkFilter(b *testing.B) {
	evs := orderEvents(1024)
	size := 0
	for _, ev := range evs {
		size += len(ev.Value)
	}
	b.Run("rules", func(b *testing.B) {
		p, err := Compile(filterSrc, Bool)
		if err != nil {
			b.Fatal(err)
		}
		env := NewEnv()
		b.SetBytes(int64(size / len(evs)))
		b.ReportAllocs()
		i, pass := 0, 0
		start, cpu := time.Now(), cpuTime()
		for b.Loop() {
			env.Reset(&evs[i%len(evs)])
			ok, err := p.EvalBool(env)
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				pass++
			}
			i++
		}
		b.ReportMetric(float64(i)/time.Since(start).Seconds(), "evals/s")
		b.ReportMetric(float64(cpuTime()-cpu)/float64(i), "cpu-ns/eval")
		if pass == 0 {
			b.Fatal("no event passed")
		}
	})
	// The two ways of handing a fully decoded body to plain expr, with this
	// package's decoder: a reused map environment and a typed struct
	// environment. Both decode the whole body, so the difference to
	// "rules" is what decoding only the read fields saves.
	b.Run("full-decode-map-env", func(b *testing.B) {
		p, err := expr.Compile(filterSrc, expr.AsBool())
		if err != nil {
			b.Fatal(err)
		}
		env := map[string]any{}
		runBaseline(b, evs, func(ev *event.Event) (any, error) {
			body, _ := parseJSON(ev.Value)
			env["body"] = body
			return expr.Run(p, env)
		})
	})
	b.Run("full-decode-struct-env", func(b *testing.B) {
		p, err := expr.Compile(filterSrc, expr.Env(eventEnv{}), expr.AsBool())
		if err != nil {
			b.Fatal(err)
		}
		var m vm.VM
		env := &eventEnv{}
		runBaseline(b, evs, func(ev *event.Event) (any, error) {
			env.Body, _ = parseJSON(ev.Value)
			return m.Run(p, env)
		})
	})
	b.Run("encoding-json-map-env", func(b *testing.B) {
		p, err := expr.Compile(filterSrc, expr.AsBool())
		if err != nil {
			b.Fatal(err)
		}
		env := map[string]any{}
		b.SetBytes(int64(size / len(evs)))
		b.ReportAllocs()
		i, pass := 0, 0
		start := time.Now()
		for b.Loop() {
			var body any
			if json.Unmarshal(evs[i%len(evs)].Value, &body) != nil {
				body = nil
			}
			env["body"] = body
			out, err := expr.Run(p, env)
			if err != nil {
				b.Fatal(err)
			}
			if out.(bool) {
				pass++
			}
			i++
		}
		b.ReportMetric(float64(i)/time.Since(start).Seconds(), "evals/s")
		if pass == 0 {
			b.Fatal("no event passed")
		}
	})
}

func runBaseline(b *testing.B, evs []event.Event, eval func(*event.Event) (any, error)) {
	b.ReportAllocs()
	i, pass := 0, 0
	start := time.Now()
	for b.Loop() {
		out, err := eval(&evs[i%len(evs)])
		if err != nil {
			b.Fatal(err)
		}
		if out.(bool) {
			pass++
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "evals/s")
	if pass == 0 {
		b.Fatal("no event passed")
	}
}

// BenchmarkKey renders a string rule (a routing key built from the body).
func BenchmarkKey(b *testing.B) {
	evs := orderEvents(1024)
	p, err := Compile(`"order." + body.type + "." + body.region`, String)
	if err != nil {
		b.Fatal(err)
	}
	env := NewEnv()
	b.ReportAllocs()
	i := 0
	start := time.Now()
	for b.Loop() {
		env.Reset(&evs[i%len(evs)])
		if _, ok, err := p.EvalString(env); err != nil || !ok {
			b.Fatal(ok, err)
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "evals/s")
}

// BenchmarkExtract measures the scanner alone against encoding/json.
func BenchmarkExtract(b *testing.B) {
	evs := orderEvents(1024)
	var ps pathSet
	ps.add([]string{"type"})
	ps.add([]string{"amount"})
	ps.add([]string{"region"})
	out := make([]any, 3)
	b.Run("paths", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !extract(evs[i%len(evs)].Value, &ps, out, nil) {
				b.Fatal("invalid")
			}
			i++
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := parseJSON(evs[i%len(evs)].Value); !ok {
				b.Fatal("invalid")
			}
			i++
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var v any
			if err := json.Unmarshal(evs[i%len(evs)].Value, &v); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// benchTransformSrc removes two fields and adds one computed from the body
// (issue 12's figure; engine/BenchmarkPipelineTransform runs it end to end).
const benchTransformSrc = `merge(omit(body, "customer_id", "items"), {"amount_cents": body.amount * 100})`

// BenchmarkTransform applies that transform to 200-byte orders: "patch" is
// the path the engine takes, "general" the same rule through maps and the
// encoder (what the patch path saves), "split" one part per item.
func BenchmarkTransform(b *testing.B) {
	evs := orderEvents(1024)
	value, err := Compile(benchTransformSrc, Value)
	if err != nil {
		b.Fatal(err)
	}
	general := *value
	general.patch = nil
	split, err := CompileIn(`body.items`, List, EventScope)
	if err != nil {
		b.Fatal(err)
	}
	itemValue, err := CompileIn(`merge(item, {"order_id": body.order_id})`, Value, SplitScope)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tr   *Transform
	}{
		{"patch", &Transform{Value: value}},
		{"general", &Transform{Value: &general}},
		{"split", &Transform{Split: split, Value: itemValue}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			env := NewEnv()
			var buf Buffer
			out := make([]event.Event, 0, 8)
			b.ReportAllocs()
			i := 0
			start, cpu := time.Now(), cpuTime()
			for b.Loop() {
				ev := &evs[i%len(evs)]
				if i%len(evs) == 0 {
					buf.Reset() // as the engine does per fetched batch
				}
				env.Reset(ev)
				var err error
				if out, err = tc.tr.Apply(env, ev, out[:0], &buf); err != nil || len(out) == 0 {
					b.Fatal(len(out), err)
				}
				i++
			}
			b.ReportMetric(float64(i)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(cpuTime()-cpu)/float64(i), "cpu-ns/event")
		})
	}
}

// cpuTime is the CPU time this process used so far (user + system, every
// thread). Per operation it is steadier than wall time on a shared
// machine: a benchmark preempted by other work does not pay for it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
