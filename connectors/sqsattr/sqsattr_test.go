package sqsattr

import (
	"fmt"
	"slices"
	"strings"
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
		{"empty values", []byte("k"), hdrs("empty", "", "ok", "1")},
		{"binary and control bytes", nil, hdrs("bin", "\xff\x00\xfe", "ctl", "a\x01b", "nul", "\x00", "text", "ünïcode ✓")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			attrs := ToAttributes(tc.key, tc.headers)
			if len(attrs) > MaxAttributes {
				t.Fatalf("%d attributes", len(attrs))
			}
			for _, a := range attrs {
				if !ValidName(a.Name) || !ValidValue(a.Value) {
					t.Fatalf("attribute SQS would reject: %q=%q", a.Name, a.Value)
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

func TestValidValue(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"", false}, {"a", true}, {"tab\tnewline\n", true}, {"\x00", false}, {"\x1f", false},
		{"\xff", false}, {"é✓𝄞", true}, {"\uffff", false}, {"\ufffd", false},
	} {
		if got := ValidValue(tc.v); got != tc.want {
			t.Errorf("ValidValue(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestOverflowErrors(t *testing.T) {
	for _, v := range []string{`{"a":1}`, `[["a"]]`, `[["a","b","hex"]]`, `[["a","!!","base64"]]`} {
		if _, _, err := FromAttributes([]Attribute{{event.HeaderOverflow, v}}); err == nil {
			t.Errorf("bridge-headers %s: no error", v)
		}
	}
}

// FuzzToAttributes: whatever the headers, every attribute is one
// SQS accepts and the round trip gives back the same key and headers.
func FuzzToAttributes(f *testing.F) {
	f.Add([]byte("k"), "a", "1", "b", "")
	f.Add([]byte{}, "bridge-headers", "[]", "\xff", "\x00")
	f.Fuzz(func(t *testing.T, key []byte, n1, v1, n2, v2 string) {
		hs := []event.Header{{Key: n1, Value: []byte(v1)}, {Key: n2, Value: []byte(v2)}}
		for i := range 10 {
			hs = append(hs, event.Header{Key: fmt.Sprintf("h%d", i), Value: []byte(v1)})
		}
		attrs := ToAttributes(key, hs)
		if len(attrs) > MaxAttributes {
			t.Fatalf("%d attributes", len(attrs))
		}
		for _, a := range attrs {
			if !ValidName(a.Name) || !ValidValue(a.Value) {
				t.Fatalf("attribute SQS would reject: %q=%q", a.Name, a.Value)
			}
		}
		k2, h2, err := FromAttributes(attrs)
		if err != nil {
			t.Fatal(err)
		}
		if string(k2) != string(key) {
			t.Fatalf("key %q, want %q", k2, key)
		}
		want := 0
		for _, h := range hs {
			if h.Key != event.HeaderOverflow {
				want++
			}
		}
		if len(h2) != want {
			t.Fatalf("%d headers back, want %d", len(h2), want)
		}
	})
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

// TestValidBodyAllocs: the body check runs per message on the send path
// and must not copy the body.
func TestValidBodyAllocs(t *testing.T) {
	body := []byte(strings.Repeat("order é ✓ 𝄞 ", 100))
	if !ValidBody(body) || ValidBody([]byte{0xff}) || ValidBody(nil) || !ValidBody([]byte("\ufffd")) {
		t.Fatal("ValidBody verdicts")
	}
	if n := testing.AllocsPerRun(100, func() { ValidBody(body) }); n != 0 {
		t.Fatalf("ValidBody allocates %v times", n)
	}
}
