package commitlog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

type ackedBatch struct {
	partition int32
	base      int64
	evs       []event.Event
}

// TestCrashRecovery crashes the log (a MemFS crash clone) while appenders
// are in flight and checks the promise of FsyncAlways on the clone: every
// append that returned before the crash is there, everything visible is
// exactly what was written at that offset, and appends continue at the end.
func TestCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts vfs.CrashOptions
	}{
		{"power cut drops every unsynced byte", vfs.CrashOptions{}},
		{"power cut keeps random unsynced prefixes", vfs.CrashOptions{UnsyncedDataPercent: 70, Seed: 1}},
		{"power cut keeps random unsynced prefixes (2)", vfs.CrashOptions{UnsyncedDataPercent: 30, Seed: 2}},
		{"process crash keeps everything written", vfs.CrashOptions{KeepAllUnsynced: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fsys := vfs.NewMem()
			opts := Options{Dir: "/d", FS: fsys, SegmentBytes: 4000, IndexIntervalBytes: 300}
			l := openLog(t, opts)
			mustCreate(t, l, "t", 2)

			var mu sync.Mutex
			var acked []ackedBatch
			var wg sync.WaitGroup
			clones := make(chan struct{})
			for w := range 6 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					for i := 0; ; i++ {
						evs := makeEvents(fmt.Sprintf("w%d-%d", w, i), 1+rng.IntN(5), rng.IntN(120))
						part := int32(rng.IntN(2))
						base, err := l.AppendPartition(context.Background(), "t", part, evs)
						if err != nil {
							t.Errorf("append: %v", err)
							return
						}
						mu.Lock()
						acked = append(acked, ackedBatch{part, base, evs})
						mu.Unlock()
						select {
						case <-clones:
							return
						default:
						}
					}
				})
			}
			// Crash a few times mid-stream; keep the clones and what was
			// acknowledged before each.
			type crash struct {
				fs    *vfs.MemFS
				acked []ackedBatch
			}
			var crashes []crash
			for len(crashes) < 3 {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n < 50*(len(crashes)+1) {
					runtime.Gosched()
					continue
				}
				mu.Lock()
				before := slices.Clone(acked)
				mu.Unlock()
				crashes = append(crashes, crash{fsys.CrashClone(tc.opts), before})
			}
			close(clones)
			wg.Wait()
			truth := [2][]event.Event{readAll(t, l, "t", 0), readAll(t, l, "t", 1)}

			for ci, c := range crashes {
				opts := opts
				opts.FS = c.fs
				l2, err := Open(opts)
				if err != nil {
					t.Fatalf("crash %d: reopen: %v", ci, err)
				}
				var ends [2]int64
				for part := range int32(2) {
					got := readAll(t, l2, "t", part)
					ends[part] = int64(len(got))
					for i := range got {
						if !sameEvent(got[i], truth[part][i]) {
							t.Fatalf("crash %d: %d/%d is not what was written there", ci, part, i)
						}
					}
				}
				for _, b := range c.acked {
					if b.base+int64(len(b.evs)) > ends[b.partition] {
						t.Fatalf("crash %d: acknowledged batch %d/[%d,+%d) lost (end %d)", ci, b.partition, b.base, len(b.evs), ends[b.partition])
					}
				}
				next, err := l2.AppendPartition(ctxT(t), "t", 1, makeEvents("after", 2, 5))
				if err != nil || next != ends[1] {
					t.Fatalf("crash %d: append after recovery at %d, %v; want %d", ci, next, err, ends[1])
				}
				if got, err := l2.Read("t", 1, next, 2, 1<<20); err != nil || len(got) != 2 || !sameEvent(got[1], makeEvents("after", 2, 5)[1]) {
					t.Fatalf("crash %d: reading the new append: %v, %v", ci, got, err)
				}
				l2.Close()
			}
		})
	}
}

// lastBatches returns the byte ranges of the batches of a segment file.
func batchRanges(t *testing.T, fsys vfs.FS, path string) [][2]int64 {
	t.Helper()
	f, err := fsys.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	var out [][2]int64
	res := scanSegment(f, info.Size(), 0, func(h *batchHeader, pos int64) {
		out = append(out, [2]int64{pos, pos + int64(h.size())})
	})
	if res.err != nil {
		t.Fatal(res.err)
	}
	return out
}

// TestTornTail cuts the active segment at every byte of its last two
// batches, and flips every byte of them, then reopens: the acknowledged
// prefix survives, nothing half-written is visible, the cut is reported,
// and appends continue at the recovered end.
func TestTornTail(t *testing.T) {
	fsys := vfs.NewMem()
	opts := Options{Dir: "/d", FS: fsys, IndexIntervalBytes: 100}
	l := openLog(t, opts)
	mustCreate(t, l, "t", 1)
	var counts []int // events per batch
	for i := range 8 {
		evs := makeEvents(fmt.Sprint(i), 1+i%3, 30+i)
		evs[0].Source = "http"
		if _, err := l.AppendPartition(ctxT(t), "t", 0, evs); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, len(evs))
	}
	truth := readAll(t, l, "t", 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segPath := filepath.Join(partitionDir("/d", "t", 0), segmentName(0, logSuffix))
	ranges := batchRanges(t, fsys, segPath)
	nb := len(ranges)
	eventsBefore := func(batch int) int64 {
		var n int
		for _, c := range counts[:batch] {
			n += c
		}
		return int64(n)
	}

	type damage struct {
		name      string
		apply     func(f vfs.File)
		wantEnd   int64
		wantCut   bool
		allowKeep bool // an unprotected header byte (leader epoch): the batch may stay
	}
	var cases []damage
	for cut := ranges[nb-2][0]; cut < ranges[nb-1][1]; cut++ {
		batch := nb - 2
		if cut >= ranges[nb-1][0] {
			batch = nb - 1
		}
		atBoundary := cut == ranges[batch][0]
		cases = append(cases, damage{
			name:    fmt.Sprintf("cut at %d", cut),
			apply:   func(f vfs.File) { f.Truncate(cut) },
			wantEnd: eventsBefore(batch),
			wantCut: !atBoundary,
		})
	}
	for pos := ranges[nb-2][0]; pos < ranges[nb-1][1]; pos++ {
		batch := nb - 2
		if pos >= ranges[nb-1][0] {
			batch = nb - 1
		}
		rel := pos - ranges[batch][0]
		cases = append(cases, damage{
			name: fmt.Sprintf("flip at %d", pos),
			apply: func(f vfs.File) {
				b := make([]byte, 1)
				f.ReadAt(b, pos)
				f.WriteAt([]byte{b[0] ^ 0x41}, pos)
			},
			wantEnd:   eventsBefore(batch),
			wantCut:   true,
			allowKeep: rel >= 12 && rel < 16,
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			crashed := fsys.CrashClone(vfs.CrashOptions{KeepAllUnsynced: true})
			f, err := crashed.OpenReadWrite(segPath)
			if err != nil {
				t.Fatal(err)
			}
			tc.apply(f)
			f.Close()
			opts := opts
			opts.FS = crashed
			l2, err := Open(opts)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer l2.Close()
			got := readAll(t, l2, "t", 0)
			end := int64(len(got))
			if end != tc.wantEnd && !(tc.allowKeep && end == int64(len(truth))) {
				t.Fatalf("recovered %d events, want %d", end, tc.wantEnd)
			}
			for i := range got {
				if !sameEvent(got[i], truth[i]) {
					t.Fatalf("event %d differs from what was written", i)
				}
			}
			if cut := len(l2.Truncations()) > 0; cut != tc.wantCut && !(tc.allowKeep && !cut) {
				t.Fatalf("truncation reported = %v, want %v", cut, tc.wantCut)
			}
			next, err := l2.AppendPartition(ctxT(t), "t", 0, makeEvents("new", 1, 3))
			if err != nil || next != end {
				t.Fatalf("append after recovery at %d, %v; want %d", next, err, end)
			}
			if evs, err := l2.Read("t", 0, next, 1, 1); err != nil || len(evs) != 1 || string(evs[0].Value) != "new-0|" {
				t.Fatalf("reading the new append: %v, %v", evs, err)
			}
		})
	}
}
