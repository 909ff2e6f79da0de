package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// agree checks Scan and Decode against encoding/json on one JSON text: a
// string literal is accepted by both or by neither, and decodes the same.
func agree(t *testing.T, lit []byte) {
	raw, esc, high, end, ok := Scan(lit, 0)
	ok = ok && len(bytes.TrimLeft(lit[end:], " \t\r\n")) == 0 // encoding/json allows trailing space
	var want string
	jsonErr := json.Unmarshal(lit, &want)
	isString := len(lit) > 0 && lit[0] == '"'
	switch {
	case ok && jsonErr != nil:
		t.Fatalf("Scan accepts %q, encoding/json refuses it: %v", lit, jsonErr)
	case !ok && jsonErr == nil && isString:
		t.Fatalf("Scan refuses %q, encoding/json reads %q", lit, want)
	case ok:
		if got := Decode(raw, esc, high); got != want {
			t.Fatalf("%q: Decode %q, encoding/json %q", lit, got, want)
		}
	}
}

var seeds = []string{
	`"plain"`, `""`, `"caf\u00e9 \ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800x"`, `"\ud83d\u0041"`,
	`"tab\t"`, "\"raw\ttab\"", `"\"\\\/\b\f\n\r\t"`, "\"\xff\xfe\"", "\"é\"", `"\u00"`, `"\x"`, `"open`, `nope`,
	`"\uD83D\uDE00"`, `"a\u0000b"`,
}

func TestAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		agree(t, []byte(s))
	}
	// The fast case copies without decoding; the others decode.
	if raw, esc, high, _, ok := Scan([]byte(`"abc"`), 0); !ok || esc || high || string(raw) != "abc" {
		t.Fatalf("plain string: %q %v %v %v", raw, esc, high, ok)
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) { agree(t, lit) })
}

// FuzzAppend holds Append to encoding/json's Encoder without HTML
// escaping, byte for byte, and Scan plus Decode to reading it back.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t\b\f\r", "\x00\x1f\x7f", "héllo 🚀", "\xff\xfe", "\u2028\u2029", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Append([]byte("x"), s)[1:]
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Fatalf("Append(%q) = %s, encoding/json %s", s, got, want)
		}
		raw, esc, high, end, ok := Scan(got, 0)
		if !ok || end != len(got) {
			t.Fatalf("Scan of %s: ok %v end %d", got, ok, end)
		}
		if back := Decode(raw, esc, high); utf8.ValidString(s) && back != s {
			t.Fatalf("round trip %q -> %q", s, back)
		}
	})
}
