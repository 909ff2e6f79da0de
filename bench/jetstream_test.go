// Package bench runs the embedded commitlog and embedded NATS JetStream
// (file storage) through the same appends in one `go test -bench` run, so
// the README can state the ratio measured side by side on one machine:
//
//	cd bench && go test -run '^$' -bench . -benchtime 2s
//
// It is its own module so that nats-server stays out of the product's
// go.mod.
package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/event"
)

const (
	valueSize  = 100
	batchSize  = 100
	publishers = 64
)

// startJetStream runs an in-process NATS server with JetStream on file
// storage under a temp dir; syncAlways is JetStream's `sync_interval:
// always` (fsync after every write), otherwise it fsyncs on its default
// interval.
func startJetStream(b *testing.B, syncAlways bool, jsOpts ...jetstream.JetStreamOpt) jetstream.JetStream {
	b.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: b.TempDir(), SyncAlways: syncAlways,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server did not start")
	}
	b.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		b.Fatal(err)
	}
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "BENCH", Subjects: []string{"bench"}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		b.Fatal(err)
	}
	return js
}

func openCommitlog(b *testing.B, policy commitlog.FsyncPolicy) *commitlog.Log {
	b.Helper()
	l, err := commitlog.Open(commitlog.Options{Dir: b.TempDir(), Fsync: policy})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	if err := l.CreateTopic("bench", 1); err != nil {
		b.Fatal(err)
	}
	return l
}

func p99(lat []time.Duration) float64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return float64(lat[len(lat)*99/100].Nanoseconds())
}

// BenchmarkBatch100: 100-byte records appended 100 at a time, acknowledged
// once written (commitlog fsync=interval; JetStream async publish with its
// default interval fsync, waiting for all 100 acks).
func BenchmarkBatch100(b *testing.B) {
	value := make([]byte, valueSize)
	b.Run("system=commitlog/fsync=interval", func(b *testing.B) {
		l := openCommitlog(b, commitlog.FsyncInterval)
		evs := make([]event.Event, batchSize)
		for i := range evs {
			evs[i] = event.Event{Key: fmt.Appendf(nil, "k%d", i), Value: value}
		}
		ctx := context.Background()
		b.SetBytes(valueSize * batchSize)
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			if _, err := l.AppendPartition(ctx, "bench", 0, evs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batchSize)/time.Since(start).Seconds(), "records/s")
	})
	b.Run("system=jetstream/fsync=interval", func(b *testing.B) {
		js := startJetStream(b, false)
		b.SetBytes(valueSize * batchSize)
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			for range batchSize {
				if _, err := js.PublishAsync("bench", value); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				b.Fatal("JetStream acks timed out")
			}
		}
		b.ReportMetric(float64(b.N*batchSize)/time.Since(start).Seconds(), "records/s")
	})
}

// BenchmarkConcurrent64SyncAlways: 64 goroutines each append one 100-byte
// record at a time and wait until it is fsynced (commitlog fsync=always with
// group commit; JetStream sync_interval=always with synchronous publish).
func BenchmarkConcurrent64SyncAlways(b *testing.B) {
	value := make([]byte, valueSize)
	run := func(b *testing.B, appendOne func() error) {
		work := make(chan struct{}, publishers)
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		for range publishers {
			wg.Go(func() {
				mine := make([]time.Duration, 0, 1<<12)
				for range work {
					t0 := time.Now()
					if err := appendOne(); err != nil {
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
		b.SetBytes(valueSize)
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		b.ReportMetric(p99(lat), "p99-ns")
	}
	b.Run("system=commitlog/fsync=always", func(b *testing.B) {
		l := openCommitlog(b, commitlog.FsyncAlways)
		ctx := context.Background()
		run(b, func() error {
			_, err := l.AppendPartition(ctx, "bench", 0, []event.Event{{Value: value}})
			return err
		})
	})
	b.Run("system=jetstream/fsync=always", func(b *testing.B) {
		js := startJetStream(b, true)
		ctx := context.Background()
		run(b, func() error {
			_, err := js.Publish(ctx, "bench", value)
			return err
		})
	})
}
