package rules

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

var ts = time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)

func sampleEvent() *event.Event {
	return &event.Event{
		Topic:     "orders",
		Partition: 3,
		Offset:    42,
		Key:       []byte("ord-1"),
		Value:     []byte(`{"type":"order.created","amount":150,"region":"eu","len":3,"count":7,"in":true,"customer":{"id":"c-9","tier":"gold"},"items":[{"sku":"a"},{"sku":"b"}],"note":null,"price":12.5,"big":1e21}`),
		Headers: []event.Header{
			{Key: "trace", Value: []byte("t1")},
			{Key: "tenant", Value: []byte("first")},
			{Key: "tenant", Value: []byte("last")},
		},
		Timestamp: ts,
		Source:    "http",
	}
}

func mustCompile(t *testing.T, src string, kind Kind) *Program {
	t.Helper()
	p, err := Compile(src, kind)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return p
}

func TestEvalBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		ev   func(*event.Event)
		want bool
	}{
		{"body field", `body.type == "order.created"`, nil, true},
		{"three clauses", filterSrc, nil, true},
		{"three clauses fail", `body.type == "order.created" && body.amount >= 1000`, nil, false},
		{"builtin-named field type", `body.type != nil`, nil, true},
		{"builtin-named field len", `body.len == 3`, nil, true},
		{"builtin-named field count", `body.count == 7`, nil, true},
		{"builtin-named field in", `body.in`, nil, true},
		{"bracket access", `body["type"] == "order.created"`, nil, true},
		{"nested path", `body.customer.tier == "gold"`, nil, true},
		{"nested bracket then dot", `body["customer"].id == "c-9"`, nil, true},
		{"path and index", `body.items[1].sku == "b"`, nil, true},
		{"whole body", `len(body) == 11`, nil, true},
		{"whole body and path in one rule", `len(body.items) == 2 && body["customer"]["tier"] == "gold" && "amount" in body`, nil, true},
		{"dynamic key", `body[headers.field] == "eu"`, func(ev *event.Event) { ev.Headers = []event.Header{{Key: "field", Value: []byte("region")}} }, true},
		{"missing field is nil", `body.nope == nil`, nil, true},
		{"null field is nil", `body.note == nil`, nil, true},
		{"path through missing is nil", `body.nope.deeper == nil`, nil, true},
		{"path through number is nil", `body.amount.x == nil`, nil, true},
		{"nil result is false", `body.nope`, nil, false},
		{"nil coalesce", `(body.nope ?? 0) >= 0`, nil, true},
		{"optional chain", `body?.customer?.id == "c-9"`, nil, true},
		{"value", `value startsWith "{\"type\""`, nil, true},
		{"key", `key == "ord-1"`, nil, true},
		{"no key is empty", `key == ""`, func(ev *event.Event) { ev.Key = nil }, true},
		{"headers last wins", `headers.tenant == "last" && headers["trace"] == "t1"`, nil, true},
		{"missing header", `headers.nope == nil`, nil, false}, // map[string]string: missing is "" in expr
		{"missing header is empty", `headers.nope == ""`, nil, true},
		{"topic", `topic == "orders"`, nil, true},
		{"partition", `partition == 3`, nil, true},
		{"offset", `offset > 41 && offset < 43`, nil, true},
		{"timestamp", `timestamp.Year() == 2026 && timestamp.Unix() == 1795640400`, nil, true},
		{"source", `source == "http"`, nil, true},
		{"not JSON body is nil", `body == nil && value == "not json"`, func(ev *event.Event) { ev.Value = []byte("not json") }, true},
		{"not JSON path is nil", `body.type == nil`, func(ev *event.Event) { ev.Value = []byte(`{"type":"x"`) }, true},
		{"array body path is nil", `body.type == nil && len(body) == 2`, func(ev *event.Event) { ev.Value = []byte(`[1,2]`) }, true},
		{"escaped key", `body.type == "x"`, func(ev *event.Event) { ev.Value = []byte(`{"t\u0079pe":"x"}`) }, true},
		{"escaped value", `body.s == "a\"b\u00e9"`, func(ev *event.Event) { ev.Value = []byte(`{"s":"a\"b\u00e9"}`) }, true},
		{"duplicate key last wins", `body.a.b == nil && body.a.c == 2`, func(ev *event.Event) { ev.Value = []byte(`{"a":{"b":1},"a":{"c":2}}`) }, true},
		{"duplicate scalar last wins", `body.a == 2`, func(ev *event.Event) { ev.Value = []byte(`{"a":1,"a":2}`) }, true},
		{"numbers with a fraction are float64", `body.n == 1.5 && type(body.n) == "float"`, func(ev *event.Event) { ev.Value = []byte(`{"n":1.5}`) }, true},
		{"integer literals are int", `body.n % 2 == 0 && type(body.n) == "int" && body.n == 42.0`, func(ev *event.Event) { ev.Value = []byte(`{"n":42}`) }, true},
		{"integers past int64 are float64", `type(body.n) == "float"`, func(ev *event.Event) { ev.Value = []byte(`{"n":123456789012345678901234}`) }, true},
		{"exponent is float64", `type(body.n) == "float" && body.n == 100`, func(ev *event.Event) { ev.Value = []byte(`{"n":1e2}`) }, true},
		{"let", `let t = body.type; t == "order.created"`, nil, true},
		{"predicate over body", `any(body.items, .sku == "b")`, nil, true},
		{"body inside a predicate", `any(body.items, .sku == body.want)`, func(ev *event.Event) { ev.Value = []byte(`{"want":"b","items":[{"sku":"a"},{"sku":"b"}]}`) }, true},
		{"env names as map keys and properties", `{body: 1, topic: 2}.body == 1 && headers.body == ""`, nil, true},
		{"whole body through let", `let b = body; b.type == "order.created"`, nil, true},
		{"unicode key", `body["é"] == 1`, func(ev *event.Event) { ev.Value = []byte(`{"\u00e9":1}`) }, true},
		{"invalid UTF-8 replaced", `body.s == "a\ufffdb"`, func(ev *event.Event) { ev.Value = []byte("{\"s\":\"a\xffb\"}") }, true},
		{"multi-line", "body.type == \"order.created\"\n  && body.region == \"eu\"", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustCompile(t, tc.src, Bool)
			ev := sampleEvent()
			if tc.ev != nil {
				tc.ev(ev)
			}
			env := NewEnv()
			env.Reset(ev)
			got, err := p.EvalBool(env)
			if err != nil {
				t.Fatalf("EvalBool: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvalRuntimeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, value string
		kind             Kind
	}{
		{"nil >= number", `body.amount >= 100`, `{"x":1}`, Bool},
		{"string >= number", `body.amount >= 100`, `{"amount":"lots"}`, Bool},
		{"arithmetic on string", `body.amount * 2 > 1`, `{"amount":"x"}`, Bool},
		{"non-bool result", `body.amount`, `{"amount":5}`, Bool},
		{"fetch from number", `body["a"][0] == 1`, `{"a":5}`, Bool},
		{"int of garbage", `int(body.s)`, `{"s":"zz"}`, String},
		{"NaN has no JSON text", `body.n / body.n`, `{"n":0}`, String},
		{"index out of range", `body.items[5].sku`, `{"items":[]}`, String},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustCompile(t, tc.src, tc.kind)
			env := NewEnv()
			env.Reset(&event.Event{Value: []byte(tc.value)})
			var err error
			if tc.kind == Bool {
				_, err = p.EvalBool(env)
			} else {
				_, _, err = p.EvalString(env)
			}
			if err == nil {
				t.Fatalf("no error")
			}
			if !strings.Contains(err.Error(), tc.src) {
				t.Fatalf("error %q does not name the rule", err)
			}
		})
	}
}

func TestEvalWithoutReset(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, `topic == "x"`, Bool)
	if _, err := p.EvalBool(NewEnv()); err == nil {
		t.Fatal("no error for an Env without an event")
	}
}

func TestEvalString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want string
		ok              bool
	}{
		{"string", `body.region`, "eu", true},
		{"concat", `"order.created." + body.region`, "order.created.eu", true},
		{"integral float", `body.amount`, "150", true},
		{"fraction", `body.price`, "12.5", true},
		{"big float like encoding/json", `body.big`, "1e+21", true},
		{"small float like encoding/json", `0.0000001`, "1e-7", true},
		{"int", `partition`, "3", true},
		{"int arithmetic", `offset + 1`, "43", true},
		{"bool", `body.in`, "true", true},
		{"bool false", `body.amount > 1000`, "false", true},
		{"nil is absent", `body.nope`, "", false},
		{"null is absent", `body.note`, "", false},
		{"map as JSON", `body.customer`, `{"id":"c-9","tier":"gold"}`, true},
		{"array as JSON", `body.items`, `[{"sku":"a"},{"sku":"b"}]`, true},
		{"headers as JSON", `headers`, `{"tenant":"last","trace":"t1"}`, true},
		{"time", `timestamp`, "2026-11-25T21:00:00Z", true},
		{"empty string is present", `body.region[0:0]`, "", true},
		{"key", `key`, "ord-1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustCompile(t, tc.src, String)
			env := NewEnv()
			env.Reset(sampleEvent())
			got, ok, err := p.EvalString(env)
			if err != nil {
				t.Fatalf("EvalString: %v", err)
			}
			if got != tc.want || ok != tc.ok {
				t.Fatalf("got (%q, %v), want (%q, %v)", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		src        string
		kind       Kind
		line, col  int
		msg        string // substring of Msg
		suggestion string
	}{
		{"unknown name with suggestion", `bdy.type == "x"`, Bool, 1, 1, "unknown name bdy", "body"},
		{"unknown name on line 2", "body.a == 1 &&\n  topc == \"x\"", Bool, 2, 3, "unknown name topc", "topic"},
		{"transposed letters", `haeders.x == "1"`, Bool, 1, 1, "unknown name haeders", "headers"},
		{"unknown name, nothing close", `zzzzzz == 1`, Bool, 1, 1, "unknown name zzzzzz", ""},
		{"error is not in event rules", `error.permanent`, Bool, 1, 1, "unknown name error", ""},
		{"filter not bool", `len(topic) + 1`, Bool, 1, 1, "expected bool", ""},
		{"filter string field not bool", `topic`, Bool, 1, 1, "expected bool", ""},
		{"type mismatch", `topic + 1 == "a"`, Bool, 1, 7, "mismatched types string and int", ""},
		{"header values are strings", `headers.n > 5`, Bool, 1, 11, "mismatched types string and int", ""},
		{"syntax error", `body.type ==`, Bool, 1, 12, "unexpected token", ""},
		{"empty", `  `, Bool, 1, 1, "empty rule", ""},
		{"$env refused", `$env.topic == "x"`, Bool, 1, 1, "$env is not available", ""},
		{"let cannot shadow", `let body = 1; body == 1`, Bool, 1, 5, "redeclare", ""},
		{"string rule type error", `body.region + 1 - "a"`, String, 1, 17, "invalid operation", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tc.src, tc.kind)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *CompileError", err, err)
			}
			if ce.Line != tc.line || ce.Column != tc.col {
				t.Errorf("position %d:%d, want %d:%d (%v)", ce.Line, ce.Column, tc.line, tc.col, ce)
			}
			if !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("Msg %q does not contain %q", ce.Msg, tc.msg)
			}
			if ce.Suggestion != tc.suggestion {
				t.Errorf("Suggestion %q, want %q", ce.Suggestion, tc.suggestion)
			}
			if tc.suggestion != "" && !strings.HasSuffix(ce.Error(), "(did you mean "+tc.suggestion+"?)") {
				t.Errorf("Error() = %q lacks the suggestion", ce.Error())
			}
		})
	}
}

func TestCompileErrorRuleErrors(t *testing.T) {
	t.Parallel()
	_, err := CompileErrorRule(`error.mesage contains "timeout"`)
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *CompileError", err)
	}
	if ce.Msg != "error has no field mesage" || ce.Suggestion != "message" || ce.Column != 7 {
		t.Fatalf("got %+v", ce)
	}
	if _, err := CompileErrorRule(`error.attempts`); err == nil {
		t.Fatal("a non-bool error rule compiled")
	}
}

func TestErrorRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		f    Failure
		want bool
	}{
		{"permanent", `error.permanent`, Failure{Permanent: true}, true},
		{"class permanent", `error.class == "permanent"`, Failure{Permanent: true}, true},
		{"class retryable", `error.class == "retryable"`, Failure{}, true},
		{"message", `error.message contains "timeout"`, Failure{Message: "i/o timeout"}, true},
		{"attempts", `error.attempts >= 3`, Failure{Attempts: 2}, false},
		{"route and target", `error.route == "r1" && error.target == "queue:q"`, Failure{Route: "r1", Target: "queue:q"}, true},
		{"mixed with event", `error.attempts > 1 && body.amount > 100 && topic == "orders"`, Failure{Attempts: 2}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := CompileErrorRule(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			env := NewEnv()
			env.Reset(sampleEvent())
			env.SetError(tc.f)
			got, err := p.EvalBool(env)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProgramAccessors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src      string
		kind     Kind
		usesBody bool
	}{
		{`body.a == 1`, Bool, true},
		{`len(body) > 0`, Bool, true},
		{`topic == "x" && headers.a == "b"`, Bool, false},
		{`key`, String, false},
		{`body.id`, String, true},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			t.Parallel()
			p := mustCompile(t, tc.src, tc.kind)
			if p.Source() != tc.src || p.Kind() != tc.kind || p.UsesBody() != tc.usesBody {
				t.Fatalf("Source %q Kind %v UsesBody %v", p.Source(), p.Kind(), p.UsesBody())
			}
		})
	}
	if _, err := Compile("true", Kind(7)); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// TestBodyDecodedOncePerEvent checks the laziness promises: no body work for
// rules that do not read it, one scan per program for paths, and one full
// decode per event however many rules need the whole body.
func TestBodyDecodedOncePerEvent(t *testing.T) {
	t.Parallel()
	noBody := mustCompile(t, `topic == "orders"`, Bool)
	paths := mustCompile(t, `body.type == "order.created" && body.amount > 1 && body.region == "eu"`, Bool)
	paths2 := mustCompile(t, `body.customer.id`, String)
	whole1 := mustCompile(t, `len(body) > 0`, Bool)
	whole2 := mustCompile(t, `"type" in body && body.region == "eu"`, Bool)

	env := NewEnv()
	ev := sampleEvent()
	env.Reset(ev)
	if ok, err := noBody.EvalBool(env); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if env.bodyScans != 0 || env.bodyDecodes != 0 {
		t.Fatalf("a rule without body did body work: scans %d decodes %d", env.bodyScans, env.bodyDecodes)
	}
	for range 3 {
		if ok, err := paths.EvalBool(env); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if env.bodyScans != 1 || env.bodyDecodes != 0 {
		t.Fatalf("paths: scans %d decodes %d, want 1 and 0", env.bodyScans, env.bodyDecodes)
	}
	if s, _, err := paths2.EvalString(env); err != nil || s != "c-9" {
		t.Fatal(s, err)
	}
	for _, p := range []*Program{whole1, whole2, whole1} {
		if ok, err := p.EvalBool(env); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if env.bodyDecodes != 1 {
		t.Fatalf("full decodes %d, want 1", env.bodyDecodes)
	}
	// After a full decode, path programs read from it instead of scanning.
	scans := env.bodyScans
	if s, _, err := paths2.EvalString(env); err != nil || s != "c-9" {
		t.Fatal(s, err)
	}
	if env.bodyScans != scans {
		t.Fatal("path rule rescanned a body already decoded")
	}

	// A new event invalidates everything.
	ev2 := sampleEvent()
	ev2.Value = []byte(`{"type":"order.cancelled","region":"us","customer":{"id":"c-1"}}`)
	env.Reset(ev2)
	if ok, err := paths.EvalBool(env); err != nil || ok {
		t.Fatal("stale body after Reset", ok, err)
	}
	if s, _, err := paths2.EvalString(env); err != nil || s != "c-1" {
		t.Fatal("stale path after Reset:", s, err)
	}
	if ok, err := whole2.EvalBool(env); err != nil || ok {
		t.Fatal("stale whole body after Reset", ok, err)
	}
	if env.bodyDecodes != 2 {
		t.Fatalf("full decodes %d, want 2", env.bodyDecodes)
	}
}

func TestResetDoesNoWork(t *testing.T) {
	env := NewEnv()
	ev := sampleEvent()
	allocs := testing.AllocsPerRun(100, func() { env.Reset(ev) })
	if allocs != 0 {
		t.Fatalf("Reset allocates %v times", allocs)
	}
}

// TestSharedProgram runs one Program from several goroutines, each with its
// own Env (run with -race).
func TestSharedProgram(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, filterSrc, Bool)
	k := mustCompile(t, `body.order_id`, String)
	evs := orderEvents(200)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			env := NewEnv()
			for i := range evs {
				env.Reset(&evs[i])
				ok, err := p.EvalBool(env)
				if err != nil {
					errs <- err
					return
				}
				region := []string{"eu", "us", "ap"}[i%3]
				amount := 50 + i%400
				if want := region != "ap" && amount >= 100; ok != want {
					errs <- errors.New("wrong filter result")
					return
				}
				id, _, err := k.EvalString(env)
				if err != nil || !strings.HasPrefix(id, "ord-") {
					errs <- errors.New("wrong key")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Bool: "bool", String: "string", Kind(9): "Kind(9)"} {
		if k.String() != want {
			t.Errorf("%d: %q", int(k), k.String())
		}
	}
}

// TestInternTableBounded feeds more distinct short strings than the intern
// table holds: values stay right and the table never passes its bound.
func TestInternTableBounded(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, `body.id`, String)
	env := NewEnv()
	for i := range 3 * internMaxEntries {
		want := fmt.Sprintf("id-%d", i%(internMaxEntries+7))
		env.Reset(&event.Event{Value: []byte(`{"id":"` + want + `"}`)})
		got, ok, err := p.EvalString(env)
		if err != nil || !ok || got != want {
			t.Fatalf("event %d: got (%q, %v, %v), want %q", i, got, ok, err, want)
		}
		if n := len(env.intern.m); n > internMaxEntries {
			t.Fatalf("intern table holds %d entries", n)
		}
	}
	// Long strings bypass the table.
	long := strings.Repeat("x", internMaxLen+1)
	env.Reset(&event.Event{Value: []byte(`{"id":"` + long + `"}`)})
	if got, _, _ := p.EvalString(env); got != long {
		t.Fatalf("long string: %q", got)
	}
	if _, ok := env.intern.m[long]; ok {
		t.Fatal("long string was interned")
	}
}

// TestIntAndDurationRules: the kinds of a queue target's priority, ttl and
// delay rules: checked at compile time where the type is known, converted
// at run time.
func TestIntAndDurationRules(t *testing.T) {
	ev := event.Event{Value: []byte(`{"p":7,"half":2.5,"ttl":"90s","n":30,"neg":-3,"s":"x"}`),
		Headers: []event.Header{{Key: "prio", Value: []byte("4")}}}
	env := NewEnv()
	env.Reset(&ev)
	ints := []struct {
		src     string
		want    int64
		absent  bool
		compile bool // a compile error
		runErr  bool
	}{
		{src: "body.p", want: 7},
		{src: "3", want: 3},
		{src: `int(headers["prio"])`, want: 4},
		{src: "body.missing", absent: true},
		{src: "body.half", runErr: true},
		{src: "body.s", runErr: true},
		{src: `"high"`, compile: true},
		{src: "true", compile: true},
	}
	for _, tc := range ints {
		t.Run("int/"+tc.src, func(t *testing.T) {
			p, err := Compile(tc.src, Int)
			if tc.compile {
				if err == nil {
					t.Fatal("compiled")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n, ok, err := p.EvalInt(env)
			switch {
			case tc.runErr:
				if err == nil {
					t.Fatalf("= %d, want an error", n)
				}
			case err != nil || ok == tc.absent || n != tc.want:
				t.Fatalf("= %d, %v, %v; want %d", n, ok, err, tc.want)
			}
		})
	}
	durations := []struct {
		src     string
		want    time.Duration
		compile bool
		runErr  bool
	}{
		{src: `duration("5m")`, want: 5 * time.Minute},
		{src: "body.n", want: 30 * time.Second},
		{src: "body.half", want: 2500 * time.Millisecond},
		{src: "body.ttl", want: 90 * time.Second},
		{src: "45", want: 45 * time.Second},
		{src: `"1h"`, want: time.Hour},
		{src: "body.neg", runErr: true},
		{src: "body.s", runErr: true},
		{src: "true", compile: true},
		{src: "[1]", compile: true},
	}
	for _, tc := range durations {
		t.Run("duration/"+tc.src, func(t *testing.T) {
			p, err := Compile(tc.src, Duration)
			if tc.compile {
				if err == nil {
					t.Fatal("compiled")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, ok, err := p.EvalDuration(env)
			switch {
			case tc.runErr:
				if err == nil {
					t.Fatalf("= %v, want an error", d)
				}
			case err != nil || !ok || d != tc.want:
				t.Fatalf("= %v, %v, %v; want %v", d, ok, err, tc.want)
			}
		})
	}
}
