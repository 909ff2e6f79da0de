package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

// TestRestartKeepsEverything runs a mixed workload on the OS file system,
// closes, reopens and checks every piece of state.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	open := func() *Manager {
		m, err := Open(Options{Dir: dir, Fsync: "interval"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ctx := context.Background()
	m := open()
	mustCreate(t, m, Config{Name: "dlq"})
	q := mustCreate(t, m, Config{Name: "work", VisibilityTimeout: time.Hour, DeadLetterQueue: "dlq", MaxReceiveCount: 5, Delay: 0})
	f := mustCreate(t, m, Config{Name: "f.fifo", FIFO: true, ContentBasedDeduplication: true})
	res := mustSend(t, q,
		SendInput{Body: []byte("deleted")},
		SendInput{Body: []byte("inflight"), Attributes: []Attribute{{Name: "k", DataType: "String", Value: []byte("v")}}},
		SendInput{Body: []byte("visible"), SystemAttributes: []Attribute{{Name: "AWSTraceHeader", DataType: "String", Value: []byte("t")}}},
		SendInput{Body: []byte("delayed"), Delay: 10 * time.Minute, HasDelay: true},
	)
	got := receive(t, q, 2, time.Hour)
	if !slices.Equal(bodies(got), []string{"deleted", "inflight"}) {
		t.Fatalf("receive = %v", bodies(got))
	}
	if err := q.Delete(ctx, got[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	fifoRes := mustSend(t, f, SendInput{Body: []byte("f1"), GroupID: "g"}, SendInput{Body: []byte("f2"), GroupID: "g"})
	if err := q.SetConfig(Config{Name: "work", VisibilityTimeout: 2 * time.Hour, DeadLetterQueue: "dlq", MaxReceiveCount: 5}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = open()
	defer m.Close()
	if got := m.List(""); !slices.Equal(got, []string{"dlq", "f.fifo", "work"}) {
		t.Fatalf("queues after restart = %v", got)
	}
	q, err := m.Get("work")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := q.Config(); cfg.VisibilityTimeout != 2*time.Hour || cfg.MaxReceiveCount != 5 {
		t.Fatalf("config after restart = %+v", cfg)
	}
	wantStats(t, q, 1, 1, 1)
	// The in-flight message's handle from before the restart still works.
	if err := q.ChangeVisibility(ctx, got[1].ReceiptHandle, 0); err != nil {
		t.Fatalf("pre-restart handle: %v", err)
	}
	after := receive(t, q, 10, time.Minute)
	slices.SortFunc(after, func(a, b Message) int { return int(a.SentAt.Sub(b.SentAt)) })
	if len(after) != 2 {
		t.Fatalf("after restart received %v", bodies(after))
	}
	for _, msg := range after {
		switch string(msg.Body) {
		case "inflight":
			if msg.ReceiveCount != 2 || msg.MessageID != res[1].MessageID || len(msg.Attributes) != 1 || string(msg.Attributes[0].Value) != "v" {
				t.Fatalf("inflight after restart = %+v", msg)
			}
		case "visible":
			if msg.ReceiveCount != 1 || len(msg.SystemAttributes) != 1 {
				t.Fatalf("visible after restart = %+v", msg)
			}
		default:
			t.Fatalf("unexpected %q", msg.Body)
		}
		if msg.ReceiptHandle == got[1].ReceiptHandle {
			t.Fatal("receipt reused across restart")
		}
	}
	f, _ = m.Get("f.fifo")
	if dup := mustSend(t, f, SendInput{Body: []byte("f1"), GroupID: "g"})[0]; dup.MessageID != fifoRes[0].MessageID {
		t.Fatal("dedup window lost across restart")
	}
	next := mustSend(t, f, SendInput{Body: []byte("f3"), GroupID: "g"})[0]
	if next.SequenceNumber <= fifoRes[1].SequenceNumber {
		t.Fatalf("sequence number went back: %s after %s", next.SequenceNumber, fifoRes[1].SequenceNumber)
	}
	if got := receive(t, f, 10, time.Minute); !slices.Equal(bodies(got), []string{"f1", "f2", "f3"}) {
		t.Fatalf("fifo after restart = %v", bodies(got))
	}
}

// TestInflightAtCrashReappearsAfterTimeout: the visibility timeout runs
// from the receive, not from the restart.
func TestInflightAtCrashReappearsAfterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := vfs.NewMem()
		m := openMem(t, fs, "always")
		q := mustCreate(t, m, Config{Name: "w"})
		sendBodies(t, q, "x")
		receive(t, q, 1, time.Minute)
		time.Sleep(50 * time.Millisecond) // the flusher writes the receive record
		crashed := fs.CrashClone(vfs.CrashOptions{KeepAllUnsynced: true})
		m.Close()
		time.Sleep(20 * time.Second)
		m2 := openMem(t, crashed, "always")
		defer m2.Close()
		q2, _ := m2.Get("w")
		wantStats(t, q2, 0, 1, 0)
		time.Sleep(40*time.Second - 50*time.Millisecond)
		got := receive(t, q2, 1, time.Minute)
		if len(got) != 1 || got[0].ReceiveCount != 2 {
			t.Fatalf("after the timeout: %+v", got)
		}
	})
}

// TestCrashKeepsAckedSendsAndDeletes drives concurrent senders and
// deleters under fsync=always, crashes at a random instant (dropping a
// random part of the unsynced data), and checks the promise: every
// acknowledged send is there unless its delete was acknowledged, and no
// acknowledged delete comes back.
func TestCrashKeepsAckedSendsAndDeletes(t *testing.T) {
	type crashCase struct {
		name   string
		policy string
		crash  vfs.CrashOptions
		// priorities: a priority queue with a TTL; each acknowledged
		// message must come back with its priority and expiry.
		priorities bool
	}
	var cases []crashCase
	for seed := range uint64(6) {
		// A power cut: under "always" only synced data is promised.
		cases = append(cases, crashCase{fmt.Sprint("always/power-cut/seed", seed), "always", vfs.CrashOptions{UnsyncedDataPercent: 50, Seed: seed}, seed%2 == 1})
	}
	for _, policy := range []string{"interval", "never"} {
		// kill -9: written data survives, so written is enough.
		cases = append(cases, crashCase{policy + "/kill", policy, vfs.CrashOptions{KeepAllUnsynced: true}, false})
		cases = append(cases, crashCase{policy + "/kill/priorities", policy, vfs.CrashOptions{KeepAllUnsynced: true}, true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := vfs.NewMem()
			m := openMem(t, fs, tc.policy)
			cfg := Config{Name: "c", VisibilityTimeout: time.Hour}
			if tc.priorities {
				cfg.MaxPriority, cfg.MessageTTL = 5, 24*time.Hour
			}
			q := mustCreate(t, m, cfg)
			ctx := context.Background()

			var mu sync.Mutex
			acked := map[string]bool{}    // body -> send acknowledged
			deleted := map[string]bool{}  // body -> delete acknowledged
			deleting := map[string]bool{} // body -> Delete called, maybe not returned
			var crashed *vfs.MemFS
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := range 3 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						body := fmt.Sprintf("w%d-%d", w, i)
						res, err := q.Send(ctx, []SendInput{{Body: []byte(body), Priority: i % 8, TTL: time.Duration(1+i%3) * time.Hour}})
						if err != nil || res[0].Err != nil {
							return
						}
						mu.Lock()
						acked[body] = true
						mu.Unlock()
					}
				})
			}
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					msgs, err := q.Receive(ctx, 10, time.Hour, 0)
					if err != nil {
						return
					}
					for i, msg := range msgs {
						if i%2 == 1 {
							continue // stays in flight: it must survive too
						}
						mu.Lock()
						deleting[string(msg.Body)] = true
						mu.Unlock()
						if err := q.Delete(ctx, msg.ReceiptHandle); err != nil {
							return
						}
						mu.Lock()
						deleted[string(msg.Body)] = true
						mu.Unlock()
					}
				}
			})
			waitFor(t, 10*time.Second, func() error {
				mu.Lock()
				defer mu.Unlock()
				if len(deleted) < 100 || len(acked) < 500 {
					return fmt.Errorf("%d sent, %d deleted", len(acked), len(deleted))
				}
				return nil
			})
			// Snapshot the promises, then crash: anything acknowledged
			// before the snapshot must hold in the clone.
			mu.Lock()
			wantPresent := map[string]bool{}
			for body := range acked {
				if !deleting[body] { // a delete in progress may or may not land
					wantPresent[body] = true
				}
			}
			wantGone := maps.Clone(deleted)
			crashed = fs.CrashClone(tc.crash)
			mu.Unlock()
			close(stop)
			wg.Wait()
			m.Close()
			if len(wantPresent) == 0 || len(wantGone) == 0 {
				t.Fatalf("workload too small: %d present, %d deleted", len(wantPresent), len(wantGone))
			}

			m2 := openMem(t, crashed, tc.policy)
			defer m2.Close()
			q2, err := m2.Get("c")
			if err != nil {
				t.Fatal(err)
			}
			present := map[string]bool{}
			q2.mu.Lock()
			for _, msg := range q2.msgs {
				present[string(msg.body)] = true
				var w, i int
				if _, err := fmt.Sscanf(string(msg.body), "w%d-%d", &w, &i); err != nil {
					t.Fatalf("body %q: %v", msg.body, err)
				}
				if int(msg.priority) != i%8 {
					t.Errorf("%s: priority %d after the crash, sent %d", msg.body, msg.priority, i%8)
				}
				if ttl := time.Duration(msg.expiresAt - msg.visibleAt); tc.priorities && msg.receiveCount == 0 && ttl != time.Duration(1+i%3)*time.Hour {
					t.Errorf("%s: TTL %v after the crash", msg.body, ttl)
				}
			}
			mustDo(t, checkInvariantsLocked(q2))
			q2.mu.Unlock()
			for body := range wantPresent {
				if !present[body] {
					t.Errorf("acknowledged send %s lost", body)
				}
			}
			for body := range wantGone {
				if present[body] {
					t.Errorf("acknowledged delete %s came back", body)
				}
			}
		})
	}
}

func TestTornTailIsDroppedAndCorruptionFails(t *testing.T) {
	ctx := context.Background()
	build := func(t *testing.T) (*vfs.MemFS, string, int64) {
		fs := vfs.NewMem()
		m := openMem(t, fs, "always")
		q := mustCreate(t, m, Config{Name: "t"})
		sendBodies(t, q, "keep")
		q.flushMu.Lock()
		size := q.fileSize
		q.flushMu.Unlock()
		sendBodies(t, q, "torn")
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		_ = ctx
		return fs, filepath.Join("/queues", "t.q"), size
	}
	tests := []struct {
		name     string
		damage   func(t *testing.T, f vfs.File, keepEnd int64, size int64)
		wantErr  error
		wantKeep []string
	}{
		{name: "cut inside the last record", damage: func(t *testing.T, f vfs.File, keepEnd, size int64) { mustDo(t, f.Truncate(size-3)) }, wantKeep: []string{"keep"}},
		{name: "cut inside the header", damage: func(t *testing.T, f vfs.File, keepEnd, size int64) { mustDo(t, f.Truncate(keepEnd+5)) }, wantKeep: []string{"keep"}},
		{name: "zeros after the last record", damage: func(t *testing.T, f vfs.File, keepEnd, size int64) {
			_, err := f.WriteAt(make([]byte, 100), size)
			mustDo(t, err)
		}, wantKeep: []string{"keep", "torn"}},
		{name: "last record damaged", damage: func(t *testing.T, f vfs.File, keepEnd, size int64) {
			_, err := f.WriteAt([]byte{0xff}, size-1)
			mustDo(t, err)
		}, wantKeep: []string{"keep"}},
		{name: "damage before the end", damage: func(t *testing.T, f vfs.File, keepEnd, size int64) {
			_, err := f.WriteAt([]byte{0xff}, keepEnd-1)
			mustDo(t, err)
		}, wantErr: ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, path, keepEnd := build(t)
			f, err := fs.OpenReadWrite(path)
			mustDo(t, err)
			info, err := f.Stat()
			mustDo(t, err)
			tc.damage(t, f, keepEnd, info.Size())
			mustDo(t, f.Close())
			m, err := Open(Options{Dir: "/queues", FS: fs})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, event.ErrCorruption) {
					t.Fatalf("Open = %v, want %v and event.ErrCorruption", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			q, _ := m.Get("t")
			if got := receive(t, q, 10, time.Minute); !slices.Equal(bodies(got), tc.wantKeep) {
				t.Fatalf("after recovery = %v, want %v", bodies(got), tc.wantKeep)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCompactionKeepsState compacts mid-workload and checks that a reopen
// sees the same queue, and that the file shrank.
func TestCompactionKeepsState(t *testing.T) {
	fs := vfs.NewMem()
	m := openMem(t, fs, "always")
	q := mustCreate(t, m, Config{Name: "k.fifo", FIFO: true})
	ctx := context.Background()
	for i := range 200 {
		mustSend(t, q, SendInput{Body: []byte(fmt.Sprint("m", i)), GroupID: fmt.Sprint("g", i%4), DedupID: fmt.Sprint("d", i)})
	}
	for range 45 {
		for _, msg := range receive(t, q, 4, time.Hour) {
			mustDo(t, q.Delete(ctx, msg.ReceiptHandle))
		}
	}
	inflight := receive(t, q, 1, time.Hour)
	// fileSize belongs to whoever holds flushMu (the manager's flusher
	// writes it in the background), so read it under the lock.
	q.flushMu.Lock()
	before := q.fileSize
	mustDo(t, q.writePendingLocked(true))
	mustDo(t, q.compactLocked())
	after := q.fileSize
	q.flushMu.Unlock()
	if after >= before {
		t.Fatalf("compaction grew the journal: %d -> %d", before, after)
	}
	sendBodiesFIFO := SendInput{Body: []byte("post"), GroupID: "g9", DedupID: "post"}
	mustSend(t, q, sendBodiesFIFO)
	mustDo(t, m.Close())

	m2 := openMem(t, fs, "always")
	defer m2.Close()
	q2, _ := m2.Get("k.fifo")
	wantStats(t, q2, 200-180-1+1, 1, 0)
	if dup := mustSend(t, q2, SendInput{Body: []byte("again"), GroupID: "g0", DedupID: "d0"})[0]; dup.Err != nil {
		t.Fatal(dup.Err)
	}
	wantStats(t, q2, 20, 1, 0) // d0 was deleted but is still a duplicate
	mustDo(t, q2.Delete(ctx, inflight[0].ReceiptHandle))
	wantStats(t, q2, 20, 0, 0)
}

// TestBackgroundCompaction: the flusher rewrites a journal that has grown
// well past its live data, and the rewritten journal reopens to the same
// state.
func TestBackgroundCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := vfs.NewMem()
		m := openMem(t, fs, "interval")
		m.compactMinBytes = 8 << 10
		q := mustCreate(t, m, Config{Name: "bg"})
		ctx := context.Background()
		var peak int64
		for i := range 100 {
			sendBodies(t, q, fmtBodies(fmt.Sprint("batch", i), 10)...)
			msgs := receive(t, q, 10, time.Minute)
			handles := make([]string, len(msgs))
			for j, msg := range msgs {
				handles[j] = msg.ReceiptHandle
			}
			if i%10 == 9 {
				handles = handles[1:] // keep one in flight per 10 batches
			}
			for _, err := range q.DeleteBatch(ctx, handles) {
				mustDo(t, err)
			}
			q.flushMu.Lock()
			peak = max(peak, q.fileSize)
			q.flushMu.Unlock()
		}
		time.Sleep(50 * time.Millisecond) // a few flusher ticks
		q.flushMu.Lock()
		size := q.fileSize
		q.flushMu.Unlock()
		if size >= 8<<10 || size >= peak {
			t.Fatalf("journal not compacted: %d bytes now, peak %d", size, peak)
		}
		wantStats(t, q, 0, 10, 0)
		mustDo(t, m.Close())
		m2 := openMem(t, fs, "interval")
		defer m2.Close()
		q2, _ := m2.Get("bg")
		wantStats(t, q2, 0, 10, 0)
		time.Sleep(time.Minute)
		if got := receive(t, q2, 10, time.Minute); len(got) != 10 || got[0].ReceiveCount != 2 {
			t.Fatalf("after reopen: %d messages", len(got))
		}
	})
}

// TestMovesAreDurable: a dead-lettered message, and a redriven one, are
// durable in their new queue once the move returns, and gone from the old
// one, even after a power cut that drops every unsynced byte.
func TestMovesAreDurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := vfs.NewMem()
		m := openMem(t, fs, "always")
		defer m.Close()
		mustCreate(t, m, Config{Name: "dlq"})
		q := mustCreate(t, m, Config{Name: "src", DeadLetterQueue: "dlq", MaxReceiveCount: 1})
		sendBodies(t, q, "poison")
		receive(t, q, 1, time.Second)
		time.Sleep(time.Second)
		if got := receive(t, q, 1, time.Second); len(got) != 0 {
			t.Fatalf("received past max: %v", bodies(got))
		}
		where := func(fs *vfs.MemFS) (src, dlq int) {
			m2 := openMem(t, fs, "always")
			defer m2.Close()
			s, _ := m2.Get("src")
			d, _ := m2.Get("dlq")
			count := func(q *Queue) int { st := q.Stats(); return st.Visible + st.InFlight + st.Delayed }
			return count(s), count(d)
		}
		if s, d := where(fs.CrashClone(vfs.CrashOptions{})); s != 0 || d != 1 {
			t.Fatalf("after dead-lettering and a crash: src %d, dlq %d; want 0, 1", s, d)
		}
		n, err := m.Redrive(context.Background(), "dlq", "", 0, 0)
		if err != nil || n != 1 {
			t.Fatalf("redrive = %d, %v", n, err)
		}
		if s, d := where(fs.CrashClone(vfs.CrashOptions{})); s != 1 || d != 0 {
			t.Fatalf("after redrive and a crash: src %d, dlq %d; want 1, 0", s, d)
		}
	})
}

// TestIntervalPolicySyncsWithinInterval: under fsync=interval a sent
// message survives a power cut once FsyncInterval has passed; under never
// it does not (nothing is ever synced), which shows the test can tell.
func TestIntervalPolicySyncsWithinInterval(t *testing.T) {
	tests := []struct {
		policy      string
		wantSurvive bool
	}{
		{"interval", true},
		{"never", false},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fs := vfs.NewMem()
				m, err := Open(Options{Dir: "/queues", FS: fs, Fsync: tc.policy, FsyncInterval: 50 * time.Millisecond})
				mustDo(t, err)
				defer m.Close()
				q := mustCreate(t, m, Config{Name: "i"})
				sendBodies(t, q, "x")
				time.Sleep(60 * time.Millisecond)
				synctest.Wait()
				m2 := openMem(t, fs.CrashClone(vfs.CrashOptions{}), tc.policy)
				defer m2.Close()
				q2, _ := m2.Get("i")
				if survived := q2.Stats().Visible == 1; survived != tc.wantSurvive {
					t.Fatalf("survived = %v, want %v", survived, tc.wantSurvive)
				}
			})
		})
	}
}

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no dir", Options{FS: vfs.NewMem()}},
		{"bad fsync", Options{Dir: "/q", FS: vfs.NewMem(), Fsync: "sometimes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(tc.opts); !errors.Is(err, ErrInvalidParameter) {
				t.Fatalf("Open = %v, want ErrInvalidParameter", err)
			}
		})
	}
}

func TestRetentionAppliesAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := vfs.NewMem()
		m := openMem(t, fs, "always")
		q := mustCreate(t, m, Config{Name: "r", Retention: time.Minute})
		sendBodies(t, q, "old")
		time.Sleep(30 * time.Second)
		sendBodies(t, q, "young")
		mustDo(t, m.Close())
		time.Sleep(30 * time.Second)
		m2 := openMem(t, fs, "always")
		defer m2.Close()
		q2, _ := m2.Get("r")
		if got := receive(t, q2, 10, time.Minute); !slices.Equal(bodies(got), []string{"young"}) {
			t.Fatalf("after restart past retention: %v", bodies(got))
		}
	})
}
