package exchange

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkTopicRoute routes keys of the shape order.<type>.<region>.<n>
// through a topic exchange with 10,000 bindings of mixed shapes: literal,
// "*" and "#" patterns, most of which share prefixes with the keys.
func BenchmarkTopicRoute(b *testing.B) {
	const n = 10000
	types := []string{"created", "paid", "shipped", "cancelled", "refunded"}
	bindings := make([]Binding, 0, n)
	for i := range n {
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
	x, err := New("orders", Topic, bindings)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("order.%s.r%d.%d", types[rng.IntN(len(types))], rng.IntN(400), rng.IntN(10))
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
