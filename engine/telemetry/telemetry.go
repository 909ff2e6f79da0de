// Package telemetry builds bridge's OpenTelemetry tracer and meter providers,
// the exporters the config selects, the Prometheus /metrics handler, the
// metric instruments every component records into, and W3C trace-context
// propagation over event headers.
//
// Guarantees:
//   - Exporter "none" (the default) installs the OTel no-op tracer: a span
//     costs a context value and nothing is recorded or exported. The trace
//     context found in event headers is still carried hop to hop, so a trace
//     started upstream continues downstream even when bridge records no
//     spans of its own.
//   - Spans are per batch, never per event: a pipeline batch has one process
//     span whose parent is the first traced event of the batch and which
//     links the other traces it saw (at most MaxLinks). Metric counters are
//     added once per batch with attribute sets built once per route.
//   - Metrics are exported through the OTel SDK to a Prometheus registry of
//     this Telemetry only (not the global default registry), so two
//     instances in one process (tests) do not collide.
//
// Not guaranteed: spans are exported in batches (stdout, OTLP) and may be
// lost on a crash; a span's links are capped; trace context is read from the
// traceparent/tracestate headers only (no baggage, no B3).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of every tracer and meter bridge creates.
const ScopeName = "github.com/bridgeio/bridge"

// Trace exporters accepted by Config.Exporter.
const (
	ExporterNone   = "none"
	ExporterStdout = "stdout"
	ExporterOTLP   = "otlp"
)

// Config selects exporters. The zero value is "no traces, no metrics".
type Config struct {
	// Exporter is none (or ""), stdout or otlp.
	Exporter string
	// Endpoint is the OTLP collector (host:port or URL); empty uses the
	// exporter's default (localhost:4317 for gRPC, localhost:4318 for HTTP).
	Endpoint string
	// Protocol is grpc (default) or http, for otlp.
	Protocol string
	// SampleRatio is the share of new traces sampled, 0..1 (the config
	// defaults it to 1). Traces started upstream follow their parent's
	// sampled flag whatever the ratio.
	SampleRatio float64
	// Stdout is where the stdout exporter writes; default os.Stdout.
	Stdout io.Writer
	// Metrics turns on the meter provider and the Prometheus handler.
	Metrics bool
	// SpanExporter, when set, replaces the configured exporter (tests and
	// benchmarks: an in-memory or discarding exporter).
	SpanExporter sdktrace.SpanExporter
	// Synchronous exports each span as it ends instead of in batches. Only
	// for tests that read spans right after an operation.
	Synchronous bool
	// ServiceName is the resource's service.name. Default "bridge".
	ServiceName string
}

// Telemetry holds the providers and instruments. A nil *Telemetry is valid
// and means "off": every method is safe on nil and records nothing.
type Telemetry struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	tracer         trace.Tracer
	meter          metric.Meter
	handler        http.Handler
	tracing        bool
	shutdowns      []func(context.Context) error

	// Instruments are created once in New and shared by every component.
	Instruments *Instruments
}

// New builds the providers and exporters. It starts no goroutine of its own;
// the OTel batch span processor starts its exporter goroutine here, which
// Shutdown stops.
func New(cfg Config) (*Telemetry, error) {
	t := &Telemetry{}
	name := cfg.ServiceName
	if name == "" {
		name = "bridge"
	}
	res := resource.NewSchemaless(semconv.ServiceName(name))

	exp, err := spanExporter(cfg)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		ratio := min(max(cfg.SampleRatio, 0), 1)
		opts := []sdktrace.TracerProviderOption{
			sdktrace.WithResource(res),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		}
		if cfg.Synchronous {
			opts = append(opts, sdktrace.WithSyncer(exp))
		} else {
			opts = append(opts, sdktrace.WithBatcher(exp))
		}
		tp := sdktrace.NewTracerProvider(opts...)
		t.tracerProvider = tp
		t.tracing = true
		t.shutdowns = append(t.shutdowns, tp.Shutdown)
	} else {
		t.tracerProvider = tracenoop.NewTracerProvider()
	}
	t.tracer = t.tracerProvider.Tracer(ScopeName)

	if cfg.Metrics {
		reg := promclient.NewRegistry()
		pe, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(pe), sdkmetric.WithResource(res),
			sdkmetric.WithView(latencyView))
		t.meterProvider = mp
		t.shutdowns = append(t.shutdowns, mp.Shutdown)
		t.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	} else {
		t.meterProvider = metricnoop.NewMeterProvider()
	}
	t.meter = t.meterProvider.Meter(ScopeName)
	ins, err := newInstruments(t.meter)
	if err != nil {
		return nil, err
	}
	t.Instruments = ins
	return t, nil
}

func spanExporter(cfg Config) (sdktrace.SpanExporter, error) {
	if cfg.SpanExporter != nil {
		return cfg.SpanExporter, nil
	}
	switch cfg.Exporter {
	case "", ExporterNone:
		return nil, nil
	case ExporterStdout:
		w := cfg.Stdout
		if w == nil {
			w = os.Stdout
		}
		return stdouttrace.New(stdouttrace.WithWriter(w))
	case ExporterOTLP:
		// The OTLP constructors dial lazily: New does no network I/O.
		switch cfg.Protocol {
		case "", "grpc":
			var opts []otlptracegrpc.Option
			if cfg.Endpoint != "" {
				opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithInsecure())
			}
			return otlptracegrpc.New(context.Background(), opts...)
		case "http":
			var opts []otlptracehttp.Option
			if cfg.Endpoint != "" {
				opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint), otlptracehttp.WithInsecure())
			}
			return otlptracehttp.New(context.Background(), opts...)
		}
		return nil, fmt.Errorf("telemetry: otlp protocol %q: want grpc or http", cfg.Protocol)
	}
	return nil, fmt.Errorf("telemetry: trace exporter %q: want none, stdout or otlp", cfg.Exporter)
}

// Tracer returns the tracer (a no-op one when t is nil or tracing is off).
func (t *Telemetry) Tracer() trace.Tracer {
	if t == nil {
		return tracenoop.NewTracerProvider().Tracer(ScopeName)
	}
	return t.tracer
}

// TracerProvider returns the tracer provider, for components (sqsapi) that
// take one. It is a no-op provider when t is nil or tracing is off.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil {
		return tracenoop.NewTracerProvider()
	}
	return t.tracerProvider
}

// Meter returns the meter for callers registering their own observable
// instruments. It is a no-op meter when t is nil or metrics are off.
func (t *Telemetry) Meter() metric.Meter {
	if t == nil {
		return metricnoop.NewMeterProvider().Meter(ScopeName)
	}
	return t.meter
}

// FsyncObserver returns a function that records one fsync of the log into
// the histogram bridge.log.fsync.duration (seconds), or nil when metrics
// are off (so the log skips timing its fsyncs).
func (t *Telemetry) FsyncObserver() (func(time.Duration), error) {
	if t == nil || t.handler == nil {
		return nil, nil
	}
	h, err := t.meter.Float64Histogram("bridge.log.fsync.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of one fsync of the embedded log (a group commit or an interval flush)."))
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	return func(d time.Duration) { h.Record(ctx, d.Seconds()) }, nil
}

// Tracing reports whether spans are recorded and exported.
func (t *Telemetry) Tracing() bool { return t != nil && t.tracing }

// Handler serves the Prometheus text exposition; nil when metrics are off.
func (t *Telemetry) Handler() http.Handler {
	if t == nil {
		return nil
	}
	return t.handler
}

// Shutdown flushes pending spans and stops the providers, bounded by ctx.
// It is idempotent in effect (the SDK providers ignore a second call).
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	for _, f := range t.shutdowns {
		if err := f(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
