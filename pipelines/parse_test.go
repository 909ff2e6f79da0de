package pipelines

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const minimal = `
backbone: { topics: { in: {}, out: {} } }
pipelines:
  - name: p
    from: in
    routes: [ { to: { topic: out } } ]
`

func mustParse(t *testing.T, doc string) *Plan {
	t.Helper()
	plan, err := Parse("test.yaml", []byte(doc), testEnv)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return plan
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	plan := mustParse(t, minimal)
	c := plan.Config
	p := plan.Pipelines[0]
	tests := []struct {
		name      string
		got, want any
	}{
		{"data_dir", c.DataDir, DefaultDataDir},
		{"http.listen", c.HTTP.Listen, DefaultHTTPListen},
		{"http.max_request_size", c.HTTP.MaxRequestSize, ByteSize(16 << 20)},
		{"sqs_api.listen (off)", c.SQSAPI.Listen, ""},
		{"traces.exporter", c.Telemetry.Traces.Exporter, "none"},
		{"traces.sample_ratio", c.Telemetry.Traces.SampleRatio, 1.0},
		{"metrics.prometheus", c.Telemetry.Metrics.Prometheus, true},
		{"backbone.type", c.Backbone.Type, "embedded"},
		{"backbone.fsync", c.Backbone.Fsync, "always"},
		{"backbone.fsync_interval", c.Backbone.FsyncInterval, Duration(10 * time.Millisecond)},
		{"backbone.retention", c.Backbone.Retention, Duration(168 * time.Hour)},
		{"backbone.retention_bytes", c.Backbone.RetentionBytes, ByteSize(0)},
		{"partitions", c.Backbone.Topics["in"].Partitions, 1},
		{"shutdown_timeout", c.ShutdownTimeout, Duration(30 * time.Second)},
		{"start", p.Start, "earliest"},
		{"on_error without dead_letter", p.OnError, "stop"},
		{"retry", p.Retry, Retry{MaxAttempts: 0, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second}},
		{"batch_size", p.BatchSize, DefaultBatchSize},
		{"max_in_flight", p.MaxInFlight, DefaultMaxInFlight},
		{"filter", p.Filter == nil, true},
		{"route name", p.Routes[0].Name, "topic:out"},
		{"route kind", p.Routes[0].To.Kind, TargetTopic},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

// TestDefaultsKeepWrittenZeros checks that a zero the user wrote is kept
// where zero is a legal choice, instead of being replaced by the default.
func TestDefaultsKeepWrittenZeros(t *testing.T) {
	t.Parallel()
	plan := mustParse(t, minimal+`
telemetry: { traces: { sample_ratio: 0 }, metrics: { prometheus: false } }
broker:
  queues:
    dlq: {}
    q: { dead_letter_queue: dlq }
`)
	c := plan.Config
	if c.Telemetry.Traces.SampleRatio != 0 || c.Telemetry.Metrics.Prometheus {
		t.Errorf("written zeros replaced: %+v", c.Telemetry)
	}
	if q := c.Broker.Queues["q"]; q.MaxReceiveCount != DefaultMaxReceiveCount || q.VisibilityTimeout != Duration(DefaultVisibilityTimeout) {
		t.Errorf("queue defaults: %+v", q)
	}
	if q := c.Broker.Queues["dlq"]; q.MaxReceiveCount != 0 {
		t.Errorf("a queue without DLQ got max_receive_count %d", q.MaxReceiveCount)
	}
}

func TestPlanFromSpecExample(t *testing.T) {
	t.Parallel()
	plan, err := Load("testdata/valid/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Pipelines[0]
	type want struct {
		name                         string
		kind                         TargetKind
		topic, exchange, queue, conn string
		hasWhen, hasKey, hasRK       bool
		hasGroup                     bool
	}
	wants := []want{
		{name: "exchange:orders", kind: TargetExchange, exchange: "orders", hasRK: true},
		{name: "kafka:main-kafka/big-orders", kind: TargetKafka, topic: "big-orders", conn: "main-kafka", hasWhen: true, hasKey: true},
		{name: "amqp:main-rabbit/audit", kind: TargetAMQP, exchange: "audit", conn: "main-rabbit", hasRK: true},
		{name: "sqs:main-aws/orders", kind: TargetSQS, conn: "main-aws", hasGroup: true},
		{name: "queue:invoices.fifo", kind: TargetQueue, queue: "invoices.fifo", hasGroup: true},
		{name: "topic:orders-audit", kind: TargetTopic, topic: "orders-audit"},
	}
	if len(p.Routes) != len(wants) {
		t.Fatalf("%d routes, want %d", len(p.Routes), len(wants))
	}
	for i, w := range wants {
		r := p.Routes[i]
		got := want{r.Name, r.To.Kind, r.To.Topic, r.To.Exchange, r.To.Queue, r.To.Connection,
			r.When != nil, r.To.Key != nil, r.To.RoutingKey != nil, r.To.GroupID != nil}
		if got != w {
			t.Errorf("route %d = %+v, want %+v", i, got, w)
		}
	}
	if p.Filter == nil || p.DeadLetterIf == nil || p.RetryIf != nil {
		t.Errorf("rules: filter %v, dead_letter_if %v, retry_if %v", p.Filter, p.DeadLetterIf, p.RetryIf)
	}
	if p.DeadLetter == nil || p.DeadLetter.Kind != TargetQueue || p.DeadLetter.Queue != "fulfillment-dlq" {
		t.Errorf("dead letter = %+v", p.DeadLetter)
	}
	if p.OnError != "dead_letter" {
		t.Errorf("on_error = %q", p.OnError)
	}
	if len(plan.Sources) != 3 || plan.Sources[0].Key == nil || plan.Sources[1].Key != nil {
		t.Errorf("sources = %+v", plan.Sources)
	}
	if got := plan.Config.Auth.Tokens[0].Token; got != "dev-token" {
		t.Errorf("token default = %q", got)
	}
}

// TestErrors checks the error contract for one problem at a time: the
// sentinel, the field path and the position.
func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		sentinel  error
		want      string // the whole rendered message
	}{
		{"unknown top-level key", "pipeline: []", ErrUnknownField,
			`test.yaml:1:1: pipeline: unknown field "pipeline" (did you mean "pipelines"?)`},
		{"missing required name", "backbone: { topics: { in: {} } }\npipelines:\n  - from: in\n    routes: [ { to: { topic: in } } ]",
			ErrRequired, "test.yaml:3:5: pipelines[0].name: required"},
		{"reference", "backbone: { topics: { in: {} } }\npipelines: [ { name: p, from: in, routes: [ { to: { queue: nope } } ] } ]",
			ErrNotFound, `test.yaml:2:60: pipelines[0].routes[0].to.queue: queue "nope" is not defined`},
		{"rule", "backbone: { topics: { in: {} } }\npipelines: [ { name: p, from: in, filter: 'key', routes: [ { to: { topic: in } } ] } ]",
			ErrRule, `test.yaml:2:44: pipelines[0].filter: expected bool, but got string`},
		{"rule in a plain scalar, error mid-expression", "backbone: { topics: { in: {} } }\npipelines:\n  - name: p\n    from: in\n    filter: key == \"a\" && nosuch\n    routes: [ { to: { topic: in } } ]",
			ErrRule, `test.yaml:5:27: pipelines[0].filter: unknown name nosuch`},
		{"rule in a double-quoted scalar", "backbone: { topics: { in: {} } }\npipelines:\n  - name: p\n    from: in\n    filter: \"key == 'a' || kye\"\n    routes: [ { to: { topic: in } } ]",
			ErrRule, `test.yaml:5:28: pipelines[0].filter: unknown name kye (did you mean key?)`},
		{"env", "data_dir: ${UNSET}", ErrEnv,
			"test.yaml:1:11: data_dir: environment variable UNSET is not set (write ${UNSET:-default} to give a default)"},
		{"position after a substitution", "http: { listen: '${DEFINED}', max_request_size: 1XB }", ErrInvalid,
			`test.yaml:1:49: http.max_request_size: invalid size "1XB": use a whole number of bytes or B, KiB, MiB, GiB, TiB`},
		{"NaN ratio", "telemetry: { traces: { sample_ratio: .nan } }", ErrInvalid,
			"test.yaml:1:38: telemetry.traces.sample_ratio: must be between 0 and 1"},
		{"syntax", "a: [", ErrSyntax, "test.yaml:1: did not find expected node content"},
		{"quoted map key", "broker: { queues: { a.fifo: { fifo: true, delay: 1h } } }", ErrInvalid,
			`test.yaml:1:50: broker.queues["a.fifo"].delay: 1h0m0s is outside 0s..15m0s`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("test.yaml", []byte(tc.doc), testEnv)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("error does not wrap %v", tc.sentinel)
			}
			assertAllFieldErrors(t, err)
			if got := err.Error(); !strings.Contains(got, tc.want) {
				t.Errorf("error:\n%s\nwant a line:\n%s", got, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	if _, err := Load("testdata/does-not-exist.yaml"); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func TestParseNilEnvMeansUnset(t *testing.T) {
	t.Parallel()
	if _, err := Parse("x.yaml", []byte("data_dir: ${HOME}"), nil); !errors.Is(err, ErrEnv) {
		t.Fatalf("err = %v, want ErrEnv", err)
	}
	plan, err := Parse("x.yaml", []byte("data_dir: ${HOME:-/tmp/d}"), nil)
	if err != nil || plan.Config.DataDir != "/tmp/d" {
		t.Fatalf("plan %v, err %v", plan, err)
	}
}
