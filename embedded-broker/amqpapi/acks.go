package amqpapi

import (
	"context"
	"errors"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// delivery is one message delivered on a channel and not yet
// acknowledged: the queue holds it (ReceiveHold) under receipt.
type delivery struct {
	tag      uint64
	q        *queue.Queue
	receipt  string
	consumer *consumer // nil for basic.get
}

// unackedSet holds a channel's unacknowledged deliveries in tag order.
// Tags only grow, so an append-only slice is sorted; settled entries are
// cut from the front and, when they pile up in the middle, compacted.
type unackedSet struct {
	byTag map[uint64]*delivery
	order []*delivery // ascending tags; settled ones are nil'd out lazily
	head  int
}

func (u *unackedSet) add(d *delivery) {
	if u.byTag == nil {
		u.byTag = map[uint64]*delivery{}
	}
	u.byTag[d.tag] = d
	u.order = append(u.order, d)
}

// take removes and returns the delivery of tag, or nil.
func (u *unackedSet) take(tag uint64) *delivery {
	d := u.byTag[tag]
	if d == nil {
		return nil
	}
	delete(u.byTag, tag)
	u.trim()
	return d
}

// takeUpTo removes and returns every delivery with a tag <= tag, in order.
func (u *unackedSet) takeUpTo(tag uint64) []*delivery {
	var out []*delivery
	for u.head < len(u.order) && u.order[u.head].tag <= tag {
		d := u.order[u.head]
		u.order[u.head] = nil
		u.head++
		if u.byTag[d.tag] == d {
			delete(u.byTag, d.tag)
			out = append(out, d)
		}
	}
	u.trim()
	return out
}

func (u *unackedSet) takeAll() []*delivery {
	return u.takeUpTo(^uint64(0))
}

// trim drops settled entries from the front, and compacts the slice when
// most of it is settled (single acks out of order leave holes).
func (u *unackedSet) trim() {
	for u.head < len(u.order) && u.byTag[u.order[u.head].tag] != u.order[u.head] {
		u.order[u.head] = nil
		u.head++
	}
	if u.head == len(u.order) {
		u.order, u.head = u.order[:0], 0
		return
	}
	if len(u.order) > 64 && len(u.byTag) < (len(u.order)-u.head)/2 {
		live := make([]*delivery, 0, len(u.byTag)*2)
		for _, d := range u.order[u.head:] {
			if d != nil && u.byTag[d.tag] == d {
				live = append(live, d)
			}
		}
		u.order, u.head = live, 0
	}
}

// settle removes the deliveries an ack, nack or reject names: one tag, or
// with multiple every tag up to it (0 with multiple: all). An unknown tag
// is a channel error (406), as in RabbitMQ. It returns the consumers whose
// credit grew, to wake once mu is released.
func (ch *channel) settle(tag uint64, multiple bool) ([]*delivery, []*consumer, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var ds []*delivery
	switch {
	case multiple && tag == 0:
		ds = ch.unacked.takeAll()
	case multiple:
		ds = ch.unacked.takeUpTo(tag)
		if len(ds) == 0 {
			return nil, nil, newError(wire.PreconditionFailed, "unknown delivery tag %d", tag)
		}
	default:
		d := ch.unacked.take(tag)
		if d == nil {
			return nil, nil, newError(wire.PreconditionFailed, "unknown delivery tag %d", tag)
		}
		ds = []*delivery{d}
	}
	var wake []*consumer
	for _, d := range ds {
		if cs := d.consumer; cs != nil {
			cs.unacked--
			ch.consumerUnacked--
			wake = append(wake, cs)
		}
	}
	return ds, wake, nil
}

// ackRun settles a run of basic.ack commands, then deletes all their
// messages with one DeleteBatch per queue: a consumer acking message by
// message costs one journal commit (one fsync under "always") per run, not
// per ack. An unknown tag fails the run after the acks before it.
func (ch *channel) ackRun(cmds []*command) error {
	var all []*delivery
	var firstErr error
	for _, cmd := range cmds {
		m := cmd.method.(*wire.BasicAck)
		ds, wake, err := ch.settle(m.DeliveryTag, m.Multiple)
		if err != nil {
			firstErr = withMethod(err, m)
			break
		}
		wakeConsumers(wake)
		all = append(all, ds...)
	}
	if err := ch.deleteDeliveries(all); err != nil {
		return err
	}
	return firstErr
}

func (ch *channel) nack(tag uint64, multiple, requeue bool) error {
	ds, wake, err := ch.settle(tag, multiple)
	if err != nil {
		return err
	}
	wakeConsumers(wake)
	if requeue {
		ch.requeue(ds)
		return nil
	}
	ch.deadLetter(ds)
	return nil
}

// deleteDeliveries deletes acknowledged messages, one batch per queue
// (one journal commit each). A queue deleted meanwhile is no error.
func (ch *channel) deleteDeliveries(ds []*delivery) error {
	for len(ds) > 0 {
		q := ds[0].q
		receipts := make([]string, 0, len(ds))
		rest := ds[:0:0]
		for _, d := range ds {
			if d.q == q {
				receipts = append(receipts, d.receipt)
			} else {
				rest = append(rest, d)
			}
		}
		for _, err := range q.DeleteBatch(context.Background(), receipts) {
			if err != nil && !errors.Is(err, queue.ErrNoSuchQueue) && !errors.Is(err, queue.ErrClosed) {
				return newError(wire.InternalError, "acknowledge in queue %s: %v", q.Name(), err)
			}
		}
		ds = rest
	}
	return nil
}

// requeue makes deliveries visible again at once: they are delivered
// again, with redelivered set and a new tag, to this or another consumer.
func (ch *channel) requeue(ds []*delivery) {
	for _, d := range ds {
		err := d.q.ChangeVisibility(context.Background(), d.receipt, 0)
		if err != nil && !errors.Is(err, queue.ErrNoSuchQueue) && !errors.Is(err, queue.ErrClosed) && !errors.Is(err, queue.ErrMessageNotInflight) {
			ch.c.log.Warn("requeue failed; the message stays in flight until a restart", "queue", d.q.Name(), "err", err)
		}
	}
}

// deadLetter gives up on deliveries (reject or nack without requeue): to
// the queue's dead-letter queue, or dropped when it has none.
func (ch *channel) deadLetter(ds []*delivery) {
	for _, d := range ds {
		if _, err := d.q.DeadLetter(context.Background(), d.receipt); err != nil &&
			!errors.Is(err, queue.ErrNoSuchQueue) && !errors.Is(err, queue.ErrClosed) {
			ch.c.log.Warn("dead-lettering a rejected message failed", "queue", d.q.Name(), "err", err)
		}
	}
}
