package commitlog

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

// TestConcurrentAppendersAndReaders: offsets handed out are dense and
// unique, and every reader sees every record once, in offset order, equal to
// what its appender wrote there. Run with -race.
func TestConcurrentAppendersAndReaders(t *testing.T) {
	const (
		appenders = 8
		appends   = 60
		readers   = 3
	)
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		l := openLog(t, Options{Dir: dir, FS: fsys, SegmentBytes: 8 << 10, IndexIntervalBytes: 512})
		mustCreate(t, l, "t", 2)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		var mu sync.Mutex
		written := map[event.Position]event.Event{}
		var appending, reading sync.WaitGroup
		for w := range appenders {
			appending.Go(func() {
				for i := range appends {
					evs := makeEvents(fmt.Sprintf("w%d-%d", w, i), 1+i%4, 16)
					pos, err := l.Append(ctx, "t", evs)
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
					mu.Lock()
					for j, p := range pos {
						if _, dup := written[p]; dup {
							t.Errorf("position %+v handed out twice", p)
						}
						written[p] = evs[j]
					}
					mu.Unlock()
				}
			})
		}
		total := 0
		for i := range appends {
			total += appenders * (1 + i%4)
		}
		// One goroutine per (reader, partition); each stops at the
		// sentinel appended after all appenders are done.
		seen := make([][2][]event.Event, readers)
		for r := range readers {
			for part := range int32(2) {
				reading.Go(func() {
					rd, err := l.NewReader("t", part, 0)
					if err != nil {
						t.Error(err)
						return
					}
					for {
						evs, err := rd.Next(ctx, 1+r*50, 1<<(10+r))
						if err != nil {
							t.Errorf("reader: %v", err)
							return
						}
						for _, ev := range evs {
							if string(ev.Value) == "stop" {
								return
							}
							if want := int64(len(seen[r][part])); ev.Offset != want {
								t.Errorf("reader %d/%d got offset %d, want %d", r, part, ev.Offset, want)
								return
							}
							seen[r][part] = append(seen[r][part], ev)
						}
					}
				})
			}
		}
		appending.Wait()
		for part := range int32(2) {
			if _, err := l.AppendPartition(ctx, "t", part, []event.Event{{Value: []byte("stop")}}); err != nil {
				t.Fatal(err)
			}
		}
		reading.Wait()
		if len(written) != total {
			t.Fatalf("%d positions, want %d", len(written), total)
		}
		for part := range int32(2) {
			_, end, _ := l.Offsets("t", part)
			for off := range end - 1 { // the last is the sentinel
				if _, ok := written[event.Position{Partition: part, Offset: off}]; !ok {
					t.Fatalf("offset %d/%d was never handed out: offsets not dense", part, off)
				}
			}
		}
		for r := range readers {
			n := 0
			for part := range int32(2) {
				for _, ev := range seen[r][part] {
					if !sameEvent(ev, written[event.Position{Partition: part, Offset: ev.Offset}]) {
						t.Fatalf("reader %d: %d/%d differs from what was appended", r, part, ev.Offset)
					}
				}
				n += len(seen[r][part])
			}
			if n != total {
				t.Fatalf("reader %d saw %d events, want %d", r, n, total)
			}
		}
	})
}

// TestCloseDuringAppends: appends racing Close either succeed (and are then
// durable: a reopen reads them) or fail with ErrClosed.
func TestCloseDuringAppends(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		opts := Options{Dir: dir, FS: fsys}
		l, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, l, "t", 1)
		var mu sync.Mutex
		acked := map[int64]event.Event{}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					evs := makeEvents(fmt.Sprintf("c%d-%d", w, i), 1, 8)
					base, err := l.AppendPartition(context.Background(), "t", 0, evs)
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("append racing Close: %v", err)
						}
						return
					}
					mu.Lock()
					acked[base] = evs[0]
					mu.Unlock()
				}
			})
		}
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 100 {
				break
			}
			runtime.Gosched()
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if err := l.CreateTopic("late", 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("CreateTopic after Close: %v", err)
		}
		l2 := openLog(t, opts)
		got := readAll(t, l2, "t", 0)
		for off, ev := range acked {
			if off >= int64(len(got)) || !sameEvent(got[off], ev) {
				t.Fatalf("acknowledged append at %d missing after Close and reopen", off)
			}
		}
	})
}
