package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/pipelines"
	"go.opentelemetry.io/otel/trace"
)

// newTelemetry builds the tracer and meter providers from the telemetry:
// section. The returned stop flushes spans (bounded) and is safe to defer.
func newTelemetry(cfg *pipelines.Config, log *slog.Logger) (*telemetry.Telemetry, func(), error) {
	tr := cfg.Telemetry.Traces
	tel, err := telemetry.New(telemetry.Config{Exporter: tr.Exporter, Endpoint: tr.Endpoint, Protocol: tr.Protocol,
		SampleRatio: tr.SampleRatio, Metrics: cfg.Telemetry.Metrics.Prometheus})
	if err != nil {
		return nil, func() {}, err
	}
	log.Info("telemetry", "traces", tr.Exporter, "endpoint", tr.Endpoint, "sample_ratio", tr.SampleRatio,
		"prometheus", cfg.Telemetry.Metrics.Prometheus)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			log.Warn("telemetry shutdown", "err", err)
		}
	}
	return tel, stop, nil
}

// observeEngine registers the scrape-time gauges (lag, queue depths, log
// size); the returned function unregisters them.
// A failure only loses the gauges, so it is logged, not fatal.
func observeEngine(tel *telemetry.Telemetry, eng *engine.Engine, broker *engine.Broker, backbone engine.Backbone, log *slog.Logger) func() {
	unregister, err := tel.Observe(engine.Observers(eng, broker, backbone))
	if err != nil {
		log.Error("telemetry gauges not registered", "err", err)
		return func() {}
	}
	return func() { _ = unregister() }
}

// spanProvider is the tracer provider for components that skip all trace
// work when given nil (sqsapi): nil unless spans are exported.
func spanProvider(tel *telemetry.Telemetry) trace.TracerProvider {
	if !tel.Tracing() {
		return nil
	}
	return tel.TracerProvider()
}
