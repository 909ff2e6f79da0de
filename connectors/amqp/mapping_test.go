package amqp

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
)

// deliveryOf is what a consumer receives for p: the fields amqp091 copies
// from the publish into the delivery.
func deliveryOf(p amqp091.Publishing) amqp091.Delivery {
	return amqp091.Delivery{
		Headers: p.Headers, ContentType: p.ContentType, ContentEncoding: p.ContentEncoding,
		DeliveryMode: p.DeliveryMode, Priority: p.Priority, CorrelationId: p.CorrelationId,
		ReplyTo: p.ReplyTo, Expiration: p.Expiration, MessageId: p.MessageId, Timestamp: p.Timestamp,
		Type: p.Type, UserId: p.UserId, AppId: p.AppId, Body: p.Body,
	}
}

func h(k, v string) event.Header { return event.Header{Key: k, Value: []byte(v)} }

func TestToPublishing(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	cases := []struct {
		name  string
		event event.Event
		check func(t *testing.T, p amqp091.Publishing)
	}{
		{"properties from amqp headers", event.Event{Headers: []event.Header{
			h(HeaderContentType, "application/json"), h(HeaderMessageID, "m1"), h(HeaderCorrelationID, "c1"),
			h(HeaderReplyTo, "r1"), h(HeaderType, "t1"), h(HeaderAppID, "a1"), h(HeaderPriority, "7"),
			h(HeaderTimestamp, "1700000000"),
		}}, func(t *testing.T, p amqp091.Publishing) {
			if p.ContentType != "application/json" || p.MessageId != "m1" || p.CorrelationId != "c1" ||
				p.ReplyTo != "r1" || p.Type != "t1" || p.AppId != "a1" || p.Priority != 7 || !p.Timestamp.Equal(ts) {
				t.Errorf("properties %+v", p)
			}
			if len(p.Headers) != 0 {
				t.Errorf("property headers left in the table: %v", p.Headers)
			}
		}},
		{"persistent, key in bridge-key", event.Event{Key: []byte("k1"), Value: []byte("v")}, func(t *testing.T, p amqp091.Publishing) {
			if p.DeliveryMode != amqp091.Persistent {
				t.Errorf("delivery mode %d", p.DeliveryMode)
			}
			if p.Headers[event.HeaderKey] != "k1" {
				t.Errorf("headers %v", p.Headers)
			}
		}},
		{"unparsable priority stays a header", event.Event{Headers: []event.Header{h(HeaderPriority, "high"), h(HeaderPriority, "007")}},
			func(t *testing.T, p amqp091.Publishing) {
				if p.Priority != 0 || p.Headers[HeaderPriority] != "high" {
					t.Errorf("priority %d headers %v", p.Priority, p.Headers)
				}
			}},
		{"repeated names overflow in order", event.Event{Headers: []event.Header{h("a", "1"), h("a", "2"), h("a", "3")}},
			func(t *testing.T, p amqp091.Publishing) {
				want := []any{[]any{"a", "2"}, []any{"a", "3"}}
				got, _ := p.Headers[event.HeaderOverflow].([]any)
				if p.Headers["a"] != "1" || len(got) != 2 || got[0].([]any)[1] != want[0].([]any)[1] || got[1].([]any)[1] != "3" {
					t.Errorf("headers %v", p.Headers)
				}
			}},
		{"event timestamp when no amqp.timestamp", event.Event{Timestamp: ts.Add(500 * time.Millisecond)}, func(t *testing.T, p amqp091.Publishing) {
			if p.Timestamp.Unix() != ts.Unix() {
				t.Errorf("timestamp %v", p.Timestamp)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, toPublishing(&tc.event))
		})
	}
}

func TestFromDeliveryRendersValues(t *testing.T) {
	d := amqp091.Delivery{Headers: amqp091.Table{
		"s": "text", "b": []byte{0, 1}, "i32": int32(-5), "i64": int64(1 << 40), "u8": uint8(9),
		"bool": true, "f": 1.5, "t": time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		"dec": amqp091.Decimal{Scale: 2, Value: -1234}, "nil": nil,
		"tbl": amqp091.Table{"x": int32(1)}, "arr": []any{"a", int32(2)},
		event.HeaderOverflow: "not pairs",
	}}
	e := fromDelivery(&d, false, "src", time.Unix(1, 0))
	want := map[string]string{
		"s": "text", "b": "\x00\x01", "i32": "-5", "i64": "1099511627776", "u8": "9", "bool": "true", "f": "1.5",
		"t": "2024-01-02T03:04:05Z", "dec": "-12.34", "nil": "", "tbl": `{"x":1}`, "arr": `["a",2]`,
		event.HeaderOverflow: "not pairs",
	}
	if len(e.Headers) != len(want) {
		t.Fatalf("headers %v", e.Headers)
	}
	for _, hd := range e.Headers {
		if want[hd.Key] != string(hd.Value) {
			t.Errorf("header %s = %q, want %q", hd.Key, hd.Value, want[hd.Key])
		}
	}
	if e.Source != "src" || e.Key != nil || !e.Timestamp.Equal(time.Unix(1, 0)) {
		t.Errorf("event %+v", e)
	}
}

func TestKeyFromMessageID(t *testing.T) {
	cases := []struct {
		name    string
		d       amqp091.Delivery
		enabled bool
		want    []byte
	}{
		{"bridge-key wins", amqp091.Delivery{MessageId: "m", Headers: amqp091.Table{event.HeaderKey: "k"}}, true, []byte("k")},
		{"message id when enabled", amqp091.Delivery{MessageId: "m"}, true, []byte("m")},
		{"nil when disabled", amqp091.Delivery{MessageId: "m"}, false, nil},
		{"nil without either", amqp091.Delivery{}, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := fromDelivery(&tc.d, tc.enabled, "", time.Time{})
			if !bytes.Equal(e.Key, tc.want) || (e.Key == nil) != (tc.want == nil) {
				t.Errorf("key %q, want %q", e.Key, tc.want)
			}
		})
	}
}

// perName renders headers sorted by name, keeping the order within a name.
func perName(hs []event.Header) []string {
	s := slices.Clone(hs)
	slices.SortStableFunc(s, func(a, b event.Header) int { return strings.Compare(a.Key, b.Key) })
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.Key + "\x00" + string(x.Value)
	}
	return out
}

// FuzzMappingRoundTrip builds an event from arbitrary bytes and checks that
// publish then consume gives back its key, value and headers (each name's
// values in order), whatever the names and values.
func FuzzMappingRoundTrip(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), []byte("a\x001\x00a\x002\x00amqp.priority\x007"), true)
	f.Add([]byte{}, []byte{0xff}, []byte("bridge-key\x00x\x00bridge-headers\x00[]\x00amqp.timestamp\x0012"), false)
	f.Add([]byte(nil), []byte(nil), []byte("amqp.priority\x00007\x00amqp.content_type\x00\x00\x00"), true)
	f.Fuzz(func(t *testing.T, key, value, raw []byte, hasKey bool) {
		parts := bytes.Split(raw, []byte{0})
		e := event.Event{Value: value}
		if hasKey {
			e.Key = append([]byte{}, key...)
		}
		for i := 0; i+1 < len(parts); i += 2 {
			e.Headers = append(e.Headers, event.Header{Key: string(parts[i]), Value: parts[i+1]})
		}
		d := deliveryOf(toPublishing(&e))
		got := fromDelivery(&d, false, "", time.Time{})
		if !bytes.Equal(got.Key, e.Key) || (got.Key == nil) != (e.Key == nil) {
			t.Fatalf("key %q, want %q", got.Key, e.Key)
		}
		if !bytes.Equal(got.Value, e.Value) {
			t.Fatalf("value %q, want %q", got.Value, e.Value)
		}
		if g, w := perName(got.Headers), perName(e.Headers); !slices.Equal(g, w) {
			t.Fatalf("headers\n got %q\nwant %q", g, w)
		}
	})
}

// FuzzFromDelivery feeds arbitrary header tables to the consumer side: it
// must never panic, and every table name except the two bridge names must
// come out as exactly one header.
func FuzzFromDelivery(f *testing.F) {
	f.Add("name", "value", int64(3), true, []byte{1})
	f.Add(event.HeaderOverflow, "x", int64(-1), false, []byte(nil))
	f.Fuzz(func(t *testing.T, name, s string, n int64, b bool, raw []byte) {
		table := amqp091.Table{
			name: s, "n": n, "b": b, "raw": raw, "arr": []any{[]any{s, n}, []any{name, raw}},
			event.HeaderOverflow: []any{[]any{name, s}, []any{s, raw}},
		}
		d := amqp091.Delivery{Headers: table}
		e := fromDelivery(&d, false, "", time.Time{})
		count := map[string]int{}
		for _, hd := range e.Headers {
			count[hd.Key]++
		}
		for k := range table {
			if k == event.HeaderKey || k == event.HeaderOverflow {
				continue
			}
			if count[k] < 1 {
				t.Fatalf("table field %q missing from headers %v", k, e.Headers)
			}
		}
	})
}
