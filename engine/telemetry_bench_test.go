package engine

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// discardExporter drops every span after the SDK built and batched it, so
// the benchmark pays all of the tracing cost except the network.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTelemetryOverhead runs BenchmarkPipelineTopicToTopic's pipeline
// twice per iteration, alternating, in one process: once with telemetry off
// (nil) and once with tracing at 100% sampling into a discarding exporter
// (batch span processor) and metrics on through the Prometheus reader. The
// input carries a traceparent per 1,000-event batch, as HTTP ingest stamps
// it, so the traced run parses, parents, links and re-injects trace
// context. It reports both throughputs and on/off (the budget is ≥ 0.90).
func BenchmarkTelemetryOverhead(b *testing.B) {
	const events = 200_000
	const partitions = 4
	l, err := commitlog.Open(commitlog.Options{Dir: b.TempDir(), Fsync: commitlog.FsyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for _, t := range []string{"in", "out"} {
		if err := l.CreateTopic(t, partitions); err != nil {
			b.Fatal(err)
		}
	}
	fillTracedTopic(b, l, "in", events)
	filter, err := rules.Compile(`body.type == "order.created" && body.amount >= 100 && body.region in ["eu", "us"]`, rules.Bool)
	if err != nil {
		b.Fatal(err)
	}
	on, err := telemetry.New(telemetry.Config{SpanExporter: discardExporter{}, SampleRatio: 1, Metrics: true})
	if err != nil {
		b.Fatal(err)
	}
	defer on.Shutdown(context.Background())
	bb := Embedded(l)
	run := 0
	pass := func(tel *telemetry.Telemetry) time.Duration {
		run++
		r := &route{pipeline: "bench", name: fmt.Sprintf("copy-%d", run), topic: "in", start: "earliest",
			filter: filter, sink: &topicSink{backbone: bb, topic: "out"}, onError: OnErrorDrop,
			retry: RetryPolicy{}.withDefaults(), batchSize: 1024, maxBytes: 8 << 20}
		e := newEngine(bb, Options{Logger: slog.New(slog.DiscardHandler), Telemetry: tel})
		if err := e.addPipeline("bench", "in", []*route{r}); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- e.Run(ctx) }()
		for r.stats.read.Load() < events {
			time.Sleep(time.Millisecond)
		}
		elapsed := time.Since(t0)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if r.stats.sent.Load() == 0 {
			b.Fatal("nothing passed the filter")
		}
		return elapsed
	}
	var offTime, onTime time.Duration
	b.ReportAllocs()
	for b.Loop() {
		// Alternate the order so neither setting always runs on a warmer cache.
		if run%4 == 0 {
			offTime += pass(nil)
			onTime += pass(on)
		} else {
			onTime += pass(on)
			offTime += pass(nil)
		}
	}
	offRate := float64(b.N*events) / offTime.Seconds()
	onRate := float64(b.N*events) / onTime.Seconds()
	b.ReportMetric(offRate, "off-events/s")
	b.ReportMetric(onRate, "on-events/s")
	b.ReportMetric(onRate/offRate, "on/off")
}

// fillTracedTopic appends n order events in batches of 1,000, each batch in
// its own trace, like HTTP POSTs with a traceparent header.
func fillTracedTopic(b *testing.B, l *commitlog.Log, topic string, n int) {
	b.Helper()
	batch := make([]event.Event, 0, 1000)
	for i := range n {
		ev := orderEvent(i)
		tp := fmt.Sprintf("00-%032x-%016x-01", i/1000+1, i/1000+1)
		ev.Headers = []event.Header{{Key: event.HeaderTraceParent, Value: []byte(tp)}}
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := l.Append(context.Background(), topic, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
