package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

func TestDecodeEvents(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name     string
		body     string
		badIndex int // -2: no error
		check    func(t *testing.T, evs []event.Event)
	}{
		{"single object", `{"key":"k","headers":{"b":"2","a":"1"},"value":{"x":1}}`, -2, func(t *testing.T, evs []event.Event) {
			ev := evs[0]
			if string(ev.Key) != "k" || string(ev.Value) != `{"x":1}` || ev.Source != "http" || !ev.Timestamp.Equal(now) {
				t.Fatalf("%+v", ev)
			}
			if len(ev.Headers) != 2 || ev.Headers[0].Key != "a" || string(ev.Headers[1].Value) != "2" {
				t.Fatalf("headers %+v (want sorted by name)", ev.Headers)
			}
		}},
		{"array", `[{"value":1},{"value":[1,2]},{"value":null},{}]`, -2, func(t *testing.T, evs []event.Event) {
			if len(evs) != 4 || string(evs[0].Value) != "1" || string(evs[1].Value) != "[1,2]" || evs[2].Value != nil || evs[3].Key != nil {
				t.Fatalf("%+v", evs)
			}
		}},
		{"string value is stored as text", `{"value":"héllo \"x\""}`, -2, func(t *testing.T, evs []event.Event) {
			if string(evs[0].Value) != `héllo "x"` {
				t.Fatalf("%q", evs[0].Value)
			}
		}},
		{"base64 value", `{"value_base64":"AAEC"}`, -2, func(t *testing.T, evs []event.Event) {
			if !bytes.Equal(evs[0].Value, []byte{0, 1, 2}) {
				t.Fatalf("%v", evs[0].Value)
			}
		}},
		{"empty key is a key", `{"key":"","value":1}`, -2, func(t *testing.T, evs []event.Event) {
			if evs[0].Key == nil || len(evs[0].Key) != 0 {
				t.Fatalf("%#v", evs[0].Key)
			}
		}},
		{"explicit timestamp", `{"value":1,"timestamp":"2020-01-01T00:00:00Z"}`, -2, func(t *testing.T, evs []event.Event) {
			if evs[0].Timestamp.Year() != 2020 {
				t.Fatal(evs[0].Timestamp)
			}
		}},
		{"bad second", `[{"value":1},{"value":}]`, 1, nil},
		{"unknown field", `[{"value":1},{"value":2},{"vlaue":3}]`, 2, nil},
		{"both values", `{"value":1,"value_base64":"AA=="}`, 0, nil},
		{"bad base64", `{"value_base64":"!!"}`, 0, nil},
		{"headers not strings", `{"headers":{"a":1}}`, 0, nil},
		{"empty", ``, -1, nil},
		{"empty array", `[]`, -1, nil},
		{"trailing garbage", `[{"value":1}] x`, -1, nil},
		{"unterminated array", `[{"value":1}`, 1, nil},
		{"not an object", `[1]`, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := decodeEvents([]byte(tc.body), "http", now)
			if tc.badIndex == -2 {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, evs)
				return
			}
			var bad *BadEventError
			if !errors.As(err, &bad) {
				t.Fatalf("error %v, want *BadEventError", err)
			}
			if bad.Index != tc.badIndex {
				t.Fatalf("bad index %d, want %d (%v)", bad.Index, tc.badIndex, err)
			}
		})
	}
}

// FuzzDecodeEvents: arbitrary bodies never panic; an error is always a
// *BadEventError; accepted events re-encode and decode to the same events.
func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`{"key":"k","headers":{"a":"b"},"value":{"x":[1,2,{"y":null}]}}`))
	f.Add([]byte(`[{"value":"s"},{"value_base64":"AAE="}]`))
	f.Add([]byte(`[{"value":1},{"value":}]`))
	f.Add([]byte(`[`))
	now := time.Unix(0, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := decodeEvents(body, "http", now)
		if err != nil {
			var bad *BadEventError
			if !errors.As(err, &bad) {
				t.Fatalf("error %T %v is not a *BadEventError", err, err)
			}
			return
		}
		var again []map[string]any
		for _, ev := range evs {
			m := map[string]any{"value_base64": ev.Value}
			if ev.Key != nil {
				m["key"] = string(ev.Key)
			}
			hs := map[string]string{}
			for _, h := range ev.Headers {
				hs[h.Key] = string(h.Value)
			}
			m["headers"] = hs
			m["timestamp"] = ev.Timestamp
			again = append(again, m)
		}
		b, _ := json.Marshal(again)
		evs2, err := decodeEvents(b, "http", now)
		if err != nil {
			t.Fatalf("re-encoded body rejected: %v\n%s", err, b)
		}
		for i := range evs {
			if !bytes.Equal(evs[i].Value, evs2[i].Value) || !bytes.Equal(evs[i].Key, evs2[i].Key) {
				if !strings.ContainsRune(string(evs[i].Key), '\uFFFD') && json.Valid([]byte(`"`+string(evs[i].Key)+`"`)) {
					t.Fatalf("event %d changed: %q/%q vs %q/%q", i, evs[i].Key, evs[i].Value, evs2[i].Key, evs2[i].Value)
				}
			}
		}
	})
}
