package queue

import (
	"bytes"
	"context"
	"time"
)

// HandleMatching gives the visible messages of queue name that match (nil
// = all) to handle, oldest first, at most perSecond a second (0 =
// unlimited) and at most max of them (0 = all). A message is deleted once
// handle returned nil for it, and made visible again when handle failed;
// either way it is not offered twice in one call. handle runs outside every
// queue lock and gets a copy it may keep. progress (when set) is called
// after each batch with the totals so far. It returns how many were
// handled and how many failed; ctx cancellation stops it with ctx's error
// (the message being handled is made visible again).
//
// This is how a dead letter that has no source queue (one a pipeline wrote,
// carrying its route in attributes) is sent somewhere else and then removed:
// delete after the target acknowledged, so a crash in between delivers it
// once more rather than never.
func (m *Manager) HandleMatching(ctx context.Context, name string, max, perSecond int, match MatchFunc,
	handle func(PeekedMessage) error, progress func(done, failed int)) (done, failed int, err error) {
	q, err := m.Get(name)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	var after uint64
	for max == 0 || done < max {
		n := 100
		if max > 0 {
			n = min(n, max-done)
		}
		if perSecond > 0 {
			n = min(n, perSecond)
			if err := sleepUntil(ctx, start.Add(time.Duration(done+failed)*time.Second/time.Duration(perSecond))); err != nil {
				return done, failed, err
			}
		}
		batch, last := q.takeForMove(n, after, match)
		after = last
		if len(batch) == 0 {
			return done, failed, nil
		}
		ok, bad, err := q.handleBatch(ctx, batch, handle)
		done += ok
		failed += bad
		if progress != nil {
			progress(done, failed)
		}
		if err != nil {
			return done, failed, err
		}
	}
	return done, failed, nil
}

// handleBatch hands each taken message to handle, then deletes those it
// accepted and releases the others (and, after a cancellation, the rest).
func (q *Queue) handleBatch(ctx context.Context, batch []*message, handle func(PeekedMessage) error) (int, int, error) {
	var accepted, rejected []*message
	for i, msg := range batch {
		if ctx.Err() != nil {
			q.abortMoves(append(rejected, batch[i:]...))
			if err := q.finishMoves(accepted); err != nil {
				return 0, len(rejected), err
			}
			return len(accepted), len(rejected), ctx.Err()
		}
		q.mu.Lock()
		p := msg.peek()
		q.mu.Unlock()
		p.Body = bytes.Clone(p.Body)
		attrs := make([]Attribute, len(p.Attributes))
		for j, a := range p.Attributes {
			attrs[j] = Attribute{Name: a.Name, DataType: a.DataType, Value: bytes.Clone(a.Value)}
		}
		p.Attributes = attrs
		if handle(p) != nil {
			rejected = append(rejected, msg)
			continue
		}
		accepted = append(accepted, msg)
	}
	q.abortMoves(rejected)
	if err := q.finishMoves(accepted); err != nil {
		return 0, len(rejected), err
	}
	return len(accepted), len(rejected), nil
}
