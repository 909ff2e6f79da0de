package commitlog

import (
	"context"
	"sync"
	"testing"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

func TestCheckpoints(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		l := openLog(t, Options{Dir: dir, FS: fsys})
		ctx := context.Background()
		if _, ok, err := l.Committed(ctx, "g", "t", 0); ok || err != nil {
			t.Fatalf("Committed before any commit: ok=%v err=%v", ok, err)
		}
		// Many goroutines commit rising offsets on a few partitions.
		var wg sync.WaitGroup
		for part := range int32(4) {
			for w := range 4 {
				wg.Go(func() {
					for i := range 25 {
						next := int64(i*4 + w)
						if err := l.Commit(ctx, "g/1 weird", "t", part, next); err != nil {
							t.Errorf("commit: %v", err)
						}
						got, ok, err := l.Committed(ctx, "g/1 weird", "t", part)
						if err != nil || !ok {
							t.Errorf("Committed right after Commit: ok=%v err=%v", ok, err)
						}
						_ = got
					}
				})
			}
		}
		wg.Wait()
		if err := l.Commit(ctx, "other", "t", 0, 42); err != nil {
			t.Fatal(err)
		}
		for part := range int32(4) {
			if err := l.Commit(ctx, "g/1 weird", "t", part, 1000+int64(part)); err != nil {
				t.Fatal(err)
			}
		}
		check := func(name string, l *Log) {
			t.Helper()
			for part := range int32(4) {
				if next, ok, err := l.Committed(ctx, "g/1 weird", "t", part); err != nil || !ok || next != 1000+int64(part) {
					t.Fatalf("%s: Committed(%d) = %d, %v, %v", name, part, next, ok, err)
				}
			}
			if next, ok, _ := l.Committed(ctx, "other", "t", 0); !ok || next != 42 {
				t.Fatalf("%s: other group = %d, %v", name, next, ok)
			}
		}
		check("live", l)
		if mem, ok := fsys.(*vfs.MemFS); ok {
			// A power cut right after the commits returned keeps them.
			crashed := mem.CrashClone(vfs.CrashOptions{})
			check("crash clone", openLog(t, Options{Dir: dir, FS: crashed}))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		check("reopened", openLog(t, Options{Dir: dir, FS: fsys}))
	})
}

func TestTopicsSurviveReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		l := openLog(t, Options{Dir: dir, FS: fsys})
		mustCreate(t, l, "b", 3)
		mustCreate(t, l, "a", 1)
		l.AppendPartition(ctxT(t), "b", 2, makeEvents("x", 4, 4))
		l.Close()
		var crashed vfs.FS = fsys
		if mem, ok := fsys.(*vfs.MemFS); ok {
			crashed = mem.CrashClone(vfs.CrashOptions{})
		}
		l2 := openLog(t, Options{Dir: dir, FS: crashed})
		infos := l2.Topics()
		if len(infos) != 2 || infos[0].Name != "a" || infos[1].Name != "b" || len(infos[1].Partitions) != 3 {
			t.Fatalf("topics after reopen: %v", infos)
		}
		if p := infos[1].Partitions[2]; p.StartOffset != 0 || p.EndOffset != 4 || p.Segments != 1 || p.Bytes == 0 {
			t.Fatalf("partition info %+v", p)
		}
	})
}
