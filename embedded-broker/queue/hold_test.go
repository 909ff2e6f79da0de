package queue

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

func receiveHold(t testing.TB, q *Queue, max int) []Message {
	t.Helper()
	msgs, err := q.ReceiveHold(context.Background(), max, 0)
	if err != nil {
		t.Fatalf("ReceiveHold: %v", err)
	}
	return msgs
}

// A held message has no deadline: no timer makes it visible to another
// receiver, however long its holder keeps it; releasing it with
// ChangeVisibility(0) redelivers it with the receive count raised.
func TestReceiveHoldNeverExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "held", VisibilityTimeout: time.Second})
		sendBodies(t, q, "a", "b")
		held := receiveHold(t, q, 1)
		if len(held) != 1 || held[0].ReceiveCount != 1 {
			t.Fatalf("held %+v", held)
		}
		time.Sleep(13 * time.Hour) // past any visibility timeout
		wantStats(t, q, 1, 1, 0)
		other := receive(t, q, 10, time.Minute)
		if len(other) != 1 || string(other[0].Body) == string(held[0].Body) {
			t.Fatalf("another receiver got %v while %s was held", bodies(other), held[0].Body)
		}
		if err := q.ChangeVisibility(context.Background(), held[0].ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
		again := receiveHold(t, q, 10)
		if len(again) != 1 || again[0].MessageID != held[0].MessageID || again[0].ReceiveCount != 2 {
			t.Fatalf("after release: %+v", again)
		}
		if err := q.Delete(context.Background(), again[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		wantStats(t, q, 0, 1, 0)
	})
}

// A restart ends every hold: held messages are visible at once after
// reopening, cleanly or after a crash, with their receive counts kept.
func TestReceiveHoldAfterRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := map[bool]string{false: "clean", true: "crash"}[crash]
		t.Run(name, func(t *testing.T) {
			fs := vfs.NewMem()
			m := openMem(t, fs, "always")
			q := mustCreate(t, m, Config{Name: "amq.gen-Held_1", VisibilityTimeout: 12 * time.Hour})
			sendBodies(t, q, "a")
			held := receiveHold(t, q, 1)
			if len(held) != 1 {
				t.Fatalf("held %d", len(held))
			}
			var reopened *Manager
			if crash {
				q.background(false) // the receive record reaches the file, as the flusher writes it
				reopened = openMem(t, fs.CrashClone(vfs.CrashOptions{KeepAllUnsynced: true}), "always")
				defer m.Close()
			} else {
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
				reopened = openMem(t, fs, "always")
			}
			defer reopened.Close()
			q2, err := reopened.Get("amq.gen-Held_1")
			if err != nil {
				t.Fatal(err)
			}
			wantStats(t, q2, 1, 0, 0)
			got := receiveHold(t, q2, 1)
			if len(got) != 1 || got[0].ReceiveCount != 2 {
				t.Fatalf("after restart: %+v", got)
			}
			// The pre-restart receipt cannot touch the new delivery.
			if err := q2.Delete(context.Background(), held[0].ReceiptHandle); err != nil {
				t.Fatal(err)
			}
			wantStats(t, q2, 0, 1, 0)
		})
	}
}

func TestDeadLetterHeld(t *testing.T) {
	tests := []struct {
		name      string
		dlq       bool
		wantMoved bool
	}{
		{name: "to the dead-letter queue", dlq: true, wantMoved: true},
		{name: "dropped without one", dlq: false, wantMoved: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openMem(t, nil, "always")
			defer m.Close()
			cfg := Config{Name: "src"}
			var dlq *Queue
			if tc.dlq {
				dlq = mustCreate(t, m, Config{Name: "dlq"})
				cfg.DeadLetterQueue, cfg.MaxReceiveCount = "dlq", 5
			}
			q := mustCreate(t, m, cfg)
			sendBodies(t, q, "poison")
			held := receiveHold(t, q, 1)
			moved, err := q.DeadLetter(context.Background(), held[0].ReceiptHandle)
			if err != nil || moved != tc.wantMoved {
				t.Fatalf("DeadLetter = %v, %v", moved, err)
			}
			wantStats(t, q, 0, 0, 0)
			if dlq != nil {
				got := receive(t, dlq, 10, time.Minute)
				if len(got) != 1 || string(got[0].Body) != "poison" || got[0].DeadLetterSource != "src" {
					t.Fatalf("dead letters %+v", got)
				}
			}
			// A second call with the same handle is a no-op.
			if moved, err := q.DeadLetter(context.Background(), held[0].ReceiptHandle); err != nil || moved {
				t.Fatalf("again: %v, %v", moved, err)
			}
			if _, err := q.DeadLetter(context.Background(), "garbage"); err == nil {
				t.Fatal("a malformed handle was accepted")
			}
		})
	}
}

func TestPurgeVisibleKeepsInFlight(t *testing.T) {
	for _, cfg := range []Config{{Name: "p"}, {Name: "p.fifo", FIFO: true, ContentBasedDeduplication: true}} {
		t.Run(cfg.Name, func(t *testing.T) {
			fs := vfs.NewMem()
			m := openMem(t, fs, "always")
			q := mustCreate(t, m, cfg)
			for _, b := range fmtBodies("m", 5) {
				mustSend(t, q, SendInput{Body: []byte(b), GroupID: "g"}.forQueue(cfg))
			}
			held := receiveHold(t, q, 2)
			if len(held) != 2 {
				t.Fatalf("held %d", len(held))
			}
			n, err := q.PurgeVisible(context.Background())
			if err != nil || n != 3 {
				t.Fatalf("PurgeVisible = %d, %v; want 3", n, err)
			}
			wantStats(t, q, 0, 2, 0)
			if err := q.ChangeVisibility(context.Background(), held[1].ReceiptHandle, 0); err != nil {
				t.Fatal(err)
			}
			if err := q.Delete(context.Background(), held[0].ReceiptHandle); err != nil {
				t.Fatal(err)
			}
			got := receiveHold(t, q, 10)
			if len(got) != 1 || got[0].MessageID != held[1].MessageID {
				t.Fatalf("after purge: %v", bodies(got))
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			m2 := openMem(t, fs, "always")
			defer m2.Close()
			q2, _ := m2.Get(cfg.Name)
			wantStats(t, q2, 1, 0, 0) // the purge was durable; the held one is back
		})
	}
}

func TestDottedNames(t *testing.T) {
	m := openMem(t, nil, "always")
	defer m.Close()
	for _, name := range []string{"orders.eu", "amq.gen-AbC_9-x", "a.b.fifo"} {
		if _, err := m.Create(Config{Name: name, FIFO: name == "a.b.fifo", ContentBasedDeduplication: name == "a.b.fifo"}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"a/b", "a b", "", ".fifo"} {
		if _, err := m.Create(Config{Name: bad}); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
