package engine

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/rules"
)

// Queue features of routes (docs/queues.md): a queue or exchange target's
// priority, ttl, delay, reply_to and correlation_id rules become the
// message's priority, TTL and delay and its request-reply attributes.

// Attribute names of request-reply, as the SQS API reads them.
const (
	attrReplyTo       = "bridge-reply-to"
	attrCorrelationID = "bridge-correlation-id"
	// headerAMQPPriority is the AMQP priority property of an event that
	// came from RabbitMQ (SPEC §8's amqp.* headers).
	headerAMQPPriority = "amqp.priority"
)

// messageParams evaluates the route's message rules into params. A
// failure is the route's rule failure (on_error applies to the event).
func (r *route) messageParams(env *rules.Env, params *event.Params) error {
	if r.message == nil {
		return nil
	}
	m, err := r.message.RenderMessage(env)
	if err != nil {
		var re *pipelines.RuleError
		if errors.As(err, &re) {
			return fmt.Errorf("%s: %w", re.Rule, re.Err)
		}
		return err
	}
	params.Priority, params.HasPriority = m.Priority, m.HasPriority
	if m.HasTTL {
		params.TTL = m.TTL
	}
	params.Delay, params.HasDelay = m.Delay, m.HasDelay
	if m.HasReplyTo {
		params.ReplyTo = m.ReplyTo
	}
	if m.HasCorrelationID {
		params.CorrelationID = m.CorrelationID
	}
	return nil
}

// applyMessageParams sets a queue message's priority, TTL, delay and
// request-reply attributes from p. Without a priority rule, an event that
// came from RabbitMQ keeps its AMQP priority (header amqp.priority). The
// route's reply_to and correlation_id replace attributes of the same name
// the event's headers carried.
func applyMessageParams(in *queue.SendInput, ev *event.Event, p *event.Params) {
	switch {
	case p.HasPriority:
		in.Priority = p.Priority
	default:
		if v, ok := ev.Header(headerAMQPPriority); ok {
			if n, err := strconv.Atoi(string(v)); err == nil && n >= 0 && n <= queue.MaxMaxPriority {
				in.Priority = n
			}
		}
	}
	in.TTL = p.TTL
	// An exchange may route one event to standard and FIFO queues alike;
	// a FIFO queue takes no per-message delay, so it gets none (a queue
	// target's delay on a FIFO queue is refused when the config loads).
	if p.HasDelay && in.GroupID == "" {
		in.Delay, in.HasDelay = p.Delay, true
	}
	if p.ReplyTo != "" {
		in.Attributes = setAttribute(in.Attributes, attrReplyTo, p.ReplyTo)
	}
	if p.CorrelationID != "" {
		in.Attributes = setAttribute(in.Attributes, attrCorrelationID, p.CorrelationID)
	}
}

// setAttribute replaces every attribute called name by one with value.
func setAttribute(attrs []queue.Attribute, name, value string) []queue.Attribute {
	out := attrs[:0]
	for _, a := range attrs {
		if a.Name != name {
			out = append(out, a)
		}
	}
	return append(out, queue.Attribute{Name: name, DataType: "String", Value: []byte(value)})
}
