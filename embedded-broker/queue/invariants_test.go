package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

// checkInvariants verifies the queue's structural invariants (DESIGN.md):
// state counts, FIFO group bookkeeping, and that every message that should
// be reachable through the ready list or the heap is.
func checkInvariants(q *Queue) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return checkInvariantsLocked(q)
}

func checkInvariantsLocked(q *Queue) error {
	var counts [numStates]int
	for seq, m := range q.msgs {
		if m.seq != seq {
			return fmt.Errorf("message %d stored under %d", m.seq, seq)
		}
		if m.state == stateNew || m.state == stateGone {
			return fmt.Errorf("message %d stored in state %d", seq, m.state)
		}
		counts[m.state]++
	}
	for s := stateDelayed; s < stateGone; s++ {
		if counts[s] != q.counts[s] {
			return fmt.Errorf("count of state %d is %d, recount %d", s, q.counts[s], counts[s])
		}
	}
	validHeap := map[*message]bool{}
	for _, d := range q.deadlines {
		if d.tick == d.m.tick {
			validHeap[d.m] = true
		}
	}
	validReady := map[*message]bool{}
	for level := range q.ready {
		r := &q.ready[level]
		if r.len() > 0 && q.readyBits[level>>6]&(1<<(level&63)) == 0 {
			return fmt.Errorf("ready level %d holds %d entries but its bit is clear", level, r.len())
		}
		for i := 0; i < r.len(); i++ {
			if e := r.at(i); e.tick == e.m.tick {
				if want := q.levelLocked(e.m); want != level {
					return fmt.Errorf("message %d of priority %d on level %d, want %d", e.m.seq, e.m.priority, level, want)
				}
				validReady[e.m] = true
			}
		}
	}
	if len(q.ready) != q.cfg.MaxPriority+1 {
		return fmt.Errorf("%d ready levels for max priority %d", len(q.ready), q.cfg.MaxPriority)
	}
	queuedExpiry := map[*message]bool{}
	for _, d := range q.expiries {
		if d.at != d.m.expiresAt {
			return fmt.Errorf("expiry entry of message %d at %d, message expires at %d", d.m.seq, d.at, d.m.expiresAt)
		}
		queuedExpiry[d.m] = true
	}
	queuedGroups := map[*group]bool{}
	for i := 0; i < q.readyGrp.len(); i++ {
		queuedGroups[q.readyGrp.at(i)] = true
	}
	for _, m := range q.msgs {
		switch m.state {
		case stateDelayed, stateInflight:
			if !validHeap[m] {
				return fmt.Errorf("message %d in state %d has no live deadline", m.seq, m.state)
			}
		case stateVisible:
			if !q.fifo && !validReady[m] {
				return fmt.Errorf("visible message %d is not on the ready list", m.seq)
			}
		}
		if (m.state == stateVisible || m.state == stateDelayed) && m.expiresAt != 0 && (!m.expiryQueued || !queuedExpiry[m]) {
			return fmt.Errorf("message %d expires but has no expiry entry", m.seq)
		}
		if q.fifo && (m.group == nil || q.groups[m.groupID] != m.group) {
			return fmt.Errorf("message %d has no current group", m.seq)
		}
	}
	for id, g := range q.groups {
		if len(g.msgs) == 0 {
			return fmt.Errorf("group %s is empty but kept", id)
		}
		// In-flight messages are not always a prefix: ChangeVisibility(0)
		// can make an earlier one visible while a later one is in flight.
		// Order holds anyway because the group is held until none is.
		inflight := 0
		for i, m := range g.msgs {
			if m.state == stateInflight || m.state == stateMoving {
				inflight++
			}
			if i > 0 && g.msgs[i-1].seq >= m.seq {
				return fmt.Errorf("group %s out of seq order", id)
			}
			if q.msgs[m.seq] != m {
				return fmt.Errorf("group %s holds unstored message %d", id, m.seq)
			}
		}
		if inflight != g.inflight {
			return fmt.Errorf("group %s: inflight %d, recount %d", id, g.inflight, inflight)
		}
		if g.inflight == 0 && g.msgs[0].state == stateVisible && !(g.queued && queuedGroups[g]) {
			return fmt.Errorf("group %s is receivable but not queued", id)
		}
	}
	return nil
}

// checkPriorityTaken: in a priority queue without aging, no message left
// visible after a receive has a higher level than one the receive took.
func checkPriorityTaken(q *Queue, got []Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cfg.MaxPriority == 0 || q.cfg.PriorityAging != 0 || len(got) == 0 {
		return nil
	}
	lowest := q.cfg.MaxPriority
	for _, m := range got {
		lowest = min(lowest, m.Priority, q.cfg.MaxPriority)
	}
	for _, m := range q.msgs {
		if m.state == stateVisible && q.levelLocked(m) > lowest {
			return fmt.Errorf("message %d of level %d left visible, a receive took level %d", m.seq, q.levelLocked(m), lowest)
		}
	}
	return nil
}

// TestRandomOperationsKeepInvariants drives random operations (sends,
// receives, deletes, visibility changes, purges, time passing, restarts)
// and checks the structural invariants after each, plus a model: the set of
// stored messages equals sent minus deleted minus purged.
func TestRandomOperationsKeepInvariants(t *testing.T) {
	for _, cfg := range []Config{
		{Name: "std", Retention: time.Hour, DeadLetterQueue: "dlq", MaxReceiveCount: 3},
		{Name: "f.fifo", FIFO: true, ContentBasedDeduplication: true, Retention: time.Hour, DeadLetterQueue: "dlq.fifo", MaxReceiveCount: 3},
		// Priorities with aging, and TTLs: expired messages move to the
		// DLQ, so the model still holds every message until deleted.
		{Name: "prio", Retention: time.Hour, DeadLetterQueue: "dlq", MaxReceiveCount: 3, MaxPriority: 5, PriorityAging: 2 * time.Second, MessageTTL: 6 * time.Second},
		// Without aging the order is checked too: a receive takes the best.
		{Name: "prio-strict", Retention: time.Hour, DeadLetterQueue: "dlq", MaxReceiveCount: 3, MaxPriority: 3},
		{Name: "ttl.fifo", FIFO: true, ContentBasedDeduplication: true, Retention: time.Hour, DeadLetterQueue: "dlq.fifo", MaxReceiveCount: 3, MessageTTL: 3 * time.Second},
	} {
		t.Run(cfg.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fs := vfs.NewMem()
				m := openMem(t, fs, "always")
				defer func() { m.Close() }() // m changes at restarts
				dlqName := cfg.DeadLetterQueue
				dlq := mustCreate(t, m, Config{Name: dlqName, FIFO: cfg.FIFO})
				q := mustCreate(t, m, cfg)
				rng := rand.New(rand.NewPCG(1, 2))
				ctx := context.Background()
				live := map[string]bool{} // model: bodies stored
				var handles []Message
				next := 0
				for step := range 3000 {
					switch op := rng.IntN(100); {
					case op < 35:
						n := 1 + rng.IntN(5)
						in := make([]SendInput, n)
						for i := range in {
							in[i] = SendInput{Body: fmt.Appendf(nil, "m%d", next), GroupID: fmt.Sprint("g", rng.IntN(4))}.forQueue(cfg)
							live[fmt.Sprintf("m%d", next)] = true
							next++
							if !cfg.FIFO && rng.IntN(5) == 0 {
								in[i].Delay, in[i].HasDelay = time.Duration(rng.IntN(3))*time.Second, true
							}
							if cfg.MaxPriority > 0 {
								in[i].Priority = rng.IntN(8) // some above the maximum
							}
							if cfg.MessageTTL > 0 && rng.IntN(3) == 0 {
								in[i].TTL = time.Duration(1+rng.IntN(4000)) * time.Millisecond
							}
						}
						mustSend(t, q, in...)
					case op < 60:
						got := receive(t, q, 1+rng.IntN(10), time.Duration(rng.IntN(4))*time.Second)
						handles = append(handles, got...)
						if err := checkPriorityTaken(q, got); err != nil {
							t.Fatalf("step %d: %v", step, err)
						}
					case op < 80 && len(handles) > 0:
						i := rng.IntN(len(handles))
						h := handles[i]
						handles = append(handles[:i], handles[i+1:]...)
						q.mu.Lock()
						r, _ := decodeReceipt(h.ReceiptHandle)
						cur := q.msgs[r.seq]
						// A message being moved (dead-lettered: receive
						// count or TTL) is not deleted by its receipt.
						current := cur != nil && cur.state != stateMoving && cur.epoch == r.epoch && cur.receiveCount == r.gen
						q.mu.Unlock()
						mustDo(t, q.Delete(ctx, h.ReceiptHandle))
						if current {
							delete(live, string(h.Body))
						}
					case op < 88 && len(handles) > 0:
						h := handles[rng.IntN(len(handles))]
						_ = q.ChangeVisibility(ctx, h.ReceiptHandle, time.Duration(rng.IntN(3))*time.Second)
					case op < 89:
						mustDo(t, q.Purge(ctx))
						mustDo(t, dlq.Purge(ctx))
						clear(live)
						handles = handles[:0]
					case op < 90:
						_, err := m.Redrive(ctx, dlqName, "", rng.IntN(5), 0)
						mustDo(t, err)
					case op < 91:
						mustDo(t, m.Close())
						m = openMem(t, fs, "always")
						q, _ = m.Get(cfg.Name)
						dlq, _ = m.Get(dlqName)
					default:
						time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
					}
					// Let the flusher finish a sweep in progress: it moves
					// expired messages, copy then delete, and a check
					// between the two would count one twice.
					synctest.Wait()
					if err := errors.Join(checkInvariants(q), checkInvariants(dlq)); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					// Dead letters stay in the model: a message is stored
					// in the queue or its DLQ until deleted or purged.
					stored := 0
					for _, qq := range []*Queue{q, dlq} {
						qq.mu.Lock()
						stored += len(qq.msgs)
						for _, msg := range qq.msgs {
							if !live[string(msg.body)] {
								qq.mu.Unlock()
								t.Fatalf("step %d: %s stored in %s but deleted in the model", step, msg.body, qq.name)
							}
						}
						qq.mu.Unlock()
					}
					if stored != len(live) {
						t.Fatalf("step %d: %d stored, model has %d", step, stored, len(live))
					}
				}
				t.Logf("sent %d, stored %d, dead letters %d", next, len(live), dlq.Stats().Visible+dlq.Stats().InFlight)
			})
		})
	}
}
