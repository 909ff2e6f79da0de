package migrate

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/bridgeio/bridge/event"
)

// ledgerEvent is local log event number i: key k, message id m-i.
func ledgerEvent(i int, key string) event.Event {
	return event.Event{Topic: topicName, Partition: 0, Offset: int64(i), Key: []byte(key),
		Value:   []byte("body-" + strconv.Itoa(i)),
		Headers: []event.Header{{Key: "amqp.message_id", Value: []byte("m-" + strconv.Itoa(i))}, {Key: "x", Value: []byte("1")}}}
}

// delivered is ev as a target returns it: with its event id and the
// target's own per-hop headers, headers in another order.
func delivered(ev event.Event, partition int32, pos int) targetMessage {
	out := event.Event{Key: ev.Key, Value: ev.Value}
	for i := len(ev.Headers) - 1; i >= 0; i-- {
		out.Headers = append(out.Headers, ev.Headers[i])
	}
	out.Headers = append(out.Headers, event.Header{Key: event.HeaderEventID, Value: []byte(ev.ID())},
		event.Header{Key: "kafka.offset", Value: []byte(strconv.Itoa(pos))}, event.Header{Key: "sqs.MessageId", Value: []byte("x")})
	return targetMessage{Event: out, Partition: partition, Position: "t/" + strconv.Itoa(int(partition)) + "/" + strconv.Itoa(pos)}
}

func TestVerifier(t *testing.T) {
	t.Parallel()
	keys := []string{"a", "b", "a", "b", "a", "c"}
	base := func() []event.Event {
		evs := make([]event.Event, len(keys))
		for i, k := range keys {
			evs[i] = ledgerEvent(i, k)
		}
		return evs
	}
	inOrder := func(evs []event.Event) []targetMessage {
		out := make([]targetMessage, len(evs))
		for i, ev := range evs {
			out[i] = delivered(ev, 0, i)
		}
		return out
	}
	cases := []struct {
		name     string
		ledger   func() []event.Event
		filtered map[int]bool
		target   func(evs []event.Event) []targetMessage
		want     Report
	}{
		{name: "clean", ledger: base, target: inOrder,
			want: Report{SourceCount: 6, TargetCount: 6, Expected: 6, Delivered: 6, OK: true}},
		{name: "missing", ledger: base, target: func(evs []event.Event) []targetMessage {
			return append(inOrder(evs)[:2], inOrder(evs)[3:]...)
		}, want: Report{SourceCount: 6, TargetCount: 5, Expected: 6, Delivered: 5, Missing: 1}},
		{name: "extra with and without event id", ledger: base, target: func(evs []event.Event) []targetMessage {
			out := inOrder(evs)
			stray := delivered(ledgerEvent(99, "z"), 0, 99)
			foreign := targetMessage{Event: event.Event{Value: []byte("pre-existing")}, Position: "t/0/100"}
			return append(out, stray, foreign)
		}, want: Report{SourceCount: 6, TargetCount: 8, Expected: 6, Delivered: 6, Extra: 2, ExtraNoEventID: 1, OK: true}},
		{name: "target duplicate", ledger: base, target: func(evs []event.Event) []targetMessage {
			out := inOrder(evs)
			return append(out, delivered(evs[1], 0, 6))
		}, want: Report{SourceCount: 6, TargetCount: 7, Expected: 6, Delivered: 6, Duplicates: 1, TargetDuplicates: 1, OK: true}},
		{name: "source redelivery", ledger: func() []event.Event {
			evs := base()
			again := ledgerEvent(2, "a") // the same message taken twice from the source
			again.Offset = 6
			return append(evs, again)
		}, target: func(evs []event.Event) []targetMessage {
			return inOrder(evs)[:6] // the second copy never reached the target: not missing
		}, want: Report{SourceCount: 7, TargetCount: 6, Expected: 7, Delivered: 6, Duplicates: 1, SourceDuplicates: 1, OK: true}},
		{name: "same message id with other content is not a duplicate", ledger: func() []event.Event {
			evs := base()
			other := ledgerEvent(2, "a")
			other.Offset, other.Value = 6, []byte("different")
			return append(evs, other)
		}, target: func(evs []event.Event) []targetMessage {
			return inOrder(evs)[:6]
		}, want: Report{SourceCount: 7, TargetCount: 6, Expected: 7, Delivered: 6, Missing: 1}},
		{name: "order violation per key", ledger: base, target: func(evs []event.Event) []targetMessage {
			out := inOrder(evs)
			out[0], out[2] = out[2], out[0] // a: 2 before 0
			return out
		}, want: Report{SourceCount: 6, TargetCount: 6, Expected: 6, Delivered: 6, OrderViolations: 1, OK: true}},
		{name: "other keys interleaving is not a violation", ledger: base, target: func(evs []event.Event) []targetMessage {
			out := inOrder(evs)
			out[0], out[1] = out[1], out[0] // b before a: different keys
			out[4], out[5] = out[5], out[4]
			return out
		}, want: Report{SourceCount: 6, TargetCount: 6, Expected: 6, Delivered: 6, OK: true}},
		{name: "order across target partitions is not compared", ledger: base, target: func(evs []event.Event) []targetMessage {
			out := inOrder(evs)
			out[2].Partition = 1
			out[0], out[2] = out[2], out[0]
			return out
		}, want: Report{SourceCount: 6, TargetCount: 6, Expected: 6, Delivered: 6, OK: true}},
		{name: "mismatched body, key and header", ledger: base, target: func(evs []event.Event) []targetMessage {
			out := inOrder(evs)
			out[0].Event.Value = []byte("changed")
			out[1].Event.Key = []byte("other")
			out[3].Event.Headers[0].Value = []byte("2")
			return out
		}, want: Report{SourceCount: 6, TargetCount: 6, Expected: 6, Delivered: 6, Mismatched: 3}},
		{name: "filtered events are not expected", ledger: base, filtered: map[int]bool{1: true, 3: true},
			target: func(evs []event.Event) []targetMessage {
				out := inOrder(evs)
				return []targetMessage{out[0], out[2], out[4], out[5]}
			}, want: Report{SourceCount: 6, TargetCount: 4, FilteredOut: 2, Expected: 4, Delivered: 4, OK: true}},
		{name: "a filtered event in the target is extra", ledger: base, filtered: map[int]bool{1: true},
			target: inOrder, want: Report{SourceCount: 6, TargetCount: 6, FilteredOut: 1, Expected: 5, Delivered: 5, Extra: 1, OK: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(digestOptionsFor(KindKafka))
			evs := tc.ledger()
			for i := range evs {
				v.addLedger(&evs[i], sourceIDOf(KindAMQP, &evs[i]), tc.filtered[i])
			}
			for _, m := range tc.target(evs) {
				v.addTarget(&m)
			}
			got := v.report()
			got.MissingIDs, got.MismatchedIDs, got.ExtraIDs = nil, nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("report\n got %+v\nwant %+v", got, tc.want)
			}
			var statuses []string
			if err := v.positions(func(p position) error { statuses = append(statuses, p.Status); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(statuses) != len(evs) {
				t.Fatalf("%d positions for %d ledger events", len(statuses), len(evs))
			}
		})
	}
}

// TestDigestCanonical: header order, per-hop headers and nil versus
// empty keys do not change a digest; anything carried does.
func TestDigestCanonical(t *testing.T) {
	t.Parallel()
	o := digestOptionsFor(KindKafka)
	a := event.Event{Key: nil, Value: []byte("v"), Headers: []event.Header{{Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("1")},
		{Key: "a", Value: []byte("3")}}}
	b := event.Event{Key: []byte{}, Value: []byte("v"), Headers: []event.Header{{Key: "a", Value: []byte("1")}, {Key: "kafka.offset", Value: []byte("9")},
		{Key: "a", Value: []byte("3")}, {Key: "b", Value: []byte("2")}, {Key: event.HeaderEventID, Value: []byte("x/0/1")}}}
	if digest(&a, o) != digest(&b, o) {
		t.Fatal("equal events have different digests")
	}
	c := b
	c.Headers = []event.Header{{Key: "a", Value: []byte("3")}, {Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	if digest(&a, o) == digest(&c, o) {
		t.Fatal("the order of a repeated header's values is not part of the digest")
	}
	// Length prefixes: moving bytes between fields changes the digest.
	d1 := event.Event{Key: []byte("ab"), Value: []byte("c")}
	d2 := event.Event{Key: []byte("a"), Value: []byte("bc")}
	if digest(&d1, o) == digest(&d2, o) {
		t.Fatal("key/value boundary is not part of the digest")
	}
	ts := event.Event{Value: []byte("v"), Headers: []event.Header{{Key: "amqp.timestamp", Value: []byte("1700000000")}}}
	plain := event.Event{Value: []byte("v")}
	if digest(&ts, digestOptionsFor(KindAMQP)) != digest(&plain, digestOptionsFor(KindAMQP)) {
		t.Fatal("an AMQP target's timestamp property should not count")
	}
	if digest(&ts, o) == digest(&plain, o) {
		t.Fatal("amqp.timestamp is carried to Kafka and must count")
	}
	j1 := event.Event{Value: []byte(`{"a": 1}`)}
	j2 := event.Event{Value: []byte(`{"a":1}`)}
	if digest(&j1, digestOptionsFor(KindBridge)) != digest(&j2, digestOptionsFor(KindBridge)) {
		t.Fatal("a bridge target re-encodes JSON; compact values should compare equal")
	}
}
