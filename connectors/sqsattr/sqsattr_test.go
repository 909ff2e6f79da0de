package sqsattr

import (
	"fmt"
	"slices"
	"testing"

	"github.com/bridgeio/bridge/event"
)

func hdrs(kv ...string) []event.Header {
	var hs []event.Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, event.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func TestRoundTrip(t *testing.T) {
	many := hdrs("traceparent", "00-abc-def-01", "bridge-event-id", "orders/1/2")
	for i := range 15 {
		many = append(many, event.Header{Key: fmt.Sprintf("h%02d", i), Value: []byte(fmt.Sprint(i))})
	}
	cases := []struct {
		name    string
		key     []byte
		headers []event.Header
	}{
		{"none", nil, nil},
		{"key only", []byte("order-1"), nil},
		{"empty key", []byte{}, hdrs("a", "1")},
		{"few", []byte("k"), hdrs("a", "1", "b", "2")},
		{"past ten", []byte("k"), many},
		{"repeated name", nil, hdrs("a", "1", "a", "2")},
		{"invalid names", nil, hdrs("AWS.x", "1", "has space", "2", "ok", "3")},
		{"invalid then ten valid", nil, append(hdrs("bad name", "x"), many[2:12]...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			attrs := ToAttributes(tc.key, tc.headers)
			if len(attrs) > MaxAttributes {
				t.Fatalf("%d attributes", len(attrs))
			}
			for _, a := range attrs {
				if !ValidName(a.Name) {
					t.Fatalf("invalid attribute name %q", a.Name)
				}
			}
			key, headers, err := FromAttributes(attrs)
			if err != nil {
				t.Fatal(err)
			}
			if string(key) != string(tc.key) || (key == nil) != (tc.key == nil) {
				t.Fatalf("key %q, want %q", key, tc.key)
			}
			// Order among headers may change (priority first) but the multiset must not.
			norm := func(hs []event.Header) []string {
				var out []string
				for _, h := range hs {
					out = append(out, h.Key+"="+string(h.Value))
				}
				slices.Sort(out)
				return out
			}
			if got, want := norm(headers), norm(tc.headers); !slices.Equal(got, want) {
				t.Fatalf("headers %v, want %v", got, want)
			}
		})
	}
}

func TestPriorityHeadersStayVisible(t *testing.T) {
	var hs []event.Header
	for i := range 20 {
		hs = append(hs, event.Header{Key: fmt.Sprintf("h%d", i), Value: []byte("v")})
	}
	hs = append(hs, hdrs("traceparent", "tp", "bridge-event-id", "t/0/1")...)
	attrs := ToAttributes([]byte("k"), hs)
	names := map[string]bool{}
	for _, a := range attrs {
		names[a.Name] = true
	}
	for _, n := range []string{"bridge-event-id", "bridge-key", "traceparent", "bridge-headers"} {
		if !names[n] {
			t.Fatalf("attribute %s missing from %v", n, attrs)
		}
	}
}

func FuzzFromAttributes(f *testing.F) {
	f.Add("bridge-headers", `[["a","b"]]`)
	f.Add("bridge-headers", `{"a":1}`)
	f.Add("bridge-key", "k")
	f.Fuzz(func(t *testing.T, name, value string) {
		key, headers, err := FromAttributes([]Attribute{{name, value}})
		if err == nil && name == event.HeaderOverflow {
			// A well-formed overflow re-encodes to the same pairs.
			again := ToAttributes(key, headers)
			k2, h2, err := FromAttributes(again)
			if err != nil || string(k2) != string(key) || len(h2) != len(headers) {
				t.Fatalf("round trip changed: %v %q %v vs %q %v", err, k2, h2, key, headers)
			}
		}
	})
}
