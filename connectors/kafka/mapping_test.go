package kafka

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/event"
)

// splitHeaders decodes fuzz bytes into headers: entries separated by 0xff,
// name and value by the first 0xfe. Empty and repeated names are allowed.
func splitHeaders(b []byte) []kgo.RecordHeader {
	if len(b) == 0 {
		return nil
	}
	var hs []kgo.RecordHeader
	for _, part := range bytes.Split(b, []byte{0xff}) {
		name, value, _ := bytes.Cut(part, []byte{0xfe})
		hs = append(hs, kgo.RecordHeader{Key: string(name), Value: value})
	}
	return hs
}

// FuzzRecordMapping checks the Kafka ↔ event mapping both ways: the key
// keeps its nil-ness and bytes, headers keep order and repeats, the origin
// coordinates parse back, and an event sent on reproduces the record's
// headers exactly (plus the coordinates, which the source appended).
func FuzzRecordMapping(f *testing.F) {
	f.Add([]byte("k"), false, []byte("v"), []byte("a\xfe1\xffa\xfe2\xff\xfe"), int32(3), int64(42), "in")
	f.Add([]byte{}, false, []byte{}, []byte{}, int32(0), int64(0), "t")
	f.Add([]byte(nil), true, []byte("x"), []byte("kafka.offset\xfe9"), int32(2147483647), int64(1)<<62, "a.b-c_d")
	f.Fuzz(func(t *testing.T, key []byte, nilKey bool, value, rawHeaders []byte, partition int32, offset int64, topic string) {
		if nilKey {
			key = nil
		} else if key == nil {
			key = []byte{}
		}
		ts := time.UnixMilli(1_700_000_000_000 + offset%1000)
		rec := &kgo.Record{Topic: topic, Partition: partition, Offset: offset, Key: key, Value: value,
			Headers: splitHeaders(rawHeaders), Timestamp: ts}
		second := &kgo.Record{Topic: topic + "2", Partition: partition ^ 1, Offset: offset ^ 1, Value: []byte("next")}

		if plain := toEvents([]*kgo.Record{rec}, "src", false)[0]; len(plain.Headers) != len(rec.Headers) {
			t.Fatalf("without origin headers: %d headers for %d", len(plain.Headers), len(rec.Headers))
		}
		evs := toEvents([]*kgo.Record{rec, second}, "src", true)
		ev := evs[0]
		if (ev.Key == nil) != (key == nil) || !bytes.Equal(ev.Key, key) || !bytes.Equal(ev.Value, value) {
			t.Fatalf("key/value changed: %q/%q -> %q/%q", key, value, ev.Key, ev.Value)
		}
		if !ev.Timestamp.Equal(ts) || ev.Source != "src" {
			t.Fatalf("timestamp/source: %v %q", ev.Timestamp, ev.Source)
		}
		n := len(rec.Headers)
		if len(ev.Headers) != n+3 {
			t.Fatalf("%d headers for %d record headers", len(ev.Headers), n)
		}
		for i, h := range rec.Headers {
			if ev.Headers[i].Key != h.Key || !bytes.Equal(ev.Headers[i].Value, h.Value) {
				t.Fatalf("header %d: %v != %v", i, ev.Headers[i], h)
			}
		}
		coords := ev.Headers[n:]
		if coords[0].Key != HeaderTopic || string(coords[0].Value) != topic ||
			coords[1].Key != HeaderPartition || coords[2].Key != HeaderOffset {
			t.Fatalf("coordinate headers %v", coords)
		}
		if p, err := strconv.ParseInt(string(coords[1].Value), 10, 32); err != nil || int32(p) != partition {
			t.Fatalf("partition header %q for %d", coords[1].Value, partition)
		}
		if o, err := strconv.ParseInt(string(coords[2].Value), 10, 64); err != nil || o != offset {
			t.Fatalf("offset header %q for %d", coords[2].Value, offset)
		}
		// Appending to one event's header value or header list must not
		// change another's (the arena and header slices are capped).
		_ = append(coords[0].Value, 'X')
		_ = append(ev.Headers, event.Header{Key: "extra"})
		if got, _ := evs[1].Header(HeaderTopic); string(got) != topic+"2" {
			t.Fatalf("second event's topic header clobbered: %q", got)
		}
		if evs[1].Headers[0].Key != HeaderTopic {
			t.Fatalf("second event's headers clobbered: %v", evs[1].Headers)
		}

		out := toRecords(new(recordBuf), evs[:1], "out")[0]
		if out.Topic != "out" || (out.Key == nil) != (key == nil) || !bytes.Equal(out.Key, key) ||
			!bytes.Equal(out.Value, value) || !out.Timestamp.Equal(ts) {
			t.Fatalf("record changed on the way out: %+v", out)
		}
		if len(out.Headers) != len(ev.Headers) {
			t.Fatalf("%d headers out for %d in", len(out.Headers), len(ev.Headers))
		}
		for i, h := range ev.Headers {
			if out.Headers[i].Key != h.Key || !bytes.Equal(out.Headers[i].Value, h.Value) {
				t.Fatalf("header %d out: %v != %v", i, out.Headers[i], h)
			}
		}
	})
}

// TestBackoff: doubling from the initial wait, capped.
func TestBackoff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		attempt int
		want    time.Duration
	}{{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 800 * time.Millisecond}, {4, time.Second}, {60, time.Second}}
	for _, tc := range cases {
		if got := backoff(100*time.Millisecond, time.Second, tc.attempt); got != tc.want {
			t.Errorf("backoff(attempt %d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}
