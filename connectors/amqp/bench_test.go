package amqp

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
)

// benchMessages is how many 1 KiB messages one benchmark iteration moves
// through each of the bare client and the connector.
const benchMessages = 20000

const benchBatch = 500

func benchEvents(n int) []event.Event {
	value := bytes.Repeat([]byte("x"), 1024)
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Key: []byte("k" + strconv.Itoa(i%16)), Value: value, Headers: []event.Header{
			{Key: event.HeaderEventID, Value: []byte("bench/0/" + strconv.Itoa(i))},
			{Key: event.HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		}}
	}
	return evs
}

// reportRatio reports the connector's rate as msgs/s, the bare client's as
// bare-msgs/s, and their ratio (the figure with a target: >= 0.8).
func reportRatio(b *testing.B, n int, bridge, bare time.Duration) {
	bridgeRate := float64(n) / bridge.Seconds()
	bareRate := float64(n) / bare.Seconds()
	b.ReportMetric(bridgeRate, "msgs/s")
	b.ReportMetric(bareRate, "bare-msgs/s")
	b.ReportMetric(bridgeRate/bareRate, "ratio")
}

// BenchmarkSourceVsBare consumes benchMessages persistent 1 KiB messages
// from a classic queue with manual acks, first with a bare amqp091-go loop
// (same prefetch, one multiple-ack per batch), then with Source into an
// in-memory deliver.
func BenchmarkSourceVsBare(b *testing.B) {
	a := newAdmin(b)
	q := testName(b, "bench-src")
	a.queue(q, nil)
	evs := benchEvents(benchMessages)
	var bridgeTotal, bareTotal time.Duration
	n := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Alternate which goes first, so that neither always meets a
		// freshly filled (or freshly drained) broker.
		for j := range 2 {
			b.StopTimer()
			fill(b, a, q, evs)
			b.StartTimer()
			if (i+j)%2 == 0 {
				bareTotal += bareConsume(b, q, len(evs))
			} else {
				bridgeTotal += bridgeConsume(b, q, len(evs))
			}
		}
		n += len(evs)
	}
	reportRatio(b, n, bridgeTotal, bareTotal)
}

func fill(b *testing.B, a *admin, q string, evs []event.Event) {
	if _, err := a.channel().QueuePurge(q, false); err != nil {
		b.Fatal(err)
	}
	if err := a.publish(context.Background(), q, evs); err != nil {
		b.Fatal(err)
	}
}

func bareConsume(b *testing.B, q string, n int) time.Duration {
	start := time.Now()
	conn, err := amqp091.Dial(rabbitURL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Qos(2000, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	got := 0
	for d := range deliveries {
		got++
		if got%benchBatch == 0 || got == n {
			if err := d.Ack(true); err != nil {
				b.Fatal(err)
			}
		}
		if got == n {
			break
		}
	}
	return time.Since(start)
}

func bridgeConsume(b *testing.B, q string, n int) time.Duration {
	return consumeWith(b, SourceConfig{URL: rabbitURL(), Queue: q, Name: "bridge-bench"}, n)
}

func consumeWith(b *testing.B, cfg SourceConfig, n int) time.Duration {
	start := time.Now()
	src, err := NewSource(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Int64
	all := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(_ context.Context, batch []event.Event) error {
			if got.Add(int64(len(batch))) == int64(n) {
				close(all)
			}
			return nil
		})
	}()
	select {
	case <-all:
	case err := <-done:
		b.Fatalf("Run returned early: %v", err)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return elapsed
}

// BenchmarkSinkVsBare publishes benchMessages persistent 1 KiB messages with
// publisher confirms in batches of 500 (publish the batch, then wait for its
// confirms), first with a bare amqp091-go loop, then with Sink.Send.
func BenchmarkSinkVsBare(b *testing.B) {
	a := newAdmin(b)
	q := testName(b, "bench-sink")
	a.queue(q, nil)
	evs := benchEvents(benchMessages)
	sink, err := NewSink(SinkConfig{URL: rabbitURL(), RoutingKey: q, Name: "bridge-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close(context.Background())
	var bridgeTotal, bareTotal time.Duration
	n := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range 2 {
			b.StopTimer()
			if _, err := a.channel().QueuePurge(q, false); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if (i+j)%2 == 0 {
				bareTotal += barePublish(b, q, evs)
				continue
			}
			start := time.Now()
			for from := 0; from < len(evs); from += benchBatch {
				if err := sink.Send(context.Background(), evs[from:min(from+benchBatch, len(evs))]); err != nil {
					b.Fatal(err)
				}
			}
			bridgeTotal += time.Since(start)
		}
		n += len(evs)
	}
	reportRatio(b, n, bridgeTotal, bareTotal)
}

func barePublish(b *testing.B, q string, evs []event.Event) time.Duration {
	conn, err := amqp091.Dial(rabbitURL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	// Same message shape as the sink sends, built outside the timed loop.
	msgs := make([]amqp091.Publishing, len(evs))
	for i := range evs {
		msgs[i] = toPublishing(&evs[i])
	}
	start := time.Now()
	pending := make([]*amqp091.DeferredConfirmation, 0, benchBatch)
	for from := 0; from < len(msgs); from += benchBatch {
		pending = pending[:0]
		for i := from; i < min(from+benchBatch, len(msgs)); i++ {
			dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", q, true, false, msgs[i])
			if err != nil {
				b.Fatal(err)
			}
			pending = append(pending, dc)
		}
		for _, dc := range pending {
			if !dc.Wait() {
				b.Fatal("nack")
			}
		}
	}
	return time.Since(start)
}

// BenchmarkSourcePrefetch measures Source alone at several basic.qos
// prefetch counts (BatchSize 500), to size the default.
func BenchmarkSourcePrefetch(b *testing.B) {
	for _, prefetch := range []int{100, 500, 1000, 2000, 5000} {
		b.Run(strconv.Itoa(prefetch), func(b *testing.B) {
			a := newAdmin(b)
			q := testName(b, "bench-prefetch")
			a.queue(q, nil)
			evs := benchEvents(benchMessages)
			var total time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				fill(b, a, q, evs)
				b.StartTimer()
				total += consumeWith(b, SourceConfig{URL: rabbitURL(), Queue: q, Prefetch: prefetch, BatchSize: min(500, prefetch)}, len(evs))
				n += len(evs)
			}
			b.ReportMetric(float64(n)/total.Seconds(), "msgs/s")
		})
	}
}
