package queue

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Moving a message between queues (dead-lettering and redrive) is
// copy-then-delete: the copy is made durable in the target before the
// source journals the deletion. A crash in between leaves the message in
// both queues (a duplicate, which at-least-once allows), never in neither.
// While a move runs the source keeps the message in stateMoving: invisible,
// counted as in flight, and (FIFO) holding its group so order is kept.

// deadLetter moves messages that exceeded MaxReceiveCount to src's DLQ.
func (m *Manager) deadLetter(src *Queue, moves []*message) {
	dlqName := src.Config().DeadLetterQueue
	dlq, err := m.Get(dlqName)
	if err == nil {
		copies := make([]*message, len(moves))
		for i, msg := range moves {
			copies[i] = movedCopy(msg, src.name)
		}
		err = dlq.putMoved(copies)
	}
	if err != nil {
		m.log.Warn("dead-lettering failed; messages stay in their queue", "queue", src.name, "dlq", dlqName, "messages", len(moves), "error", err)
		src.abortMoves(moves)
		return
	}
	expired := 0
	for _, msg := range moves {
		if msg.moveReason == moveExpired {
			expired++
		}
	}
	src.expiredMoved.Add(int64(expired))
	if err := src.finishMoves(moves); err != nil {
		m.log.Warn("journaling dead-letter deletions failed", "queue", src.name, "error", err)
	}
}

// movedCopy returns the copy of msg to store in another queue. Id, body,
// attributes, SentAt, priority and group are kept; the receive history
// restarts, and the expiry is dropped (as RabbitMQ drops a dead letter's
// expiration: the target queue's own TTL applies). An expired message's
// copy carries bridge-error: expired. source is the DeadLetterSource to
// record ("" when redriving back).
func movedCopy(msg *message, source string) *message {
	attrs := msg.attrs
	if msg.moveReason == moveExpired {
		attrs = withAttribute(attrs, Attribute{Name: AttributeError, DataType: "String", Value: []byte(ErrorExpired)})
	}
	return &message{
		id:               msg.id,
		body:             msg.body,
		attrs:            attrs,
		sysAttrs:         msg.sysAttrs,
		groupID:          msg.groupID,
		dedupID:          msg.dedupID,
		deadLetterSource: source,
		sentAt:           msg.sentAt,
		priority:         msg.priority,
	}
}

// withAttribute returns a copy of attrs with a set, replacing an attribute
// of the same name (a message dead-lettered twice gets one bridge-error).
// a goes before the first name that sorts after it, so sorted attributes
// (the SQS API sorts them) stay sorted.
func withAttribute(attrs []Attribute, a Attribute) []Attribute {
	out := make([]Attribute, 0, len(attrs)+1)
	placed := false
	for _, old := range attrs {
		if old.Name == a.Name {
			continue
		}
		if !placed && old.Name > a.Name {
			out, placed = append(out, a), true
		}
		out = append(out, old)
	}
	if !placed {
		out = append(out, a)
	}
	return out
}

// putMoved stores moved copies, visible at once, and returns when they are
// durable under the policy.
func (q *Queue) putMoved(copies []*message) error {
	now := q.m.now().UnixNano()
	q.mu.Lock()
	if q.closedErr != nil {
		q.mu.Unlock()
		return q.closedErr
	}
	for _, msg := range copies {
		msg.seq = q.nextSeq
		q.nextSeq++
		if !q.fifo {
			msg.groupID = ""
		}
		msg.visibleAt = now
		if q.cfg.MessageTTL > 0 {
			msg.expiresAt = now + int64(q.cfg.MessageTTL)
		}
		q.pending = appendPut(q.pending, msg)
		q.insertLocked(msg, now)
	}
	end := q.endLocked()
	wake := q.takeWaitersLocked(len(copies))
	q.mu.Unlock()
	wakeAll(wake)
	return q.commit(end, true)
}

// finishMoves deletes moved messages from q; their copies are durable.
func (q *Queue) finishMoves(moves []*message) error {
	q.mu.Lock()
	for _, msg := range moves {
		if msg.state != stateMoving {
			continue
		}
		q.removeLocked(msg)
		q.pending = appendSeqRecord(q.pending, kindDelete, msg.seq)
	}
	end := q.endLocked()
	wake := q.takeWaitersLocked(-1) // FIFO groups may be free now
	q.mu.Unlock()
	wakeAll(wake)
	return q.commit(end, q.m.syncAlways)
}

// abortMoves makes messages whose move failed visible again in q.
func (q *Queue) abortMoves(moves []*message) {
	q.mu.Lock()
	for _, msg := range moves {
		if msg.state != stateMoving {
			continue
		}
		if g := msg.group; g != nil {
			g.inflight--
		}
		q.makeVisibleLocked(msg)
	}
	wake := q.takeWaitersLocked(-1)
	q.mu.Unlock()
	wakeAll(wake)
}

// takeForMove marks up to n visible messages with seq > after as moving,
// in seq order. It returns them and the last seq examined, so a caller that
// skips messages still makes progress.
func (q *Queue) takeForMove(n int, after uint64, match MatchFunc) ([]*message, uint64) {
	now := q.m.now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advanceLocked(now)
	var out []*message
	// order is sorted by seq (seqs are assigned in push order), so start
	// past after by binary search: a redrive of a large DLQ in batches
	// would otherwise rescan the whole queue per batch.
	first := sort.Search(q.order.len(), func(i int) bool { return q.order.at(i).seq > after })
	for i := first; i < q.order.len() && len(out) < n; i++ {
		msg := q.order.at(i)
		after = msg.seq
		if msg.state != stateVisible {
			continue
		}
		if match != nil && !match(msg.peek()) {
			continue
		}
		q.startMoveLocked(msg, moveOther)
		out = append(out, msg)
	}
	return out, after
}

// Redrive moves up to max messages (0 = all) from the queue dlq back to the
// queue each came from (dest == "") or to dest, at most perSecond messages
// per second (0 = unlimited). Only visible messages move; one whose source
// queue no longer exists, or whose FIFO-ness differs from the target's,
// stays. It returns the number moved; ctx cancellation stops it early with
// ctx's error.
func (m *Manager) Redrive(ctx context.Context, dlq, dest string, max, perSecond int) (int, error) {
	return m.RedriveMatching(ctx, dlq, dest, max, perSecond, nil, nil)
}

// MatchFunc selects messages by their peeked copy (which it must not keep).
type MatchFunc func(PeekedMessage) bool

// RedriveMatching is Redrive restricted to the messages match selects (nil
// = all), calling progress (when set) with the total moved after each batch.
func (m *Manager) RedriveMatching(ctx context.Context, dlq, dest string, max, perSecond int, match MatchFunc, progress func(moved int)) (int, error) {
	from, err := m.Get(dlq)
	if err != nil {
		return 0, err
	}
	if dest != "" {
		if _, err := m.Get(dest); err != nil {
			return 0, err
		}
	}
	const batchLimit = 100
	start := time.Now()
	moved := 0
	var after uint64
	for max == 0 || moved < max {
		n := batchLimit
		if max > 0 {
			n = min(n, max-moved)
		}
		if perSecond > 0 {
			n = min(n, perSecond)
		}
		batch, last := from.takeForMove(n, after, match)
		after = last
		if len(batch) == 0 {
			return moved, nil
		}
		if perSecond > 0 {
			// Pace by the messages moved so far: message k goes at k/perSecond.
			if err := sleepUntil(ctx, start.Add(time.Duration(moved)*time.Second/time.Duration(perSecond))); err != nil {
				from.abortMoves(batch)
				return moved, err
			}
		}
		done, err := m.redriveBatch(from, dest, batch)
		moved += done
		if progress != nil {
			progress(moved)
		}
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// redriveBatch moves one batch, grouped by target queue.
func (m *Manager) redriveBatch(from *Queue, dest string, batch []*message) (int, error) {
	byTarget := map[string][]*message{}
	var order []string
	for _, msg := range batch {
		target := dest
		if target == "" {
			target = msg.deadLetterSource
		}
		if _, ok := byTarget[target]; !ok {
			order = append(order, target)
		}
		byTarget[target] = append(byTarget[target], msg)
	}
	moved := 0
	for i, target := range order {
		msgs := byTarget[target]
		to, err := m.Get(target)
		if err != nil || to == from || to.fifo != from.fifo {
			from.abortMoves(msgs) // nowhere to go: leave it in the DLQ
			continue
		}
		copies := make([]*message, len(msgs))
		for j, msg := range msgs {
			copies[j] = movedCopy(msg, "")
		}
		if err := to.putMoved(copies); err != nil {
			from.abortMoves(msgs)
			for _, rest := range order[i+1:] {
				from.abortMoves(byTarget[rest])
			}
			return moved, fmt.Errorf("redrive %s to %s: %w", from.name, target, err)
		}
		moved += len(msgs)
		if err := from.finishMoves(msgs); err != nil {
			for _, rest := range order[i+1:] {
				from.abortMoves(byTarget[rest])
			}
			return moved, fmt.Errorf("redrive %s to %s: %w", from.name, target, err)
		}
	}
	return moved, nil
}

func sleepUntil(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
