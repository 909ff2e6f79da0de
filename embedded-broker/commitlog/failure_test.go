package commitlog

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/compression"
	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

// faultyFS fails writes or syncs of segment files on demand.
type faultyFS struct {
	vfs.FS
	failWrite, failSync atomic.Bool
}

type faultyFile struct {
	vfs.File
	fs   *faultyFS
	name string
}

var errInjected = errors.New("injected I/O error")

func (f *faultyFS) wrap(file vfs.File, name string, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f, name: name}, nil
}

func (f *faultyFS) Create(name string) (vfs.File, error) {
	file, err := f.FS.Create(name)
	return f.wrap(file, name, err)
}

func (f *faultyFS) OpenReadWrite(name string) (vfs.File, error) {
	file, err := f.FS.OpenReadWrite(name)
	return f.wrap(file, name, err)
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.failWrite.Load() && strings.HasSuffix(f.name, logSuffix) {
		// As a full disk does: part of the data lands, then ENOSPC.
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, errInjected
	}
	return f.File.WriteAt(p, off)
}

func (f *faultyFile) Sync() error {
	if f.fs.failSync.Load() && strings.HasSuffix(f.name, logSuffix) {
		return errInjected
	}
	return f.File.Sync()
}

// TestWriteFailure: after a failed fsync the partition refuses appends
// (its tail is unknown), reads of what was durable still work, and a
// reopen recovers and accepts appends again. A failed write of data (a
// full disk: part of the batch lands, then ENOSPC) fails only the appends
// it concerns: the partial tail is truncated, the offsets are taken back,
// and once the cause is gone the partition accepts appends again at the
// same end, without a reopen. (It used to fail for good until a restart,
// so a disk that filled up for a moment stopped ingest on that partition
// for the life of the process: found by e2e/TestChaosDiskFull.)
func TestWriteFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		set      func(f *faultyFS)
		recovers bool
	}{
		{"write fails", func(f *faultyFS) { f.failWrite.Store(true) }, true},
		{"fsync fails", func(f *faultyFS) { f.failSync.Store(true) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := vfs.NewMem()
			fsys := &faultyFS{FS: mem}
			opts := Options{Dir: "/d", FS: fsys}
			l := openLog(t, opts)
			mustCreate(t, l, "t", 2)
			if _, err := l.AppendPartition(ctxT(t), "t", 0, makeEvents("ok", 3, 5)); err != nil {
				t.Fatal(err)
			}
			tc.set(fsys)
			if _, err := l.AppendPartition(ctxT(t), "t", 0, makeEvents("bad", 1, 5)); !errors.Is(err, errInjected) {
				t.Fatalf("append during the fault: %v", err)
			}
			fsys.failWrite.Store(false)
			fsys.failSync.Store(false)
			next, err := l.AppendPartition(ctxT(t), "t", 0, makeEvents("after", 1, 5))
			switch {
			case tc.recovers && (err != nil || next != 3):
				t.Fatalf("append after the fault ended: offset %d, %v; want 3 (the failed append's offset, taken back)", next, err)
			case !tc.recovers && !errors.Is(err, errInjected):
				t.Fatalf("append after the fault must keep failing, got %v", err)
			}
			if _, err := l.AppendPartition(ctxT(t), "t", 1, makeEvents("other", 1, 5)); err != nil {
				t.Fatalf("another partition is unaffected: %v", err)
			}
			want := 3
			if tc.recovers {
				want = 4
			}
			evs, err := l.Read("t", 0, 0, 10, 1<<20)
			if err != nil || len(evs) != want {
				t.Fatalf("events after the fault: %d, %v; want %d", len(evs), err, want)
			}
			for i, ev := range evs {
				if ev.Offset != int64(i) || (i == 3 && !strings.HasPrefix(string(ev.Value), "after-0|")) {
					t.Fatalf("event %d: offset %d value %q", i, ev.Offset, ev.Value)
				}
			}
			l.Close()
			l2 := openLog(t, Options{Dir: "/d", FS: mem})
			_, end, _ := l2.Offsets("t", 0)
			if end < int64(want) {
				t.Fatalf("reopen lost durable events: end %d", end)
			}
			if tc.recovers && end != 4 {
				t.Fatalf("reopen after a rewound write: end %d, want 4 (the partial tail must be gone)", end)
			}
			if next, err := l2.AppendPartition(ctxT(t), "t", 0, makeEvents("new", 1, 5)); err != nil || next != end {
				t.Fatalf("append after reopen at %d, %v; want %d", next, err, end)
			}
		})
	}
}

// TestWriteFailureUnderConcurrentAppends: appenders keep appending while
// writes fail for a moment. Every append that succeeded must be read back
// at the offset it was given, with its own value, and the log must have no
// hole and no offset given twice, before and after a reopen: the rewind
// takes back the offsets of the failed group and of the group waiting
// behind it.
func TestWriteFailureUnderConcurrentAppends(t *testing.T) {
	mem := vfs.NewMem()
	fsys := &faultyFS{FS: mem}
	l := openLog(t, Options{Dir: "/d", FS: fsys})
	mustCreate(t, l, "t", 1)
	var mu sync.Mutex
	acked := map[int64]string{}
	failures := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("w%d-%d", w, i)
				off, err := l.AppendPartition(ctxT(t), "t", 0, []event.Event{{Value: []byte(v)}})
				mu.Lock()
				if err == nil {
					if prev, dup := acked[off]; dup {
						t.Errorf("offset %d given to %q and %q", off, prev, v)
					}
					acked[off] = v
				} else if errors.Is(err, errInjected) {
					failures++
				} else {
					t.Errorf("append: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	fsys.failWrite.Store(true)
	time.Sleep(50 * time.Millisecond)
	fsys.failWrite.Store(false)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures == 0 {
		t.Fatal("no append failed: the fault was not exercised")
	}
	check := func(l *Log, when string) {
		_, end, _ := l.Offsets("t", 0)
		evs, err := l.Read("t", 0, 0, int(end)+1, 1<<30)
		if err != nil || int64(len(evs)) != end {
			t.Fatalf("%s: read %d of %d events: %v", when, len(evs), end, err)
		}
		for i, ev := range evs {
			if ev.Offset != int64(i) {
				t.Fatalf("%s: event %d has offset %d", when, i, ev.Offset)
			}
			if v, ok := acked[ev.Offset]; ok && v != string(ev.Value) {
				t.Fatalf("%s: offset %d holds %q, acknowledged as %q", when, ev.Offset, ev.Value, v)
			}
		}
		for off := range acked {
			if off >= end {
				t.Fatalf("%s: acknowledged offset %d past the end %d", when, off, end)
			}
		}
	}
	check(l, "after the fault")
	l.Close()
	check(openLog(t, Options{Dir: "/d", FS: mem}), "after reopen")
	t.Logf("%d appends acknowledged, %d failed during the fault", len(acked), failures)
}

// TestWriteFailureForgetsProducerBatches: a failed write takes back the
// offsets of an idempotent producer's batch, so it must also take back the
// batch from the producer's state. Otherwise the client's retry of that
// batch (same sequence) is taken for a duplicate of a batch that is not in
// the log: it is refused again and again, and the producer is wedged until
// a restart (or, with a durable group, answered as appended: lost).
func TestWriteFailureForgetsProducerBatches(t *testing.T) {
	mem := vfs.NewMem()
	fsys := &faultyFS{FS: mem}
	l := openLog(t, Options{Dir: "/d", FS: fsys})
	mustCreate(t, l, "t", 1)
	batch := func(seq int32, tag string) []byte {
		return clientBatch(t, makeEvents(tag, 2, 10), compression.None, producerFields{id: 5, epoch: 0, sequence: seq})
	}
	if _, err := l.AppendBatches(ctxT(t), "t", 0, batch(0, "a")); err != nil {
		t.Fatal(err)
	}
	fsys.failWrite.Store(true)
	if _, err := l.AppendBatches(ctxT(t), "t", 0, batch(2, "b")); !errors.Is(err, errInjected) {
		t.Fatalf("append during the fault: %v", err)
	}
	fsys.failWrite.Store(false)
	base, err := l.AppendBatches(ctxT(t), "t", 0, batch(2, "b"))
	if err != nil || base != 2 {
		t.Fatalf("the producer's retry after the fault: base %d, %v; want 2, nil", base, err)
	}
	if _, err := l.AppendBatches(ctxT(t), "t", 0, batch(4, "c")); err != nil {
		t.Fatalf("the next batch: %v", err)
	}
	evs, err := l.Read("t", 0, 0, 10, 1<<20)
	if err != nil || len(evs) != 6 {
		t.Fatalf("read %d events, %v; want 6", len(evs), err)
	}
	// A producer whose very first batch was taken back starts again at 0.
	fsys.failWrite.Store(true)
	first := clientBatch(t, makeEvents("n", 1, 10), compression.None, producerFields{id: 6, epoch: 0, sequence: 0})
	if _, err := l.AppendBatches(ctxT(t), "t", 0, first); !errors.Is(err, errInjected) {
		t.Fatalf("append during the fault: %v", err)
	}
	fsys.failWrite.Store(false)
	if _, err := l.AppendBatches(ctxT(t), "t", 0, first); err != nil {
		t.Fatalf("a new producer's retry of its first batch: %v", err)
	}
}
