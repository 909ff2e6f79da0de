package rules

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

const orderJSON = `{"order_id":"o-1","region":"eu","customer":{"email":"a@b.c","name":"Ann"},"card":"4111","items":[{"sku":"a","qty":2},{"sku":"b","qty":0},{"sku":"c","qty":1}],"amount":12.50}`

func orderEv() *event.Event {
	return &event.Event{Topic: "orders", Partition: 2, Offset: 7, Key: []byte("o-1"), Value: []byte(orderJSON),
		Headers:   []event.Header{{Key: "tenant", Value: []byte("acme")}, {Key: "x-trace", Value: []byte("1")}, {Key: "tenant", Value: []byte("acme2")}},
		Timestamp: time.Unix(1700000000, 0), Source: "http"}
}

// transformSpec is a transform's source text, compiled by buildTransform
// the way pipelines does it.
type transformSpec struct {
	split, dropIf, value, key string
	set                       [][2]string
	remove                    []string
}

func buildTransform(t *testing.T, s transformSpec) *Transform {
	t.Helper()
	scope := EventScope
	tr := &Transform{Step: "pipeline", Remove: s.remove}
	compile := func(src string, kind Kind, sc Scope) *Program {
		if src == "" {
			return nil
		}
		p, err := CompileIn(src, kind, sc)
		if err != nil {
			t.Fatalf("compile %q: %v", src, err)
		}
		return p
	}
	if s.split != "" {
		tr.Split = compile(s.split, List, EventScope)
		scope = SplitScope
	}
	tr.DropIf = compile(s.dropIf, Bool, scope)
	tr.Value = compile(s.value, Value, scope)
	tr.Key = compile(s.key, String, scope)
	for _, h := range s.set {
		tr.Set = append(tr.Set, HeaderRule{Name: h[0], Rule: compile(h[1], String, scope)})
	}
	return tr
}

func applyOne(t *testing.T, tr *Transform, ev *event.Event) ([]event.Event, error) {
	t.Helper()
	env := NewEnv()
	env.Reset(ev)
	var buf Buffer
	return tr.Apply(env, ev, nil, &buf)
}

// jsonEqual compares two JSON documents as values.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("value\n got  %s\n want %s", got, want)
	}
}

func TestTransformValueKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        string // exact bytes
		noValue     bool
	}{
		{"map becomes JSON with sorted keys", `{"z": 1, "a": body.region, "n": nil}`, `{"a":"eu","n":null,"z":1}`, false},
		{"string stays text", `"order " + body.order_id`, `order o-1`, false},
		{"bytes stay raw", `base64Decode("/w==")`, "\xff", false},
		{"number becomes JSON", `body.amount * 2`, `25`, false},
		{"array becomes JSON", `map(body.items, .sku)`, `["a","b","c"]`, false},
		{"bool becomes JSON", `body.amount > 1`, `true`, false},
		{"nil is no value", `body.missing`, ``, true},
		{"bytes inside JSON are base64", `{"b": bytes("hi")}`, `{"b":"aGk="}`, false},
		{"no HTML escaping", `{"h": "<a&b>"}`, `{"h":"<a&b>"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parts, err := applyOne(t, buildTransform(t, transformSpec{value: tc.value}), orderEv())
			if err != nil || len(parts) != 1 {
				t.Fatalf("parts %d, err %v", len(parts), err)
			}
			v := parts[0].Value
			if string(v) != tc.want || (v == nil) != tc.noValue {
				t.Fatalf("value %q (nil %v), want %q", v, v == nil, tc.want)
			}
		})
	}
}

func TestTransformKeepsWhatItDoesNotSet(t *testing.T) {
	t.Parallel()
	ev := orderEv()
	parts, err := applyOne(t, buildTransform(t, transformSpec{key: `body.region`}), ev)
	if err != nil || len(parts) != 1 {
		t.Fatal(len(parts), err)
	}
	p := parts[0]
	if string(p.Key) != "eu" || &p.Value[0] != &ev.Value[0] || len(p.Headers) != 3 || p.ID() != ev.ID() ||
		!p.Timestamp.Equal(ev.Timestamp) || p.Source != "http" {
		t.Fatalf("part %+v", p)
	}
	parts, _ = applyOne(t, buildTransform(t, transformSpec{key: `body.nokey`}), ev)
	if parts[0].Key != nil {
		t.Fatalf("a nil key rule should give no key, got %q", parts[0].Key)
	}
	parts, _ = applyOne(t, buildTransform(t, transformSpec{key: `body.amount`}), ev)
	if string(parts[0].Key) != "12.5" {
		t.Fatalf("number key %q", parts[0].Key)
	}
}

func TestTransformHeaders(t *testing.T) {
	t.Parallel()
	tr := buildTransform(t, transformSpec{set: [][2]string{{"region", `body.region`}, {"tenant", `"one"`}, {"gone", `body.nothing`}},
		remove: []string{"x-trace"}})
	parts, err := applyOne(t, tr, orderEv())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range parts[0].Headers {
		got = append(got, h.Key+"="+string(h.Value))
	}
	// Both tenant values are replaced by one; nil leaves "gone" out.
	if want := []string{"region=eu", "tenant=one"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
}

func TestTransformSplit(t *testing.T) {
	t.Parallel()
	tr := buildTransform(t, transformSpec{split: `body.items`, dropIf: `item.qty == 0`,
		value: `{"order": body.order_id, "sku": item.sku, "n": index}`, key: `body.order_id + "/" + item.sku`})
	parts, err := applyOne(t, tr, orderEv())
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2 (qty 0 dropped)", len(parts))
	}
	for i, want := range []struct{ sku, idx, value string }{{"a", "0", `{"n":0,"order":"o-1","sku":"a"}`}, {"c", "2", `{"n":2,"order":"o-1","sku":"c"}`}} {
		p := parts[i]
		if string(p.Key) != "o-1/"+want.sku || string(p.Value) != want.value || p.ID() != "orders/2/7" {
			t.Fatalf("part %d: key %q value %s id %s", i, p.Key, p.Value, p.ID())
		}
		if idx, _ := p.Header(HeaderSplitIndex); string(idx) != want.idx {
			t.Fatalf("part %d: split index %q, want %s", i, idx, want.idx)
		}
	}

	// Without value, a part's value is its element; strings stay text.
	parts, err = applyOne(t, buildTransform(t, transformSpec{split: `body.items`}), orderEv())
	if err != nil || len(parts) != 3 || string(parts[1].Value) != `{"qty":0,"sku":"b"}` {
		t.Fatalf("parts %v err %v", parts, err)
	}
	parts, _ = applyOne(t, buildTransform(t, transformSpec{split: `["x", "y"]`}), orderEv())
	if len(parts) != 2 || string(parts[1].Value) != "y" {
		t.Fatalf("string elements: %v", parts)
	}

	// A second split (a route's, after the pipeline's) extends the index.
	second := buildTransform(t, transformSpec{split: `[1, 2]`})
	env := NewEnv()
	in := parts[1]
	env.Reset(&in)
	var buf Buffer
	nested, err := second.Apply(env, &in, nil, &buf)
	if err != nil || len(nested) != 2 {
		t.Fatal(nested, err)
	}
	if idx, _ := nested[1].Header(HeaderSplitIndex); string(idx) != "1.1" {
		t.Fatalf("nested split index %q, want 1.1", idx)
	}
	if n := strings.Count(headerString(nested[1].Headers), HeaderSplitIndex); n != 1 {
		t.Fatalf("%d split index headers: %s", n, headerString(nested[1].Headers))
	}

	// nil splits into nothing; an empty array too.
	for _, src := range []string{`body.nothing`, `[]`} {
		parts, err := applyOne(t, buildTransform(t, transformSpec{split: src}), orderEv())
		if err != nil || len(parts) != 0 {
			t.Fatalf("split %s: %v %v", src, parts, err)
		}
	}
}

func headerString(hs []event.Header) string {
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.Key + "=" + string(h.Value) + ";")
	}
	return b.String()
}

func TestTransformDropIfWithoutSplit(t *testing.T) {
	t.Parallel()
	parts, err := applyOne(t, buildTransform(t, transformSpec{dropIf: `body.region == "eu"`, value: `"x"`}), orderEv())
	if err != nil || len(parts) != 0 {
		t.Fatalf("parts %v err %v", parts, err)
	}
}

func TestTransformRunTimeErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		spec transformSpec
		want string
	}{
		{"split of a string", transformSpec{split: `body.region`}, `split: "body.region" yields a string, not an array`},
		{"value error in one item", transformSpec{split: `body.items`, value: `item.qty / (item.qty - 1)`}, "split item"},
		{"omit of a non-map", transformSpec{value: `omit(body.region, "a")`}, "omit: the first argument is a string, not a map"},
		{"merge of a non-map", transformSpec{value: `merge(body, body.items)`}, "merge: argument 2 is an array, not a map"},
		{"key error", transformSpec{key: `body.region + 1`}, "key: "},
		{"header error", transformSpec{set: [][2]string{{"h", `body.amount + "x"`}}}, "headers.set[h]: "},
		{"drop_if error", transformSpec{dropIf: `body.region > 1`}, "drop_if: "},
		{"bad base64", transformSpec{value: `base64Decode("***")`}, "base64Decode: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := []event.Event{{Offset: 99}}
			env := NewEnv()
			ev := orderEv()
			env.Reset(ev)
			var buf Buffer
			got, err := buildTransform(t, tc.spec).Apply(env, ev, out, &buf)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
			if len(got) != 1 || got[0].Offset != 99 {
				t.Fatalf("a failed transform appended parts: %v", got)
			}
		})
	}
}

func TestTransformMaxParts(t *testing.T) {
	t.Parallel()
	tr := buildTransform(t, transformSpec{split: `1..20`})
	tr.MaxParts = 10
	if _, err := applyOne(t, tr, orderEv()); !errors.Is(err, ErrTooManyParts) {
		t.Fatalf("err %v, want ErrTooManyParts", err)
	}
	big := buildTransform(t, transformSpec{split: `1..20`, value: `{"all": body}`})
	big.MaxBytes = 10 * len(orderJSON)
	if _, err := applyOne(t, big, orderEv()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	big.MaxBytes = 0 // the default holds 20 copies easily
	if parts, err := applyOne(t, big, orderEv()); err != nil || len(parts) != 20 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
}

func TestCompileTransformKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src   string
		kind  Kind
		scope Scope
		want  string // "" = compiles
	}{
		{`body.items`, List, EventScope, ""},
		{`[1, 2]`, List, EventScope, ""},
		{`body.a == 1`, List, EventScope, "expected array, but got bool"},
		{`"x"`, List, EventScope, "expected array, but got string"},
		{`{"a": 1}`, Value, EventScope, ""},
		{`now`, Value, EventScope, "has no JSON form"},
		{`item.sku`, Value, EventScope, "unknown name item (item and index exist in a transform with split)"},
		{`item.sku + string(index)`, String, SplitScope, ""},
		{`omit(body, 1)`, Value, EventScope, "cannot use int as argument"},
		{`sha256()`, String, EventScope, "not enough arguments"},
		{`uuid(1)`, String, EventScope, "too many arguments"},
		{`mrege(body, {})`, Value, EventScope, "did you mean merge?"},
	} {
		_, err := CompileIn(tc.src, tc.kind, tc.scope)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.src, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	env := NewEnv()
	ev := orderEv()
	env.Reset(ev)
	for _, tc := range []struct{ src, want string }{
		{`sha256("abc")`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{`sha256(bytes("abc"))`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{`base64Encode("hi?")`, "aGk/"},
		{`base64Encode(base64Decode("aGk_"))`, "aGk/"},
		{`base64Encode(base64Decode("aGk/"))`, "aGk/"},
		{`base64Encode(base64Decode("aA"))`, "aA=="},
		{`toJSON(pick(body, "region", "nope"))`, "{\n  \"region\": \"eu\"\n}"},
		{`toJSON(sort(keys(omit(body, "customer", "card", "items", "amount"))))`, "[\n  \"order_id\",\n  \"region\"\n]"},
		{`toJSON(merge({a: 1, b: 2}, {b: 3}, headers))`, "{\n  \"a\": 1,\n  \"b\": 3,\n  \"tenant\": \"acme2\",\n  \"x-trace\": \"1\"\n}"},
		{`toJSON(keys(body))`, ""}, // checked below: omit did not change the body
	} {
		p, err := Compile(tc.src, String)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, _, err := p.EvalString(env)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if tc.want == "" {
			if !strings.Contains(got, "customer") {
				t.Fatalf("omit changed the shared body: keys %s", got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s = %q, want %q", tc.src, got, tc.want)
		}
	}
}

var uuidV5 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestUUIDAndNowAreStablePerEvent: uuid() is derived from the event, so a
// redelivery gets the same ids, while parts, call sites and steps differ;
// now() is read once per origin event.
func TestUUIDAndNowAreStablePerEvent(t *testing.T) {
	t.Parallel()
	tr := buildTransform(t, transformSpec{split: `body.items`, value: `{"a": uuid(), "b": uuid(), "t": now()}`})
	run := func(step string, ev *event.Event, clock time.Time) []map[string]string {
		tr := *tr
		tr.Step = step
		env := NewEnv()
		calls := 0
		env.SetClock(func() time.Time { calls++; return clock.Add(time.Duration(calls) * time.Hour) })
		env.Reset(ev)
		var buf Buffer
		parts, err := tr.Apply(env, ev, nil, &buf)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]string
		for _, p := range parts {
			var m map[string]string
			if err := json.Unmarshal(p.Value, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		if calls != 1 {
			t.Fatalf("clock read %d times for one event", calls)
		}
		return out
	}
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first := run("pipeline", orderEv(), clock)
	again := run("pipeline", orderEv(), clock)
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("redelivery changed the output:\n%v\n%v", first, again)
	}
	seen := map[string]bool{}
	for _, m := range first {
		if m["t"] != "2026-01-02T04:04:05Z" {
			t.Fatalf("now() = %s", m["t"])
		}
		for _, k := range []string{"a", "b"} {
			if !uuidV5.MatchString(m[k]) || seen[m[k]] {
				t.Fatalf("uuid %q is not a fresh v5 UUID (%v)", m[k], first)
			}
			seen[m[k]] = true
		}
	}
	other := orderEv()
	other.Offset++
	for _, m := range append(run("route r", orderEv(), clock), run("pipeline", other, clock)...) {
		if seen[m["a"]] {
			t.Fatalf("another step or event reused uuid %s", m["a"])
		}
	}
	// An event copied from elsewhere keeps its first id, and so its uuids.
	moved := orderEv()
	moved.Topic, moved.Offset = "copy", 1000
	moved.Headers = append(moved.Headers, event.Header{Key: event.HeaderEventID, Value: []byte("orders/2/7")})
	if got := run("pipeline", moved, clock); got[0]["a"] != first[0]["a"] {
		t.Fatalf("uuid of a copied event %s, want the original's %s", got[0]["a"], first[0]["a"])
	}
}

// TestPatchPathMatchesGeneral: the omit/merge fast path and the general
// path give the same JSON value (and the same errors) on the shapes the
// patch path takes.
func TestPatchPathMatchesGeneral(t *testing.T) {
	t.Parallel()
	rules := []string{
		`omit(body, "customer", "items")`,
		`merge(omit(body, "customer", "items"), {"processed": true, "total": body.amount * 100})`,
		`merge(body, {"region": "us"}, {"z": uuid()})`,
		`pick(merge(body, {"x": 1}), "x", "region")`,
		`omit(merge(body, body.customer), "email")`,
		`merge(pick(body, "order_id"), headers)`,
		`omit(pick(body, "a"), "a")`,
	}
	bodies := []string{
		orderJSON, `{}`, ` { "region" : "eu" , "amount": 1e2 } `, `{"region":"eu","region":"us"}`,
		`{"\u0072egion":"x"}`, `[1,2]`, `"str"`, `not json`, `{"a":1,}`, `{"customer":5,"amount":1}`,
		`{"customer":{"email":"x","n":[1,{"b":null}]},"amount":"NaN"}`,
	}
	for _, src := range rules {
		fast, err := Compile(src, Value)
		if err != nil {
			t.Fatal(err)
		}
		if fast.patch == nil {
			t.Fatalf("%s does not take the patch path", src)
		}
		slow := *fast
		slow.patch = nil
		for _, body := range bodies {
			ev := orderEv()
			ev.Value = []byte(body)
			env := NewEnv()
			env.Reset(ev)
			got, gotErr := fast.EvalValue(env)
			env.Reset(ev)
			want, wantErr := slow.EvalValue(env)
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Fatalf("%s on %s: errors differ:\n fast %v\n slow %v", src, body, gotErr, wantErr)
			}
			if gotErr == nil {
				jsonEqual(t, got, string(want))
			}
		}
	}
	// Untouched members keep their bytes and order; added ones follow.
	p, _ := Compile(`merge(omit(body, "card"), {"z": 1, "a": 2})`, Value)
	env := NewEnv()
	env.Reset(&event.Event{Value: []byte(`{"b":1.50,"card":"4111","a0":{"x": 1}}`)})
	got, err := p.EvalValue(env)
	if err != nil || string(got) != `{"b":1.50,"a0":{"x": 1},"z":1,"a":2}` {
		t.Fatalf("patched %s, %v", got, err)
	}
}

// TestSplitScansTheBodyOncePerRule: every part of a split runs the value
// and key rules, but each rule scans the body once per event, not once per
// part (a 100-item order would otherwise be scanned 100 times).
func TestSplitScansTheBodyOncePerRule(t *testing.T) {
	t.Parallel()
	items := make([]string, 100)
	for i := range items {
		items[i] = `{"sku":"s"}`
	}
	ev := &event.Event{Topic: "t", Value: []byte(`{"order_id":"o-1","items":[` + strings.Join(items, ",") + `]}`)}
	tr := buildTransform(t, transformSpec{split: `body.items`, value: `{"o": body.order_id, "s": item.sku}`, key: `body.order_id`})
	env := NewEnv()
	env.Reset(ev)
	var buf Buffer
	parts, err := tr.Apply(env, ev, nil, &buf)
	if err != nil || len(parts) != 100 || string(parts[99].Key) != "o-1" {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	if env.bodyScans != 3 || env.bodyDecodes != 0 {
		t.Fatalf("%d body scans and %d decodes for 3 rules over 100 parts", env.bodyScans, env.bodyDecodes)
	}
}
