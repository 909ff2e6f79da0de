package exchange

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkTopicRoute routes through a topic exchange with 10,000 bindings
// of mixed shapes (literal words, "*" and "#").
//
//   - sparse: every binding has its own queue and a key matches a handful,
//     the fan-out-by-region case;
//   - dense: bindings share 2,000 queues and broad patterns ("order.x.#"),
//     so a key matches ~80 queues and Route's sort/dedup dominates.
func BenchmarkTopicRoute(b *testing.B) {
	types := []string{"created", "paid", "shipped", "cancelled", "refunded"}
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("sparse", func(b *testing.B) {
		bindings := make([]Binding, 0, 10000)
		for i := range 10000 {
			svc, region := i%100, i/100
			var key string
			switch i % 4 {
			case 0:
				key = fmt.Sprintf("svc%d.created.r%d", svc, region)
			case 1:
				key = fmt.Sprintf("svc%d.*.r%d", svc, region)
			case 2:
				key = fmt.Sprintf("svc%d.#.r%d", svc, region)
			default:
				key = fmt.Sprintf("*.paid.r%d.#", i)
			}
			bindings = append(bindings, Binding{Queue: fmt.Sprintf("q%d", i), Key: key})
		}
		keys := make([]string, 1024)
		for i := range keys {
			keys[i] = fmt.Sprintf("svc%d.%s.r%d", rng.IntN(100), types[rng.IntN(len(types))], rng.IntN(100))
		}
		benchRoute(b, bindings, keys)
	})
	b.Run("dense", func(b *testing.B) {
		bindings := make([]Binding, 0, 10000)
		for i := range 10000 {
			var key string
			switch i % 5 {
			case 0:
				key = fmt.Sprintf("order.%s.r%d", types[i%len(types)], i%400)
			case 1:
				key = fmt.Sprintf("order.*.r%d", i%400)
			case 2:
				key = fmt.Sprintf("order.%s.#", types[i%len(types)])
			case 3:
				key = fmt.Sprintf("#.r%d.%d", i%400, i%10)
			default:
				key = fmt.Sprintf("t%d.*.#", i)
			}
			bindings = append(bindings, Binding{Queue: fmt.Sprintf("q%d", i%2000), Key: key})
		}
		keys := make([]string, 1024)
		for i := range keys {
			keys[i] = fmt.Sprintf("order.%s.r%d.%d", types[rng.IntN(len(types))], rng.IntN(400), rng.IntN(10))
		}
		benchRoute(b, bindings, keys)
	})
}

func benchRoute(b *testing.B, bindings []Binding, keys []string) {
	x, err := New("orders", Topic, bindings)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]string, 0, 256)
	lat := make([]time.Duration, 0, 1<<16)
	routed := 0
	b.ReportAllocs()
	i := 0
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		dst = x.Route(keys[i%len(keys)], nil, dst[:0])
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
		routed += len(dst)
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "routes/s")
	b.ReportMetric(float64(routed)/float64(i), "queues/route")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	if routed == 0 {
		b.Fatal("nothing routed")
	}
}
