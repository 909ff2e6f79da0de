package engine

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// orderEvent is a ~200-byte JSON order like the README's tour posts.
func orderEvent(i int) event.Event {
	regions := []string{"eu", "us", "apac"}
	types := []string{"order.created", "order.created", "order.paid"}
	v := fmt.Sprintf(`{"type":%q,"order_id":"order-%07d","customer":"customer-%05d","region":%q,"amount":%d,"currency":"EUR","items":["sku-%d","sku-%d"]}`,
		types[i%3], i, i%9973, regions[i%3], 50+i%200, i%97, i%89)
	return event.Event{Key: fmt.Appendf(nil, "order-%07d", i), Value: []byte(v), Source: "bench"}
}

func fillTopic(b *testing.B, l *commitlog.Log, topic string, n int) {
	b.Helper()
	batch := make([]event.Event, 0, 1000)
	for i := range n {
		batch = append(batch, orderEvent(i))
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := l.Append(context.Background(), topic, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkPipelineTopicToTopic measures a pipeline reading a backbone
// topic, evaluating a three-clause filter on JSON bodies, and appending the
// selected events to another topic (fsync interval), end to end through
// the log, with checkpoints. It reports input events handled per second.
func BenchmarkPipelineTopicToTopic(b *testing.B) {
	filter, err := rules.Compile(benchFilter, rules.Bool)
	if err != nil {
		b.Fatal(err)
	}
	benchPipeline(b, filter, nil)
}

const (
	benchFilter = `body.type == "order.created" && body.amount >= 100 && body.region in ["eu", "us"]`
	// benchTransform removes two fields and adds one computed from the body
	// (issue 12's figure).
	benchTransform = `merge(omit(body, "customer", "items"), {"amount_cents": body.amount * 100})`
)

// BenchmarkPipelineTransform is BenchmarkPipelineTopicToTopic with a
// transform (issue 12): "copy-all" sends every event unchanged, the
// baseline of "transform-all", which rewrites every event's value;
// "filter-transform" adds the transform to the filter of
// BenchmarkPipelineTopicToTopic. Compare them in one run.
func BenchmarkPipelineTransform(b *testing.B) {
	filter, err := rules.Compile(benchFilter, rules.Bool)
	if err != nil {
		b.Fatal(err)
	}
	value, err := rules.Compile(benchTransform, rules.Value)
	if err != nil {
		b.Fatal(err)
	}
	tr := &rules.Transform{Step: "pipeline", Value: value}
	b.Run("copy-all", func(b *testing.B) { benchPipeline(b, nil, nil) })
	b.Run("transform-all", func(b *testing.B) { benchPipeline(b, nil, tr) })
	b.Run("filter-only", func(b *testing.B) { benchPipeline(b, filter, nil) })
	b.Run("filter-transform", func(b *testing.B) { benchPipeline(b, filter, tr) })
}

// benchPipeline runs topic → (filter) → (transform) → topic over 300,000
// orders on 4 partitions and reports input events handled per second.
func benchPipeline(b *testing.B, filter *rules.Program, tr *rules.Transform) {
	const events = 300_000
	const partitions = 4
	dir := b.TempDir()
	l, err := commitlog.Open(commitlog.Options{Dir: dir, Fsync: commitlog.FsyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for _, t := range []string{"in", "out"} {
		if err := l.CreateTopic(t, partitions); err != nil {
			b.Fatal(err)
		}
	}
	fillTopic(b, l, "in", events)
	bb := Embedded(l)
	run := 0
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for b.Loop() {
		run++
		r := &route{pipeline: "bench", name: fmt.Sprintf("copy-%d", run), topic: "in", start: "earliest",
			filter: filter, transform: tr, sink: &topicSink{backbone: bb, topic: "out"}, onError: OnErrorDrop,
			retry: RetryPolicy{}.withDefaults(), batchSize: 1024, maxBytes: 8 << 20}
		e := newEngine(bb, Options{Logger: slog.New(slog.DiscardHandler)})
		if err := e.addPipeline("bench", "in", []*route{r}); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		for r.stats.read.Load() < events {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if got := r.stats.sent.Load(); got == 0 {
			b.Fatal("nothing passed the filter")
		}
		if n := r.stats.ruleErrors.Load() + r.stats.dropped.Load(); n != 0 {
			b.Fatalf("%d events failed", n)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N*events)/elapsed.Seconds(), "events/s")
	// CPU per input event, every goroutine of the process included (log
	// writes, GC): steadier than events/s on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N*events), "cpu-ns/event")
}

// cpuTime is the CPU time this process used so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPipelineToExchange measures pipeline → topic exchange → queues
// without the SQS API: events are read from the backbone, routed by region
// through a topic exchange into two durable queues (fsync interval).
func BenchmarkPipelineToExchange(b *testing.B) {
	const events = 300_000
	const partitions = 4
	dir := b.TempDir()
	l, err := commitlog.Open(commitlog.Options{Dir: dir + "/log", Fsync: commitlog.FsyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.CreateTopic("in", partitions); err != nil {
		b.Fatal(err)
	}
	fillTopic(b, l, "in", events)
	qm, err := queue.Open(queue.Options{Dir: dir + "/queues", Fsync: "interval"})
	if err != nil {
		b.Fatal(err)
	}
	defer qm.Close()
	broker := NewBroker(qm)
	x, err := exchange.New("orders", exchange.Topic, nil)
	if err != nil {
		b.Fatal(err)
	}
	broker.AddExchange(x, "")
	routingKey, err := rules.Compile(`"order.created." + body.region`, rules.String)
	if err != nil {
		b.Fatal(err)
	}
	bb := Embedded(l)
	run := 0
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		run++
		for _, q := range []string{"eu", "us"} {
			x.Unbind(exchange.Binding{Queue: fmt.Sprintf("%s-%d", q, run-1), Key: "order.*." + q})
			name := fmt.Sprintf("%s-%d", q, run)
			if _, err := qm.Create(queue.Config{Name: name, Retention: 24 * time.Hour}); err != nil {
				b.Fatal(err)
			}
			_ = x.Bind(exchange.Binding{Queue: name, Key: "order.*." + q})
		}
		sink, err := newExchangeSink(broker, "orders")
		if err != nil {
			b.Fatal(err)
		}
		r := &route{pipeline: "bench", name: fmt.Sprintf("fanout-%d", run), topic: "in", start: "earliest",
			routingKey: routingKey, sink: sink, onError: OnErrorDrop,
			retry: RetryPolicy{}.withDefaults(), batchSize: 1024, maxBytes: 8 << 20}
		e := newEngine(bb, Options{Logger: slog.New(slog.DiscardHandler)})
		if err := e.addPipeline("bench", "in", []*route{r}); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		for r.stats.read.Load() < events {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if r.stats.sent.Load() != events {
			b.Fatalf("sent %d of %d", r.stats.sent.Load(), events)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N*events)/elapsed.Seconds(), "events/s")
}
