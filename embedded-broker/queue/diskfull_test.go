package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

// fullFS makes journal writes fail on demand as a full disk does: part of
// the data lands, then ENOSPC.
type fullFS struct {
	vfs.FS
	full atomic.Bool
}

type fullFile struct {
	vfs.File
	fs   *fullFS
	name string
}

var errNoSpace = errors.New("no space left on device (injected)")

func (f *fullFS) Create(name string) (vfs.File, error) {
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f, name: name}, nil
}

func (f *fullFS) OpenReadWrite(name string) (vfs.File, error) {
	file, err := f.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f, name: name}, nil
}

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.full.Load() && strings.Contains(f.name, journalSuffix) {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, errNoSpace
	}
	return f.File.WriteAt(p, off)
}

// TestJournalWriteFailureRecovers is the regression test of a queue that
// refused every send, receive and delete until a restart after its journal
// write failed once (a disk that filled up for a moment; found by the e2e
// soak). Now the partial tail is truncated, the failed calls report the
// error, and once space is freed the queue works again: what was
// acknowledged survives a reopen, and the journal replays cleanly.
func TestJournalWriteFailureRecovers(t *testing.T) {
	mem := vfs.NewMem()
	fsys := &fullFS{FS: mem}
	m := openMem(t, fsys, "always")
	q := mustCreate(t, m, Config{Name: "work"})
	sendBodies(t, q, "before")

	fsys.full.Store(true)
	if _, err := q.Send(context.Background(), []SendInput{{Body: []byte("during")}}); !errors.Is(err, errNoSpace) {
		t.Fatalf("send on a full disk: %v, want the write error", err)
	}
	fsys.full.Store(false)
	sendBodies(t, q, "after")
	got := receive(t, q, 10, 0) // visible again at once, except what is deleted
	for _, msg := range got {
		if string(msg.Body) == "before" {
			if err := q.Delete(context.Background(), msg.ReceiptHandle); err != nil {
				t.Fatalf("delete after the disk was freed: %v", err)
			}
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := openMem(t, mem, "always")
	q2, err := m2.Get("work")
	if err != nil {
		t.Fatal(err)
	}
	left := bodies(receive(t, q2, 10, time.Minute))
	slices.Sort(left)
	// "during" was stored in memory before its write failed; its record is
	// written with the next one, so it survives too (its sender saw an
	// error and may send it again: at-least-once). "before" was deleted.
	if want := []string{"after", "during"}; !slices.Equal(left, want) {
		t.Fatalf("after reopen: %q, want %q", left, want)
	}
	_ = m2.Close()
}

// TestJournalWriteFailureConcurrentSends: senders keep sending while the
// journal's writes fail for a moment. Every send that was acknowledged is
// in the queue after a reopen, and the journal replays without damage.
func TestJournalWriteFailureConcurrentSends(t *testing.T) {
	mem := vfs.NewMem()
	fsys := &fullFS{FS: mem}
	m := openMem(t, fsys, "always")
	q := mustCreate(t, m, Config{Name: "work"})
	var mu sync.Mutex
	acked := map[string]bool{}
	failed := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("w%d-%d", w, i)
				_, err := q.Send(context.Background(), []SendInput{{Body: []byte(body)}})
				mu.Lock()
				if err == nil {
					acked[body] = true
				} else {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(30 * time.Millisecond)
	fsys.full.Store(true)
	time.Sleep(30 * time.Millisecond)
	fsys.full.Store(false)
	time.Sleep(30 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed == 0 {
		t.Fatal("no send failed: the fault was not exercised")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := openMem(t, mem, "always")
	defer m2.Close()
	q2, err := m2.Get("work")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for {
		msgs := receive(t, q2, 10, time.Minute)
		if len(msgs) == 0 {
			break
		}
		for _, b := range bodies(msgs) {
			got[b] = true
		}
	}
	for b := range acked {
		if !got[b] {
			t.Fatalf("acknowledged message %q missing after reopen (%d acknowledged, %d failed)", b, len(acked), failed)
		}
	}
	t.Logf("%d sends acknowledged, %d failed during the fault, %d stored", len(acked), failed, len(got))
}
