package telemetry

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
	"go.opentelemetry.io/otel/trace"
)

const validTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func TestParseTraceParent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		ok       bool
		sampled  bool
	}{
		{"valid sampled", validTP, true, true},
		{"valid not sampled", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", true, false},
		{"future version with suffix", "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what", true, true},
		{"version 00 with suffix", validTP + "-x", false, false},
		{"version ff", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false, false},
		{"uppercase hex", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", false, false},
		{"zero trace id", "00-00000000000000000000000000000000-b7ad6b7169203331-01", false, false},
		{"zero span id", "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false, false},
		{"short", validTP[:54], false, false},
		{"bad separator", strings.Replace(validTP, "-", "_", 1), false, false},
		{"empty", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseTraceParent([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrTraceParent) {
					t.Fatalf("error %v does not wrap ErrTraceParent", err)
				}
				return
			}
			if sc.IsSampled() != tc.sampled || !sc.IsRemote() || !sc.IsValid() {
				t.Fatalf("context %+v: sampled %v remote %v", sc, sc.IsSampled(), sc.IsRemote())
			}
			if got := string(AppendTraceParent(nil, sc)); got[3:52] != tc.in[3:52] {
				t.Fatalf("re-encoded %q, ids differ from %q", got, tc.in)
			}
		})
	}
}

func FuzzParseTraceParent(f *testing.F) {
	f.Add([]byte(validTP))
	f.Add([]byte("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x"))
	f.Add([]byte("00-00000000000000000000000000000000-b7ad6b7169203331-01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		sc, err := ParseTraceParent(in)
		if err != nil {
			if !errors.Is(err, ErrTraceParent) {
				t.Fatalf("error %v does not wrap ErrTraceParent", err)
			}
			return
		}
		if !sc.IsValid() {
			t.Fatal("accepted an invalid context")
		}
		out := AppendTraceParent(nil, sc)
		// The ids round-trip byte for byte; flags keep only the sampled bit.
		if !bytes.Equal(out[2:52], in[2:52]) {
			t.Fatalf("re-encoded %q from %q", out, in)
		}
		again, err := ParseTraceParent(out)
		if err != nil || again.TraceID() != sc.TraceID() || again.SpanID() != sc.SpanID() || again.TraceFlags() != sc.TraceFlags() {
			t.Fatalf("re-parse of %q: %v %v", out, again, err)
		}
	})
}

func TestSetTraceParent(t *testing.T) {
	t.Parallel()
	sc, _ := ParseTraceParent([]byte(validTP))
	for _, tc := range []struct {
		name string
		in   []event.Header
		want int // headers after
	}{
		{"appends", []event.Header{{Key: "a", Value: []byte("1")}}, 2},
		{"replaces in place", []event.Header{{Key: event.HeaderTraceParent, Value: []byte("old")}, {Key: "a"}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := SetTraceParent(append([]event.Header(nil), tc.in...), sc)
			if len(hs) != tc.want {
				t.Fatalf("%d headers, want %d", len(hs), tc.want)
			}
			got, ok := FromHeaders(hs)
			if !ok || got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
				t.Fatalf("FromHeaders = %v %v", got, ok)
			}
		})
	}
}

func TestBatchParent(t *testing.T) {
	t.Parallel()
	ev := func(tp string) event.Event {
		if tp == "" {
			return event.Event{}
		}
		return event.Event{Headers: []event.Header{{Key: event.HeaderTraceParent, Value: []byte(tp)}}}
	}
	other := "00-11111111111111111111111111111111-2222222222222222-01"
	third := "00-33333333333333333333333333333333-2222222222222222-01"
	evs := []event.Event{ev(""), ev("junk"), ev(validTP), ev(validTP), ev(other), ev(other), ev(third), ev(validTP)}
	ctx, parent, links := BatchParent(context.Background(), evs, nil)
	if parent.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("parent %v, want the first traced event", parent)
	}
	if got := trace.SpanContextFromContext(ctx); !got.Equal(parent) {
		t.Fatalf("context carries %v", got)
	}
	if len(links) != 2 {
		t.Fatalf("%d links, want one per other trace (2)", len(links))
	}
	many := make([]event.Event, 0, 2*MaxLinks)
	for i := range 2 * MaxLinks {
		tp := []byte(other)
		tp[3], tp[4] = "0123456789abcdef"[i%16], "0123456789abcdef"[i/16]
		many = append(many, event.Event{Headers: []event.Header{{Key: event.HeaderTraceParent, Value: tp}}})
	}
	if _, _, links := BatchParent(context.Background(), many, nil); len(links) != MaxLinks {
		t.Fatalf("%d links, want the cap %d", len(links), MaxLinks)
	}
}

func TestNewExporters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     Config
		tracing bool
		wantErr bool
	}{
		{"none", Config{}, false, false},
		{"none explicit", Config{Exporter: ExporterNone}, false, false},
		{"stdout", Config{Exporter: ExporterStdout, Stdout: &bytes.Buffer{}, SampleRatio: 1}, true, false},
		{"otlp grpc", Config{Exporter: ExporterOTLP, Endpoint: "127.0.0.1:1"}, true, false},
		{"otlp http", Config{Exporter: ExporterOTLP, Protocol: "http", Endpoint: "127.0.0.1:1"}, true, false},
		{"otlp bad protocol", Config{Exporter: ExporterOTLP, Protocol: "udp"}, false, true},
		{"unknown exporter", Config{Exporter: "jaeger"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if tel.Tracing() != tc.tracing {
				t.Fatalf("Tracing() = %v, want %v", tel.Tracing(), tc.tracing)
			}
			if tel.Handler() != nil {
				t.Fatal("metrics off but a handler exists")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 0)
			defer cancel()
			_ = tel.Shutdown(ctx) // an unreachable collector fails the flush; nothing to check
		})
	}
}

// TestStdoutExporterWritesSpans: the stdout exporter writes a span, with
// the trace id of its parent, once the provider shuts down.
func TestStdoutExporterWritesSpans(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	tel, err := New(Config{Exporter: ExporterStdout, Stdout: &buf, SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	parent, _ := ParseTraceParent([]byte(validTP))
	_, span := tel.Tracer().Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "ingest x")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "0af7651916cd43dd8448eb211c80319c") || !strings.Contains(buf.String(), "ingest x") {
		t.Fatalf("stdout output lacks the span: %s", buf.String())
	}
}

// TestNilTelemetryIsOff: every method is safe on nil.
func TestNilTelemetryIsOff(t *testing.T) {
	t.Parallel()
	var tel *Telemetry
	if tel.Tracing() || tel.Handler() != nil || tel.Route("p", "r", "t", "x") != nil {
		t.Fatal("nil telemetry is not off")
	}
	tel.Ingest(context.Background(), "http", "t", 1, 1, false)
	var rm *RouteMetrics
	rm.Read(context.Background(), 1, 0)
	rm.Send(context.Background(), 0, false, 1, 1)
	rm.Retry(context.Background())
	if _, span := tel.Tracer().Start(context.Background(), "x"); span.IsRecording() {
		t.Fatal("nil telemetry records spans")
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFsyncObserver: fsync durations land in bridge_log_fsync_duration_seconds
// on /metrics; with metrics off there is no observer (the log skips timing).
func TestFsyncObserver(t *testing.T) {
	t.Parallel()
	off, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := off.FsyncObserver(); f != nil || err != nil {
		t.Fatalf("metrics off: observer %v, err %v", f != nil, err)
	}
	tel, err := New(Config{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	observe, err := tel.FsyncObserver()
	if err != nil || observe == nil {
		t.Fatalf("observer %v, err %v", observe != nil, err)
	}
	observe(3 * time.Millisecond)
	observe(7 * time.Millisecond)
	rec := httptest.NewRecorder()
	tel.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{"bridge_log_fsync_duration_seconds_count", "bridge_log_fsync_duration_seconds_sum"} {
		line := ""
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, want) {
				line = l
			}
		}
		if line == "" {
			t.Fatalf("%s missing from /metrics:\n%s", want, body)
		}
		if strings.HasSuffix(want, "_count") && !strings.HasSuffix(line, " 2") {
			t.Errorf("%s, want count 2", line)
		}
		if strings.HasSuffix(want, "_sum") && !strings.HasSuffix(line, " 0.01") {
			t.Errorf("%s, want sum 0.01", line)
		}
	}
}
