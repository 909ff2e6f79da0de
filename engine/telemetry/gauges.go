package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// PartitionLag is one route cursor's lag: end offset minus its position.
type PartitionLag struct {
	Pipeline, Route string
	Partition       int32
	Lag             int64
}

// QueueDepth is one embedded queue's message counts by state.
type QueueDepth struct {
	Queue                      string
	Visible, InFlight, Delayed int
	// ExpiredDropped and ExpiredDeadLettered count messages whose TTL
	// ended, dropped (no dead-letter queue) or moved to the dead-letter
	// queue, since the process started.
	ExpiredDropped, ExpiredDeadLettered int64
}

// LogPartition is one backbone partition's size on disk.
type LogPartition struct {
	Topic     string
	Partition int32
	Bytes     int64
	Segments  int
}

// SourceCount is one source's running totals.
type SourceCount struct {
	Source, Topic  string
	Events, Errors int64
}

// ExchangeCount is one embedded exchange's unroutable total.
type ExchangeCount struct {
	Exchange   string
	Unroutable int64
}

// Observers are read at each scrape. Any of them may be nil. They must be
// safe for concurrent use and cheap: they run on the scraping goroutine.
type Observers struct {
	Lag    func() []PartitionLag
	Queues func() []QueueDepth
	Log    func() []LogPartition
	// Sources are cumulative counts kept by the engine; they are exported
	// as observable counters, so a source's delivery path pays nothing.
	Sources func() []SourceCount
	// Exchanges are the embedded exchanges' unroutable totals.
	Exchanges func() []ExchangeCount
}

// Observe registers observable gauges over o: bridge.pipeline.lag
// ({message}), bridge.queue.messages ({message}, by bridge.state visible,
// in_flight, delayed), bridge.log.size (By) and bridge.log.segments
// ({segment}), and the counters bridge.source.events and bridge.source.errors
// ({message}, {error}), bridge.exchange.unroutable ({message}), and
// bridge.queue.expired ({message}, by bridge.outcome dropped or
// dead_lettered: messages whose TTL ended undelivered). The
// returned function unregisters them. On a nil t it does
// nothing.
func (t *Telemetry) Observe(o Observers) (unregister func() error, err error) {
	if t == nil {
		return func() error { return nil }, nil
	}
	m := t.meter
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	lag := gauge("bridge.pipeline.lag", "{message}", "Events a route has still to handle, per partition.")
	depth := gauge("bridge.queue.messages", "{message}", "Embedded queue messages by state.")
	size := gauge("bridge.log.size", "By", "Backbone partition size on disk.")
	segments := gauge("bridge.log.segments", "{segment}", "Backbone partition segment files.")
	srcEvents, err := m.Int64ObservableCounter("bridge.source.events", metric.WithUnit("{message}"),
		metric.WithDescription("Events a configured source delivered to the backbone."))
	errs = append(errs, err)
	srcErrors, err := m.Int64ObservableCounter("bridge.source.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Failed deliveries and restarts of a configured source."))
	errs = append(errs, err)
	unroutable, err := m.Int64ObservableCounter("bridge.exchange.unroutable", metric.WithUnit("{message}"),
		metric.WithDescription("Events no binding of an embedded exchange matched (dropped or dead-lettered)."))
	errs = append(errs, err)
	expired, err := m.Int64ObservableCounter("bridge.queue.expired", metric.WithUnit("{message}"),
		metric.WithDescription("Embedded queue messages whose TTL ended undelivered, dropped or dead-lettered."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sys := AttrSystem.String(System)
	reg, err := m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		if o.Lag != nil {
			for _, l := range o.Lag() {
				obs.ObserveInt64(lag, l.Lag, metric.WithAttributes(sys, AttrPipeline.String(l.Pipeline),
					AttrRoute.String(l.Route), AttrPartition.Int(int(l.Partition))))
			}
		}
		if o.Queues != nil {
			for _, q := range o.Queues() {
				name := AttrQueue.String(q.Queue)
				obs.ObserveInt64(depth, int64(q.Visible), metric.WithAttributes(sys, name, AttrState.String("visible")))
				obs.ObserveInt64(depth, int64(q.InFlight), metric.WithAttributes(sys, name, AttrState.String("in_flight")))
				obs.ObserveInt64(depth, int64(q.Delayed), metric.WithAttributes(sys, name, AttrState.String("delayed")))
				obs.ObserveInt64(expired, q.ExpiredDropped, metric.WithAttributes(sys, name, AttrOutcome.String("dropped")))
				obs.ObserveInt64(expired, q.ExpiredDeadLettered, metric.WithAttributes(sys, name, AttrOutcome.String("dead_lettered")))
			}
		}
		if o.Log != nil {
			for _, p := range o.Log() {
				attrs := metric.WithAttributes(sys, AttrTopic.String(p.Topic), AttrPartition.Int(int(p.Partition)))
				obs.ObserveInt64(size, p.Bytes, attrs)
				obs.ObserveInt64(segments, int64(p.Segments), attrs)
			}
		}
		if o.Sources != nil {
			for _, src := range o.Sources() {
				attrs := metric.WithAttributes(sys, AttrSource.String(src.Source), AttrDestination.String(src.Topic))
				obs.ObserveInt64(srcEvents, src.Events, attrs)
				obs.ObserveInt64(srcErrors, src.Errors, attrs)
			}
		}
		if o.Exchanges != nil {
			for _, x := range o.Exchanges() {
				obs.ObserveInt64(unroutable, x.Unroutable, metric.WithAttributes(sys, AttrDestination.String(x.Exchange)))
			}
		}
		return nil
	}, lag, depth, size, segments, srcEvents, srcErrors, unroutable, expired)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
