package queue

import "time"

// Temporary queues (Config.IdleTimeout): the manager's flusher deletes a
// queue nobody used for its IdleTimeout, as RabbitMQ's x-expires and the
// AWS temporary queue client's idle queue retention do. An RPC client
// creates one reply queue, and it goes away when the client does.
//
// "Used" is a Send, a Receive (its start and its end: a long poll keeps
// the queue in use, and a receiver parked on it is never idle), a Delete
// or a ChangeVisibility. Reading attributes or depths is not use. lastUsed
// is not journaled: after a restart every temporary queue gets a whole
// IdleTimeout again, so a restart never deletes a queue early.

// idle reports whether q is a temporary queue that nobody used for its
// IdleTimeout and that no receiver waits on.
func (q *Queue) idle(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cfg.IdleTimeout == 0 || q.closedErr != nil || len(q.waiters) > 0 {
		return false
	}
	return now.UnixNano()-q.lastUsed.Load() >= int64(q.cfg.IdleTimeout)
}

// touch records a use of q at now.
func (q *Queue) touch(now time.Time) { q.lastUsed.Store(now.UnixNano()) }

// Touch records a use of the queue that is not a send or a receive, for
// IdleTimeout: an AMQP queue.declare of an existing queue counts as one, as
// it does for RabbitMQ's x-expires.
func (q *Queue) Touch() { q.touch(q.m.now()) }
