package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Attribute keys shared by spans and metrics. The messaging.* keys are the
// OTel messaging semantic conventions; the bridge.* keys are our own.
const (
	AttrSystem      = attribute.Key("messaging.system")
	AttrDestination = attribute.Key("messaging.destination.name")
	AttrOperation   = attribute.Key("messaging.operation.name")
	AttrBatchSize   = attribute.Key("messaging.batch.message_count")
	AttrErrorType   = attribute.Key("error.type")
	AttrPipeline    = attribute.Key("bridge.pipeline")
	AttrRoute       = attribute.Key("bridge.route")
	AttrSource      = attribute.Key("bridge.source")
	AttrPartition   = attribute.Key("bridge.partition")
	AttrMatched     = attribute.Key("bridge.matched")
	AttrQueue       = attribute.Key("bridge.queue")
	AttrState       = attribute.Key("bridge.state")
	AttrOutcome     = attribute.Key("bridge.outcome")
	AttrTopic       = attribute.Key("bridge.topic")
)

// System is the messaging.system value of bridge's own spans and metrics.
const System = "bridge"

// Error classes recorded as error.type (SPEC §5.5 failure classes, plus rule
// failures which are permanent but counted apart).
const (
	ClassRetryable = "retryable"
	ClassPermanent = "permanent"
	ClassRule      = "rule"
	ClassAppend    = "append"
)

// Instruments are the synchronous instruments. Units follow OTel: "s" for
// durations, "By" for bytes, "{message}" for counts of events.
type Instruments struct {
	// Consumed counts events taken in: by a source or HTTP ingest
	// (bridge.source) and by a pipeline route reading the backbone.
	Consumed metric.Int64Counter // messaging.client.consumed.messages
	// Sent counts events a sink acknowledged.
	Sent metric.Int64Counter // messaging.client.sent.messages
	// InBytes and OutBytes count value bytes in and out.
	InBytes  metric.Int64Counter // bridge.ingest.bytes
	OutBytes metric.Int64Counter // bridge.sink.bytes
	// Errors counts failures by error.type.
	Errors metric.Int64Counter // bridge.errors
	// Retries counts retry rounds of a sink send.
	Retries metric.Int64Counter // bridge.retries
	// DeadLetters counts events handed to a dead-letter target.
	DeadLetters metric.Int64Counter // bridge.dead_letters
	// Process is the rule evaluation time of one fetched batch.
	Process metric.Float64Histogram // messaging.process.duration
	// Operation is the latency of one sink send call.
	Operation metric.Float64Histogram // messaging.client.operation.duration
}

// latencyView gives the duration histograms boundaries in seconds from 50µs
// to 10s: the SDK default (0..10000) is meant for milliseconds and would put
// every sub-second send in the first bucket.
var latencyView = sdkmetric.NewView(
	sdkmetric.Instrument{Unit: "s"},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
		Boundaries: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}},
)

func newInstruments(m metric.Meter) (*Instruments, error) {
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc))
		errs = append(errs, err)
		return h
	}
	ins := &Instruments{
		Consumed:    counter("messaging.client.consumed.messages", "{message}", "Events taken in by a source, HTTP ingest or a pipeline route."),
		Sent:        counter("messaging.client.sent.messages", "{message}", "Events a sink acknowledged."),
		InBytes:     counter("bridge.ingest.bytes", "By", "Value bytes taken in by sources and HTTP ingest."),
		OutBytes:    counter("bridge.sink.bytes", "By", "Value bytes acknowledged by sinks."),
		Errors:      counter("bridge.errors", "{error}", "Failures by error.type: rule, retryable, permanent, append."),
		Retries:     counter("bridge.retries", "{retry}", "Retry rounds of sink sends."),
		DeadLetters: counter("bridge.dead_letters", "{message}", "Events written to a dead-letter target."),
		Process:     hist("messaging.process.duration", "Rule evaluation time of one fetched batch."),
		Operation:   hist("messaging.client.operation.duration", "Latency of one sink send."),
	}
	return ins, errors.Join(errs...)
}

// RouteMetrics are a route's instruments with their attribute sets built
// once, so that recording costs no allocation per batch.
type RouteMetrics struct {
	ins        *Instruments
	consumed   metric.AddOption
	sent       metric.AddOption
	process    metric.RecordOption
	sendOK     metric.RecordOption
	sendFailed metric.RecordOption
	retries    metric.AddOption
	deadLetter metric.AddOption
	classes    map[string]metric.AddOption
}

// Route returns the metrics of one pipeline route reading topic and sending
// to target. It returns nil when t is nil; every RouteMetrics method is safe
// on nil.
func (t *Telemetry) Route(pipeline, route, topic, target string) *RouteMetrics {
	if t == nil {
		return nil
	}
	base := []attribute.KeyValue{AttrSystem.String(System), AttrPipeline.String(pipeline), AttrRoute.String(route)}
	with := func(extra ...attribute.KeyValue) attribute.Set {
		return attribute.NewSet(append(append([]attribute.KeyValue(nil), base...), extra...)...)
	}
	in := with(AttrDestination.String(topic))
	out := with(AttrDestination.String(target))
	rm := &RouteMetrics{ins: t.Instruments,
		consumed:   metric.WithAttributeSet(in),
		sent:       metric.WithAttributeSet(out),
		process:    metric.WithAttributeSet(in),
		sendOK:     metric.WithAttributeSet(with(AttrDestination.String(target), AttrOperation.String("send"))),
		sendFailed: metric.WithAttributeSet(with(AttrDestination.String(target), AttrOperation.String("send"), AttrErrorType.String("send_failed"))),
		retries:    metric.WithAttributeSet(out),
		deadLetter: metric.WithAttributeSet(out),
		classes:    map[string]metric.AddOption{},
	}
	for _, c := range []string{ClassRetryable, ClassPermanent, ClassRule} {
		rm.classes[c] = metric.WithAttributeSet(with(AttrErrorType.String(c)))
	}
	return rm
}

// Read records n events read from the backbone and the batch's rule time.
func (m *RouteMetrics) Read(ctx context.Context, n int, seconds float64) {
	if m == nil {
		return
	}
	m.ins.Consumed.Add(ctx, int64(n), m.consumed)
	m.ins.Process.Record(ctx, seconds, m.process)
}

// Send records one sink call: its latency, and the events and value bytes
// it acknowledged.
func (m *RouteMetrics) Send(ctx context.Context, seconds float64, failed bool, acked int, bytes int64) {
	if m == nil {
		return
	}
	if failed {
		m.ins.Operation.Record(ctx, seconds, m.sendFailed)
	} else {
		m.ins.Operation.Record(ctx, seconds, m.sendOK)
	}
	if acked > 0 {
		m.ins.Sent.Add(ctx, int64(acked), m.sent)
		m.ins.OutBytes.Add(ctx, bytes, m.sent)
	}
}

// Error counts n failures of a class (ClassRetryable, ClassPermanent, ClassRule).
func (m *RouteMetrics) Error(ctx context.Context, class string, n int) {
	if m == nil || n == 0 {
		return
	}
	if opt, ok := m.classes[class]; ok {
		m.ins.Errors.Add(ctx, int64(n), opt)
	}
}

// Retry counts one retry round.
func (m *RouteMetrics) Retry(ctx context.Context) {
	if m == nil {
		return
	}
	m.ins.Retries.Add(ctx, 1, m.retries)
}

// DeadLetter counts one dead-lettered event.
func (m *RouteMetrics) DeadLetter(ctx context.Context) {
	if m == nil {
		return
	}
	m.ins.DeadLetters.Add(ctx, 1, m.deadLetter)
}

// Ingest records events taken in by a source (or "http") into topic.
// Ingest is for call sites that are not per-route; it builds its attribute
// set per call, which is fine per request or per source batch.
func (t *Telemetry) Ingest(ctx context.Context, source, topic string, events int, bytes int64, failed bool) {
	if t == nil {
		return
	}
	set := metric.WithAttributeSet(attribute.NewSet(AttrSystem.String(System), AttrSource.String(source), AttrDestination.String(topic)))
	if failed {
		t.Instruments.Errors.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
			AttrSystem.String(System), AttrSource.String(source), AttrErrorType.String(ClassAppend))))
		return
	}
	t.Instruments.Consumed.Add(ctx, int64(events), set)
	t.Instruments.InBytes.Add(ctx, bytes, set)
}
