package commitlog

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

// fillSegments appends batches of varying size, with increasing timestamps,
// to a log with small segments, and returns every event written.
func fillSegments(t *testing.T, l *Log) []event.Event {
	t.Helper()
	var all []event.Event
	for b := range 60 {
		evs := makeEvents("s", 1+b%7, 20+b*3)
		for i := range evs {
			evs[i].Timestamp = baseTime.Add(time.Duration(len(all)+i) * time.Second)
		}
		if _, err := l.AppendPartition(ctxT(t), "t", 0, evs); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	return all
}

func checkLookups(t *testing.T, l *Log, all []event.Event) {
	t.Helper()
	got := readAll(t, l, "t", 0)
	if len(got) != len(all) {
		t.Fatalf("read %d events, want %d", len(got), len(all))
	}
	for off := range all {
		evs, err := l.Read("t", 0, int64(off), 1, 1)
		if err != nil || len(evs) != 1 || evs[0].Offset != int64(off) || !sameEvent(evs[0], all[off]) {
			t.Fatalf("Read(%d) = %v, %v", off, evs, err)
		}
		// Every record has a distinct second: the lookup must land on it
		// exactly, and a time just after it must land on the next one.
		at, err := l.OffsetForTime("t", 0, all[off].Timestamp)
		if err != nil || at != int64(off) {
			t.Fatalf("OffsetForTime(ts of %d) = %d, %v", off, at, err)
		}
		after, err := l.OffsetForTime("t", 0, all[off].Timestamp.Add(time.Millisecond))
		if err != nil || after != int64(off+1) {
			t.Fatalf("OffsetForTime(just after %d) = %d, %v", off, after, err)
		}
	}
	if at, err := l.OffsetForTime("t", 0, baseTime.Add(-time.Hour)); err != nil || at != 0 {
		t.Fatalf("OffsetForTime(before all) = %d, %v", at, err)
	}
}

func TestLookupAcrossSegments(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		opts := Options{Dir: dir, FS: fsys, SegmentBytes: 1500, IndexIntervalBytes: 200, Fsync: FsyncNever}
		l := openLog(t, opts)
		mustCreate(t, l, "t", 1)
		all := fillSegments(t, l)
		info, _ := l.Topic("t")
		if info.Partitions[0].Segments < 5 {
			t.Fatalf("only %d segments; the test needs many", info.Partitions[0].Segments)
		}
		checkLookups(t, l, all)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}

		// Reopened: the sealed segments' indexes come from their files.
		checkLookups(t, openLog(t, opts), all)
	})
}

func TestIndexRebuild(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, fsys vfs.FS, path string)
	}{
		{"deleted", func(t *testing.T, fsys vfs.FS, path string) {
			if err := fsys.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated mid-entry", func(t *testing.T, fsys vfs.FS, path string) {
			f, _ := fsys.OpenReadWrite(path)
			info, _ := f.Stat()
			f.Truncate(max(info.Size()-3, 0))
			f.Close()
		}},
		{"garbage", func(t *testing.T, fsys vfs.FS, path string) {
			f, _ := fsys.OpenReadWrite(path)
			f.WriteAt([]byte{0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0x00, 1, 2, 3, 4}, 0)
			f.Close()
		}},
		{"emptied", func(t *testing.T, fsys vfs.FS, path string) {
			f, _ := fsys.Create(path)
			f.Close()
		}},
	} {
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			t.Run(tc.name+suffix, func(t *testing.T) {
				t.Parallel()
				fsys := vfs.NewMem()
				opts := Options{Dir: "/d", FS: fsys, SegmentBytes: 1500, IndexIntervalBytes: 200, Fsync: FsyncNever}
				l := openLog(t, opts)
				mustCreate(t, l, "t", 1)
				all := fillSegments(t, l)
				l.Close()
				pdir := partitionDir("/d", "t", 0)
				for _, name := range listSuffix(t, fsys, pdir, suffix) {
					tc.damage(t, fsys, filepath.Join(pdir, name))
				}
				l2 := openLog(t, opts)
				checkLookups(t, l2, all)
				// And the rebuilt files are good: a third open loads them.
				l2.Close()
				checkLookups(t, openLog(t, opts), all)
			})
		}
	}
}

func TestCorruptBatchInSealedSegment(t *testing.T) {
	fsys := vfs.NewMem()
	opts := Options{Dir: "/d", FS: fsys, SegmentBytes: 1500, IndexIntervalBytes: 200, Fsync: FsyncNever}
	l := openLog(t, opts)
	mustCreate(t, l, "t", 1)
	all := fillSegments(t, l)
	l.Close()
	pdir := partitionDir("/d", "t", 0)
	logs := listSuffix(t, fsys, pdir, logSuffix)
	victim := filepath.Join(pdir, logs[1]) // a sealed segment in the middle
	f, _ := fsys.OpenReadWrite(victim)
	info, _ := f.Stat()
	f.WriteAt([]byte{0x5a}, info.Size()-5) // inside its last batch's records
	f.Close()

	l2 := openLog(t, opts)
	base, _ := parseSegmentName(logs[1])
	next, _ := parseSegmentName(logs[2])
	if _, err := l2.Read("t", 0, next-1, 1, 1); !errors.Is(err, event.ErrCorruption) {
		t.Fatalf("reading the damaged batch: %v, want ErrCorruption", err)
	}
	// Before the damage and after the segment, reads still work.
	if evs, err := l2.Read("t", 0, base, 1, 1); err != nil || len(evs) != 1 {
		t.Fatalf("read before the damage: %v, %v", evs, err)
	}
	if evs, err := l2.Read("t", 0, next, 1, 1); err != nil || !sameEvent(evs[0], all[next]) {
		t.Fatalf("read after the damaged segment: %v, %v", evs, err)
	}
	if _, end, _ := l2.Offsets("t", 0); end != int64(len(all)) {
		t.Fatalf("end offset %d after damage in a sealed segment, want %d", end, len(all))
	}
}

func TestSegmentAgeRoll(t *testing.T) {
	now := baseTime
	fsys := vfs.NewMem()
	l := openLog(t, Options{Dir: "/d", FS: fsys, SegmentAge: time.Hour, Now: func() time.Time { return now }})
	mustCreate(t, l, "t", 1)
	for i := range 4 {
		if _, err := l.AppendPartition(ctxT(t), "t", 0, makeEvents("a", 3, 10)); err != nil {
			t.Fatal(err)
		}
		info, _ := l.Topic("t")
		if got := info.Partitions[0].Segments; got != i+1 {
			t.Fatalf("after %d appends an hour apart: %d segments", i+1, got)
		}
		now = now.Add(time.Hour)
	}
}
