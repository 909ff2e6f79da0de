package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

// openMem opens a Manager on fs (a fresh MemFS when nil) under policy.
func openMem(t testing.TB, fs vfs.FS, policy string) *Manager {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	m, err := Open(Options{Dir: "/queues", FS: fs, Fsync: policy})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

func mustCreate(t testing.TB, m *Manager, cfg Config) *Queue {
	t.Helper()
	q, err := m.Create(cfg)
	if err != nil {
		t.Fatalf("Create %s: %v", cfg.Name, err)
	}
	return q
}

// sendBodies sends one message per body and fails on any error.
func sendBodies(t testing.TB, q *Queue, bodies ...string) []SendResult {
	t.Helper()
	in := make([]SendInput, len(bodies))
	for i, b := range bodies {
		in[i] = SendInput{Body: []byte(b)}
	}
	return mustSend(t, q, in...)
}

func mustSend(t testing.TB, q *Queue, in ...SendInput) []SendResult {
	t.Helper()
	res, err := q.Send(context.Background(), in)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("Send entry %d: %v", i, r.Err)
		}
	}
	return res
}

// receive receives without waiting, with the given visibility.
func receive(t testing.TB, q *Queue, max int, visibility time.Duration) []Message {
	t.Helper()
	msgs, err := q.Receive(context.Background(), max, visibility, 0)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return msgs
}

func bodies(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Body)
	}
	return out
}

func wantStats(t testing.TB, q *Queue, visible, inFlight, delayed int) {
	t.Helper()
	s := q.Stats()
	if s.Visible != visible || s.InFlight != inFlight || s.Delayed != delayed {
		t.Fatalf("stats = visible %d, in flight %d, delayed %d; want %d, %d, %d", s.Visible, s.InFlight, s.Delayed, visible, inFlight, delayed)
	}
}

func fmtBodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// forQueue drops the group id for a standard queue.
func (in SendInput) forQueue(cfg Config) SendInput {
	if !cfg.FIFO {
		in.GroupID = ""
	}
	return in
}

// waitFor polls check until it returns nil or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(time.Millisecond)
	}
}
