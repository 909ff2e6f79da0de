package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

// sendPriorities sends one message per priority, body "p<priority>-<i>".
func sendPriorities(t testing.TB, q *Queue, priorities ...int) {
	t.Helper()
	in := make([]SendInput, len(priorities))
	for i, p := range priorities {
		in[i] = SendInput{Body: fmt.Appendf(nil, "p%d-%d", p, i), Priority: p}
	}
	mustSend(t, q, in...)
}

// drain receives one message at a time (so each receive picks the best
// one), deletes it, and returns the bodies in delivery order.
func drain(t *testing.T, q *Queue) []string {
	t.Helper()
	var out []string
	for {
		got := receive(t, q, 1, time.Minute)
		if len(got) == 0 {
			return out
		}
		mustDo(t, q.Delete(context.Background(), got[0].ReceiptHandle))
		out = append(out, string(got[0].Body))
	}
}

func TestPriorityOrder(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		sent []int
		want []string
	}{
		{
			name: "higher first, FIFO within a priority, above max counts as max",
			cfg:  Config{Name: "p", MaxPriority: 10},
			sent: []int{1, 5, 10, 5, 0, 200, 3},
			want: []string{"p10-2", "p200-5", "p5-1", "p5-3", "p3-6", "p1-0", "p0-4"},
		},
		{
			name: "a queue without max priority keeps send order",
			cfg:  Config{Name: "plain"},
			sent: []int{1, 5, 10, 0},
			want: []string{"p1-0", "p5-1", "p10-2", "p0-3"},
		},
		{
			name: "max priority 1: two levels",
			cfg:  Config{Name: "two", MaxPriority: 1},
			sent: []int{0, 3, 0, 1},
			want: []string{"p3-1", "p1-3", "p0-0", "p0-2"},
		},
		{
			name: "max priority 255: levels across bitmap words",
			cfg:  Config{Name: "wide", MaxPriority: 255},
			sent: []int{63, 64, 0, 255, 127, 128, 64},
			want: []string{"p255-3", "p128-5", "p127-4", "p64-1", "p64-6", "p63-0", "p0-2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openMem(t, nil, "always")
			defer m.Close()
			q := mustCreate(t, m, tc.cfg)
			sendPriorities(t, q, tc.sent...)
			if got := drain(t, q); !slices.Equal(got, tc.want) {
				t.Fatalf("delivery order = %v, want %v", got, tc.want)
			}
			if err := checkInvariants(q); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPriorityBatchReceive: one Receive of 10 takes the best 10, in order.
func TestPriorityBatchReceive(t *testing.T) {
	m := openMem(t, nil, "always")
	defer m.Close()
	q := mustCreate(t, m, Config{Name: "b", MaxPriority: 3})
	var prios []int
	for i := range 20 {
		prios = append(prios, i%4)
	}
	sendPriorities(t, q, prios...)
	got := bodies(receive(t, q, 10, time.Minute))
	want := []string{"p3-3", "p3-7", "p3-11", "p3-15", "p3-19", "p2-2", "p2-6", "p2-10", "p2-14", "p2-18"}
	if !slices.Equal(got, want) {
		t.Fatalf("batch = %v, want %v", got, want)
	}
}

// TestPriorityKeepsVisibilityReceiveCountAndDLQ: priorities change only
// the order; a high-priority message that is not deleted comes back after
// its visibility timeout (first again), counts its receives, and moves to
// the dead-letter queue with its priority.
func TestPriorityKeepsVisibilityReceiveCountAndDLQ(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		dlq := mustCreate(t, m, Config{Name: "dlq", MaxPriority: 9})
		q := mustCreate(t, m, Config{Name: "w", MaxPriority: 9, VisibilityTimeout: 10 * time.Second, DeadLetterQueue: "dlq", MaxReceiveCount: 2})
		sendPriorities(t, q, 1, 9)
		for want := 1; want <= 2; want++ {
			got := receive(t, q, 1, -1)
			if len(got) != 1 || string(got[0].Body) != "p9-1" || got[0].ReceiveCount != want || got[0].Priority != 9 {
				t.Fatalf("receive %d = %+v", want, got)
			}
			wantStats(t, q, 1, 1, 0)
			time.Sleep(10 * time.Second)
		}
		// The third receive would pass max receive count 2: p9 moves to
		// the DLQ, and p1 is delivered.
		got := receive(t, q, 1, -1)
		if len(got) != 1 || string(got[0].Body) != "p1-0" {
			t.Fatalf("after dead-lettering = %v", bodies(got))
		}
		sendPriorities(t, dlq, 3)
		dl := receive(t, dlq, 2, -1)
		if !slices.Equal(bodies(dl), []string{"p9-1", "p3-0"}) || dl[0].Priority != 9 || dl[0].DeadLetterSource != "w" {
			t.Fatalf("dead-letter queue = %v (%+v)", bodies(dl), dl)
		}
	})
}

// TestPriorityAging: a waiting low-priority message gains one level per
// aging interval, so a steady stream of high-priority messages cannot
// starve it; without aging it waits for ever.
func TestPriorityAging(t *testing.T) {
	for _, aging := range []time.Duration{0, 10 * time.Second} {
		t.Run(fmt.Sprint("aging=", aging), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := openMem(t, nil, "always")
				defer m.Close()
				q := mustCreate(t, m, Config{Name: "a", MaxPriority: 5, PriorityAging: aging})
				sendPriorities(t, q, 0)
				// Two high-priority messages a second, one receive a second:
				// the backlog of priority 5 never empties.
				deliveredAt := time.Duration(-1)
				start := time.Now()
				for i := range 120 {
					mustSend(t, q, SendInput{Body: fmt.Appendf(nil, "hi-%d", i), Priority: 5}, SendInput{Body: fmt.Appendf(nil, "hi2-%d", i), Priority: 5})
					got := receive(t, q, 1, time.Hour)
					if len(got) == 1 && string(got[0].Body) == "p0-0" {
						deliveredAt = time.Since(start)
						break
					}
					time.Sleep(time.Second)
				}
				if aging == 0 {
					if deliveredAt >= 0 {
						t.Fatalf("without aging the low priority was delivered after %v", deliveredAt)
					}
					return
				}
				// It reaches level 5 after 5 intervals (50 s); at equal
				// levels the oldest goes first.
				if deliveredAt < 50*time.Second || deliveredAt > 51*time.Second {
					t.Fatalf("with aging %v the low priority was delivered after %v, want 50s", aging, deliveredAt)
				}
				if err := checkInvariants(q); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestPriorityAgingPrefersLongestWaiting: among messages that reached the
// same effective level, the one waiting longest goes first.
func TestPriorityAgingPrefersLongestWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := openMem(t, nil, "always")
		defer m.Close()
		q := mustCreate(t, m, Config{Name: "a", MaxPriority: 3, PriorityAging: time.Second})
		sendPriorities(t, q, 1) // effective 3 after 2s
		time.Sleep(time.Second)
		sendPriorities(t, q, 2) // effective 3 after 1s
		time.Sleep(time.Second)
		sendPriorities(t, q, 3, 0)
		if got, want := drain(t, q), []string{"p1-0", "p2-0", "p3-0", "p0-1"}; !slices.Equal(got, want) {
			t.Fatalf("order = %v, want %v", got, want)
		}
	})
}

// TestPriorityDurable: priorities survive a clean restart and a crash
// (kill -9: the written journal), and the order is the same after them.
func TestPriorityDurable(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crash), func(t *testing.T) {
			fs := vfs.NewMem()
			m := openMem(t, fs, "interval")
			q := mustCreate(t, m, Config{Name: "d", MaxPriority: 4, PriorityAging: time.Hour})
			sendPriorities(t, q, 0, 4, 2, 9, 1)
			var next *vfs.MemFS = fs
			if crash {
				next = fs.CrashClone(vfs.CrashOptions{KeepAllUnsynced: true})
			}
			mustDo(t, m.Close())
			m2 := openMem(t, next, "interval")
			defer m2.Close()
			q2, err := m2.Get("d")
			mustDo(t, err)
			if cfg := q2.Config(); cfg.MaxPriority != 4 || cfg.PriorityAging != time.Hour {
				t.Fatalf("config after restart = %+v", cfg)
			}
			if got, want := drain(t, q2), []string{"p4-1", "p9-3", "p2-2", "p1-4", "p0-0"}; !slices.Equal(got, want) {
				t.Fatalf("order after restart = %v, want %v", got, want)
			}
		})
	}
}

// TestPriorityChangeRelevels: SetConfig changing MaxPriority re-files the
// waiting messages.
func TestPriorityChangeRelevels(t *testing.T) {
	m := openMem(t, nil, "always")
	defer m.Close()
	q := mustCreate(t, m, Config{Name: "c", MaxPriority: 2})
	sendPriorities(t, q, 1, 5, 3, 2)
	cfg := q.Config()
	cfg.MaxPriority = 9
	mustDo(t, q.SetConfig(cfg))
	mustDo(t, checkInvariants(q))
	if got, want := drain(t, q), []string{"p5-1", "p3-2", "p2-3", "p1-0"}; !slices.Equal(got, want) {
		t.Fatalf("order after raising max = %v, want %v", got, want)
	}
	sendPriorities(t, q, 1, 5)
	cfg.MaxPriority = 0
	mustDo(t, q.SetConfig(cfg))
	if got, want := drain(t, q), []string{"p1-0", "p5-1"}; !slices.Equal(got, want) {
		t.Fatalf("order after removing max = %v, want %v", got, want)
	}
}

func TestPriorityValidation(t *testing.T) {
	m := openMem(t, nil, "always")
	defer m.Close()
	for _, cfg := range []Config{
		{Name: "neg", MaxPriority: -1},
		{Name: "big", MaxPriority: 256},
		{Name: "f.fifo", FIFO: true, MaxPriority: 3},
		{Name: "aging-alone", PriorityAging: time.Second},
		{Name: "aging-neg", MaxPriority: 2, PriorityAging: -time.Second},
	} {
		if _, err := m.Create(cfg); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Create(%+v) = %v, want ErrInvalidParameter", cfg, err)
		}
	}
	q := mustCreate(t, m, Config{Name: "ok", MaxPriority: 3})
	for _, p := range []int{-1, 256} {
		res, err := q.Send(context.Background(), []SendInput{{Body: []byte("x"), Priority: p}})
		mustDo(t, err)
		if !errors.Is(res[0].Err, ErrInvalidParameter) {
			t.Errorf("priority %d: %v, want ErrInvalidParameter", p, res[0].Err)
		}
	}
}
