package queue

import (
	"fmt"
	"strings"
	"time"
)

// Config is a queue's attributes, named as SQS names them.
//
// Create and SetConfig replace zero values of VisibilityTimeout, Retention and
// MaxMessageSize by their defaults (SQS's). A queue that really wants a zero
// visibility timeout passes a negative VisibilityTimeout, which is stored as 0.
type Config struct {
	Name                      string
	FIFO                      bool // name must end in ".fifo" iff FIFO
	ContentBasedDeduplication bool
	VisibilityTimeout         time.Duration // default 30s; 0..12h
	Delay                     time.Duration // default 0; 0..15m
	Retention                 time.Duration // default 4 days; 60s..14 days
	MaxMessageSize            int           // default 262144; 1024..1048576
	ReceiveWait               time.Duration // default long-poll wait, 0..20s
	DeadLetterQueue           string        // name of the DLQ ("" = none)
	MaxReceiveCount           int           // 1..1000 when DeadLetterQueue is set

	// MaxPriority makes a priority queue (RabbitMQ's x-max-priority):
	// 1..255, 0 = not a priority queue. A message's priority above it counts
	// as MaxPriority. Standard queues only.
	MaxPriority int
	// PriorityAging, when set, raises a waiting message's priority by one
	// level per PriorityAging since it became visible (up to MaxPriority),
	// so low priorities cannot starve. Needs MaxPriority.
	PriorityAging time.Duration
	// MessageTTL expires a message that stayed undelivered this long
	// after it became visible (RabbitMQ's x-message-ttl); 0 = never. A
	// per-message TTL lower than it wins. An expired message moves to the
	// dead-letter queue (attribute bridge-error: expired), else it is dropped.
	MessageTTL time.Duration
	// IdleTimeout deletes the queue once nobody sent to or received from
	// it for this long (a temporary queue, e.g. an RPC reply queue); 0 =
	// never.
	IdleTimeout time.Duration
}

// Limits and defaults, as SQS documents them.
const (
	DefaultVisibilityTimeout = 30 * time.Second
	MaxVisibilityTimeout     = 12 * time.Hour
	MaxDelay                 = 15 * time.Minute
	DefaultRetention         = 345600 * time.Second
	MinRetention             = 60 * time.Second
	MaxRetention             = 14 * 24 * time.Hour
	DefaultMaxMessageSize    = 262144
	MinMaxMessageSize        = 1024
	MaxMaxMessageSize        = 1048576
	MaxReceiveWait           = 20 * time.Second
	MaxMaxReceiveCount       = 1000
	// MaxMaxPriority is the highest MaxPriority, as in RabbitMQ.
	MaxMaxPriority = 255
	// MinTTL is the shortest TTL a queue keeps (RabbitMQ's 0 means "expire
	// unless delivered at once", which MinTTL approximates).
	MinTTL = time.Millisecond
	// MinIdleTimeout and MaxIdleTimeout bound a temporary queue's idle time.
	MinIdleTimeout = time.Second
	MaxIdleTimeout = 14 * 24 * time.Hour
	// DedupWindow is how long a FIFO deduplication id is remembered.
	DedupWindow = 5 * time.Minute
	// MaxReceiveMessages is the most messages one Receive returns.
	MaxReceiveMessages = 10
	maxQueueNameLength = 80
)

// withDefaults returns c with defaults applied to zero fields.
func (c Config) withDefaults() Config {
	switch {
	case c.VisibilityTimeout == 0:
		c.VisibilityTimeout = DefaultVisibilityTimeout
	case c.VisibilityTimeout < 0:
		c.VisibilityTimeout = 0
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	return c
}

// validate reports every problem of an already-defaulted config, joined.
func (c Config) validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if err := validateName(c.Name); err != nil {
		bad("%v", err)
	}
	if c.FIFO != strings.HasSuffix(c.Name, ".fifo") {
		bad("name %q: a FIFO queue's name must end in .fifo and only a FIFO queue's may", c.Name)
	}
	if c.ContentBasedDeduplication && !c.FIFO {
		bad("content-based deduplication needs a FIFO queue")
	}
	if c.VisibilityTimeout < 0 || c.VisibilityTimeout > MaxVisibilityTimeout {
		bad("visibility timeout %v outside 0..%v", c.VisibilityTimeout, MaxVisibilityTimeout)
	}
	if c.Delay < 0 || c.Delay > MaxDelay {
		bad("delay %v outside 0..%v", c.Delay, MaxDelay)
	}
	if c.Retention < MinRetention || c.Retention > MaxRetention {
		bad("retention %v outside %v..%v", c.Retention, MinRetention, MaxRetention)
	}
	if c.MaxMessageSize < MinMaxMessageSize || c.MaxMessageSize > MaxMaxMessageSize {
		bad("max message size %d outside %d..%d", c.MaxMessageSize, MinMaxMessageSize, MaxMaxMessageSize)
	}
	if c.ReceiveWait < 0 || c.ReceiveWait > MaxReceiveWait {
		bad("receive wait %v outside 0..%v", c.ReceiveWait, MaxReceiveWait)
	}
	if c.DeadLetterQueue != "" {
		if c.MaxReceiveCount < 1 || c.MaxReceiveCount > MaxMaxReceiveCount {
			bad("max receive count %d outside 1..%d", c.MaxReceiveCount, MaxMaxReceiveCount)
		}
		if err := validateName(c.DeadLetterQueue); err != nil {
			bad("dead-letter queue: %v", err)
		} else if strings.HasSuffix(c.DeadLetterQueue, ".fifo") != c.FIFO {
			bad("dead-letter queue %q must be FIFO iff the queue is", c.DeadLetterQueue)
		}
		if c.DeadLetterQueue == c.Name {
			bad("a queue cannot be its own dead-letter queue")
		}
	} else if c.MaxReceiveCount != 0 {
		bad("max receive count %d without a dead-letter queue", c.MaxReceiveCount)
	}
	c.validateExtensions(bad)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidParameter, strings.Join(problems, "; "))
}

// validateExtensions checks the features beyond SQS: priorities, TTL and
// temporary queues.
func (c Config) validateExtensions(bad func(string, ...any)) {
	if c.MaxPriority < 0 || c.MaxPriority > MaxMaxPriority {
		bad("max priority %d outside 0..%d", c.MaxPriority, MaxMaxPriority)
	}
	if c.MaxPriority > 0 && c.FIFO {
		// A FIFO queue promises send order within a group; a priority
		// would either break that promise or be ignored (DESIGN.md).
		bad("a FIFO queue cannot be a priority queue")
	}
	switch {
	case c.PriorityAging < 0:
		bad("priority aging %v is negative", c.PriorityAging)
	case c.PriorityAging > 0 && c.MaxPriority == 0:
		bad("priority aging needs a max priority")
	case c.PriorityAging > 0 && c.PriorityAging < time.Millisecond:
		bad("priority aging %v is below 1ms", c.PriorityAging)
	}
	if c.MessageTTL != 0 && (c.MessageTTL < MinTTL || c.MessageTTL > c.Retention) {
		bad("message TTL %v outside %v..%v (the retention)", c.MessageTTL, MinTTL, c.Retention)
	}
	if c.IdleTimeout != 0 && (c.IdleTimeout < MinIdleTimeout || c.IdleTimeout > MaxIdleTimeout) {
		bad("idle timeout %v outside %v..%v", c.IdleTimeout, MinIdleTimeout, MaxIdleTimeout)
	}
}

// ValidateName reports whether name can name a queue (an error wrapping
// ErrInvalidParameter when not): what Create checks, for callers that take
// a queue name from elsewhere (an AMQP dead-letter routing key).
func ValidateName(name string) error {
	if err := validateName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidParameter, err)
	}
	return nil
}

// validateName checks SQS's rule, widened by '.': 1..80 characters of
// [A-Za-z0-9_.-], plus an optional ".fifo" suffix. SQS names have no dots,
// but AMQP's do ("amq.gen-...", "orders.eu"); the SQS API checks SQS's
// stricter rule itself. The names stay safe as file names (no '/').
func validateName(name string) error {
	base := strings.TrimSuffix(name, ".fifo")
	if name == "" || len(name) > maxQueueNameLength || base == "" {
		return fmt.Errorf("queue name %q: must be 1..%d characters", name, maxQueueNameLength)
	}
	for i := 0; i < len(base); i++ {
		ch := base[i]
		if ch == '-' || ch == '_' || ch == '.' || ('0' <= ch && ch <= '9') || ('a' <= ch && ch <= 'z') || ('A' <= ch && ch <= 'Z') {
			continue
		}
		return fmt.Errorf("queue name %q: only letters, digits, '-', '_' and '.' (plus a .fifo suffix)", name)
	}
	return nil
}
