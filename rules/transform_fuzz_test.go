package rules

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/internal/jsonstr"
)

// FuzzAppendJSON holds the encoder to encoding/json (without HTML
// escaping): the same bytes for every value the decoder produces and for
// every string, and output that decodes to the input's value.
func FuzzAppendJSON(f *testing.F) {
	jsonSeeds(f)
	f.Add([]byte(`{"s":"\u2028\u2029<>&\b\f\u0001","f":1.5e-7,"g":1e21,"i":-0,"b":[true,false,null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		want := referenceEncode(t, string(data))
		if got := jsonstr.Append(nil, string(data)); !bytes.Equal(got, want) {
			t.Fatalf("jsonstr.Append(%q) = %s, encoding/json %s", data, got, want)
		}
		v, ok := parseJSON(data)
		if !ok {
			return
		}
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Fatalf("appendJSON(%#v): %v", v, err)
		}
		if want := referenceEncode(t, v); !bytes.Equal(got, want) {
			t.Fatalf("appendJSON(%#v) = %s, encoding/json %s", v, got, want)
		}
		// The output decodes to the input's value.
		var in, out any
		if json.Unmarshal(data, &in) != nil || json.Unmarshal(got, &out) != nil || !reflect.DeepEqual(in, out) {
			t.Fatalf("%s decodes to %#v, the input %q to %#v", got, out, data, in)
		}
	})
}

func referenceEncode(t *testing.T, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var fuzzPatchRules = []string{
	`merge(omit(body, "a", "type"), {"added": true, "x": body.x})`,
	`pick(body, "a", "é", "")`,
	`merge(body, body.a)`,
	`omit(merge(pick(body, "a", "x"), {"a": 1}), "x")`,
}

// FuzzPatch holds the patch path to the general one: on any body, both
// fail with the same error or yield the same JSON value.
func FuzzPatch(f *testing.F) {
	jsonSeeds(f)
	f.Add([]byte(`{"a":{"b":1},"x":[1,"\ud800"],"type":"t","z":1.50}`))
	progs := make([]*Program, len(fuzzPatchRules))
	for i, src := range fuzzPatchRules {
		p, err := Compile(src, Value)
		if err != nil || p.patch == nil {
			f.Fatalf("%s: %v (patch %v)", src, err, p != nil && p.patch != nil)
		}
		progs[i] = p
	}
	env := NewEnv()
	f.Fuzz(func(t *testing.T, data []byte) {
		ev := &event.Event{Topic: "t", Value: data}
		for _, fast := range progs {
			slow := *fast
			slow.patch = nil
			env.Reset(ev)
			got, gotErr := fast.EvalValue(env)
			env.Reset(ev)
			want, wantErr := slow.EvalValue(env)
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Fatalf("%s on %q: fast err %v, slow err %v", fast.src, data, gotErr, wantErr)
			}
			if gotErr != nil {
				continue
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("%s on %q: fast output %q is not JSON: %v", fast.src, data, got, err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatalf("%s on %q: slow output %q is not JSON: %v", fast.src, data, want, err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("%s on %q:\n fast %s\n slow %s", fast.src, data, got, want)
			}
		}
	})
}
