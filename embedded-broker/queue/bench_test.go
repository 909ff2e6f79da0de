package queue

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// openBench opens a Manager on the OS file system under policy.
func openBench(b *testing.B, policy string) (*Manager, *Queue) {
	b.Helper()
	m, err := Open(Options{Dir: b.TempDir(), Fsync: policy, FsyncInterval: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	q, err := m.Create(Config{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return m, q
}

func benchInputs(n, size int) []SendInput {
	in := make([]SendInput, n)
	for i := range in {
		in[i] = SendInput{Body: make([]byte, size), Attributes: []Attribute{{Name: "bridge-event-id", DataType: "String", Value: []byte("orders/0/123")}}}
	}
	return in
}

// BenchmarkSendReceiveDelete is the SQS API's loop without the protocol:
// send 10, receive 10, delete 10, 200-byte bodies, fsync every 10ms.
func BenchmarkSendReceiveDelete(b *testing.B) {
	for _, policy := range []string{"interval", "always"} {
		b.Run("fsync="+policy, func(b *testing.B) {
			_, q := openBench(b, policy)
			ctx := context.Background()
			in := benchInputs(10, 200)
			handles := make([]string, 0, 10)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if _, err := q.Send(ctx, in); err != nil {
					b.Fatal(err)
				}
				msgs, err := q.Receive(ctx, 10, time.Minute, 0)
				if err != nil || len(msgs) != 10 {
					b.Fatalf("received %d, %v", len(msgs), err)
				}
				handles = handles[:0]
				for _, msg := range msgs {
					handles = append(handles, msg.ReceiptHandle)
				}
				for _, err := range q.DeleteBatch(ctx, handles) {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*10)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSend100 is the pipeline -> queue path: Send with batches of 100.
func BenchmarkSend100(b *testing.B) {
	for _, policy := range []string{"interval", "always"} {
		b.Run("fsync="+policy, func(b *testing.B) {
			_, q := openBench(b, policy)
			ctx := context.Background()
			in := benchInputs(100, 200)
			b.SetBytes(100 * 200)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if _, err := q.Send(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSend100Parallel: concurrent producers share writes and fsyncs.
func BenchmarkSend100Parallel(b *testing.B) {
	_, q := openBench(b, "always")
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		in := benchInputs(100, 200)
		for pb.Next() {
			if _, err := q.Send(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkLongPollLatency measures how long a parked long-polling
// receiver takes to return after a Send returns.
func BenchmarkLongPollLatency(b *testing.B) {
	_, q := openBench(b, "interval")
	ctx := context.Background()
	type got struct {
		at  time.Time
		err error
	}
	ready := make(chan struct{}, 1)
	results := make(chan got, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case ready <- struct{}{}:
			}
			msgs, err := q.Receive(ctx, 1, time.Minute, 20*time.Second)
			if err == nil && len(msgs) == 1 {
				err = q.Delete(ctx, msgs[0].ReceiptHandle)
			} else if err == nil {
				err = fmt.Errorf("received %d", len(msgs))
			}
			results <- got{time.Now(), err}
		}
	}()
	in := benchInputs(1, 200)
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		<-ready
		waitParked(q)
		sent := time.Now()
		if _, err := q.Send(ctx, in); err != nil {
			b.Fatal(err)
		}
		r := <-results
		if r.err != nil {
			b.Fatal(r.err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, r.at.Sub(sent))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
}

// waitParked spins until a receiver is registered as a waiter, so the
// measured latency is the wake-up, not the receiver's start.
func waitParked(q *Queue) {
	for {
		q.mu.Lock()
		n := len(q.waiters)
		q.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Microsecond)
	}
}
