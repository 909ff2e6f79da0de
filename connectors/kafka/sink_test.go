package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/event"
)

func valueEvents(n int, from int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		k := (from + i) % 4
		evs[i] = event.Event{
			Key:   fmt.Appendf(nil, "k%d", k),
			Value: fmt.Appendf(nil, "k%d#%06d", k, (from+i)/4),
		}
	}
	return evs
}

// TestSinkCompression: every codec produces records a plain consumer reads
// back intact, with keys and headers.
func TestSinkCompression(t *testing.T) {
	t.Parallel()
	for _, codec := range []string{"", CompressionNone, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run("codec="+codec, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			sink := newTestSink(t, c, "out", func(cfg *SinkConfig) {
				cfg.Compression = codec
				cfg.Linger = 5 * time.Millisecond
			})
			evs := valueEvents(200, 0)
			for i := range evs {
				evs[i].Headers = []event.Header{{Key: "h", Value: evs[i].Value}, {Key: "h", Value: nil}}
			}
			if err := sink.Send(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			out := consumeAll(t, c, "out", len(evs))
			checkPerKeyOrder(t, out)
			for _, r := range out {
				if len(r.Headers) != 2 || !bytes.Equal(r.Headers[0].Value, r.Value) || r.Headers[1].Key != "h" {
					t.Fatalf("record %q: headers %v", r.Value, r.Headers)
				}
			}
		})
	}
}

// TestSinkEventIDHeader: the sink sets bridge-event-id from the backbone
// coordinates when the event does not carry one, and never doubles it.
func TestSinkEventIDHeader(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	sink := newTestSink(t, c, "out", nil)
	evs := []event.Event{
		{Topic: "orders", Partition: 2, Offset: 41, Value: []byte("added")},
		{Topic: "orders", Partition: 2, Offset: 42, Value: []byte("kept"),
			Headers: []event.Header{{Key: event.HeaderEventID, Value: []byte("origin/0/7")}, {Key: "traceparent", Value: []byte("00-x")}}},
		{Value: []byte("none")}, // no coordinates: nothing to add
	}
	if err := sink.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"added": {event.HeaderEventID + "=orders/2/41"},
		"kept":  {event.HeaderEventID + "=origin/0/7", "traceparent=00-x"},
		"none":  nil,
	}
	for _, r := range consumeAll(t, c, "out", len(evs)) {
		var got []string
		for _, h := range r.Headers {
			got = append(got, h.Key+"="+string(h.Value))
		}
		if fmt.Sprint(got) != fmt.Sprint(want[string(r.Value)]) {
			t.Errorf("%s: headers %v, want %v", r.Value, got, want[string(r.Value)])
		}
	}
}

// TestSinkFailureClasses: each failure is reported per record in a
// BatchError, classified permanent or retryable, and the other records of
// the batch are acknowledged.
func TestSinkFailureClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		topic     string
		batch     []event.Event
		failed    []int
		permanent bool
		code      error
	}{
		{
			name:  "oversize record among good ones",
			topic: "out",
			batch: []event.Event{
				{Value: []byte("ok-0")},
				{Value: bytes.Repeat([]byte("x"), 2<<20)},
				{Value: []byte("ok-2")},
			},
			failed: []int{1}, permanent: true, code: kerr.MessageTooLarge,
		},
		{
			name:   "unknown topic",
			topic:  "no-such-topic",
			batch:  []event.Event{{Value: []byte("a")}, {Value: []byte("b")}},
			failed: []int{0, 1}, permanent: true, code: kerr.UnknownTopicOrPartition,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			sink := newTestSink(t, c, tc.topic, nil)
			// franz-go gives up on an unknown topic after 4 metadata loads,
			// spaced by MetadataMinAge (5s by default).
			sink.extraOpts = []kgo.Opt{kgo.MetadataMinAge(50 * time.Millisecond)}
			err := sink.Send(context.Background(), tc.batch)
			var be *event.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("err = %v, want *event.BatchError", err)
			}
			var idx []int
			for _, f := range be.Failed {
				idx = append(idx, f.Index)
				if got := errors.Is(f.Err, event.ErrPermanent); got != tc.permanent {
					t.Errorf("item %d: permanent = %v, want %v (%v)", f.Index, got, tc.permanent, f.Err)
				}
				if !errors.Is(f.Err, tc.code) {
					t.Errorf("item %d: %v does not wrap %v", f.Index, f.Err, tc.code)
				}
				if !strings.Contains(f.Err.Error(), tc.topic) {
					t.Errorf("item %d: %q does not name the topic", f.Index, f.Err)
				}
			}
			if fmt.Sprint(idx) != fmt.Sprint(tc.failed) {
				t.Fatalf("failed indexes %v, want %v", idx, tc.failed)
			}
			if ok := len(tc.batch) - len(tc.failed); ok > 0 {
				out := consumeAll(t, c, tc.topic, ok)
				for _, r := range out {
					if !bytes.HasPrefix(r.Value, []byte("ok-")) {
						t.Fatalf("unexpected record %.20q in %s", r.Value, tc.topic)
					}
				}
			}
		})
	}
}

// TestSinkBrokerOutage: while every produce fails, Send returns retryable
// per-record errors within its delivery timeout; after recovery the same
// events are sent again and land in order, once each.
func TestSinkBrokerOutage(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var produceOutage outage
	produceOutage.install(c, 0) // kmsg.Produce
	sink := newTestSink(t, c, "out", func(cfg *SinkConfig) { cfg.DeliveryTimeout = 500 * time.Millisecond })
	// NotLeaderForPartition makes franz-go reload metadata, at most every
	// MetadataMinAge (5s by default); shortened so the test is quick.
	sink.extraOpts = []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond)}
	ctx := context.Background()

	if err := sink.Send(ctx, valueEvents(40, 0)); err != nil {
		t.Fatalf("before the outage: %v", err)
	}
	produceOutage.on.Store(true)
	pending := valueEvents(40, 40)
	start := time.Now()
	err := sink.Send(ctx, pending)
	var be *event.BatchError
	if !errors.As(err, &be) || len(be.Failed) != len(pending) {
		t.Fatalf("during the outage: err = %v, want every record failed", err)
	}
	if errors.Is(err, event.ErrPermanent) {
		t.Fatalf("outage classified permanent: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Send took %s with a 500ms delivery timeout", took)
	}
	if produceOutage.rejected.Load() == 0 {
		t.Fatal("the outage rejected no request")
	}

	produceOutage.on.Store(false)
	// The pipeline retries the failed events with backoff until Kafka is back.
	waitFor(t, 20*time.Second, func() error { return sink.Send(ctx, pending) })
	if err := sink.Send(ctx, valueEvents(40, 80)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	out := consumeAll(t, c, "out", 120)
	checkPerKeyOrder(t, out)
}

// TestSinkClose: Close before any Send is fine, Close is idempotent, and
// Send after Close fails with ErrClosed.
func TestSinkClose(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()

	unused := newTestSink(t, c, "out", nil)
	for range 2 {
		if err := unused.Close(ctx); err != nil {
			t.Fatalf("close unused sink: %v", err)
		}
	}

	sink := newTestSink(t, c, "out", nil)
	if err := sink.Send(ctx, valueEvents(10, 0)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := sink.Close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	if err := sink.Send(ctx, valueEvents(1, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v, want ErrClosed", err)
	}
	if err := sink.Send(ctx, nil); err != nil {
		t.Fatalf("empty send after close: %v (an empty batch has nothing to fail)", err)
	}
}

// TestNewSinkValidates: every problem at once, wrapping ErrConfig.
func TestNewSinkValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  SinkConfig
		want []string
	}{
		{"empty", SinkConfig{}, []string{"brokers", "topic"}},
		{"bad codec and linger", SinkConfig{Client: ClientConfig{Brokers: []string{"b:9092"}}, Topic: "t",
			Compression: "gzip2", Linger: -time.Second, DeliveryTimeout: -1}, []string{"compression", "linger", "delivery_timeout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewSink(tc.cfg)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %s", err, w)
				}
			}
		})
	}
	if _, err := NewSink(SinkConfig{Client: ClientConfig{Brokers: []string{"b:9092"}}, Topic: "t"}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// TestClassify: Kafka errors retrying cannot fix are permanent; outages,
// timeouts and a closed client stay retryable; the topic is named.
func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err       error
		permanent bool
	}{
		{kerr.MessageTooLarge, true},
		{kerr.RecordListTooLarge, true},
		{kerr.InvalidRecord, true},
		{kerr.InvalidTopicException, true},
		{kerr.TopicAuthorizationFailed, true},
		{kerr.UnknownTopicOrPartition, true}, // reported only after franz-go's retries
		{kerr.InvalidRequiredAcks, true},     // any other non-retriable Kafka error
		{kerr.NotLeaderForPartition, false},
		{kerr.RequestTimedOut, false},
		{kerr.CorruptMessage, false}, // retriable for Kafka: a bad network read
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
		{kgo.ErrClientClosed, false},
		{fmt.Errorf("wrapped: %w", kerr.MessageTooLarge), true},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			t.Parallel()
			got := classify("orders", tc.err)
			if errors.Is(got, event.ErrPermanent) != tc.permanent {
				t.Fatalf("classify(%v): permanent = %v, want %v", tc.err, !tc.permanent, tc.permanent)
			}
			if !errors.Is(got, tc.err) || !strings.Contains(got.Error(), "orders") {
				t.Fatalf("classify(%v) = %v: lost the cause or the topic", tc.err, got)
			}
		})
	}
}
