package commitlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		// advance moves the clock before retention runs.
		advance   time.Duration
		wantStart func(segBases []int64, end int64) int64
	}{
		{
			name:    "time: every sealed segment expired, the active one stays",
			opts:    Options{Retention: time.Hour},
			advance: 2 * time.Hour,
			wantStart: func(bases []int64, end int64) int64 {
				return bases[len(bases)-1]
			},
		},
		{
			name:      "time: nothing expired yet",
			opts:      Options{Retention: time.Hour},
			advance:   30 * time.Minute,
			wantStart: func([]int64, int64) int64 { return 0 },
		},
		{
			name: "bytes: keep at least RetentionBytes",
			opts: Options{RetentionBytes: 4000},
			wantStart: func(bases []int64, end int64) int64 {
				return -1 // checked through the byte total below
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := baseTime
			var mu sync.Mutex
			opts := tc.opts
			opts.Dir, opts.FS, opts.SegmentBytes, opts.Fsync = "/d", vfs.NewMem(), 1000, FsyncNever
			opts.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			l := openLog(t, opts)
			mustCreate(t, l, "t", 1)
			for range 40 {
				evs := makeEvents("r", 3, 50)
				for i := range evs {
					evs[i].Timestamp = time.Time{} // stamped with the fake clock
				}
				if _, err := l.AppendPartition(ctxT(t), "t", 0, evs); err != nil {
					t.Fatal(err)
				}
			}
			p, _ := l.partition("t", 0)
			var bases []int64
			p.mu.Lock()
			for _, s := range p.segments {
				bases = append(bases, s.base)
			}
			p.mu.Unlock()
			mu.Lock()
			now = now.Add(tc.advance)
			mu.Unlock()
			l.enforceRetention()

			start, end, _ := l.Offsets("t", 0)
			info, _ := l.Topic("t")
			if want := tc.wantStart(bases, end); want >= 0 && start != want {
				t.Fatalf("start offset %d, want %d", start, want)
			}
			if opts.RetentionBytes > 0 {
				bytes := info.Partitions[0].Bytes
				if bytes < opts.RetentionBytes || start == 0 {
					t.Fatalf("after byte retention: %d bytes kept, start %d", bytes, start)
				}
				// One segment fewer would be below the limit.
				p.mu.Lock()
				first := p.segments[0].readable
				p.mu.Unlock()
				if bytes-first >= opts.RetentionBytes {
					t.Fatalf("kept %d bytes; dropping the oldest segment (%d) would still keep the limit", bytes, first)
				}
			}
			if end != 120 {
				t.Fatalf("end moved to %d", end)
			}
			if start > 0 {
				var oor *OffsetOutOfRangeError
				if _, err := l.Read("t", 0, start-1, 1, 1); !errors.As(err, &oor) || oor.Earliest != start {
					t.Fatalf("read below start: %v", err)
				}
				names := listSuffix(t, opts.FS, partitionDir("/d", "t", 0), logSuffix)
				if first, _ := parseSegmentName(names[0]); first != start {
					t.Fatalf("first segment file %s, start %d", names[0], start)
				}
			}
			if evs := readAll(t, l, "t", 0); int64(len(evs)) != end-start {
				t.Fatalf("read from start: %d events, want %d", len(evs), end-start)
			}
			// Retention survives a reopen.
			l.Close()
			l2 := openLog(t, opts)
			if s2, e2, _ := l2.Offsets("t", 0); s2 != start || e2 != end {
				t.Fatalf("after reopen [%d, %d), want [%d, %d)", s2, e2, start, end)
			}
		})
	}
}

func TestRetentionWhileReading(t *testing.T) {
	opts := Options{Dir: "/d", FS: vfs.NewMem(), SegmentBytes: 1000, RetentionBytes: 1, Fsync: FsyncNever}
	l := openLog(t, opts)
	mustCreate(t, l, "t", 1)
	for range 20 {
		l.AppendPartition(ctxT(t), "t", 0, makeEvents("r", 3, 50))
	}
	p, _ := l.partition("t", 0)
	p.mu.Lock()
	seg, _ := p.locateLocked(0) // a reader inside the oldest segment
	p.mu.Unlock()
	l.enforceRetention()
	buf := make([]byte, 10)
	if _, err := seg.log.ReadAt(buf, 0); err != nil {
		t.Fatalf("a pinned segment was closed under its reader: %v", err)
	}
	p.release(seg)
	if _, err := seg.log.ReadAt(buf, 0); err == nil {
		t.Fatal("the deleted segment stayed open after its last reader left")
	}
}

func TestFetchLongPoll(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, l *Log)
	}{
		{"wakes on append", func(t *testing.T, l *Log) {
			var got []event.Event
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				got, err = l.Fetch(context.Background(), "t", 0, 0, 10, 1<<20)
			}()
			synctest.Wait() // the fetcher is blocked, not spinning
			select {
			case <-done:
				t.Fatal("Fetch returned on an empty partition")
			default:
			}
			time.Sleep(time.Minute) // fake time: nothing may wake it
			synctest.Wait()
			select {
			case <-done:
				t.Fatal("Fetch returned without an append")
			default:
			}
			if _, err := l.AppendPartition(context.Background(), "t", 0, makeEvents("f", 2, 5)); err != nil {
				t.Fatal(err)
			}
			<-done
			if err != nil || len(got) != 2 {
				t.Fatalf("Fetch = %d events, %v", len(got), err)
			}
		}},
		{"returns on cancel", func(t *testing.T, l *Log) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			evs, err := l.Fetch(ctx, "t", 0, 0, 10, 1<<20)
			if !errors.Is(err, context.DeadlineExceeded) || evs != nil {
				t.Fatalf("Fetch = %v, %v", evs, err)
			}
			if waited := time.Since(start); waited != 5*time.Second {
				t.Fatalf("waited %v", waited)
			}
		}},
		{"returns at once when data exists", func(t *testing.T, l *Log) {
			l.AppendPartition(context.Background(), "t", 0, makeEvents("f", 3, 5))
			evs, err := l.Fetch(context.Background(), "t", 0, 1, 10, 1<<20)
			if err != nil || len(evs) != 2 || evs[0].Offset != 1 {
				t.Fatalf("Fetch = %v, %v", evs, err)
			}
		}},
		{"reader follows appends", func(t *testing.T, l *Log) {
			r, err := l.NewReader("t", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for i := range 5 {
					time.Sleep(time.Second)
					l.AppendPartition(context.Background(), "t", 0, makeEvents("r", i+1, 5))
				}
			}()
			var n int
			for n < 15 {
				evs, err := r.Next(context.Background(), 100, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					if ev.Offset != int64(n) {
						t.Fatalf("reader got offset %d, want %d", ev.Offset, n)
					}
					n++
				}
				if r.Offset() != int64(n) {
					t.Fatalf("Offset() = %d after %d events", r.Offset(), n)
				}
			}
			r.SetOffset(3)
			if evs, _ := r.Next(context.Background(), 1, 1); evs[0].Offset != 3 || r.Offset() != 4 {
				t.Fatalf("after SetOffset(3): %v, offset %d", evs, r.Offset())
			}
		}},
		{"returns ErrClosed on close", func(t *testing.T, l *Log) {
			done := make(chan error)
			go func() {
				_, err := l.Fetch(context.Background(), "t", 0, 0, 1, 1)
				done <- err
			}()
			synctest.Wait()
			l.Close()
			if err := <-done; !errors.Is(err, ErrClosed) {
				t.Fatalf("Fetch after Close: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, err := Open(Options{Dir: "/d", FS: vfs.NewMem()})
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				mustCreate(t, l, "t", 1)
				tc.run(t, l)
			})
		})
	}
}

func TestFsyncIntervalSyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := vfs.NewMem()
		l, err := Open(Options{Dir: "/d", FS: fsys, Fsync: FsyncInterval, FsyncInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		mustCreate(t, l, "t", 1)
		if _, err := l.AppendPartition(context.Background(), "t", 0, makeEvents("i", 5, 10)); err != nil {
			t.Fatal(err)
		}
		// Before the tick, a power cut may lose the write (it is not synced).
		if n := reopenCount(t, fsys.CrashClone(vfs.CrashOptions{})); n != 0 {
			t.Fatalf("unsynced data survived a crash that drops unsynced data: %d events", n)
		}
		time.Sleep(11 * time.Millisecond)
		synctest.Wait()
		if n := reopenCount(t, fsys.CrashClone(vfs.CrashOptions{})); n != 5 {
			t.Fatalf("after one fsync interval %d events survive, want 5", n)
		}
	})
}

func reopenCount(t *testing.T, fsys vfs.FS) int64 {
	t.Helper()
	l, err := Open(Options{Dir: "/d", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, end, err := l.Offsets("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	return end
}

// TestOnSyncObservesFsyncs: OnSync sees one call per group-commit fsync
// under FsyncAlways and per flush under FsyncInterval, and none under
// FsyncNever (until close).
func TestOnSyncObservesFsyncs(t *testing.T) {
	for _, tc := range []struct {
		policy FsyncPolicy
		min    int64
		max    int64
	}{
		{FsyncAlways, 3, 3}, // three sequential appends, three group commits
		{FsyncNever, 0, 0},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			var calls atomic.Int64
			l, err := Open(Options{Dir: "/d", FS: vfs.NewMem(), Fsync: tc.policy,
				OnSync: func(d time.Duration) {
					if d < 0 {
						t.Errorf("negative fsync duration %v", d)
					}
					calls.Add(1)
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			mustCreate(t, l, "t", 1)
			for i := range 3 {
				if _, err := l.AppendPartition(context.Background(), "t", 0, makeEvents(fmt.Sprint(i), 2, 10)); err != nil {
					t.Fatal(err)
				}
			}
			if n := calls.Load(); n < tc.min || n > tc.max {
				t.Fatalf("OnSync called %d times, want %d..%d", n, tc.min, tc.max)
			}
		})
	}
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		l, err := Open(Options{Dir: "/d", FS: vfs.NewMem(), Fsync: FsyncInterval, FsyncInterval: 10 * time.Millisecond,
			OnSync: func(time.Duration) { calls.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		mustCreate(t, l, "t", 1)
		if _, err := l.AppendPartition(context.Background(), "t", 0, makeEvents("i", 5, 10)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(11 * time.Millisecond)
		synctest.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("interval flush: OnSync called %d times, want 1", n)
		}
	})
}
