package amqpapi

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
)

// publishBatch is the worker's scratch space for one run of publishes,
// reused across runs.
type publishBatch struct {
	entries []pubEntry
	sends   []*queueSend
	byQueue map[*queue.Queue]*queueSend
	routes  []string
}

// pubEntry is one publish of a batch.
type pubEntry struct {
	cmd    *command
	pub    *wire.BasicPublish
	seq    uint64 // publisher confirm sequence number; 0 outside confirm mode
	routed int    // queues the message went to
	failed error  // the first store failure
}

// queueSend collects a batch's messages for one queue.
type queueSend struct {
	q     *queue.Queue
	in    []queue.SendInput
	entry []int // index in entries of each input
}

// publish executes a run of publishes: route each through its exchange,
// store them with one Send per queue (durable under the fsync policy when
// Send returns), then answer: basic.return for mandatory messages that no
// queue took, then the confirms (basic.ack for the stored, basic.nack for
// the failed), so a return always precedes the confirm of its message and
// no confirm precedes the durable write.
func (ch *channel) publish(cmds []*command) error {
	var pendingBytes int64
	for _, cmd := range cmds {
		pendingBytes += cmd.size
	}
	defer ch.c.releasePending(pendingBytes)
	if ch.c.closing.Load() {
		return nil // the connection is closing: nothing more is stored or confirmed
	}
	b := &ch.batch
	b.reset()
	var stopErr error
	for _, cmd := range cmds {
		pub := cmd.method.(*wire.BasicPublish)
		xe, err := ch.checkPublish(pub)
		if err != nil {
			// Publishes before the bad one are stored and confirmed; the
			// channel (or connection) closes after them.
			stopErr = withMethod(err, pub)
			break
		}
		ch.route(b, cmd, pub, xe)
	}
	b.store()
	ch.answer(b)
	if stopErr != nil {
		return stopErr
	}
	if !ch.confirm {
		for _, e := range b.entries {
			if e.failed != nil {
				return storeError(e.failed)
			}
		}
	}
	return nil
}

func (b *publishBatch) reset() {
	clear(b.entries)
	b.entries = b.entries[:0]
	for _, qs := range b.sends {
		clear(qs.in)
	}
	b.sends = b.sends[:0]
	if b.byQueue == nil {
		b.byQueue = map[*queue.Queue]*queueSend{}
	}
	clear(b.byQueue)
}

// storeError maps a failed store of a publish outside confirm mode: a
// message the queue refuses closes the channel (406) with the reason; an
// I/O failure closes the connection (541).
func storeError(err error) error {
	if errors.Is(err, queue.ErrMessageTooLarge) || errors.Is(err, queue.ErrInvalidParameter) {
		return newError(wire.PreconditionFailed, "%v", err)
	}
	return newError(wire.InternalError, "%v", err)
}

// checkPublish resolves the target exchange and checks the publish is
// allowed.
func (ch *channel) checkPublish(pub *wire.BasicPublish) (*xentry, error) {
	if pub.Immediate {
		return nil, newError(wire.NotImplemented, "immediate=true")
	}
	if !ch.c.role.canPublish() {
		return nil, newError(wire.AccessRefused, "access to exchange '%s' in vhost '/' refused for user '%s' (role %s)", pub.Exchange, ch.c.user, ch.c.role)
	}
	xe := ch.c.s.topo.exchange(pub.Exchange)
	if xe == nil {
		return nil, errNoExchange(pub.Exchange)
	}
	if xe.internal {
		return nil, newError(wire.AccessRefused, "cannot publish to internal exchange '%s' in vhost '/'", pub.Exchange)
	}
	return xe, nil
}

// route adds one publish to the batch, under each queue it routes to.
func (ch *channel) route(b *publishBatch, cmd *command, pub *wire.BasicPublish, xe *xentry) {
	e := pubEntry{cmd: cmd, pub: pub}
	if ch.confirm {
		ch.publishSeq++
		e.seq = ch.publishSeq
	}
	idx := len(b.entries)
	b.routes = ch.c.s.topo.route(xe, pub.RoutingKey, func() []event.Header { return routingHeaders(cmd.props) }, b.routes[:0])
	if len(b.routes) == 0 && xe.unroutable != "" {
		b.routes = append(b.routes, xe.unroutable)
	}
	var attrs []queue.Attribute
	attrsDone := false
	for _, name := range b.routes {
		q, err := ch.c.s.queues().Get(name)
		if err != nil {
			continue // a binding to a queue deleted meanwhile (over SQS): not routed there
		}
		if !attrsDone {
			attrs, attrsDone = sqsAttributes(cmd.props), true
		}
		qs := b.byQueue[q]
		if qs == nil {
			qs = b.nextSend(q)
			b.byQueue[q] = qs
		}
		qs.in = append(qs.in, sendInput(cmd, pub, attrs, q.Config().FIFO))
		qs.entry = append(qs.entry, idx)
		e.routed++
	}
	b.entries = append(b.entries, e)
}

// nextSend returns a cleared queueSend for q, reusing the batch's.
func (b *publishBatch) nextSend(q *queue.Queue) *queueSend {
	n := len(b.sends)
	if n < cap(b.sends) {
		b.sends = b.sends[:n+1]
		if b.sends[n] == nil {
			b.sends[n] = &queueSend{}
		}
	} else {
		b.sends = append(b.sends, &queueSend{})
	}
	qs := b.sends[n]
	qs.q, qs.in, qs.entry = q, qs.in[:0], qs.entry[:0]
	return qs
}

// store sends every queue's messages, the queues in parallel (each Send
// waits for its own journal's durable write), and records failures.
func (b *publishBatch) store() {
	type outcome struct {
		res []queue.SendResult
		err error
	}
	outcomes := make([]outcome, len(b.sends))
	if len(b.sends) == 1 {
		outcomes[0].res, outcomes[0].err = b.sends[0].q.Send(context.Background(), b.sends[0].in)
	} else {
		var wg sync.WaitGroup
		for i, qs := range b.sends {
			wg.Go(func() {
				res, err := qs.q.Send(context.Background(), qs.in)
				outcomes[i] = outcome{res, err}
			})
		}
		wg.Wait()
	}
	// Entries are shared between queues: outcomes are merged here, after
	// every Send returned, so no two goroutines write one entry.
	for i, qs := range b.sends {
		for j, idx := range qs.entry {
			e := &b.entries[idx]
			if e.failed != nil {
				continue
			}
			switch {
			case outcomes[i].err != nil:
				e.failed = fmt.Errorf("queue %s: %w", qs.q.Name(), outcomes[i].err)
			case outcomes[i].res[j].Err != nil:
				e.failed = outcomes[i].res[j].Err
			}
		}
	}
}

// answer writes the batch's returns and confirms in publish order.
func (ch *channel) answer(b *publishBatch) {
	if len(b.entries) == 0 {
		return
	}
	confirm, frameMax := ch.confirm, ch.c.frameMax
	needed := false
	for _, e := range b.entries {
		if confirm || e.routed == 0 && e.pub.Mandatory && e.failed == nil {
			needed = true
			break
		}
	}
	if !needed {
		return
	}
	ch.c.out.write(func(out []byte) []byte {
		var ackUpTo uint64 // a run of stored messages, acknowledged with one multiple ack
		for _, e := range b.entries {
			if e.failed == nil && e.routed == 0 && e.pub.Mandatory {
				out = appendContent(out, ch.id, &wire.BasicReturn{ReplyCode: replyNoRoute, ReplyText: "NO_ROUTE",
					Exchange: e.pub.Exchange, RoutingKey: e.pub.RoutingKey}, e.cmd.raw, e.cmd.body, frameMax)
			}
			if !confirm {
				continue
			}
			if e.failed == nil {
				ackUpTo = e.seq
				continue
			}
			if ackUpTo != 0 {
				out = wire.AppendMethodFrame(out, ch.id, &wire.BasicAck{DeliveryTag: ackUpTo, Multiple: true})
				ackUpTo = 0
			}
			out = wire.AppendMethodFrame(out, ch.id, &wire.BasicNack{DeliveryTag: e.seq})
		}
		if ackUpTo != 0 {
			out = wire.AppendMethodFrame(out, ch.id, &wire.BasicAck{DeliveryTag: ackUpTo, Multiple: true})
		}
		return out
	})
	for _, e := range b.entries {
		if e.failed != nil {
			ch.c.log.Warn("publish not stored; nacked", "exchange", e.pub.Exchange, "routing_key", e.pub.RoutingKey, "err", e.failed)
		}
	}
}
