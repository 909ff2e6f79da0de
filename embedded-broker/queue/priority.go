package queue

import "math/bits"

// Priority queues (Config.MaxPriority, RabbitMQ's x-max-priority).
//
// The ready list of a standard queue is one ring per priority level,
// 0..MaxPriority, and readyBits marks the levels whose ring is not empty.
// A plain queue has one level and takes the fast path of popReadyLocked. A
// receive takes from the highest level with a live entry: one bit scan,
// then the ring's head, so a priority costs a send and a receive O(1)
// whatever the backlog. Within a level the ring is in the order messages
// became visible: FIFO within a priority, as in RabbitMQ.
//
// With PriorityAging the effective level of a waiting message is its level
// plus one per PriorityAging since it became visible (m.visibleAt), capped
// at MaxPriority. Every message of a ring ages at the same rate and the head
// is the oldest, so the best message is among the heads of the non-empty
// levels: bestLevelLocked compares those heads (highest effective level,
// then the one that has waited longest), O(levels) per pop instead of a
// re-sort. Nothing is rewritten as time passes, so aging needs no timer and
// no journal record: it is computed from visibleAt, which the journal has.
// Starvation freedom: a waiting message reaches MaxPriority after
// MaxPriority*PriorityAging, and at equal levels the oldest wins.

// levelLocked is the ready level of m: its priority, capped at MaxPriority.
func (q *Queue) levelLocked(m *message) int {
	return min(int(m.priority), len(q.ready)-1)
}

// pushReadyLocked appends m to the ring of its level.
func (q *Queue) pushReadyLocked(m *message) {
	level := 0
	if len(q.ready) > 1 {
		level = q.levelLocked(m)
	}
	q.ready[level].push(readyEntry{m: m, tick: m.tick})
	q.readyBits[level>>6] |= 1 << (level & 63)
}

// popReadyLocked removes and returns the next message to deliver, or nil
// when no level holds a visible message. Stale entries (lazy deletion,
// DESIGN.md) are dropped on the way.
func (q *Queue) popReadyLocked(now int64) *message {
	if len(q.ready) == 1 {
		r := &q.ready[0]
		for r.len() > 0 {
			if e := r.pop(); e.tick == e.m.tick && e.m.state == stateVisible {
				return e.m
			}
		}
		q.readyBits[0] = 0
		return nil
	}
	level := q.bestLevelLocked(now)
	if level < 0 {
		return nil
	}
	r := &q.ready[level]
	m := r.pop().m // bestLevelLocked left a live head
	if r.len() == 0 {
		q.readyBits[level>>6] &^= 1 << (level & 63)
	}
	return m
}

// bestLevelLocked returns the level whose head is delivered next, or -1.
// It drops stale heads of the levels it looks at, so the head of the level
// it returns is live.
func (q *Queue) bestLevelLocked(now int64) int {
	aging := int64(q.cfg.PriorityAging)
	top := len(q.ready) - 1
	best, bestEffective, bestSince := -1, -1, int64(0)
	for word := len(q.readyBits) - 1; word >= 0; word-- {
		for set := q.readyBits[word]; set != 0; {
			bit := 63 - bits.LeadingZeros64(set)
			set &^= 1 << bit
			level := word<<6 | bit
			head := q.liveHeadLocked(level)
			if head == nil {
				continue
			}
			if aging == 0 {
				return level // the highest non-empty level
			}
			effective := level
			if waited := now - head.visibleAt; waited > 0 {
				effective = int(min(int64(top), int64(level)+waited/aging))
			}
			if effective > bestEffective || effective == bestEffective && head.visibleAt < bestSince {
				best, bestEffective, bestSince = level, effective, head.visibleAt
			}
		}
	}
	return best
}

// liveHeadLocked drops the stale entries at the front of a level and
// returns its head, or nil (clearing the level's bit) when none is left.
func (q *Queue) liveHeadLocked(level int) *message {
	r := &q.ready[level]
	for r.len() > 0 {
		if e := r.front(); e.tick == e.m.tick && e.m.state == stateVisible {
			return e.m
		}
		r.pop()
	}
	q.readyBits[level>>6] &^= 1 << (level & 63)
	return nil
}

// rebuildReadyLocked re-files the visible messages after MaxPriority
// changed (SetConfig), in seq order.
func (q *Queue) rebuildReadyLocked() {
	q.ready = make([]ring[readyEntry], q.cfg.MaxPriority+1)
	q.readyBits = [4]uint64{}
	if q.fifo {
		return
	}
	for i := 0; i < q.order.len(); i++ {
		if m := q.order.at(i); m.state == stateVisible {
			q.pushReadyLocked(m)
		}
	}
}
