package amqpapi

import (
	"context"
	"errors"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// maxReceive is the most messages one queue receive takes for a consumer.
const maxReceive = queue.MaxReceiveMessages

// consumerWait is how long one receive long-polls before the loop checks
// again; the loop runs until the consumer is cancelled.
const consumerWait = queue.MaxReceiveWait

// consumer delivers one queue's messages to one channel. Its goroutine
// (run) takes messages with ReceiveHold, as many as its credit allows,
// and appends their frames to the connection's outbox under the channel's
// lock so that delivery tags go out in order.
//
// Credit: before receiving n messages, run reserves them against the
// consumer's prefetch and the channel's (global) prefetch, counting them
// as unacknowledged; what the receive did not fill is given back. So the
// limits hold exactly even with several consumers on one channel.
type consumer struct {
	ch        *channel
	tag       string
	queueName string
	q         *queue.Queue
	noAck     bool
	prefetch  uint16        // 0: unlimited
	wake      chan struct{} // capacity 1: credit may have grown
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{} // closed when run returns

	// Guarded by ch.mu.
	unacked   int
	cancelled bool
}

func (cs *consumer) stop() {
	cs.ch.mu.Lock()
	cs.cancelled = true
	cs.ch.mu.Unlock()
	cs.cancel()
}

func wakeConsumers(cs []*consumer) {
	for _, c := range cs {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func (cs *consumer) run() {
	defer close(cs.done)
	for {
		n := cs.reserve()
		if n == 0 {
			return
		}
		if !cs.ch.c.out.waitRoom(cs.ctx) {
			cs.unreserve(n)
			return
		}
		msgs, err := cs.q.ReceiveHold(cs.ctx, n, consumerWait)
		if err != nil {
			cs.unreserve(n)
			if cs.ctx.Err() == nil {
				cs.serverCancel(err)
			}
			return
		}
		cs.deliver(msgs, n)
	}
}

// reserve waits for credit and reserves up to maxReceive deliveries; 0
// means the consumer is stopping.
func (cs *consumer) reserve() int {
	ch := cs.ch
	for {
		ch.mu.Lock()
		if cs.cancelled || ch.stopped {
			ch.mu.Unlock()
			return 0
		}
		n := maxReceive
		if ch.flowPaused {
			n = 0
		}
		if !cs.noAck {
			if cs.prefetch > 0 {
				n = min(n, int(cs.prefetch)-cs.unacked)
			}
			if ch.channelPrefetch > 0 {
				n = min(n, int(ch.channelPrefetch)-ch.consumerUnacked)
			}
		}
		if n > 0 {
			if !cs.noAck {
				cs.unacked += n
				ch.consumerUnacked += n
			}
			ch.mu.Unlock()
			return n
		}
		ch.mu.Unlock()
		select {
		case <-cs.wake:
		case <-cs.ctx.Done():
			return 0
		}
	}
}

// unreserve gives back reserved credit that no delivery used.
func (cs *consumer) unreserve(n int) {
	if cs.noAck || n == 0 {
		return
	}
	ch := cs.ch
	ch.mu.Lock()
	cs.unacked -= n
	ch.consumerUnacked -= n
	var others []*consumer
	if ch.channelPrefetch > 0 {
		for _, o := range ch.consumers {
			others = append(others, o)
		}
	}
	ch.mu.Unlock()
	wakeConsumers(others)
}

// deliver sends msgs (reserved: n) as basic.deliver. A consumer cancelled
// meanwhile puts them back at once instead.
func (cs *consumer) deliver(msgs []queue.Message, n int) {
	ch := cs.ch
	ch.mu.Lock()
	// channel.flow active=false arrived while the receive was waiting:
	// keep the messages (reserved for this consumer) until flow resumes.
	for ch.flowPaused && !cs.cancelled && !ch.stopped {
		ch.mu.Unlock()
		select {
		case <-cs.wake:
		case <-cs.ctx.Done():
		}
		ch.mu.Lock()
		if cs.ctx.Err() != nil {
			cs.cancelled = true
		}
	}
	if cs.cancelled || ch.stopped {
		ch.mu.Unlock()
		cs.unreserve(n)
		for i := range msgs {
			_ = cs.q.ChangeVisibility(context.Background(), msgs[i].ReceiptHandle, 0)
		}
		return
	}
	first := ch.nextTag + 1
	ch.nextTag += uint64(len(msgs))
	if !cs.noAck {
		for i := range msgs {
			ch.unacked.add(&delivery{tag: first + uint64(i), q: cs.q, receipt: msgs[i].ReceiptHandle, consumer: cs})
		}
	}
	frameMax := ch.c.frameMax
	ch.c.out.writeNoKick(func(b []byte) []byte {
		for i := range msgs {
			m := &msgs[i]
			exchangeName, key, props := deliveryForm(m, cs.queueName)
			b = appendContent(b, ch.id, &wire.BasicDeliver{ConsumerTag: cs.tag, DeliveryTag: first + uint64(i),
				Redelivered: m.ReceiveCount > 1, Exchange: exchangeName, RoutingKey: key}, props, m.Body, frameMax)
		}
		return b
	})
	ch.mu.Unlock()
	cs.unreserve(n - len(msgs))
	ch.c.out.kick()
	if cs.noAck {
		receipts := make([]string, len(msgs))
		for i := range msgs {
			receipts[i] = msgs[i].ReceiptHandle
		}
		for _, err := range cs.q.DeleteBatch(context.Background(), receipts) {
			if err != nil && !errors.Is(err, queue.ErrNoSuchQueue) {
				ch.c.log.Warn("deleting auto-acknowledged messages failed", "queue", cs.queueName, "err", err)
				break
			}
		}
	}
}

// serverCancel ends a consumer whose queue went away (deleted over AMQP
// or the SQS API): basic.cancel goes to clients that announced
// consumer_cancel_notify, as RabbitMQ does.
func (cs *consumer) serverCancel(err error) {
	ch := cs.ch
	ch.mu.Lock()
	active := ch.consumers[cs.tag] == cs && !ch.stopped
	if active {
		delete(ch.consumers, cs.tag)
	}
	cs.cancelled = true
	ch.mu.Unlock()
	if !active {
		return
	}
	if !errors.Is(err, queue.ErrNoSuchQueue) {
		ch.c.log.Warn("consumer stopped", "queue", cs.queueName, "err", err)
	}
	ch.c.s.topo.removeConsumer(cs.queueName)
	if ch.c.caps.consumerCancelNotify {
		ch.reply(&wire.BasicCancel{ConsumerTag: cs.tag, NoWait: true})
	}
}

// setFlow pauses (channel.flow active=false) or resumes deliveries.
func (ch *channel) setFlow(active bool) {
	ch.mu.Lock()
	ch.flowPaused = !active
	consumers := make([]*consumer, 0, len(ch.consumers))
	for _, cs := range ch.consumers {
		consumers = append(consumers, cs)
	}
	ch.mu.Unlock()
	if active {
		wakeConsumers(consumers)
	}
}

// receiveTimeout bounds basic.get's receive (it never waits for messages).
const receiveTimeout = 5 * time.Second
