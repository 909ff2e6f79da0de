package queue

import "time"

// Message TTL (Config.MessageTTL, SendInput.TTL; RabbitMQ's x-message-ttl
// and expiration).
//
// A message with a TTL has an absolute expiresAt (journaled in its put
// record) and one entry in the queue's expiry heap, a min-heap on
// expiresAt: no timer per message. advanceLocked, which every operation
// runs first, pops the due entries; when nothing is due that is one
// comparison with the heap's top, so a queue whose messages do not expire
// pays nothing per receive for having a TTL (BenchmarkReceiveBacklog).
// The manager's flusher also sweeps every queue each tick, so expired
// messages leave (and reach the dead-letter queue) without a receiver.
//
// Only queued messages expire (visible or delayed), as in RabbitMQ, where
// an unacknowledged message is not expired. An entry popped while its
// message is in flight is dropped; makeVisibleLocked queues a new one when
// the message comes back, so a passed expiry is seen at once. Receive also
// checks expiresAt on every message it is about to deliver: an expired
// message is never delivered, whatever the sweep did.
//
// An expired message moves to the dead-letter queue when the queue has one
// (copy-then-delete, as every move) with the attribute bridge-error:
// expired and without its expiry, else it is deleted and counted in
// Stats.ExpiredDropped.

// AttributeError is the attribute a dead-lettered expired message carries.
const AttributeError = "bridge-error"

// ErrorExpired is AttributeError's value for an expired message.
const ErrorExpired = "expired"

// queueExpiryLocked pushes m's expiry entry.
func (q *Queue) queueExpiryLocked(m *message) {
	m.expiryQueued = true
	q.expiries.push(deadline{at: m.expiresAt, m: m})
	if len(q.expiries) > 2*len(q.msgs)+1024 {
		q.rebuildExpiriesLocked()
	}
}

// rebuildExpiriesLocked drops the entries of messages that are gone:
// deleted messages leave their entries behind, which would otherwise pin
// their memory until their TTL ends.
func (q *Queue) rebuildExpiriesLocked() {
	old := q.expiries
	q.expiries = make(deadlineHeap, 0, len(old)/2+16)
	for _, d := range old {
		if d.m.state != stateGone {
			q.expiries.push(d)
		} else {
			d.m.expiryQueued = false
		}
	}
}

// expireDueLocked expires every queued message whose TTL ended by now.
// Messages to dead-letter are marked moving and collected in expiredMoves
// for a caller that can lock the dead-letter queue (takeExpiredMovesLocked).
func (q *Queue) expireDueLocked(now int64) {
	for len(q.expiries) > 0 && q.expiries[0].at <= now {
		m := q.expiries.pop().m
		m.expiryQueued = false
		if m.state == stateVisible || m.state == stateDelayed {
			q.expireLocked(m)
		}
	}
}

// expireLocked ends m, whose TTL passed: it is marked moving to the
// dead-letter queue (and collected in expiredMoves), or deleted. It reports
// whether m is moving.
func (q *Queue) expireLocked(m *message) bool {
	if dlq := q.cfg.DeadLetterQueue; dlq != "" && q.m.hasQueue(dlq) {
		q.startMoveLocked(m, moveExpired)
		q.expiredMoves = append(q.expiredMoves, m)
		return true
	}
	q.removeLocked(m)
	q.pending = appendSeqRecord(q.pending, kindDelete, m.seq)
	q.expiredDropped.Add(1)
	return false
}

// startMoveLocked marks m as being moved to another queue. A FIFO group
// stays held until the move ends (a message in flight already holds it).
func (q *Queue) startMoveLocked(m *message, reason moveReason) {
	if g := m.group; g != nil && m.state != stateInflight {
		g.inflight++
	}
	q.setStateLocked(m, stateMoving)
	m.tick++
	m.moveReason = reason
}

// takeExpiredMovesLocked hands over the expired messages waiting to be
// dead-lettered.
func (q *Queue) takeExpiredMovesLocked() []*message {
	moves := q.expiredMoves
	q.expiredMoves = nil
	return moves
}

// sweep is the flusher's per-tick work on q: expire what is due and
// dead-letter it, without waiting for a receiver. With nothing due it costs
// a lock and two comparisons.
func (q *Queue) sweep(now time.Time) {
	nanos := now.UnixNano()
	q.mu.Lock()
	if q.closedErr != nil || (len(q.expiries) == 0 || q.expiries[0].at > nanos) && len(q.expiredMoves) == 0 {
		q.mu.Unlock()
		return
	}
	q.advanceLocked(nanos)
	moves := q.takeExpiredMovesLocked()
	q.mu.Unlock()
	if len(moves) > 0 {
		q.m.deadLetter(q, moves)
	}
}
