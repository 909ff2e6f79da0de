package sqs

import (
	"context"
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
)

// benchMessages is how many 1 KiB messages one iteration moves through each
// of the bare SDK loop and the connector.
const benchMessages = 5000

func benchEvents(n int) []event.Event {
	value := []byte(strings.Repeat("x", 1024))
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Key: []byte("k" + strconv.Itoa(i%16)), Value: value, Headers: []event.Header{
			{Key: event.HeaderEventID, Value: []byte("bench/0/" + strconv.Itoa(i))},
			{Key: event.HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		}}
	}
	return evs
}

func reportRatio(b *testing.B, n int, bridge, bare time.Duration) {
	bridgeRate := float64(n) / bridge.Seconds()
	bareRate := float64(n) / bare.Seconds()
	b.ReportMetric(bridgeRate, "msgs/s")
	b.ReportMetric(bareRate, "bare-msgs/s")
	b.ReportMetric(bridgeRate/bareRate, "ratio")
}

func purge(b *testing.B, c *awssqs.Client, url string) {
	// PurgeQueue's 60-second guard (real SQS) does not apply to the local
	// endpoints; a receive-and-delete drain would skew nothing either way.
	if _, err := c.PurgeQueue(context.Background(), &awssqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSinkVsBare sends benchMessages 1 KiB messages with
// SendMessageBatch of 10, one request at a time, first with a bare SDK loop
// (entries prepared outside the timed loop), then with Sink.Send in batches
// of 500.
func BenchmarkSinkVsBare(b *testing.B) {
	for _, p := range peers {
		b.Run(p.name, func(b *testing.B) {
			c := p.client(b)
			url := createQueue(b, c, false, 30*time.Second)
			sink := newTestSink(b, c, url)
			evs := benchEvents(benchMessages)
			var reqs []types.SendMessageBatchRequestEntry
			for i := range evs {
				en, err := toEntry(i%10, &evs[i], event.Params{}, false)
				if err != nil {
					b.Fatal(err)
				}
				reqs = append(reqs, en.req)
			}
			var bridgeTotal, bareTotal time.Duration
			n := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range 2 {
					b.StopTimer()
					purge(b, c, url)
					b.StartTimer()
					start := time.Now()
					if (i+j)%2 == 0 {
						for from := 0; from < len(reqs); from += 10 {
							out, err := c.SendMessageBatch(context.Background(), &awssqs.SendMessageBatchInput{
								QueueUrl: aws.String(url), Entries: reqs[from:min(from+10, len(reqs))]})
							if err != nil || len(out.Failed) > 0 {
								b.Fatalf("bare send: %v %v", err, out)
							}
						}
						bareTotal += time.Since(start)
						continue
					}
					for from := 0; from < len(evs); from += 500 {
						if err := sink.Send(context.Background(), evs[from:min(from+500, len(evs))]); err != nil {
							b.Fatal(err)
						}
					}
					bridgeTotal += time.Since(start)
				}
				n += len(evs)
			}
			reportRatio(b, n, bridgeTotal, bareTotal)
		})
	}
}

// BenchmarkSourceVsBare drains benchMessages 1 KiB messages with 4
// pollers each receiving 10 and deleting them in one DeleteMessageBatch,
// first with bare SDK goroutines, then with Source into an in-memory deliver.
func BenchmarkSourceVsBare(b *testing.B) {
	for _, p := range peers {
		b.Run(p.name, func(b *testing.B) {
			c := p.client(b)
			url := createQueue(b, c, false, 30*time.Second)
			count := benchMessages
			if p.name == "fauxqs" {
				// fauxqs scans its whole queue on each receive, so a deep
				// backlog measures fauxqs, not the client: keep it short.
				count = 500
			}
			evs := benchEvents(count)
			var bridgeTotal, bareTotal time.Duration
			n := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range 2 {
					b.StopTimer()
					// A long poll the client abandoned stays open on the
					// server (fauxqs) for its WaitTime and would take new
					// messages invisible: let those polls expire first.
					time.Sleep(1100 * time.Millisecond)
					purge(b, c, url)
					if err := publish(context.Background(), c, url, evs); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if (i+j)%2 == 0 {
						bareTotal += bareDrain(b, c, url, len(evs))
					} else {
						bridgeTotal += bridgeDrain(b, c, url, len(evs))
					}
				}
				n += len(evs)
			}
			reportRatio(b, n, bridgeTotal, bareTotal)
		})
	}
}

func bareDrain(b *testing.B, c *awssqs.Client, url string, n int) time.Duration {
	start := time.Now()
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
					QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
					MessageAttributeNames:       []string{"All"},
					MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
				})
				if err != nil || len(out.Messages) == 0 {
					continue
				}
				del := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
				for i, m := range out.Messages {
					del[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
				}
				if _, err := c.DeleteMessageBatch(context.Background(), &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del}); err != nil {
					continue
				}
				if got.Add(int64(len(out.Messages))) >= int64(n) {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func bridgeDrain(b *testing.B, c *awssqs.Client, url string, n int) time.Duration {
	start := time.Now()
	src, err := NewSource(SourceConfig{Client: c, QueueURL: url, Concurrency: 4, WaitTime: time.Second, Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	// Count deleted messages, as the bare loop does: a batch counts once
	// deliver returned and the poller came back for more, so stop when the
	// queue reports nothing left.
	var delivered atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(_ context.Context, batch []event.Event) error {
			delivered.Add(int64(len(batch)))
			return nil
		})
	}()
	for delivered.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	// The last batch's delete is in flight; Run finishes it before
	// returning (deletes outlive the stop).
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
