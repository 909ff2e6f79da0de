package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/event/eventtest"
)

func features(fifo bool) eventtest.Features {
	return eventtest.Features{
		BatchLimit:   10,
		Ordered:      fifo,
		SystemHeader: func(name string) bool { return strings.HasPrefix(name, HeaderPrefix) },
		Poison: func() event.Event {
			return event.Event{Value: []byte(strings.Repeat("x", MaxMessageSize+1))}
		},
		Wait: 30 * time.Second,
	}
}

func newTestSink(t testing.TB, c *awssqs.Client, url string) *Sink {
	t.Helper()
	s, err := NewSink(SinkConfig{Client: c, QueueURL: url, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestSource(t testing.TB, c *awssqs.Client, url string) *Source {
	t.Helper()
	s, err := NewSource(SourceConfig{Client: c, QueueURL: url, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSinkSuite(t *testing.T) {
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			eventtest.RunSinkSuite(t, features(false), func(t *testing.T) (event.Sink, eventtest.Reader) {
				c := p.client(t)
				url := createQueue(t, c, false, 30*time.Second)
				return newTestSink(t, c, url), reader(c, url)
			})
		})
	}
}

func TestSourceSuite(t *testing.T) {
	for _, p := range peers {
		for _, fifo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fifo=%v", p.name, fifo), func(t *testing.T) {
				t.Parallel()
				eventtest.RunSourceSuite(t, features(fifo), func(t *testing.T) eventtest.SourceEnv {
					c := p.client(t)
					url := createQueue(t, c, fifo, 5*time.Second)
					return eventtest.SourceEnv{
						NewSource: func() event.Source {
							s, err := NewSource(SourceConfig{Client: c, QueueURL: url, Name: "test", RetryBackoffMax: time.Second})
							if err != nil {
								t.Fatal(err)
							}
							return s
						},
						Publish: func(ctx context.Context, evs []event.Event) error { return publish(ctx, c, url, evs) },
					}
				})
			})
		}
	}
}

// TestKafkaShapedRoundTrip sends an event shaped like a Kafka record (key,
// 14 headers with a repeated name, W3C trace context) through the sink and
// the source and gets it back whole.
func TestKafkaShapedRoundTrip(t *testing.T) {
	for _, p := range peers {
		for _, fifo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fifo=%v", p.name, fifo), func(t *testing.T) {
				c := p.client(t)
				url := createQueue(t, c, fifo, 30*time.Second)
				in := event.Event{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("order-17"), Value: []byte(`{"id":17}`)}
				in.Headers = []event.Header{
					{Key: event.HeaderEventID, Value: []byte(in.ID())},
					{Key: event.HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
					{Key: event.HeaderTraceState, Value: []byte("congo=t61rcWkgMzE")},
					{Key: event.HeaderSource, Value: []byte("kafka-in")},
				}
				for i := range 9 {
					in.Headers = append(in.Headers, event.Header{Key: "h" + strconv.Itoa(i), Value: []byte("v" + strconv.Itoa(i))})
				}
				in.Headers = append(in.Headers, event.Header{Key: "h3", Value: []byte("again")}, event.Header{Key: "with space", Value: []byte("ok")})
				if err := newTestSink(t, c, url).Send(t.Context(), []event.Event{in}); err != nil {
					t.Fatal(err)
				}
				got := receiveVia(t, newTestSource(t, c, url), 1)
				out := got[0]
				if string(out.Key) != "order-17" || string(out.Value) != string(in.Value) || out.Source != "test" {
					t.Fatalf("got key %q value %q source %q", out.Key, out.Value, out.Source)
				}
				var user []event.Header
				for _, h := range out.Headers {
					if !strings.HasPrefix(h.Key, HeaderPrefix) {
						user = append(user, h)
					}
				}
				if !slices.Equal(perName(user), perName(in.Headers)) {
					t.Fatalf("headers\n got %q\nwant %q", perName(user), perName(in.Headers))
				}
				for _, name := range []string{HeaderMessageID, "sqs.SentTimestamp", "sqs.ApproximateReceiveCount"} {
					if _, ok := out.Header(name); !ok {
						t.Errorf("system header %s missing: %q", name, perName(out.Headers))
					}
				}
				if fifo {
					if g, _ := out.Header("sqs.MessageGroupId"); string(g) != "order-17" {
						t.Errorf("group %q, want the key", g)
					}
				}
				if time.Since(out.Timestamp) > time.Minute || out.Timestamp.IsZero() {
					t.Errorf("timestamp %v is not the send time", out.Timestamp)
				}
			})
		}
	}
}

// receiveVia runs src until n events were delivered and returns them.
func receiveVia(t *testing.T, src *Source, n int) []event.Event {
	t.Helper()
	var mu sync.Mutex
	var got []event.Event
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(_ context.Context, b []event.Event) error {
			mu.Lock()
			got = append(got, b...)
			mu.Unlock()
			return nil
		})
	}()
	waitFor(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < n {
			return fmt.Errorf("received %d of %d", len(got), n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return got
}

func perName(hs []event.Header) []string {
	s := slices.Clone(hs)
	slices.SortStableFunc(s, func(a, b event.Header) int { return strings.Compare(a.Key, b.Key) })
	out := make([]string, len(s))
	for i, h := range s {
		out[i] = h.Key + "=" + string(h.Value)
	}
	return out
}

func TestFIFOGroupAndDedup(t *testing.T) {
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			c := p.client(t)
			url := createQueue(t, c, true, 30*time.Second)
			s := newTestSink(t, c, url)
			evs := eventtest.MakeEvents("fifo", 4, 0, false)
			evs[1].Key = []byte("k1")
			params := []event.Params{{GroupID: "g0"}, {}, {}, {DedupID: "explicit"}}
			if err := s.SendParams(t.Context(), evs, params); err != nil {
				t.Fatal(err)
			}
			// Same event ids again: deduplicated by bridge-event-id, and by
			// the explicit dedup id for the last one.
			if err := s.SendParams(t.Context(), evs, params); err != nil {
				t.Fatal(err)
			}
			got := receiveVia(t, newTestSource(t, c, url), 4)
			wantGroup := map[string]string{"fifo-0": "g0", "fifo-1": "k1", "fifo-2": "default", "fifo-3": "default"}
			for _, e := range got {
				g, _ := e.Header("sqs.MessageGroupId")
				if wantGroup[string(e.Value)] != string(g) {
					t.Errorf("%s: group %q, want %q", e.Value, g, wantGroup[string(e.Value)])
				}
			}
			if d, _ := got[len(got)-1].Header("sqs.MessageDeduplicationId"); len(got) == 4 && string(d) != "explicit" {
				t.Errorf("dedup id of the last message %q, want explicit", d)
			}
			// Nothing more arrives: the second send was deduplicated.
			if extra, _ := reader(c, url)(t.Context()); len(extra) != 0 {
				t.Fatalf("%d duplicates were not deduplicated", len(extra))
			}
		})
	}
}

func TestSinkSplitsBySize(t *testing.T) {
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			c := p.client(t)
			url := createQueue(t, c, false, 30*time.Second)
			evs := eventtest.MakeEvents("big", 10, 1, false)
			for i := range evs {
				evs[i].Value = append(evs[i].Value, ' ')
				evs[i].Value = append(evs[i].Value, strings.Repeat("x", 100*1024)...)
			}
			if err := newTestSink(t, c, url).Send(t.Context(), evs); err != nil {
				t.Fatalf("send 10 x 100 KiB: %v", err)
			}
			r := reader(c, url)
			n := 0
			waitFor(t, 20*time.Second, func() error {
				got, _ := r(t.Context())
				n += len(got)
				if n < 10 {
					return fmt.Errorf("read %d of 10", n)
				}
				return nil
			})
		})
	}
}

// TestVisibilityExtended holds deliver for three times the queue's
// visibility timeout while another consumer polls: the message must not
// reappear, and is deleted once deliver succeeds.
func TestVisibilityExtended(t *testing.T) {
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			c := p.client(t)
			url := createQueue(t, c, false, 2*time.Second)
			if err := publish(t.Context(), c, url, eventtest.MakeEvents("slow", 1, 1, false)); err != nil {
				t.Fatal(err)
			}
			src := newTestSource(t, c, url)
			release := make(chan struct{})
			var calls atomic.Int32
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- src.Run(ctx, func(context.Context, []event.Event) error {
					calls.Add(1)
					<-release
					return nil
				})
			}()
			waitFor(t, 10*time.Second, func() error {
				if calls.Load() == 0 {
					return errors.New("not delivered yet")
				}
				return nil
			})
			other := reader(c, url)
			until := time.Now().Add(6 * time.Second)
			for time.Now().Before(until) {
				if got, _ := other(t.Context()); len(got) > 0 {
					t.Fatalf("message reappeared to another consumer while deliver was running")
				}
			}
			close(release)
			waitFor(t, 10*time.Second, func() error {
				out, err := c.GetQueueAttributes(t.Context(), &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
					AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
				if err != nil {
					return err
				}
				if v, nv := out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]; v != "0" || nv != "0" {
					return fmt.Errorf("queue still holds %s visible, %s invisible", v, nv)
				}
				return nil
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("deliver called %d times, want 1", n)
			}
		})
	}
}

func TestPermanentFailures(t *testing.T) {
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			c := p.client(t)
			missing := createQueue(t, c, false, 30*time.Second)
			if _, err := c.DeleteQueue(t.Context(), &awssqs.DeleteQueueInput{QueueUrl: aws.String(missing)}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err := newTestSource(t, c, missing).Run(ctx, func(context.Context, []event.Event) error { return nil })
			if !errors.Is(err, event.ErrPermanent) {
				t.Errorf("source on a missing queue: %v, want permanent", err)
			}
			err = newTestSink(t, c, missing).Send(ctx, eventtest.MakeEvents("m", 2, 1, false))
			if !errors.Is(err, event.ErrPermanent) {
				t.Errorf("sink to a missing queue: %v, want permanent", err)
			}
			var be *event.BatchError
			if !errors.As(err, &be) || len(be.Failed) != 2 {
				t.Errorf("sink to a missing queue: %v, want both items failed", err)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	if _, err := NewClient(t.Context(), ClientConfig{AccessKeyID: "AKIA"}); !errors.Is(err, ErrIncompleteKeys) {
		t.Fatalf("key without secret: %v", err)
	}
	cfg := ClientConfig{Region: "us-east-1", Endpoint: fauxqsURL, AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalr-s3cret"}
	c, err := NewClient(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListQueues(t.Context(), &awssqs.ListQueuesInput{}); err != nil {
		t.Fatalf("list queues through the endpoint override: %v", err)
	}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("conn", "cfg", cfg)
	for _, s := range []string{buf.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("secret leaked: %s", s)
		}
	}
}

func TestNewValidates(t *testing.T) {
	c := newSDKClient("http://127.0.0.1:1")
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"source without client", func() error { _, err := NewSource(SourceConfig{QueueURL: "u"}); return err }(), ErrNoClient},
		{"source without url", func() error { _, err := NewSource(SourceConfig{Client: c}); return err }(), ErrNoQueueURL},
		{"source max messages 11", func() error { _, err := NewSource(SourceConfig{Client: c, QueueURL: "u", MaxMessages: 11}); return err }(), nil},
		{"source wait 21s", func() error {
			_, err := NewSource(SourceConfig{Client: c, QueueURL: "u", WaitTime: 21 * time.Second})
			return err
		}(), nil},
		{"sink without client", func() error { _, err := NewSink(SinkConfig{QueueURL: "u"}); return err }(), ErrNoClient},
		{"sink without url", func() error { _, err := NewSink(SinkConfig{Client: c}); return err }(), ErrNoQueueURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("accepted an invalid config")
			}
			if tc.want != nil && !errors.Is(tc.err, tc.want) {
				t.Fatalf("error %v does not wrap %v", tc.err, tc.want)
			}
		})
	}
	fifo, err := NewSource(SourceConfig{Client: c, QueueURL: "http://h/000/q.fifo", Concurrency: 8})
	if err != nil || fifo.cfg.Concurrency != 1 {
		t.Fatalf("FIFO source concurrency %d (%v), want 1", fifo.cfg.Concurrency, err)
	}
}

// TestFailingDeliverBacksOff checks that a deliver that always fails sees
// its messages again only after a growing visibility backoff (1s, 2s, ...).
func TestFailingDeliverBacksOff(t *testing.T) {
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			c := p.client(t)
			url := createQueue(t, c, false, 30*time.Second)
			if err := publish(t.Context(), c, url, eventtest.MakeEvents("b", 1, 1, false)); err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
			defer cancel()
			err := newTestSource(t, c, url).Run(ctx, func(context.Context, []event.Event) error {
				calls.Add(1)
				return errors.New("backbone down")
			})
			if err != nil {
				t.Fatal(err)
			}
			// Visible again after 1s, then 2s: 2 calls (3 at most with
			// receive timing) in 3.5s.
			if n := calls.Load(); n < 2 || n > 3 {
				t.Fatalf("deliver called %d times in 3.5s, want 2..3", n)
			}
		})
	}
}

// TestFIFOStopsAfterFailedEntry sends 15 events to a FIFO queue, the 4th
// with a key that is not a valid MessageGroupId (a space): it fails as
// permanent, the rest of its request is sent, and the second request is not
// sent at all. It runs on the embedded API only: like SQS it rejects the
// group id per entry, which fauxqs 1.9.2 accepts.
func TestFIFOStopsAfterFailedEntry(t *testing.T) {
	for _, p := range peers[1:] {
		t.Run(p.name, func(t *testing.T) {
			c := p.client(t)
			url := createQueue(t, c, true, 30*time.Second)
			evs := eventtest.MakeEvents("stop", 15, 1, false)
			evs[3].Key = []byte("has space")
			err := newTestSink(t, c, url).Send(t.Context(), evs)
			var be *event.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("send: %v, want *event.BatchError", err)
			}
			var idx []int
			for _, f := range be.Failed {
				idx = append(idx, f.Index)
				if permanent := errors.Is(f.Err, event.ErrPermanent); permanent != (f.Index == 3) {
					t.Errorf("item %d: %v (permanent=%v)", f.Index, f.Err, permanent)
				}
			}
			if want := []int{3, 10, 11, 12, 13, 14}; !slices.Equal(idx, want) {
				t.Fatalf("failed items %v, want %v", idx, want)
			}
		})
	}
}

// TestAWSTraceHeaderKept carries an X-Ray trace header from an event
// received from SQS (header sqs.AWSTraceHeader) to the next SQS hop as the
// AWSTraceHeader system attribute. It runs on the embedded API only:
// fauxqs 1.9.2 drops the AWSTraceHeader system attribute.
func TestAWSTraceHeaderKept(t *testing.T) {
	const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	for _, p := range peers[1:] {
		t.Run(p.name, func(t *testing.T) {
			c := p.client(t)
			url := createQueue(t, c, false, 30*time.Second)
			e := eventtest.MakeEvents("xray", 1, 1, false)[0]
			e.Headers = append(e.Headers, event.Header{Key: HeaderAWSTraceHeader, Value: []byte(trace)})
			if err := newTestSink(t, c, url).Send(t.Context(), []event.Event{e}); err != nil {
				t.Fatal(err)
			}
			got := receiveVia(t, newTestSource(t, c, url), 1)
			if v, _ := got[0].Header(HeaderAWSTraceHeader); string(v) != trace {
				t.Fatalf("%s = %q, want %q (headers %q)", HeaderAWSTraceHeader, v, trace, perName(got[0].Headers))
			}
		})
	}
}
