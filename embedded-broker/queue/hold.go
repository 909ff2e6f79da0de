package queue

import (
	"context"
	"fmt"
)

// Operations for connected consumers (the AMQP listener), beside
// ReceiveHold in receive.go.

// DeadLetter gives up on the in-flight message of receiptHandle's delivery:
// it moves to the queue's dead-letter queue when one is configured and
// exists (copy, durable, then delete, as for MaxReceiveCount), and is
// deleted otherwise. It reports whether the message was moved. A stale
// handle or a message no longer in flight is a no-op; a malformed handle
// is ErrReceiptInvalid. A failed move leaves the message visible again
// (logged), as a failed dead-lettering on receive does.
func (q *Queue) DeadLetter(ctx context.Context, receiptHandle string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	q.mu.Lock()
	if q.closedErr != nil {
		q.mu.Unlock()
		return false, q.closedErr
	}
	m, stale, err := q.lookupLocked(receiptHandle)
	if err != nil || m == nil || stale || m.state != stateInflight {
		q.mu.Unlock()
		return false, err
	}
	if dlq := q.cfg.DeadLetterQueue; dlq != "" && q.m.hasQueue(dlq) {
		// In flight to moving: a FIFO group's in-flight count already
		// holds the group, and the move's end releases it.
		q.setStateLocked(m, stateMoving)
		m.tick++
		q.mu.Unlock()
		q.m.deadLetter(q, []*message{m})
		return true, nil
	}
	q.removeLocked(m)
	q.pending = appendSeqRecord(q.pending, kindDelete, m.seq)
	end := q.endLocked()
	var wake []*waiter
	if q.fifo {
		wake = q.takeWaitersLocked(1) // the deletion can release a group
	}
	q.mu.Unlock()
	wakeAll(wake)
	return false, q.commit(end, q.m.syncAlways)
}

// PurgeVisible deletes the messages that are visible or delayed, keeps
// those in flight (AMQP's queue.purge leaves unacknowledged messages to
// their consumers), and returns how many it deleted once that is durable.
func (q *Queue) PurgeVisible(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := q.m.now().UnixNano()
	q.mu.Lock()
	if q.closedErr != nil {
		q.mu.Unlock()
		return 0, q.closedErr
	}
	q.advanceLocked(now)
	purged := 0
	touched := map[*group]bool{}
	for _, m := range q.msgs {
		if m.state != stateVisible && m.state != stateDelayed {
			continue
		}
		// Detach m from its group first and filter the groups once at
		// the end: removing from a group slice one message at a time
		// would make purging a large group quadratic.
		if g := m.group; g != nil {
			touched[g] = true
			m.group = nil
		}
		q.removeLocked(m)
		q.pending = appendSeqRecord(q.pending, kindDelete, m.seq)
		purged++
	}
	for g := range touched {
		kept := g.msgs[:0]
		for _, m := range g.msgs {
			if m.state != stateGone {
				kept = append(kept, m)
			}
		}
		clear(g.msgs[len(kept):])
		g.msgs = kept
		if len(kept) == 0 {
			delete(q.groups, g.id)
		} else {
			q.queueGroupLocked(g)
		}
	}
	end := q.endLocked()
	q.mu.Unlock()
	if purged == 0 {
		return 0, nil
	}
	if err := q.commit(end, true); err != nil {
		return 0, fmt.Errorf("purge %s: %w", q.name, err)
	}
	return purged, nil
}
