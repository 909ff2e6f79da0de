package engine

import (
	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/engine/telemetry"
)

// Observers returns the scrape-time readers of the engine's gauges and
// cumulative counters: lag per (pipeline, route, partition) and per-source
// event and error totals (e), queue depths and exchange unroutable counts
// (b, may be nil), and the partition sizes of the embedded log (only when
// backbone is the embedded commitlog; other backbones report their own).
func Observers(e *Engine, b *Broker, backbone Backbone) telemetry.Observers {
	var o telemetry.Observers
	var l *commitlog.Log
	if eb, ok := backbone.(embedded); ok {
		l = eb.l
	}
	if e != nil {
		o.Lag = func() []telemetry.PartitionLag {
			var out []telemetry.PartitionLag
			for _, p := range e.Pipelines() {
				for _, r := range p.Routes {
					for _, ps := range r.Partitions {
						out = append(out, telemetry.PartitionLag{Pipeline: p.Name, Route: r.Name, Partition: ps.Partition, Lag: ps.Lag})
					}
				}
			}
			return out
		}
		o.Sources = func() []telemetry.SourceCount {
			srcs := e.Sources()
			out := make([]telemetry.SourceCount, len(srcs))
			for i, s := range srcs {
				out[i] = telemetry.SourceCount{Source: s.Name, Topic: s.Topic, Events: s.Events, Errors: s.Errors}
			}
			return out
		}
	}
	if b != nil {
		o.Queues = func() []telemetry.QueueDepth {
			depths := b.QueueDepths()
			out := make([]telemetry.QueueDepth, len(depths))
			for i, d := range depths {
				out[i] = telemetry.QueueDepth{Queue: d.Name, Visible: d.Visible, InFlight: d.InFlight, Delayed: d.Delayed,
					ExpiredDropped: d.ExpiredDropped, ExpiredDeadLettered: d.ExpiredDeadLettered}
			}
			return out
		}
		o.Exchanges = func() []telemetry.ExchangeCount {
			xs := b.exchangeList()
			out := make([]telemetry.ExchangeCount, 0, len(xs))
			for name, x := range xs {
				out = append(out, telemetry.ExchangeCount{Exchange: name, Unroutable: x.unroutable.Load()})
			}
			return out
		}
	}
	if l != nil {
		o.Log = func() []telemetry.LogPartition {
			var out []telemetry.LogPartition
			for _, ti := range l.Topics() {
				for _, p := range ti.Partitions {
					out = append(out, telemetry.LogPartition{Topic: ti.Name, Partition: p.Partition, Bytes: p.Bytes, Segments: p.Segments})
				}
			}
			return out
		}
	}
	return o
}
