package amqpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// handleBasic executes the basic.* methods other than publish.
func (ch *channel) handleBasic(m wire.Method) error {
	switch m := m.(type) {
	case *wire.BasicQos:
		return ch.qos(m)
	case *wire.BasicConsume:
		return ch.consume(m)
	case *wire.BasicCancel:
		ch.cancelConsumer(m.ConsumerTag)
		if !m.NoWait {
			ch.reply(&wire.BasicCancelOk{ConsumerTag: m.ConsumerTag})
		}
		return nil
	case *wire.BasicGet:
		return ch.get(m)
	case *wire.BasicNack:
		return ch.nack(m.DeliveryTag, m.Multiple, m.Requeue)
	case *wire.BasicReject:
		return ch.nack(m.DeliveryTag, false, m.Requeue)
	case *wire.BasicRecover:
		if !m.Requeue {
			return newError(wire.NotImplemented, "requeue=false")
		}
		ch.mu.Lock()
		all := ch.unacked.takeAll()
		var wake []*consumer
		for _, d := range all {
			if d.consumer != nil {
				d.consumer.unacked--
				ch.consumerUnacked--
				wake = append(wake, d.consumer)
			}
		}
		ch.mu.Unlock()
		wakeConsumers(wake)
		ch.requeue(all)
		ch.reply(&wire.BasicRecoverOk{})
		return nil
	}
	return newError(wire.CommandInvalid, "%s is not a method a client sends", m.Name())
}

func (ch *channel) qos(m *wire.BasicQos) error {
	if m.PrefetchSize != 0 {
		return newError(wire.NotImplemented, "prefetch_size!=0 (%d)", m.PrefetchSize)
	}
	ch.mu.Lock()
	var wake []*consumer
	if m.Global {
		ch.channelPrefetch = m.PrefetchCount
		for _, cs := range ch.consumers {
			wake = append(wake, cs)
		}
	} else {
		ch.consumerPrefetch = m.PrefetchCount
	}
	ch.mu.Unlock()
	wakeConsumers(wake)
	ch.reply(&wire.BasicQosOk{})
	return nil
}

// resolveQueue maps "" to the channel's last declared queue, as RabbitMQ.
func (ch *channel) resolveQueue(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if ch.lastQueue == "" {
		return "", newError(wire.NotFound, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

func (ch *channel) consume(m *wire.BasicConsume) error {
	if !ch.c.role.canConsume() {
		return newError(wire.AccessRefused, "access to queue '%s' in vhost '/' refused for user '%s' (role %s)", m.Queue, ch.c.user, ch.c.role)
	}
	name, err := ch.resolveQueue(m.Queue)
	if err != nil {
		return err
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = serverConsumerTag()
	}
	ch.mu.Lock()
	_, taken := ch.consumers[tag]
	ch.mu.Unlock()
	if taken {
		return newError(wire.NotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	q, err := ch.c.s.topo.addConsumer(ch.c, name, m.Exclusive)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ch.c.ctx)
	cs := &consumer{ch: ch, tag: tag, queueName: name, q: q, noAck: m.NoAck, wake: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	ch.mu.Lock()
	cs.prefetch = ch.consumerPrefetch
	ch.consumers[tag] = cs
	ch.mu.Unlock()
	if !m.NoWait {
		// consume-ok goes out before the first delivery: the goroutine
		// starts after it is in the outbox.
		ch.reply(&wire.BasicConsumeOk{ConsumerTag: tag})
	}
	ch.c.wg.Go(cs.run)
	return nil
}

func serverConsumerTag() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	return "amq.ctag-" + base64.RawURLEncoding.EncodeToString(raw[:])
}

// cancelConsumer stops a consumer; its unacknowledged deliveries stay on
// the channel (the client may still acknowledge them).
func (ch *channel) cancelConsumer(tag string) {
	ch.mu.Lock()
	cs := ch.consumers[tag]
	delete(ch.consumers, tag)
	ch.mu.Unlock()
	if cs == nil {
		return // unknown tags are ignored, as in RabbitMQ
	}
	cs.stop()
	<-cs.done
	ch.c.s.topo.removeConsumer(cs.queueName)
}

func (ch *channel) get(m *wire.BasicGet) error {
	if !ch.c.role.canConsume() {
		return newError(wire.AccessRefused, "access to queue '%s' in vhost '/' refused for user '%s' (role %s)", m.Queue, ch.c.user, ch.c.role)
	}
	name, err := ch.resolveQueue(m.Queue)
	if err != nil {
		return err
	}
	topo := ch.c.s.topo
	topo.mu.Lock()
	q, err := topo.lookupQueueLocked(ch.c, name)
	topo.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ch.c.ctx, receiveTimeout)
	defer cancel()
	msgs, err := q.ReceiveHold(ctx, 1, 0)
	if err != nil {
		if errors.Is(err, queue.ErrNoSuchQueue) {
			return errNoQueue(name)
		}
		return err
	}
	if len(msgs) == 0 {
		ch.reply(&wire.BasicGetEmpty{})
		return nil
	}
	msg := &msgs[0]
	remaining := uint32(q.Stats().Visible)
	ch.mu.Lock()
	ch.nextTag++
	tag := ch.nextTag
	if !m.NoAck {
		ch.unacked.add(&delivery{tag: tag, q: q, receipt: msg.ReceiptHandle})
	}
	exchangeName, key, props := deliveryForm(msg, name)
	frameMax := ch.c.frameMax
	ch.c.out.writeNoKick(func(b []byte) []byte {
		return appendContent(b, ch.id, &wire.BasicGetOk{DeliveryTag: tag, Redelivered: msg.ReceiveCount > 1,
			Exchange: exchangeName, RoutingKey: key, MessageCount: remaining}, props, msg.Body, frameMax)
	})
	ch.mu.Unlock()
	ch.c.out.kick()
	if m.NoAck {
		if err := q.Delete(context.Background(), msg.ReceiptHandle); err != nil && !errors.Is(err, queue.ErrNoSuchQueue) {
			return newError(wire.InternalError, "%v", err)
		}
	}
	return nil
}

// handleTopology executes exchange.* and queue.* methods; errNotTopology
// for anything else.
func (ch *channel) handleTopology(m wire.Method) error {
	topo := ch.c.s.topo
	switch m := m.(type) {
	case *wire.ExchangeDeclare:
		if err := topo.declareExchange(ch.c, m); err != nil {
			return err
		}
		if !m.NoWait {
			ch.reply(&wire.ExchangeDeclareOk{})
		}
		return nil
	case *wire.ExchangeDelete:
		if err := topo.deleteExchange(ch.c, m); err != nil {
			return err
		}
		if !m.NoWait {
			ch.reply(&wire.ExchangeDeleteOk{})
		}
		return nil
	case *wire.QueueDeclare:
		res, err := topo.declareQueue(ch.c, m)
		if err != nil {
			return err
		}
		ch.lastQueue = res.name
		if !m.NoWait {
			ch.reply(&wire.QueueDeclareOk{Queue: res.name, MessageCount: res.messages, ConsumerCount: res.consumers})
		}
		return nil
	case *wire.QueueBind:
		name, err := ch.resolveQueue(m.Queue)
		if err == nil {
			err = topo.bindQueue(ch.c, name, m.Exchange, m.RoutingKey, m.Arguments)
		}
		if err == nil && !m.NoWait {
			ch.reply(&wire.QueueBindOk{})
		}
		return err
	case *wire.QueueUnbind:
		name, err := ch.resolveQueue(m.Queue)
		if err == nil {
			err = topo.unbindQueue(ch.c, name, m.Exchange, m.RoutingKey, m.Arguments)
		}
		if err == nil {
			ch.reply(&wire.QueueUnbindOk{})
		}
		return err
	case *wire.QueuePurge:
		return ch.purge(m)
	case *wire.QueueDelete:
		name, err := ch.resolveQueue(m.Queue)
		if err != nil {
			return err
		}
		n, err := topo.deleteQueue(ch.c, m, name)
		if err != nil {
			return err
		}
		if name == ch.lastQueue {
			ch.lastQueue = ""
		}
		if !m.NoWait {
			ch.reply(&wire.QueueDeleteOk{MessageCount: n})
		}
		return nil
	}
	return errNotTopology
}

func (ch *channel) purge(m *wire.QueuePurge) error {
	name, err := ch.resolveQueue(m.Queue)
	if err != nil {
		return err
	}
	q, err := ch.c.s.topo.purgeQueue(ch.c, name)
	if err != nil {
		return err
	}
	n, err := q.PurgeVisible(ch.c.ctx)
	if err != nil {
		if errors.Is(err, queue.ErrNoSuchQueue) {
			return errNoQueue(name)
		}
		return newError(wire.InternalError, "%v", err)
	}
	if !m.NoWait {
		ch.reply(&wire.QueuePurgeOk{MessageCount: uint32(n)})
	}
	return nil
}
