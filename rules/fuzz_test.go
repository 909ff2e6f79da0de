package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/expr-lang/expr"

	"github.com/bridgeio/bridge/event"
)

// fuzzPaths are the paths FuzzExtract asks for; they overlap on purpose
// (a, a.b, a.b.c) so a terminal with paths below it is exercised.
var fuzzPaths = [][]string{{"a"}, {"a", "b"}, {"a", "b", "c"}, {"type"}, {"x", "y"}, {"é"}, {""}}

func jsonSeeds(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `1`, `"s"`, ` {"a":1} `, `{"a":1}x`,
		`{"a":{"b":{"c":[1,2,{"d":null}]}},"type":"t","x":{"y":true}}`,
		`{"a":{"b":1},"a":{"c":2}}`, `{"a":1,"a":{"b":2}}`, `{"a":{"b":1},"a":3}`,
		`{"t\u0079pe":"\ud83d\ude00\ud800x\u00e9"}`, "{\"\xff\":\"\xfe\"}", `{"é":1,"":2}`,
		`{"a":-0.0e+5}`, `{"a":1e400}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`,
		`{"a":"\x"}`, "{\"a\":\"\t\"}", `{"a":tru}`, `{"a":[1,]}`, `{"a":1,}`, `{,}`, `{"a" 1}`,
		`[[[[[[[[[[]]]]]]]]]]`, `{"x":{"y":[{"y":1}]}}`, `{"a":{"b":{"c":1},"b":{"d":2}}}`,
	} {
		f.Add([]byte(s))
	}
}

var fuzzIntern internTable

// FuzzExtract holds the path scanner and the full decoder to encoding/json:
// the same documents are valid, and the same values come out.
func FuzzExtract(f *testing.F) {
	jsonSeeds(f)
	var ps pathSet
	for _, p := range fuzzPaths {
		ps.add(p)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantOK := referenceDecode(data)

		got, gotOK := parseJSON(data)
		if gotOK != wantOK {
			t.Fatalf("parseJSON valid=%v, encoding/json valid=%v for %q", gotOK, wantOK, data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseJSON = %#v, encoding/json = %#v", got, want)
		}

		out := make([]any, len(ps.paths))
		for i := range out {
			out[i] = "stale" // extract must overwrite every slot
		}
		// Without and with interning; the table is shared across inputs
		// (and tiny when fuzzing) so hits, misses and resets all happen.
		for _, in := range []*internTable{nil, &fuzzIntern} {
			if ok := extract(data, &ps, out, in); ok != wantOK {
				t.Fatalf("extract valid=%v, encoding/json valid=%v for %q", ok, wantOK, data)
			}
			for i, p := range ps.paths {
				if w := walkPath(want, p); !reflect.DeepEqual(out[i], w) {
					t.Fatalf("path %v: extract = %#v, encoding/json = %#v (doc %q, intern %v)", p, out[i], w, data, in != nil)
				}
			}
		}
	})
}

// FuzzRule compiles arbitrary rules. Whatever compiles must evaluate without
// panicking, and must agree with plain expr over a fully decoded body: where
// expr succeeds, the lazy evaluation gives the same value; where the lazy
// evaluation fails, expr fails too. (The lazy one may succeed where expr
// fails: a path through a missing value is nil, see the package doc.)
func FuzzRule(f *testing.F) {
	for _, s := range []string{
		filterSrc, `body.a.b`, `body["a"]["b"] ?? 1`, `len(body)`, `body?.x?.y`, `headers.h + key`,
		`topic + source`, `partition * offset`, `timestamp.Year()`, `body.items[0]`, `value`,
		`any(body.items, .n > 1)`, `let x = body.a; x.b`, `body.a + body.b`, `body`, `{"k": body.a}`,
	} {
		f.Add(s, `{"a":{"b":2},"b":3,"items":[{"n":2}],"type":"order.created","amount":100,"region":"eu"}`)
	}
	f.Add(`body.a`, `not json`)
	f.Add(`body.a.b`, `{"a":5}`)
	f.Fuzz(func(t *testing.T, src, value string) {
		if strings.Contains(src, "now") || strings.Contains(src, "$env") || len(src) > 200 {
			return // time-dependent, or refused on purpose
		}
		p, err := Compile(src, String)
		if err != nil {
			if _, ok := err.(*CompileError); !ok {
				t.Fatalf("Compile(%q) error %T %v is not a *CompileError", src, err, err)
			}
			return
		}
		ev := &event.Event{Topic: "t", Partition: 1, Offset: 2, Key: []byte("k"), Value: []byte(value),
			Headers: []event.Header{{Key: "h", Value: []byte("v")}}, Source: "s", Timestamp: ts}
		env := NewEnv()
		env.Reset(ev)
		got, gotErr := p.run(env)

		ref, err := expr.Compile(src, expr.Env(eventEnv{}))
		if err != nil {
			t.Fatalf("rules compiled %q but expr did not: %v", src, err)
		}
		body, _ := referenceDecode(ev.Value)
		want, wantErr := expr.Run(ref, eventEnv{
			Body: body, Value: value, Key: "k", Headers: map[string]string{"h": "v"},
			Topic: "t", Partition: 1, Offset: 2, Timestamp: ts, Source: "s",
		})
		if wantErr == nil && (gotErr != nil || !sameValue(got, want)) {
			t.Fatalf("%q on %q: rules = %#v, %v; expr = %#v", src, value, got, gotErr, want)
		}
		if gotErr != nil && wantErr == nil {
			t.Fatalf("%q on %q: rules failed (%v), expr did not", src, value, gotErr)
		}
	})
}

// referenceDecode is encoding/json with the one difference the package
// documents: an integer literal that fits int64 decodes as int.
func referenceDecode(data []byte) (any, bool) {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var withNumbers any
	if dec.Decode(&withNumbers) != nil {
		return nil, false
	}
	return intsFromNumbers(withNumbers), true
}

func intsFromNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if isIntegerLiteral([]byte(x)) {
			if n, err := x.Int64(); err == nil {
				return int(n)
			}
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = intsFromNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = intsFromNumbers(e)
		}
		return x
	}
	return v
}

// sameValue is reflect.DeepEqual, except that NaN equals NaN.
func sameValue(a, b any) bool {
	return reflect.DeepEqual(a, b) || fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

// FuzzIntDurationRules: the Int and Duration kinds (a queue target's
// priority, ttl and delay) compile only what can yield their type, never
// panic, and convert as documented: an Int result equals expr's own value,
// a Duration is never negative.
func FuzzIntDurationRules(f *testing.F) {
	for _, s := range []string{`body.p`, `int(headers["h"])`, `body.t`, `duration("5m")`, `body.f`, `"90s"`, `3`, `-1`, `body.s`, `true`, `[1]`} {
		f.Add(s, `{"p":7,"t":"1h","f":2.5,"s":"x"}`)
	}
	f.Fuzz(func(t *testing.T, src, value string) {
		if strings.Contains(src, "now") || strings.Contains(src, "$env") || len(src) > 200 {
			return
		}
		ev := &event.Event{Topic: "t", Value: []byte(value), Headers: []event.Header{{Key: "h", Value: []byte("4")}}, Timestamp: ts}
		env := NewEnv()
		env.Reset(ev)
		if p, err := Compile(src, Int); err == nil {
			n, ok, err := p.EvalInt(env)
			if err == nil && ok {
				out, _ := p.run(env)
				switch v := out.(type) {
				case float64:
					if float64(n) != v {
						t.Fatalf("%q: EvalInt %d, value %v", src, n, v)
					}
				case int:
					if int64(v) != n {
						t.Fatalf("%q: EvalInt %d, value %v", src, n, v)
					}
				}
			}
		} else if _, ok := err.(*CompileError); !ok {
			t.Fatalf("Compile(%q, Int): %T %v", src, err, err)
		}
		if p, err := Compile(src, Duration); err == nil {
			if d, ok, err := p.EvalDuration(env); err == nil && ok && d < 0 {
				t.Fatalf("%q: negative duration %v", src, d)
			}
		} else if _, ok := err.(*CompileError); !ok {
			t.Fatalf("Compile(%q, Duration): %T %v", src, err, err)
		}
	})
}
