package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/event"
)

// Benchmarks pair bridge's connector with a bare franz-go client doing the
// same work against the same kfake cluster in the same run (issue 5 item
// 6), so the figure to read is the ratio of their records/s. kfake keeps
// data in memory without fsync: it is a protocol peer, not a performance
// reference for Kafka itself.
//
//	go test ./connectors/kafka -run '^$' -bench . -benchtime 3s -count 3

const (
	benchValueSize = 200
	benchBatch     = 1000
	benchKeys      = 100
)

var (
	benchOnce    sync.Once
	benchShared  *kfake.Cluster
	benchErr     error
	benchTopicID atomic.Int64
)

// benchCluster is one 3-broker kfake cluster shared by every benchmark of
// the process; each benchmark run gets fresh topics on it.
func benchCluster(b *testing.B) *kfake.Cluster {
	benchOnce.Do(func() { benchShared, benchErr = kfake.NewCluster(kfake.NumBrokers(3)) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchShared
}

// benchTopics creates fresh six-partition topics named after prefix.
func benchTopics(b *testing.B, c *kfake.Cluster, prefixes ...string) []string {
	b.Helper()
	id := benchTopicID.Add(1)
	names := make([]string, len(prefixes))
	for i, p := range prefixes {
		names[i] = fmt.Sprintf("%s-%d", p, id)
	}
	adm := kadm.NewClient(bareClient(b, c))
	resp, err := adm.CreateTopics(context.Background(), partitions, 1, nil, names...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		b.Fatalf("create topics: %v", err)
	}
	return names
}

// benchPayload returns benchBatch keys and 200-byte values.
func benchPayload() (keys, values [][]byte) {
	keys = make([][]byte, benchBatch)
	values = make([][]byte, benchBatch)
	for i := range benchBatch {
		keys[i] = fmt.Appendf(nil, "key-%03d", i%benchKeys)
		v := make([]byte, benchValueSize)
		for j := range v {
			v[j] = byte('a' + (i+j)%26)
		}
		values[i] = v
	}
	return keys, values
}

// bareProducerOpts are the producer settings the sink uses by default, for
// the bare client: idempotent, acks=all, no compression, no linger.
func bareProducerOpts(topic string) []kgo.Opt {
	return []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0),
	}
}

// latencies collects per-batch latencies and reports records/s and p99.
type latencies struct {
	start time.Time
	lat   []time.Duration
}

func newLatencies() *latencies {
	return &latencies{start: time.Now(), lat: make([]time.Duration, 0, 1<<14)}
}

func (l *latencies) add(d time.Duration) {
	if len(l.lat) < cap(l.lat) {
		l.lat = append(l.lat, d)
	}
}

func (l *latencies) report(b *testing.B, records int) {
	b.ReportMetric(float64(records)/time.Since(l.start).Seconds(), "records/s")
	if len(l.lat) > 0 {
		slices.Sort(l.lat)
		b.ReportMetric(float64(l.lat[len(l.lat)*99/100].Microseconds()), "p99-batch-µs")
	}
}

// BenchmarkSinkProduce: Sink.Send of 1000 200-byte keyed events per
// iteration, waiting for Kafka's acks.
func BenchmarkSinkProduce(b *testing.B) {
	c := benchCluster(b)
	topic := benchTopics(b, c, "sink")[0]
	sink := newTestSink(b, c, topic, nil)
	keys, values := benchPayload()
	batch := make([]event.Event, benchBatch)
	for i := range batch {
		batch[i] = event.Event{Key: keys[i], Value: values[i],
			Headers: []event.Header{{Key: event.HeaderEventID, Value: fmt.Appendf(nil, "orders/0/%d", i)}}}
	}
	ctx := context.Background()
	if err := sink.Send(ctx, batch); err != nil { // connect before timing
		b.Fatal(err)
	}
	b.SetBytes(benchBatch * benchValueSize)
	b.ReportAllocs()
	lat := newLatencies()
	for b.Loop() {
		t0 := time.Now()
		if err := sink.Send(ctx, batch); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	lat.report(b, b.N*benchBatch)
}

// BenchmarkBareProduce: the same records through a bare franz-go client,
// Produce with promises and a wait for all of them (ProduceSync).
func BenchmarkBareProduce(b *testing.B) {
	c := benchCluster(b)
	topic := benchTopics(b, c, "bare")[0]
	cl := bareClient(b, c, bareProducerOpts(topic)...)
	keys, values := benchPayload()
	build := func() []*kgo.Record {
		rs := make([]kgo.Record, benchBatch)
		ptrs := make([]*kgo.Record, benchBatch)
		for i := range rs {
			rs[i] = kgo.Record{Key: keys[i], Value: values[i],
				Headers: []kgo.RecordHeader{{Key: event.HeaderEventID, Value: fmt.Appendf(nil, "orders/0/%d", i)}}}
			ptrs[i] = &rs[i]
		}
		return ptrs
	}
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, build()...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchBatch * benchValueSize)
	b.ReportAllocs()
	lat := newLatencies()
	for b.Loop() {
		t0 := time.Now()
		if err := cl.ProduceSync(ctx, build()...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	lat.report(b, b.N*benchBatch)
}

// BenchmarkProducePaired alternates the two producers above within each
// iteration, so that load from other processes hits both alike, and reports
// the sink's share of the bare client's throughput ("pct-of-bare").
func BenchmarkProducePaired(b *testing.B) {
	c := benchCluster(b)
	topics := benchTopics(b, c, "paired-sink", "paired-bare")
	sink := newTestSink(b, c, topics[0], nil)
	cl := bareClient(b, c, bareProducerOpts(topics[1])...)
	keys, values := benchPayload()
	batch := make([]event.Event, benchBatch)
	for i := range batch {
		batch[i] = event.Event{Key: keys[i], Value: values[i]}
	}
	ctx := context.Background()
	var sinkTime, bareTime time.Duration
	b.ReportAllocs()
	sendSink := func() {
		if err := sink.Send(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	sendBare := func() {
		rs := make([]kgo.Record, benchBatch)
		ptrs := make([]*kgo.Record, benchBatch)
		for i := range rs {
			rs[i] = kgo.Record{Key: keys[i], Value: values[i]}
			ptrs[i] = &rs[i]
		}
		if err := cl.ProduceSync(ctx, ptrs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	timed := func(fn func()) time.Duration {
		t0 := time.Now()
		fn()
		return time.Since(t0)
	}
	// The order alternates so that neither always runs right after the other.
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			sinkTime += timed(sendSink)
			bareTime += timed(sendBare)
		} else {
			bareTime += timed(sendBare)
			sinkTime += timed(sendSink)
		}
	}
	reportPaired(b, b.N*benchBatch, sinkTime, bareTime)
}

func reportPaired(b *testing.B, records int, bridge, bare time.Duration) {
	b.ReportMetric(float64(records)/bridge.Seconds(), "records/s")
	b.ReportMetric(float64(records)/bare.Seconds(), "bare-records/s")
	b.ReportMetric(100*bare.Seconds()/bridge.Seconds(), "pct-of-bare")
}

// pipeline is one Kafka → Kafka pipeline for BenchmarkKafkaToKafka: input is
// written while its gate is closed, then the gate opens and the time until
// the output acknowledged every record is measured.
type pipeline struct {
	in, out string
	gate    atomic.Pointer[chan struct{}] // closed channel: open gate
	acked   atomic.Int64
	notify  chan struct{}
}

func newPipeline(in, out string) *pipeline {
	p := &pipeline{in: in, out: out, notify: make(chan struct{}, 1)}
	closed := make(chan struct{})
	p.gate.Store(&closed)
	return p
}

// pass blocks until the gate is open or ctx ends.
func (p *pipeline) pass(ctx context.Context) error {
	select {
	case <-*p.gate.Load():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipeline) close() {
	ch := make(chan struct{})
	p.gate.Store(&ch)
}

func (p *pipeline) open() { close(*p.gate.Load()) }

func (p *pipeline) ack(n int) {
	p.acked.Add(int64(n))
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *pipeline) waitAcked(ctx context.Context, target int64) error {
	for p.acked.Load() < target {
		select {
		case <-p.notify:
		case <-ctx.Done():
			return fmt.Errorf("%s → %s stuck at %d of %d records", p.in, p.out, p.acked.Load(), target)
		}
	}
	return nil
}

// segment writes n records to the input with the gate closed, then opens
// it and returns how long the pipeline took to move them.
func (p *pipeline) segment(ctx context.Context, filler *kgo.Client, n int) (time.Duration, error) {
	p.close()
	keys, values := benchPayload()
	rs := make([]*kgo.Record, 0, n)
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: p.in, Key: keys[i%benchBatch], Value: values[i%benchBatch]})
	}
	if err := filler.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return 0, err
	}
	target := p.acked.Load() + int64(n)
	t0 := time.Now()
	p.open()
	err := p.waitAcked(ctx, target)
	return time.Since(t0), err
}

// runBridge runs Source → in-memory backbone → Sink for p.
func runBridge(ctx context.Context, b *testing.B, wg *sync.WaitGroup, c *kfake.Cluster, p *pipeline, originHeaders bool) {
	backbone := make(chan []event.Event, 8)
	src := newTestSource(b, c, "group-"+p.in, func(cfg *SourceConfig) {
		cfg.Topics = []string{p.in}
		cfg.MaxBatch = benchBatch
		cfg.NoOriginHeaders = !originHeaders
	})
	sink := newTestSink(b, c, p.out, nil)
	wg.Go(func() {
		_ = src.Run(ctx, func(ctx context.Context, batch []event.Event) error {
			if err := p.pass(ctx); err != nil {
				return err
			}
			select {
			case backbone <- batch:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	wg.Go(func() {
		for {
			select {
			case batch := <-backbone:
				if err := sink.Send(ctx, batch); err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				p.ack(len(batch))
			case <-ctx.Done():
				return
			}
		}
	})
}

// runBare runs the same pipeline with bare franz-go clients: a group
// consumer committing after the hand-off, and a producer with the sink's
// settings copying key, value, headers and timestamp.
func runBare(ctx context.Context, b *testing.B, wg *sync.WaitGroup, c *kfake.Cluster, p *pipeline) {
	consumer := bareClient(b, c, kgo.ConsumerGroup("group-"+p.in), kgo.ConsumeTopics(p.in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
	producer := bareClient(b, c, bareProducerOpts(p.out)...)
	handoff := make(chan []*kgo.Record, 8)
	wg.Go(func() {
		for ctx.Err() == nil {
			in := consumer.PollRecords(ctx, benchBatch).Records()
			if len(in) == 0 {
				consumer.AllowRebalance()
				continue
			}
			out := make([]*kgo.Record, len(in))
			for i, r := range in {
				out[i] = &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
			}
			if p.pass(ctx) != nil {
				break
			}
			select {
			case handoff <- out:
			case <-ctx.Done():
			}
			if err := consumer.CommitRecords(ctx, in...); err != nil && ctx.Err() == nil {
				b.Error(err)
			}
			consumer.AllowRebalance()
		}
		consumer.AllowRebalance()
	})
	wg.Go(func() {
		for {
			select {
			case rs := <-handoff:
				if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				p.ack(len(rs))
			case <-ctx.Done():
				return
			}
		}
	})
}

// BenchmarkKafkaToKafka: Kafka → Source → in-memory backbone (deliver
// returns once the batch is in a channel) → Sink → Kafka, at-least-once
// (the source commits after deliver, the sink waits for acks), next to the
// same pipeline built from bare franz-go clients. Each iteration moves
// 20,000 200-byte records through each pipeline in turn, so load from other
// processes hits both alike; records/s is bridge's, bare-records/s the bare
// pipeline's, pct-of-bare their ratio. The sub-benchmarks run the source
// with its default kafka.* origin headers and without them
// (SourceConfig.NoOriginHeaders); the bare pipeline never adds them.
func BenchmarkKafkaToKafka(b *testing.B) {
	b.Run("origin_headers", func(b *testing.B) { benchKafkaToKafka(b, true) })
	b.Run("no_origin_headers", func(b *testing.B) { benchKafkaToKafka(b, false) })
}

func benchKafkaToKafka(b *testing.B, originHeaders bool) {
	const segment = 20 * benchBatch
	c := benchCluster(b)
	topics := benchTopics(b, c, "k2k-in", "k2k-out", "bare-in", "bare-out")
	bridge, bare := newPipeline(topics[0], topics[1]), newPipeline(topics[2], topics[3])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	runBridge(ctx, b, &wg, c, bridge, originHeaders)
	runBare(ctx, b, &wg, c, bare)
	filler := bareClient(b, c)
	// Warm up: group joins and connections are not part of the figure.
	for _, p := range []*pipeline{bridge, bare} {
		if _, err := p.segment(ctx, filler, benchBatch); err != nil {
			b.Fatal(err)
		}
	}
	var bridgeTime, bareTime time.Duration
	b.SetBytes(2 * segment * benchValueSize)
	b.ReportAllocs()
	// The order alternates so that neither always runs right after the other.
	for i := 0; b.Loop(); i++ {
		first, second := bridge, bare
		if i%2 == 1 {
			first, second = bare, bridge
		}
		d1, err := first.segment(ctx, filler, segment)
		if err != nil {
			b.Fatal(err)
		}
		d2, err := second.segment(ctx, filler, segment)
		if err != nil {
			b.Fatal(err)
		}
		if first == bare {
			d1, d2 = d2, d1
		}
		bridgeTime += d1
		bareTime += d2
	}
	reportPaired(b, b.N*segment, bridgeTime, bareTime)
}
