package mask

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestJSON(t *testing.T) {
	m := New([]string{"password", "customer.email", "items.card"}, []string{"Authorization"})
	for _, tc := range []struct{ name, in, want string }{
		{"any depth", `{"a":{"password":"x"},"password":{"deep":1}}`, `{"a":{"password":"***"},"password":"***"}`},
		{"path", `{"customer":{"email":"e@x","name":"n"},"email":"kept"}`, `{"customer":{"email":"***","name":"n"},"email":"kept"}`},
		{"arrays transparent", `{"items":[{"card":"4111","n":1},{"card":2}]}`, `{"items":[{"card":"***","n":1},{"card":"***"}]}`},
		{"order and numbers kept", `{"z":1.50,"a":12345678901234567890,"password":null}`, `{"z":1.50,"a":12345678901234567890,"password":"***"}`},
		{"top-level array", `[{"password":1}]`, `[{"password":"***"}]`},
		{"scalar", `"password"`, `"password"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := m.JSON([]byte(tc.in))
			if !ok || string(got) != tc.want {
				t.Fatalf("JSON(%s) = %s, %v; want %s", tc.in, got, ok, tc.want)
			}
		})
	}
	for _, bad := range []string{`{"a":`, `not json`, `{"a":1} {"b":2}`, ``} {
		if got, ok := m.JSON([]byte(bad)); ok || string(got) != bad {
			t.Errorf("JSON(%q) = %q, %v; want input back and false", bad, got, ok)
		}
	}
	if m.Header("authorization", "Bearer x") != Masked || m.Header("x-id", "1") != "1" {
		t.Error("header masking")
	}
	var zero *Masker
	if got, ok := zero.JSON([]byte(`{"password":1}`)); !ok || string(got) != `{"password":1}` || !zero.Empty() {
		t.Error("nil masker must mask nothing")
	}
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"password":"x","a":[{"card":{"n":1}}],"customer":{"email":"e"}}`))
	f.Add([]byte(`[1,"2",null,true,{"password":[1,2]}]`))
	f.Add([]byte(`{"\u0070assword":1}`))
	m := New([]string{"password", "customer.email", "a.card"}, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, ok := m.JSON(data)
		if ok != json.Valid(data) {
			t.Fatalf("ok=%v but json.Valid=%v for %q", ok, json.Valid(data), data)
		}
		if !ok {
			if !bytes.Equal(out, data) {
				t.Fatal("invalid input was changed")
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output %q is not JSON", out)
		}
		again, _ := m.JSON(out)
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q then %q", out, again)
		}
		var v any
		_ = json.Unmarshal(out, &v)
		assertMasked(t, v, "")
	})
}

// assertMasked checks that no masked field holds anything but Masked.
func assertMasked(t *testing.T, v any, path string) {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if k == "password" || p == "customer.email" || p == "a.card" {
				if child != Masked {
					t.Fatalf("%s = %v, not masked", p, child)
				}
				continue
			}
			assertMasked(t, child, p)
		}
	case []any:
		for _, child := range x {
			assertMasked(t, child, path)
		}
	}
}
