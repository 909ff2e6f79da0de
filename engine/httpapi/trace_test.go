package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/event"
)

const callerTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// TestIngestCarriesTraceContext: the traceparent request header reaches the
// stored events that have none (as the ingest span's context when tracing is
// on, as the caller's context when off); an event's own traceparent wins;
// /metrics counts the ingest.
func TestIngestCarriesTraceContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tracing bool
	}{{"tracing off", false}, {"tracing on", true}} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			cfg := telemetry.Config{Metrics: true, SampleRatio: 1}
			if tc.tracing {
				cfg.SpanExporter, cfg.Synchronous = exp, true
			}
			tel, err := telemetry.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			l := openLog(t, commitlog.FsyncNever)
			srv := httptest.NewServer(New(Options{Backbone: engine.Embedded(l), Telemetry: tel, Metrics: tel.Handler(),
				Logger: slog.New(slog.DiscardHandler)}))
			defer srv.Close()
			own := "00-11111111111111111111111111111111-2222222222222222-01"
			req, _ := http.NewRequest("POST", srv.URL+"/v1/topics/audit/events",
				strings.NewReader(`[{"value":"a"},{"value":"b","headers":{"traceparent":"`+own+`"}}]`))
			req.Header.Set("traceparent", callerTP)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			evs, err := l.Read("audit", 0, 0, 10, 1<<20)
			if err != nil || len(evs) != 2 {
				t.Fatalf("read %d events: %v", len(evs), err)
			}
			first, ok := telemetry.FromHeaders(evs[0].Headers)
			if !ok || first.TraceID().String() != callerTP[3:35] {
				t.Fatalf("event 0 traceparent %v, want the caller's trace", evs[0].Headers)
			}
			wantParent := callerTP[36:52]
			if tc.tracing {
				spans := exp.GetSpans()
				if len(spans) != 1 || spans[0].Name != "ingest audit" || spans[0].Parent.SpanID().String() != wantParent {
					t.Fatalf("spans %+v: want one ingest span, child of the caller", spans)
				}
				wantParent = spans[0].SpanContext.SpanID().String()
			}
			if first.SpanID().String() != wantParent {
				t.Fatalf("event 0 parent span %s, want %s", first.SpanID(), wantParent)
			}
			if tp, _ := evs[1].Header(event.HeaderTraceParent); string(tp) != own {
				t.Fatalf("event 1 traceparent %q, want its own %q", tp, own)
			}
			code, body := call(t, "GET", srv.URL+"/metrics", "", "")
			want := `messaging_client_consumed_messages_total{bridge_source="http",messaging_destination_name="audit",messaging_system="bridge"} 2`
			if code != 200 || !strings.Contains(body, want) {
				t.Fatalf("/metrics %d lacks %s:\n%s", code, want, body)
			}
		})
	}
}
