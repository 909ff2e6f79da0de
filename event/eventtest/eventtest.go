// Package eventtest is the conformance suite of the event contracts: every
// event.Sink passes RunSinkSuite and every event.Source passes
// RunSourceSuite, against the real system it talks to.
//
// The suites check the promises of package event that a user relies on:
//
//   - Sink: Send returns nil only once the target holds every event; events
//     of one key keep their order; key, value and headers (repeated names,
//     binary values where the target allows) survive the trip; a batch
//     larger than the target's own batch limit is split and delivered
//     whole; a rejected event is reported as a *event.BatchError naming its
//     index while the others are delivered; Close is idempotent and Send
//     after Close fails.
//   - Source: nothing is acknowledged upstream before deliver returns nil (a
//     failed deliver, or a stop in the middle of one, leads to redelivery,
//     never to loss); a restarted source delivers what the previous one did
//     not get acknowledged; cancelling ctx makes Run return nil promptly.
//
// The suites do not check what the contracts leave open: timestamps (their
// resolution differs per system), headers the target adds on its own (named
// by a Features.SystemHeader function and ignored), the relative order of
// different header names when the target stores headers in a map, and
// duplicates after a failure (at-least-once allows them).
//
// Both suites need a fresh, isolated upstream per subtest (a uniquely named
// queue), which the connector's test supplies through a factory.
package eventtest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

// Reader returns events the sink under test wrote, in the order the target
// hands them out. It may return fewer than were written, even none; the
// suite calls it again until it has what it expects or its deadline passes.
// A Reader consumes what it returns (a queue receive plus delete): it never
// returns the same stored message twice.
type Reader func(ctx context.Context) ([]event.Event, error)

// Features describes what the target system can carry, so that one suite
// fits Kafka, RabbitMQ and SQS.
type Features struct {
	// BatchLimit is the largest batch the target accepts in one request
	// (10 for SQS). The suite sends a batch of 2*BatchLimit+3 events. Zero
	// means 100.
	BatchLimit int
	// BinaryValues: values may be any bytes (not only valid UTF-8 text).
	BinaryValues bool
	// BinaryHeaders: header values may be any bytes.
	BinaryHeaders bool
	// HeaderOrder: the relative order of different header names survives
	// (Kafka). Without it the suite compares the values of each name in
	// order, and the set of names.
	HeaderOrder bool
	// Ordered: events of one key reach the reader in Send order. A target
	// without any ordering promise (an SQS standard queue) leaves it false.
	Ordered bool
	// SystemHeader names headers the target adds by itself (amqp.*, sqs.*);
	// they are ignored when headers are compared. Nil means none.
	SystemHeader func(name string) bool
	// Poison, when set, returns an event the target rejects for good (an
	// oversize message). The suite sends it between two good events and
	// expects a *event.BatchError with exactly its index, marked
	// event.ErrPermanent, while both good events arrive.
	Poison func() event.Event
	// Wait bounds how long the suite waits for events to arrive. Zero
	// means 30s.
	Wait time.Duration
}

func (f Features) batchLimit() int {
	if f.BatchLimit <= 0 {
		return 100
	}
	return f.BatchLimit
}

func (f Features) wait() time.Duration {
	if f.Wait <= 0 {
		return 30 * time.Second
	}
	return f.Wait
}

// MakeEvents returns n events of the shape the suites use: keys cycling
// over keys (nil key when keys is 0), a unique value "prefix-i" (binary
// bytes appended when binary is set), and headers including a trace
// context, an event id and a repeated name. Exported so that connector tests
// can publish the same shape upstream.
func MakeEvents(prefix string, n, keys int, binary bool) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		value := []byte(prefix + "-" + strconv.Itoa(i))
		if binary {
			value = append(value, 0, 0xff, 0xfe, '\n', 0x80)
		}
		e := event.Event{
			Topic:     "eventtest",
			Partition: 0,
			Offset:    int64(i),
			Value:     value,
			Timestamp: time.Now(),
		}
		if keys > 0 {
			e.Key = []byte("key-" + strconv.Itoa(i%keys))
		}
		e.Headers = []event.Header{
			{Key: event.HeaderEventID, Value: []byte(prefix + "/0/" + strconv.Itoa(i))},
			{Key: event.HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
			{Key: "seq", Value: []byte(strconv.Itoa(i))},
			{Key: "tag", Value: []byte("first")},
			{Key: "tag", Value: []byte("second")},
		}
		evs[i] = e
	}
	return evs
}

// seqOf returns the index MakeEvents encoded in the value, or -1.
func seqOf(prefix string, e event.Event) int {
	v := e.Value
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	rest, ok := bytes.CutPrefix(v, []byte(prefix+"-"))
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(string(rest))
	if err != nil {
		return -1
	}
	return n
}

// userHeaders drops the headers the target adds.
func userHeaders(f Features, hs []event.Header) []event.Header {
	out := make([]event.Header, 0, len(hs))
	for _, h := range hs {
		if f.SystemHeader != nil && f.SystemHeader(h.Key) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// diffEvent describes how got differs from want in key, value and headers,
// or returns "" when they match under f.
func diffEvent(f Features, want, got event.Event) string {
	if (want.Key == nil) != (got.Key == nil) || !bytes.Equal(want.Key, got.Key) {
		return fmt.Sprintf("key %q, want %q", got.Key, want.Key)
	}
	if !bytes.Equal(want.Value, got.Value) {
		return fmt.Sprintf("value %q, want %q", got.Value, want.Value)
	}
	wh, gh := userHeaders(f, want.Headers), userHeaders(f, got.Headers)
	if f.HeaderOrder {
		if !slices.EqualFunc(wh, gh, headerEqual) {
			return fmt.Sprintf("headers %s, want %s", fmtHeaders(gh), fmtHeaders(wh))
		}
		return ""
	}
	if !slices.Equal(perName(wh), perName(gh)) {
		return fmt.Sprintf("headers %s, want %s (compared per name)", fmtHeaders(gh), fmtHeaders(wh))
	}
	return ""
}

func headerEqual(a, b event.Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }

// perName sorts headers by name, keeping the order of values within a name,
// so that two lists compare equal when only the interleaving of names differs.
func perName(hs []event.Header) []string {
	sorted := slices.Clone(hs)
	slices.SortStableFunc(sorted, func(a, b event.Header) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	out := make([]string, len(sorted))
	for i, h := range sorted {
		out[i] = h.Key + "=" + string(h.Value)
	}
	return out
}

func fmtHeaders(hs []event.Header) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, h := range hs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", h.Key, h.Value)
	}
	b.WriteByte(']')
	return b.String()
}

// waitFor polls cond until it returns nil or timeout passes, then fails
// the test with cond's last error. It runs on the test goroutine.
func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
