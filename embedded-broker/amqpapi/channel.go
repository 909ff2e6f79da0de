package amqpapi

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
)

// inboxSize bounds the commands a channel holds between the reader and
// its worker: past it the reader stops reading the socket.
const inboxSize = 1024

// command is one complete client command for a channel's worker: a method
// and, for basic.publish, its properties and body; or an error the reader
// found that closes the channel.
type command struct {
	method   wire.Method
	raw      []byte // property flags and list, as received
	props    *wire.BasicProperties
	bodySize int
	body     []byte
	size     int64 // bytes counted in the connection's pending publishes
	err      *protoError
}

// channel is one AMQP channel. The reader owns its entry in the
// connection's map, inbox (it sends and closes it) and assembling; the
// worker (run) executes commands in order; consumer goroutines deliver.
//
// Lock: mu guards the fields below it and is shared by the worker and the
// consumers; it is taken before the outbox's lock (deliveries append their
// frames under mu so that delivery tags go out in order) and never before
// the topology's.
type channel struct {
	c       *conn
	id      uint16
	inbox   chan *command
	closing atomic.Bool // channel.close sent by the server; the reader drops frames until close-ok

	assembling *command // the reader's publish awaiting its header and body
	skipBody   uint64   // the reader's count of body bytes to drop (a refused message)

	// Worker-owned.
	confirm    bool
	publishSeq uint64
	lastQueue  string // the queue "" stands for (RabbitMQ's last declared queue)
	batch      publishBatch

	mu        sync.Mutex
	nextTag   uint64
	unacked   unackedSet
	consumers map[string]*consumer
	// prefetch: per new consumer (global=false) and for the whole channel
	// (global=true, counting every consumer's unacknowledged deliveries).
	consumerPrefetch uint16
	channelPrefetch  uint16
	consumerUnacked  int // deliveries to consumers not yet acknowledged
	flowPaused       bool
	stopped          bool // cleanup ran: no new deliveries
}

func newChannel(c *conn, id uint16) *channel {
	return &channel{c: c, id: id, inbox: make(chan *command, inboxSize), consumers: map[string]*consumer{}}
}

// run is the channel's worker: it executes commands in order, handling
// runs of publishes as one batch (one durable write per queue, then the
// confirms), until the reader closes the inbox.
func (ch *channel) run() {
	defer ch.cleanup()
	pending := make([]*command, 0, 64)
	for {
		cmd, ok := <-ch.inbox
		if !ok {
			return
		}
		pending = append(pending[:0], cmd)
		// Take whatever else is already waiting: a pipelining publisher's
		// messages then share one durable write.
	drain:
		for len(pending) < cap(pending)*4 {
			select {
			case next, ok := <-ch.inbox:
				if !ok {
					break drain
				}
				pending = append(pending, next)
			default:
				break drain
			}
		}
		ch.execute(pending)
	}
}

// execute runs a drained run of commands: consecutive publishes as one
// batch, the rest one by one.
func (ch *channel) execute(cmds []*command) {
	for i := 0; i < len(cmds); {
		if ch.closing.Load() {
			ch.dropPublishes(cmds[i:])
			return
		}
		if _, isPublish := cmds[i].method.(*wire.BasicPublish); isPublish {
			j := i
			for j < len(cmds) {
				if _, ok := cmds[j].method.(*wire.BasicPublish); !ok {
					break
				}
				j++
			}
			ch.fail(ch.publish(cmds[i:j]))
			i = j
			continue
		}
		if _, isAck := cmds[i].method.(*wire.BasicAck); isAck {
			j := i
			for j < len(cmds) {
				if _, ok := cmds[j].method.(*wire.BasicAck); !ok {
					break
				}
				j++
			}
			ch.fail(ch.ackRun(cmds[i:j]))
			i = j
			continue
		}
		cmd := cmds[i]
		i++
		if cmd.err != nil {
			ch.fail(cmd.err)
			continue
		}
		ch.fail(withMethod(ch.handle(cmd.method), cmd.method))
	}
}

// dropPublishes releases the pending bytes of commands a closing channel
// will not execute.
func (ch *channel) dropPublishes(cmds []*command) {
	var n int64
	for _, cmd := range cmds {
		n += cmd.size
	}
	if n > 0 {
		ch.c.releasePending(n)
	}
}

// fail applies an error from a command: a soft protocol error closes the
// channel (cleanup first, then channel.close), anything else the
// connection.
func (ch *channel) fail(err error) {
	if err == nil {
		return
	}
	var pe *protoError
	if !errors.As(err, &pe) {
		pe = newError(wire.InternalError, "%v", err)
	}
	if pe.hard() {
		ch.c.fail(pe)
		return
	}
	if ch.closing.Swap(true) {
		return
	}
	ch.c.log.Debug("closing AMQP channel", "channel", ch.id, "code", pe.code, "text", pe.text)
	ch.cleanup()
	ch.c.out.write(func(b []byte) []byte {
		return wire.AppendMethodFrame(b, ch.id, &wire.ChannelClose{ReplyCode: pe.code, ReplyText: pe.replyText(),
			ClassId: pe.classID, MethodId: pe.methodID})
	})
}

// reply sends a method on this channel.
func (ch *channel) reply(m wire.Method) {
	ch.c.out.write(func(b []byte) []byte { return wire.AppendMethodFrame(b, ch.id, m) })
}

// handle executes one non-publish method.
func (ch *channel) handle(m wire.Method) error {
	switch m := m.(type) {
	case *wire.ChannelClose:
		ch.cleanup()
		ch.reply(&wire.ChannelCloseOk{})
		return nil
	case *wire.ChannelFlow:
		ch.setFlow(m.Active)
		ch.reply(&wire.ChannelFlowOk{Active: m.Active})
		return nil
	case *wire.ChannelFlowOk:
		return nil // the server never asks for flow
	case *wire.ConfirmSelect:
		ch.confirm = true
		if !m.Nowait {
			ch.reply(&wire.ConfirmSelectOk{})
		}
		return nil
	case *wire.TxSelect, *wire.TxCommit, *wire.TxRollback:
		return newError(wire.NotImplemented, "transactions (tx.*) are not supported by bridge; use publisher confirms (confirm.select)")
	case *wire.ExchangeBind, *wire.ExchangeUnbind:
		return newError(wire.NotImplemented, "exchange-to-exchange bindings are not supported by bridge")
	case *wire.BasicRecoverAsync:
		return newError(wire.NotImplemented, "basic.recover-async is deprecated; use basic.recover")
	}
	if err := ch.handleTopology(m); err != errNotTopology {
		return err
	}
	return ch.handleBasic(m)
}

// errNotTopology says handleTopology did not know the method.
var errNotTopology = errors.New("not a topology method")

// cleanup stops the channel's consumers and requeues every delivery not
// acknowledged. It is idempotent; it runs when the channel closes (either
// side) and when the connection ends.
func (ch *channel) cleanup() {
	ch.mu.Lock()
	if ch.stopped {
		ch.mu.Unlock()
		return
	}
	ch.stopped = true
	consumers := make([]*consumer, 0, len(ch.consumers))
	for _, cs := range ch.consumers {
		consumers = append(consumers, cs)
	}
	clear(ch.consumers)
	ch.mu.Unlock()
	for _, cs := range consumers {
		cs.stop()
	}
	for _, cs := range consumers {
		<-cs.done
		ch.c.s.topo.removeConsumer(cs.queueName)
	}
	ch.mu.Lock()
	all := ch.unacked.takeAll()
	ch.consumerUnacked = 0
	ch.mu.Unlock()
	ch.requeue(all)
}
