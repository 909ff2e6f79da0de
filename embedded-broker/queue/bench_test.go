package queue

import (
	"context"
	"fmt"
	"runtime"
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

// pairedRound is one send 10 → receive 10 → delete 10 round on q, timed.
func pairedRound(b *testing.B, q *Queue, in []SendInput, handles []string) time.Duration {
	ctx := context.Background()
	start := time.Now()
	if _, err := q.Send(ctx, in); err != nil {
		b.Fatal(err)
	}
	msgs, err := q.Receive(ctx, len(in), time.Minute, 0)
	if err != nil || len(msgs) != len(in) {
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
	return time.Since(start)
}

// BenchmarkPriorityVsPlain is the figure: a priority queue's send
// → receive → delete loop (no API) against a plain queue's, in the same
// run. Each iteration does one round of 10 messages on each queue in turn,
// so machine noise hits both alike; priority-% is the priority queue's
// rate as a percentage of the plain one's (the target is ≥ 70). The
// priority queue has 10 levels and a backlog of 1,000 messages spread
// over them, so every receive picks among non-empty levels; the plain
// queue carries the same backlog.
func BenchmarkPriorityVsPlain(b *testing.B) {
	for _, aging := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprint("aging=", aging), func(b *testing.B) {
			m, plain := openBench(b, "interval")
			prio, err := m.Create(Config{Name: "prio", MaxPriority: 9, PriorityAging: aging})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			plainIn := benchInputs(10, 200)
			prioIn := benchInputs(10, 200)
			for i := range prioIn {
				prioIn[i].Priority = 9 // the round's own messages come first
			}
			backlog := benchInputs(100, 200)
			for round := range 10 {
				for i := range backlog {
					backlog[i].Priority = (round + i) % 9 // levels 0..8
				}
				if _, err := prio.Send(ctx, backlog); err != nil {
					b.Fatal(err)
				}
				if _, err := plain.Send(ctx, backlog); err != nil {
					b.Fatal(err)
				}
			}
			// The plain queue's backlog would be received first (FIFO):
			// take it in flight for the run, as the priority queue's stays
			// behind priority 9.
			for range 100 {
				if _, err := plain.Receive(ctx, 10, time.Hour, 0); err != nil {
					b.Fatal(err)
				}
			}
			handles := make([]string, 0, 10)
			var plainTime, prioTime time.Duration
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 { // alternate which goes first
					plainTime += pairedRound(b, plain, plainIn, handles)
					prioTime += pairedRound(b, prio, prioIn, handles)
				} else {
					prioTime += pairedRound(b, prio, prioIn, handles)
					plainTime += pairedRound(b, plain, plainIn, handles)
				}
			}
			plainRate := float64(b.N*10) / plainTime.Seconds()
			prioRate := float64(b.N*10) / prioTime.Seconds()
			b.ReportMetric(plainRate, "plain-msgs/s")
			b.ReportMetric(prioRate, "priority-msgs/s")
			b.ReportMetric(100*prioRate/plainRate, "priority-%")
		})
	}
}

// BenchmarkReceiveBacklog1M is the TTL figure: with 1,000,000 messages in
// a queue, what does a receive cost when the queue has a message TTL
// (every message has an expiry entry, none due) against the same queue
// without one? The two queues alternate per iteration (receive 10, delete
// 10); ttl-% is the TTL queue's receive time as a percentage of the plain
// one's (100 = free). Each iteration consumes 10 messages per queue: run it
// with -benchtime of at most 100000x.
func BenchmarkReceiveBacklog1M(b *testing.B) {
	const backlog = 1_000_000
	m, err := Open(Options{Dir: b.TempDir(), Fsync: "never"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	plain, err := m.Create(Config{Name: "plain"})
	if err != nil {
		b.Fatal(err)
	}
	ttl, err := m.Create(Config{Name: "ttl", MessageTTL: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	fill := make([]SendInput, 1000)
	for i := range fill {
		fill[i] = SendInput{Body: make([]byte, 16)}
	}
	for range backlog / len(fill) {
		for _, q := range []*Queue{plain, ttl} {
			if _, err := q.Send(ctx, fill); err != nil {
				b.Fatal(err)
			}
		}
	}
	runtime.GC() // collect the fill's garbage now, not during the timed loop
	handles := make([]string, 0, 10)
	var plainTime, ttlTime time.Duration
	round := func(q *Queue) time.Duration {
		start := time.Now()
		msgs, err := q.Receive(ctx, 10, time.Hour, 0)
		took := time.Since(start)
		if err != nil || len(msgs) != 10 {
			b.Fatalf("received %d, %v: the backlog ran out (use -benchtime 100000x or less)", len(msgs), err)
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
		return took
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // alternate which goes first
			plainTime += round(plain)
			ttlTime += round(ttl)
		} else {
			ttlTime += round(ttl)
			plainTime += round(plain)
		}
	}
	b.ReportMetric(float64(plainTime.Nanoseconds())/float64(b.N*10), "plain-ns/msg")
	b.ReportMetric(float64(ttlTime.Nanoseconds())/float64(b.N*10), "ttl-ns/msg")
	b.ReportMetric(100*float64(ttlTime)/float64(plainTime), "ttl-%")
	if st := ttl.Stats(); st.ExpiredDropped != 0 {
		b.Fatalf("%d messages expired", st.ExpiredDropped)
	}
}
