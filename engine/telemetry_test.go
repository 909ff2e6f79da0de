package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/event"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	tp1 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	tp2 = "00-11111111111111111111111111111111-2222222222222222-01"
)

func tracedEvent(value, tp string) event.Event {
	ev := event.Event{Value: []byte(value), Source: "test"}
	if tp != "" {
		ev.Headers = []event.Header{{Key: event.HeaderTraceParent, Value: []byte(tp)}}
	}
	return ev
}

func traceOf(t *testing.T, ev event.Event) trace.SpanContext {
	t.Helper()
	sc, ok := telemetry.FromHeaders(ev.Headers)
	if !ok {
		t.Fatalf("event %s has no valid traceparent: %v", ev.Value, ev.Headers)
	}
	return sc
}

// TestTracePropagatesThroughPipeline: with tracing on, an event's next hop
// is a child of the batch's process span in the event's own trace; an event
// of another trace keeps its upstream traceparent; an untraced event joins
// the batch's trace; dead letters name their trace. With tracing off the
// upstream traceparent travels unchanged.
func TestTracePropagatesThroughPipeline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tracing bool
	}{{"tracing on", true}, {"tracing off, metrics on", false}} {
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
			b := newMemBackbone(map[string]int{"in": 1})
			batch := []event.Event{tracedEvent("a", tp1), tracedEvent("b", tp1), tracedEvent("c", tp2),
				tracedEvent("d", ""), tracedEvent("dead", tp1)}
			if _, err := b.Append(context.Background(), "in", batch); err != nil {
				t.Fatal(err)
			}
			sink := &recSink{fail: func(ev *event.Event, _ int) error {
				if string(ev.Value) == "dead" {
					return event.Permanent(errors.New("rejected"))
				}
				return nil
			}}
			dl := &recSink{}
			r := testRoute("r", sink)
			r.deadLetter = dl
			e := newEngine(b, Options{CommitInterval: 5 * time.Millisecond, Telemetry: tel})
			if err := e.addPipeline("p", "in", []*route{r}); err != nil {
				t.Fatal(err)
			}
			run := runEngine(t, e)
			waitFor(t, 5*time.Second, func() error {
				if len(sink.events()) != 4 || len(dl.events()) != 1 {
					return fmt.Errorf("sent %d, dead-lettered %d", len(sink.events()), len(dl.events()))
				}
				return nil
			})
			_ = run.stop(t)
			got := map[string]event.Event{}
			for _, ev := range sink.events() {
				got[string(ev.Value)] = ev
			}
			t1 := traceOf(t, batch[0])
			dead := dl.events()[0]
			if id, _ := dead.Header(telemetry.HeaderTraceID); string(id) != t1.TraceID().String() {
				t.Fatalf("dead letter bridge-trace-id = %q, want %s", id, t1.TraceID())
			}
			if !tc.tracing {
				for _, v := range []string{"a", "b", "c"} {
					in, _ := batch[strings.Index("abc", v)].Header(event.HeaderTraceParent)
					out := got[v]
					if tp, _ := out.Header(event.HeaderTraceParent); string(tp) != string(in) {
						t.Fatalf("event %s: traceparent %q, want upstream %q", v, tp, in)
					}
				}
				d := got["d"]
				if _, ok := d.Header(event.HeaderTraceParent); ok {
					t.Fatal("tracing off: an untraced event got a traceparent")
				}
				if len(exp.GetSpans()) != 0 {
					t.Fatalf("tracing off recorded %d spans", len(exp.GetSpans()))
				}
				return
			}
			spans := exp.GetSpans()
			var process, send *tracetest.SpanStub
			for i := range spans {
				switch spans[i].Name {
				case "process p/r":
					process = &spans[i]
				case "send rec":
					send = &spans[i]
				}
			}
			if process == nil || send == nil {
				t.Fatalf("spans %v: want process and send", spanNames(spans))
			}
			if process.Parent.SpanID() != t1.SpanID() || process.SpanContext.TraceID() != t1.TraceID() {
				t.Fatalf("process span parent %v, want upstream %v", process.Parent, t1)
			}
			if send.Parent.SpanID() != process.SpanContext.SpanID() {
				t.Fatal("send span is not a child of the process span")
			}
			if len(process.Links) != 1 || process.Links[0].SpanContext.TraceID() != traceOf(t, batch[2]).TraceID() {
				t.Fatalf("process span links %v, want the other trace", process.Links)
			}
			if !hasAttr(process, "bridge.matched", "5") {
				t.Fatalf("process span attributes %v lack bridge.matched=5", process.Attributes)
			}
			for _, v := range []string{"a", "b", "d"} {
				sc := traceOf(t, got[v])
				if sc.TraceID() != t1.TraceID() || sc.SpanID() != process.SpanContext.SpanID() {
					t.Fatalf("event %s leaves with %v, want child of process span %v", v, sc, process.SpanContext)
				}
			}
			if sc := traceOf(t, got["c"]); sc.SpanID() != traceOf(t, batch[2]).SpanID() {
				t.Fatalf("event of another trace left with %v, want its upstream context", sc)
			}
			if sc := traceOf(t, dead); sc.SpanID() != process.SpanContext.SpanID() {
				t.Fatalf("dead letter traceparent %v, want the process span", sc)
			}
		})
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func hasAttr(s *tracetest.SpanStub, key, value string) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == key && a.Value.String() == value {
			return true
		}
	}
	return false
}

// TestMetricsMove scrapes the Prometheus handler after a pipeline ran with
// retries and dead letters, and checks each instrument's value.
func TestMetricsMove(t *testing.T) {
	tel, err := telemetry.New(telemetry.Config{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	b := newMemBackbone(map[string]int{"in": 2})
	produce(t, b, "in", 40, func(i int) string { return strconv.Itoa(i) })
	sink := &recSink{fail: func(ev *event.Event, call int) error {
		switch {
		case string(ev.Value) == "7":
			return event.Permanent(errors.New("rejected"))
		case call == 1:
			return errors.New("try again")
		}
		return nil
	}}
	dl := &recSink{}
	r := testRoute("r", sink)
	r.deadLetter = dl
	e := newEngine(b, Options{CommitInterval: 5 * time.Millisecond, Telemetry: tel})
	if err := e.addPipeline("p", "in", []*route{r}); err != nil {
		t.Fatal(err)
	}
	unregister, err := tel.Observe(Observers(e, nil, b))
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if len(sink.events()) != 39 || len(dl.events()) != 1 {
			return fmt.Errorf("sent %d, dead-lettered %d", len(sink.events()), len(dl.events()))
		}
		return nil
	})
	waitFor(t, 5*time.Second, func() error {
		if st := e.Pipelines()[0].Routes[0]; st.Lag != 0 {
			return fmt.Errorf("lag %d", st.Lag)
		}
		return nil
	})
	_ = run.stop(t)
	text := scrape(t, tel)
	for _, tc := range []struct {
		name, series string
		want         float64
	}{
		{"consumed", `messaging_client_consumed_messages_total{bridge_pipeline="p",bridge_route="r",messaging_destination_name="in",messaging_system="bridge"}`, 40},
		{"sent", `messaging_client_sent_messages_total{bridge_pipeline="p",bridge_route="r",messaging_destination_name="rec",messaging_system="bridge"}`, 39},
		{"dead letters", `bridge_dead_letters_total{bridge_pipeline="p",bridge_route="r",messaging_destination_name="rec",messaging_system="bridge"}`, 1},
		{"permanent errors", `bridge_errors_total{bridge_pipeline="p",bridge_route="r",error_type="permanent",messaging_system="bridge"}`, 1},
		{"lag", `bridge_pipeline_lag{bridge_partition="0",bridge_pipeline="p",bridge_route="r",messaging_system="bridge"}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := metricValue(text, tc.series); !ok || got != tc.want {
				t.Fatalf("%s = %v (found %v), want %v\n%s", tc.series, got, ok, tc.want, grepMetrics(text, "bridge|messaging"))
			}
		})
	}
	for _, name := range []string{"bridge_retries_total", "bridge_sink_bytes_total", "bridge_errors_total{bridge_pipeline=\"p\",bridge_route=\"r\",error_type=\"retryable\"",
		"messaging_process_duration_seconds_count", "messaging_client_operation_duration_seconds_bucket"} {
		if !strings.Contains(text, name) {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

func scrape(t *testing.T, tel *telemetry.Telemetry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// metricValue finds the sample of series (exact name and label set).
func metricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return v, err == nil
		}
	}
	return 0, false
}

func grepMetrics(text, pattern string) string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "#") && re.MatchString(line) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// onceSource delivers its batch once and then waits for the end.
type onceSource struct{ batch []event.Event }

func (s *onceSource) Run(ctx context.Context, deliver event.DeliverFunc) error {
	if err := deliver(ctx, s.batch); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// TestSourceMetrics: a configured source's deliveries appear as
// bridge_source_events_total at the next scrape.
func TestSourceMetrics(t *testing.T) {
	tel, err := telemetry.New(telemetry.Config{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	b := newMemBackbone(map[string]int{"in": 1})
	e := newEngine(b, Options{Telemetry: tel})
	e.addSource("feed", "in", &onceSource{batch: make([]event.Event, 5)}, nil)
	unregister, err := tel.Observe(Observers(e, nil, b))
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()
	runEngine(t, e)
	series := `bridge_source_events_total{bridge_source="feed",messaging_destination_name="in",messaging_system="bridge"}`
	waitFor(t, 5*time.Second, func() error {
		if v, ok := metricValue(scrape(t, tel), series); !ok || v != 5 {
			return fmt.Errorf("%s = %v (found %v), want 5", series, v, ok)
		}
		return nil
	})
}

// TestBrokerMetrics: queue depths by state and exchange unroutable counts
// appear at the next scrape.
func TestBrokerMetrics(t *testing.T) {
	tel, err := telemetry.New(telemetry.Config{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	qm, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
	if err != nil {
		t.Fatal(err)
	}
	defer qm.Close()
	work, err := qm.Create(queue.Config{Name: "work"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := work.Send(context.Background(), []queue.SendInput{{Body: []byte("stale"), TTL: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error { // the flusher's sweep drops it
		if work.Stats().ExpiredDropped != 1 {
			return errors.New("not expired yet")
		}
		return nil
	})
	broker := NewBroker(qm)
	x, err := exchange.New("orders", exchange.Direct, []exchange.Binding{{Queue: "work", Key: "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	broker.AddExchange(x, "")
	sink, err := newExchangeSink(broker, "orders")
	if err != nil {
		t.Fatal(err)
	}
	evs := []event.Event{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}}
	params := []event.Params{{RoutingKey: "eu"}, {RoutingKey: "eu"}, {RoutingKey: "us"}}
	if err := sink.SendParams(context.Background(), evs, params); err != nil {
		t.Fatal(err)
	}
	unregister, err := tel.Observe(Observers(nil, broker, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()
	text := scrape(t, tel)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`bridge_queue_messages{bridge_queue="work",bridge_state="visible",messaging_system="bridge"}`, 2},
		{`bridge_queue_messages{bridge_queue="work",bridge_state="in_flight",messaging_system="bridge"}`, 0},
		{`bridge_exchange_unroutable_total{messaging_destination_name="orders",messaging_system="bridge"}`, 1},
		{`bridge_queue_expired_total{bridge_outcome="dropped",bridge_queue="work",messaging_system="bridge"}`, 1},
		{`bridge_queue_expired_total{bridge_outcome="dead_lettered",bridge_queue="work",messaging_system="bridge"}`, 0},
	} {
		if got, ok := metricValue(text, tc.series); !ok || got != tc.want {
			t.Errorf("%s = %v (found %v), want %v", tc.series, got, ok, tc.want)
		}
	}
}
