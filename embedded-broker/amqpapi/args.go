package amqpapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// Queue arguments (queue.declare's x-arguments) as RabbitMQ defines them,
// mapped onto the queue package's features:
//
//	x-max-priority       0..255        Config.MaxPriority (0: not a priority queue)
//	x-message-ttl        ms, ≥ 0       Config.MessageTTL (0 counts as 1 ms: "expire unless delivered at once");
//	                                   longer than the retention raises it; over 14 days (MaxRetention): 406
//	x-expires            ms, > 0       Config.IdleTimeout (at least 1 s)
//	x-dead-letter-exchange "" and x-dead-letter-routing-key Q
//	                                   Config.DeadLetterQueue Q: the default exchange routes a
//	                                   dead letter to the queue named by the key, so this is
//	                                   exactly RabbitMQ's meaning. Another exchange is refused.
//
// Arguments that would change delivery and that bridge does not implement
// are refused with 406, never ignored; placement hints are accepted.

// queueArgs is what queue.declare's arguments ask for.
type queueArgs struct {
	maxPriority     int
	messageTTL      time.Duration
	expires         time.Duration
	deadLetterQueue string
	// given holds the names of the mapped arguments the declare carried.
	given map[string]bool
}

// deadLetterRequeues is MaxReceiveCount of a queue whose dead-letter queue
// comes from x-dead-letter-exchange: RabbitMQ dead-letters on reject,
// expiry and overflow, not after some number of requeues, so the limit is
// set as high as the queue package allows.
const deadLetterRequeues = queue.MaxMaxReceiveCount

func invalidArg(name, queueName string, reason any) error {
	return newError(wire.PreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '/': %v", name, queueName, reason)
}

// parseQueueArguments reads the arguments of a declare of queueName.
func parseQueueArguments(queueName string, args wire.Table) (queueArgs, error) {
	a := queueArgs{given: map[string]bool{}}
	dlx, hasDLX := "", false
	for _, f := range args {
		switch f.Name {
		case "x-queue-type":
			if v, _ := f.Value.(string); v != "classic" && v != "quorum" {
				return a, newError(wire.PreconditionFailed, "x-queue-type '%v' is not supported by bridge (classic and quorum are; both are bridge's durable queue)", f.Value)
			}
		case "x-queue-mode", "x-queue-master-locator", "x-queue-leader-locator", "x-quorum-initial-group-size", "x-ha-policy":
			// Placement and storage hints: no meaning on one node.
		case "x-max-priority":
			n, err := intArg(f, queueName, 0, queue.MaxMaxPriority)
			if err != nil {
				return a, err
			}
			a.maxPriority = int(n)
		case "x-message-ttl":
			n, err := intArg(f, queueName, 0, 1<<32-1)
			if err != nil {
				return a, err
			}
			if ttl := time.Duration(n) * time.Millisecond; ttl > queue.MaxRetention {
				return a, newError(wire.PreconditionFailed, "invalid arg 'x-message-ttl' for queue '%s' in vhost '/': %d ms is longer than bridge keeps a message (%v)", queueName, n, queue.MaxRetention)
			}
			a.messageTTL = max(time.Duration(n)*time.Millisecond, queue.MinTTL)
		case "x-expires":
			n, err := intArg(f, queueName, 1, 1<<32-1)
			if err != nil {
				return a, err
			}
			a.expires = min(max(time.Duration(n)*time.Millisecond, queue.MinIdleTimeout), queue.MaxIdleTimeout)
		case "x-dead-letter-exchange":
			s, ok := f.Value.(string)
			if !ok {
				return a, invalidArg(f.Name, queueName, "{unacceptable_type,"+fieldType(f.Value)+"}")
			}
			if s != defaultExchange {
				return a, newError(wire.PreconditionFailed, "queue argument 'x-dead-letter-exchange' '%s' is not supported by bridge: dead letters go to a queue, through the default exchange (x-dead-letter-exchange \"\" and x-dead-letter-routing-key QUEUE)", s)
			}
			hasDLX = true
		case "x-dead-letter-routing-key":
			s, ok := f.Value.(string)
			if !ok || s == "" {
				return a, invalidArg(f.Name, queueName, "{unacceptable_type,"+fieldType(f.Value)+"}")
			}
			dlx = s
		case "x-max-length", "x-max-length-bytes", "x-overflow", "x-single-active-consumer", "x-delivery-limit", "x-max-age":
			return a, newError(wire.PreconditionFailed, "queue argument '%s' is not supported by bridge", f.Name)
		default:
			continue
		}
		a.given[f.Name] = true
	}
	switch {
	case hasDLX && dlx == "":
		return a, newError(wire.PreconditionFailed, "queue argument 'x-dead-letter-exchange' \"\" needs x-dead-letter-routing-key: the queue dead letters go to")
	case !hasDLX && dlx != "":
		return a, newError(wire.PreconditionFailed, "invalid arg 'x-dead-letter-routing-key' for queue '%s' in vhost '/': {missing_dead_letter_exchange}", queueName)
	case dlx == queueName:
		return a, newError(wire.PreconditionFailed, "queue '%s' cannot be its own dead-letter queue", queueName)
	case strings.HasSuffix(dlx, ".fifo"):
		// AMQP declares standard queues only, and a DLQ is FIFO iff its queue is.
		return a, invalidArg("x-dead-letter-routing-key", queueName, "a FIFO queue cannot take the dead letters of a standard queue: "+dlx)
	case dlx != "" && queue.ValidateName(dlx) != nil:
		return a, invalidArg("x-dead-letter-routing-key", queueName, "not a queue name bridge can have: "+dlx)
	}
	a.deadLetterQueue = dlx
	return a, nil
}

// intArg reads an integer argument in lo..hi, as RabbitMQ checks it.
func intArg(f wire.Field, queueName string, lo, hi int64) (int64, error) {
	var n int64
	switch v := f.Value.(type) {
	case int8:
		n = int64(v)
	case uint8:
		n = int64(v)
	case int16:
		n = int64(v)
	case uint16:
		n = int64(v)
	case int32:
		n = int64(v)
	case uint32:
		n = int64(v)
	case int64:
		n = v
	default:
		return 0, invalidArg(f.Name, queueName, "{unacceptable_type,"+fieldType(f.Value)+"}")
	}
	switch {
	case n < lo && lo == 1 && n == 0:
		return 0, invalidArg(f.Name, queueName, "{value_zero,0}")
	case n < lo:
		return 0, invalidArg(f.Name, queueName, "{value_negative,"+itoa(n)+"}")
	case n > hi:
		return 0, invalidArg(f.Name, queueName, "{max_value_exceeded,"+itoa(n)+"}")
	}
	return n, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fieldType names a field value's AMQP type as RabbitMQ's errors do.
func fieldType(v any) string {
	switch v.(type) {
	case string:
		return "longstr"
	case bool:
		return "bool"
	case float32:
		return "float"
	case float64:
		return "double"
	case []byte:
		return "binary"
	case wire.Table:
		return "table"
	case []any:
		return "array"
	case nil:
		return "void"
	}
	return "unknown"
}

// apply sets the arguments on a new queue's config.
func (a queueArgs) apply(cfg *queue.Config) {
	cfg.MaxPriority = a.maxPriority
	cfg.MessageTTL = a.messageTTL
	// RabbitMQ keeps a message until it is consumed or expires; bridge's
	// queues also have a retention. A TTL longer than it raises it, so
	// that the TTL, not the retention, decides when the message goes.
	ret := cfg.Retention
	if ret == 0 {
		ret = queue.DefaultRetention
	}
	if a.messageTTL > ret {
		cfg.Retention = a.messageTTL
	}
	cfg.IdleTimeout = a.expires
	if a.deadLetterQueue != "" {
		cfg.DeadLetterQueue, cfg.MaxReceiveCount = a.deadLetterQueue, deadLetterRequeues
	}
}

// checkEquivalent compares a redeclare's arguments with the existing
// queue's config, as RabbitMQ does (406 inequivalent arg). strict (a queue
// declared over AMQP) compares every mapped argument, an absent one
// meaning none; otherwise (a queue of the config file or the SQS API) only
// the arguments given are compared, so an application that declares its
// queues keeps working against a queue the config made a priority queue.
func (a queueArgs) checkEquivalent(name string, cfg queue.Config, strict bool) error {
	type arg struct {
		name              string
		received, current any
	}
	ttl := func(d time.Duration) any { return int64(d / time.Millisecond) }
	dlq := cfg.DeadLetterQueue
	for _, c := range []arg{
		{"x-max-priority", a.maxPriority, cfg.MaxPriority},
		{"x-message-ttl", ttl(a.messageTTL), ttl(cfg.MessageTTL)},
		{"x-expires", ttl(a.expires), ttl(cfg.IdleTimeout)},
		{"x-dead-letter-routing-key", a.deadLetterQueue, dlq},
	} {
		if !strict && !a.given[c.name] {
			continue
		}
		if c.received != c.current {
			return inequivalent(c.name, "queue", name, c.received, c.current)
		}
	}
	return nil
}
