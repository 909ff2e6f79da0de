package queue

import (
	"context"
	"fmt"
	"time"
)

// Receive returns up to max (1..10) visible messages and makes them
// invisible for visibility (< 0 = the queue's VisibilityTimeout). When none
// is visible it waits up to wait (< 0 = the queue's ReceiveWait; at most
// 20s) and wakes as soon as a message is sent or becomes visible: the waiter
// sleeps on a channel and a timer set to the queue's next deadline, never in
// a polling loop. Cancelling ctx returns what was received so far (possibly
// nothing) and a nil error.
//
// A message whose ReceiveCount would exceed MaxReceiveCount is moved to the
// dead-letter queue instead of being returned. FIFO queues return messages of
// a group in order and return nothing of a group while one of its messages
// is in flight.
//
// Receive records are written to the journal without waiting for them: a
// crash may forget a receive, which only makes the message visible earlier
// with a lower ReceiveCount (at-least-once allows it).
func (q *Queue) Receive(ctx context.Context, max int, visibility, wait time.Duration) ([]Message, error) {
	return q.receive(ctx, max, visibility, wait, false)
}

// ReceiveHold is Receive for a connected consumer (the AMQP listener): the
// messages it returns stay in flight with no deadline, until the holder
// deletes them, makes them visible (ChangeVisibility with 0), gives them a
// deadline (ChangeVisibility with d > 0) or dead-letters them
// (DeadLetter). No timer can hand a held message to another receiver while
// its holder is connected; the holder must release what it holds when it
// goes away. A held delivery is journaled as visible from the moment it
// was taken, so after a restart, when no holder is left, the message is
// visible at once; its receive count is kept.
func (q *Queue) ReceiveHold(ctx context.Context, max int, wait time.Duration) ([]Message, error) {
	return q.receive(ctx, max, 0, wait, true)
}

func (q *Queue) receive(ctx context.Context, max int, visibility, wait time.Duration, hold bool) ([]Message, error) {
	if max < 1 || max > MaxReceiveMessages {
		return nil, fmt.Errorf("receive from %s: %w: max messages %d outside 1..%d", q.name, ErrInvalidParameter, max, MaxReceiveMessages)
	}
	if visibility > MaxVisibilityTimeout {
		return nil, fmt.Errorf("receive from %s: %w: visibility %v > %v", q.name, ErrInvalidParameter, visibility, MaxVisibilityTimeout)
	}
	if wait > MaxReceiveWait {
		return nil, fmt.Errorf("receive from %s: %w: wait %v > %v", q.name, ErrInvalidParameter, wait, MaxReceiveWait)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		q.touch(q.m.now()) // the end of a long poll is a use (IdleTimeout)
	}()
	var deadlineAt time.Time
	w := &waiter{ch: make(chan struct{}, 1), max: max}
	for {
		now := q.m.now()
		q.lastUsed.Store(now.UnixNano())
		msgs, moves, nextAt, err := q.tryReceive(now.UnixNano(), max, visibility, &wait, w, hold)
		if err != nil {
			return nil, err
		}
		if deadlineAt.IsZero() {
			deadlineAt = now.Add(wait)
		}
		if len(moves) > 0 {
			q.m.deadLetter(q, moves)
			if len(msgs) == 0 {
				continue // the moved messages may have unblocked others
			}
		}
		if len(msgs) > 0 {
			// Digests outside the lock: bodies are immutable, and a big
			// one must not hold up every sender and receiver of the queue.
			for i := range msgs {
				msgs[i].MD5OfBody = md5Hex(msgs[i].Body)
			}
			return msgs, nil
		}
		if !now.Before(deadlineAt) {
			q.dropWaiter(w)
			return nil, nil
		}
		sleep := deadlineAt.Sub(now)
		if nextAt != 0 {
			if untilNext := time.Duration(nextAt - now.UnixNano()); untilNext < sleep {
				sleep = untilNext
			}
		}
		if timer == nil {
			timer = time.NewTimer(sleep)
		} else {
			timer.Reset(sleep)
		}
		select {
		case <-w.ch:
		case <-timer.C:
		case <-ctx.Done():
			q.dropWaiter(w)
			return nil, nil
		}
	}
}

// dropWaiter unregisters a receiver that is leaving without messages. If
// it had already been picked to wake (so it is no longer registered), the
// wake-up is passed on: the messages it was woken for are still there, and
// other parked receivers should get them now rather than at their timeout.
func (q *Queue) dropWaiter(w *waiter) {
	q.mu.Lock()
	var wake []*waiter
	if !q.removeWaiterLocked(w) {
		wake = q.takeWaitersLocked(max(w.max, 1))
	}
	q.mu.Unlock()
	wakeAll(wake)
}

// tryReceive takes what is receivable now. When it takes nothing it
// registers w (once) so that a send or visibility change wakes the caller,
// and returns the next deadline to sleep until. moves are messages to
// dead-letter, already in stateMoving.
func (q *Queue) tryReceive(now int64, max int, visibility time.Duration, wait *time.Duration, w *waiter, hold bool) ([]Message, []*message, int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closedErr != nil {
		return nil, nil, 0, q.closedErr
	}
	if visibility < 0 {
		visibility = q.cfg.VisibilityTimeout
	}
	if *wait < 0 {
		*wait = q.cfg.ReceiveWait
	}
	q.advanceLocked(now)
	q.removeWaiterLocked(w)
	var out []Message
	if n := q.counts[stateVisible]; n > 0 && !q.fifo {
		out = make([]Message, 0, min(max, n))
	}
	moves := q.takeExpiredMovesLocked()
	taken := len(moves) // expired messages the sweep found do not count
	retention := int64(q.cfg.Retention)
	// take delivers m, dead-letters it, or drops it when its retention
	// passed (a redriven message keeps its original SentAt, so it can
	// expire out of seq order) or its TTL did (checked here too: an
	// expired message is never delivered); it reports whether m left its
	// group.
	take := func(m *message) bool {
		if m.sentAt+retention <= now {
			q.removeLocked(m)
			return true
		}
		if m.expiresAt != 0 && m.expiresAt <= now {
			if q.expireLocked(m) {
				moves = append(moves, q.takeExpiredMovesLocked()...)
				return false
			}
			return true
		}
		if q.cfg.DeadLetterQueue != "" && int(m.receiveCount) >= q.cfg.MaxReceiveCount && q.m.hasQueue(q.cfg.DeadLetterQueue) {
			// A FIFO group stays held until the move ends, so order holds.
			q.startMoveLocked(m, moveOther)
			moves = append(moves, m)
			return false
		}
		out = append(out, q.deliverLocked(m, now, visibility, hold))
		return false
	}
	if q.fifo {
		q.takeGroupsLocked(max, take, func() int { return len(out) + len(moves) - taken })
	} else {
		for len(out)+len(moves)-taken < max {
			m := q.popReadyLocked(now)
			if m == nil {
				break
			}
			take(m)
		}
	}
	if len(out) == 0 && len(moves) == 0 {
		q.waiters = append(q.waiters, w)
		return nil, nil, q.nextDeadlineLocked(), nil
	}
	return out, moves, 0, nil
}

// takeGroupsLocked takes messages from ready FIFO groups, in order within
// each group, until taken() reaches max. take reports whether it removed
// the message from its group.
func (q *Queue) takeGroupsLocked(max int, take func(*message) bool, taken func() int) {
	for taken() < max && q.readyGrp.len() > 0 {
		g := q.readyGrp.pop()
		g.queued = false
		if g.inflight > 0 || len(g.msgs) == 0 || q.groups[g.id] != g {
			continue
		}
		// Nothing of g is in flight, so its visible prefix is the group's
		// next messages in order (a delayed head stops the take).
		for i := 0; i < len(g.msgs) && taken() < max; {
			m := g.msgs[i]
			if m.state != stateVisible {
				break
			}
			if !take(m) {
				i++
			}
		}
	}
}

// deliverLocked makes m in flight for visibility (or held, with no
// deadline) and returns its Message.
func (q *Queue) deliverLocked(m *message, now int64, visibility time.Duration, hold bool) Message {
	q.setStateLocked(m, stateInflight)
	if g := m.group; g != nil {
		g.inflight++
	}
	m.receiveCount++
	if m.firstRecvAt == 0 {
		m.firstRecvAt = now
	}
	m.epoch = q.epoch
	if hold {
		// No deadline: the holder releases it. visibleAt = now is what the
		// journal keeps, so a restart (which ends every hold) finds the
		// message visible; the tick bump retires older heap entries.
		m.visibleAt = now
		m.tick++
	} else {
		m.visibleAt = now + int64(visibility)
		// Even a zero visibility goes through the heap: pushing m straight
		// back on the ready list would let this same Receive take it twice.
		q.scheduleLocked(m)
	}
	q.pending = appendReceive(q.pending, m)
	return Message{
		MessageID:        m.id,
		ReceiptHandle:    receipt{queueID: q.meta.QueueID, epoch: m.epoch, seq: m.seq, gen: m.receiveCount}.encode(),
		Body:             m.body, // MD5OfBody: by Receive, outside the lock
		Attributes:       m.attrs,
		SystemAttributes: m.sysAttrs,
		ReceiveCount:     int(m.receiveCount),
		SentAt:           unixTime(m.sentAt),
		FirstReceivedAt:  unixTime(m.firstRecvAt),
		GroupID:          m.groupID,
		DedupID:          m.dedupID,
		SequenceNumber:   m.sequenceNumber(),
		DeadLetterSource: m.deadLetterSource,
		Priority:         int(m.priority),
		ExpiresAt:        unixTime(m.expiresAt),
	}
}

// lookupLocked resolves a receipt handle to its message. It returns nil, nil
// when the message is gone, and stale = true when the handle is from an
// earlier delivery than the message's latest.
func (q *Queue) lookupLocked(handle string) (m *message, stale bool, err error) {
	r, ok := decodeReceipt(handle)
	if !ok || r.queueID != q.meta.QueueID {
		return nil, false, fmt.Errorf("%s: %w", q.name, ErrReceiptInvalid)
	}
	m = q.msgs[r.seq]
	if m == nil || m.state == stateMoving {
		return nil, false, nil
	}
	if m.receiveCount == 0 || m.epoch != r.epoch || m.receiveCount != r.gen {
		return m, true, nil
	}
	return m, false, nil
}

// Delete deletes the message of the latest delivery named by receiptHandle
// and returns once the deletion is durable under the fsync policy. A handle
// of a message already gone, or of an earlier delivery than the latest, is
// a no-op success (as SQS): it cannot delete a later delivery. A malformed
// handle or one of another queue is ErrReceiptInvalid.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	return q.DeleteBatch(ctx, []string{receiptHandle})[0]
}

// DeleteBatch deletes several messages with one journal commit; it returns
// one error per handle (nil on success), as Delete would.
func (q *Queue) DeleteBatch(ctx context.Context, receiptHandles []string) []error {
	errs := make([]error, len(receiptHandles))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	q.touch(q.m.now())
	q.mu.Lock()
	if q.closedErr != nil {
		q.mu.Unlock()
		for i := range errs {
			errs[i] = q.closedErr
		}
		return errs
	}
	deleted := 0
	for i, handle := range receiptHandles {
		m, stale, err := q.lookupLocked(handle)
		if err != nil {
			errs[i] = err
			continue
		}
		if m == nil || stale {
			continue
		}
		q.removeLocked(m)
		q.pending = appendSeqRecord(q.pending, kindDelete, m.seq)
		deleted++
	}
	end := q.endLocked()
	var wake []*waiter
	if q.fifo && deleted > 0 {
		wake = q.takeWaitersLocked(deleted) // a deletion can release a group
	}
	q.mu.Unlock()
	wakeAll(wake)
	if deleted == 0 {
		return errs
	}
	if err := q.commit(end, q.m.syncAlways); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}

// ChangeVisibility sets the in-flight message's visibility timeout to d from
// now (0 = visible at once). The change is journaled without waiting.
// ErrMessageNotInflight when the message is not in flight under this
// handle's delivery; ErrReceiptInvalid for a malformed handle.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d < 0 || d > MaxVisibilityTimeout {
		return fmt.Errorf("change visibility in %s: %w: %v outside 0..%v", q.name, ErrInvalidParameter, d, MaxVisibilityTimeout)
	}
	now := q.m.now().UnixNano()
	q.lastUsed.Store(now)
	q.mu.Lock()
	if q.closedErr != nil {
		q.mu.Unlock()
		return q.closedErr
	}
	q.advanceLocked(now)
	m, stale, err := q.lookupLocked(receiptHandle)
	if err == nil && (m == nil || stale || m.state != stateInflight) {
		err = fmt.Errorf("change visibility in %s: %w", q.name, ErrMessageNotInflight)
	}
	if err != nil {
		q.mu.Unlock()
		return err
	}
	before := q.nextDeadlineLocked()
	m.visibleAt = now + int64(d)
	q.pending = appendVisibility(q.pending, m.seq, m.visibleAt)
	var wake []*waiter
	if d == 0 {
		if g := m.group; g != nil {
			g.inflight--
		}
		q.makeVisibleLocked(m)
		wake = q.takeWaitersLocked(1)
	} else {
		q.scheduleLocked(m)
		if before == 0 || m.visibleAt < before {
			// Sleeping receivers computed their timer from the old
			// earliest deadline: let them recompute.
			wake = q.takeWaitersLocked(-1)
		}
	}
	q.mu.Unlock()
	wakeAll(wake)
	return nil
}

// Purge deletes every message of the queue and returns once that is durable.
// FIFO deduplication ids are kept, as SQS keeps them.
func (q *Queue) Purge(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	if q.closedErr != nil {
		q.mu.Unlock()
		return q.closedErr
	}
	for _, m := range q.msgs {
		if m.state == stateMoving {
			continue // owned by a mover, which deletes it when done
		}
		// Detach m from its group first: removing from a group slice one
		// message at a time would make purging a large group quadratic.
		m.group = nil
		q.removeLocked(m)
	}
	for id, g := range q.groups {
		kept := g.msgs[:0]
		for _, m := range g.msgs {
			if m.state == stateMoving {
				kept = append(kept, m)
			}
		}
		g.msgs, g.inflight = kept, len(kept)
		if len(kept) == 0 {
			delete(q.groups, id)
		}
	}
	q.pending = appendSeqRecord(q.pending, kindPurge, q.nextSeq)
	end := q.endLocked()
	q.mu.Unlock()
	return q.commit(end, true)
}
