package commitlog

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

// The benchmarks write to the OS file system under b.TempDir(), so fsync
// costs what the machine's disk charges. Names state the case; every one
// reports records/s, and appends report their p99 latency.

func benchEvents(n, valueSize int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{
			Key:   fmt.Appendf(nil, "key-%06d", i),
			Value: make([]byte, valueSize),
			// A typical event carries its source; it costs a header.
			Source: "http",
		}
	}
	return evs
}

func openBenchLog(b *testing.B, policy FsyncPolicy) *Log {
	b.Helper()
	l, err := Open(Options{Dir: b.TempDir(), Fsync: policy})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	if err := l.CreateTopic("bench", 1); err != nil {
		b.Fatal(err)
	}
	return l
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

func BenchmarkAppend(b *testing.B) {
	for _, policy := range []FsyncPolicy{FsyncInterval, FsyncAlways} {
		for _, size := range []int{100, 1024} {
			for _, batch := range []int{1, 100} {
				b.Run(fmt.Sprintf("fsync=%s/value=%dB/batch=%d", policy, size, batch), func(b *testing.B) {
					l := openBenchLog(b, policy)
					evs := benchEvents(batch, size)
					ctx := context.Background()
					lat := make([]time.Duration, 0, 1<<16)
					b.SetBytes(int64(batch * size))
					b.ReportAllocs()
					start := time.Now()
					for b.Loop() {
						t0 := time.Now()
						if _, err := l.AppendPartition(ctx, "bench", 0, evs); err != nil {
							b.Fatal(err)
						}
						if len(lat) < cap(lat) {
							lat = append(lat, time.Since(t0))
						}
					}
					b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "records/s")
					reportLatency(b, lat)
				})
			}
		}
	}
}

// BenchmarkAppendConcurrent is group commit at work: 64 goroutines each
// append one record at a time and wait for its fsync.
func BenchmarkAppendConcurrent(b *testing.B) {
	const appenders = 64
	for _, policy := range []FsyncPolicy{FsyncAlways, FsyncInterval} {
		b.Run(fmt.Sprintf("fsync=%s/appenders=%d/value=100B/batch=1", policy, appenders), func(b *testing.B) {
			l := openBenchLog(b, policy)
			ctx := context.Background()
			work := make(chan struct{}, appenders)
			var mu sync.Mutex
			var lat []time.Duration
			var wg sync.WaitGroup
			for range appenders {
				wg.Go(func() {
					evs := benchEvents(1, 100)
					mine := make([]time.Duration, 0, 1<<12)
					for range work {
						t0 := time.Now()
						if _, err := l.AppendPartition(ctx, "bench", 0, evs); err != nil {
							b.Error(err)
							return
						}
						if len(mine) < cap(mine) {
							mine = append(mine, time.Since(t0))
						}
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			b.SetBytes(100)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			if p, _ := l.partition("bench", 0); p.syncs.Load() > 0 {
				b.ReportMetric(float64(b.N)/float64(p.syncs.Load()), "records/fsync")
			}
			reportLatency(b, lat)
		})
	}
}

func BenchmarkReadSequential(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("value=%dB/max=1000", size), func(b *testing.B) {
			l := openBenchLog(b, FsyncNever)
			evs := benchEvents(1000, size)
			const total = 200_000
			for range total / len(evs) {
				if _, err := l.AppendPartition(context.Background(), "bench", 0, evs); err != nil {
					b.Fatal(err)
				}
			}
			var read int
			from := int64(0)
			b.SetBytes(int64(size) * 1000)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				got, err := l.Read("bench", 0, from, 1000, 4<<20)
				if err != nil {
					b.Fatal(err)
				}
				read += len(got)
				from += int64(len(got))
				if from == total {
					from = 0
				}
			}
			b.ReportMetric(float64(read)/time.Since(start).Seconds(), "records/s")
		})
	}
}
