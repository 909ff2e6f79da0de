package queue

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

// TestIdleQueueDeleted: a queue with an IdleTimeout is deleted once nobody
// sent, received or deleted for that long; a long-polling receiver keeps it
// alive, and a receiver parked on it when it goes gets ErrNoSuchQueue.
func TestIdleQueueDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "reply-1", IdleTimeout: 10 * time.Second})
		keep := mustCreate(t, m, Config{Name: "durable"})
		time.Sleep(8 * time.Second)
		sendBodies(t, q, "x") // a use: the idle time starts again
		time.Sleep(8 * time.Second)
		if _, err := m.Get("reply-1"); err != nil {
			t.Fatalf("deleted while in use: %v", err)
		}
		// A receiver long-polling for 20 s (longer than the idle time) keeps
		// the queue; so does the polling that follows.
		receive(t, q, 1, time.Minute)
		for range 3 {
			if _, err := q.Receive(context.Background(), 1, time.Minute, 20*time.Second); err != nil {
				t.Fatalf("long poll: %v", err)
			}
		}
		if _, err := m.Get("reply-1"); err != nil {
			t.Fatalf("deleted under a long-polling receiver: %v", err)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		time.Sleep(DefaultFsyncInterval)
		synctest.Wait()
		if _, err := m.Get("reply-1"); !errors.Is(err, ErrNoSuchQueue) {
			t.Fatalf("idle queue still there: %v", err)
		}
		if _, err := q.Send(context.Background(), []SendInput{{Body: []byte("late")}}); !errors.Is(err, ErrNoSuchQueue) {
			t.Fatalf("send to the deleted queue: %v", err)
		}
		if _, err := m.Get("durable"); err != nil || keep.Stats().Visible != 0 {
			t.Fatalf("a queue without idle timeout was touched: %v", err)
		}
	})
}

// TestIdleQueueAfterRestart: after a restart a temporary queue gets its
// whole idle time again (last use is not journaled), and its idle timeout
// is kept.
func TestIdleQueueAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := vfs.NewMem()
		m := openMem(t, fs, "always")
		mustCreate(t, m, Config{Name: "tmp", IdleTimeout: time.Minute})
		time.Sleep(50 * time.Second)
		mustDo(t, m.Close())
		time.Sleep(time.Hour)
		m2 := openMem(t, fs, "always")
		defer m2.Close()
		q, err := m2.Get("tmp")
		if err != nil || q.Config().IdleTimeout != time.Minute {
			t.Fatalf("after restart: %v", err)
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if _, err := m2.Get("tmp"); err != nil {
			t.Fatalf("deleted before its idle time: %v", err)
		}
		time.Sleep(time.Second + DefaultFsyncInterval)
		synctest.Wait()
		if _, err := m2.Get("tmp"); !errors.Is(err, ErrNoSuchQueue) {
			t.Fatalf("still there: %v", err)
		}
		if names, _ := fs.List("/queues"); len(names) != 0 {
			t.Fatalf("files left: %v", names)
		}
	})
}
