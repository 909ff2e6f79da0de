package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bridgeio/bridge/event"
)

const partitions = 6

// newCluster starts a 3-broker kfake cluster with topics "in" and "out" of
// six partitions each, closed at the end of the test.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(partitions, "in", "out")}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func clientConfig(c *kfake.Cluster) ClientConfig {
	return ClientConfig{Brokers: c.ListenAddrs(), ClientID: "bridge-test"}
}

// testLogger writes Warn and above to stderr when BRIDGE_TEST_LOG is set, and
// nothing otherwise.
func testLogger() *slog.Logger {
	if os.Getenv("BRIDGE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// bareClient is a plain franz-go client for the test to produce, consume
// and inspect with, independent of the code under test.
func bareClient(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceInput writes records to "in" and fails the test on any error.
func produceInput(t testing.TB, cl *kgo.Client, records []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce input: %v", err)
	}
}

// keyedRecords makes n records over nKeys keys; the value is "KEY#SEQ" where
// SEQ counts per key, so per-key order can be checked on the other side.
func keyedRecords(topic string, n, nKeys, from int) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	for i := range n {
		k := (from + i) % nKeys
		seq := (from + i) / nKeys
		rs[i] = &kgo.Record{
			Topic: topic,
			Key:   fmt.Appendf(nil, "k%d", k),
			Value: fmt.Appendf(nil, "k%d#%06d", k, seq),
		}
	}
	return rs
}

// consumeAll reads exactly n records of topic from the start, with a direct
// (non-group) consumer.
func consumeAll(t testing.TB, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := bareClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records from %s before timeout", len(out), n, topic)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// committed returns the group's committed offsets of topic by partition.
func committed(t testing.TB, c *kfake.Cluster, group, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(bareClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	out := make(map[int32]int64)
	for p, o := range resp[topic] {
		if o.Err == nil {
			out[p] = o.At
		}
	}
	return out
}

func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, o := range m {
		n += o
	}
	return n
}

// waitFor polls fn until it returns nil or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// collector is an in-memory backbone: deliver appends the batch, unless a
// failure is injected.
type collector struct {
	mu     sync.Mutex
	events []event.Event
	calls  int
	// fail, when set, decides whether delivery call number n (from 1) fails.
	fail func(n int, batch []event.Event) error
}

func (c *collector) deliver(_ context.Context, batch []event.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		if err := c.fail(c.calls, batch); err != nil {
			return err
		}
	}
	c.events = append(c.events, batch...)
	return nil
}

func (c *collector) snapshot() []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event.Event(nil), c.events...)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// waitCount waits until the collector holds at least n events.
func (c *collector) waitCount(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, func() error {
		if got := c.count(); got < n {
			return fmt.Errorf("collected %d of %d events", got, n)
		}
		return nil
	})
}

// runSource runs src in the background until the returned stop is called;
// stop waits for Run to return and fails the test if it returned an error.
func runSource(t testing.TB, src *Source, deliver event.DeliverFunc) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, deliver) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("source run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("source did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newTestSource(t testing.TB, c *kfake.Cluster, group string, mod func(*SourceConfig)) *Source {
	t.Helper()
	cfg := SourceConfig{
		Client:         clientConfig(c),
		Topics:         []string{"in"},
		Group:          group,
		Name:           "kafka-in",
		MaxBatch:       100,
		InitialBackoff: 20 * time.Millisecond,
		MaxBackoff:     100 * time.Millisecond,
		Logger:         testLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func newTestSink(t testing.TB, c *kfake.Cluster, topic string, mod func(*SinkConfig)) *Sink {
	t.Helper()
	cfg := SinkConfig{Client: clientConfig(c), Topic: topic, Logger: testLogger()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// outage makes the cluster fail every request of key with a retriable
// error (produce) or by closing the connection (other keys) while on is set.
type outage struct {
	on       atomic.Bool
	rejected atomic.Int64 // requests failed so far
}

func (o *outage) install(c *kfake.Cluster, key int16) {
	c.ControlKey(key, func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !o.on.Load() {
			return nil, nil, false
		}
		o.rejected.Add(1)
		if preq, ok := req.(*kmsg.ProduceRequest); ok {
			return failProduce(preq), nil, true
		}
		return nil, fmt.Errorf("injected outage"), true
	})
}

// failProduce answers a produce request with NotLeaderForPartition for
// every partition: a response, so franz-go may time records out, and a
// retriable code, so it retries until then.
func failProduce(req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
