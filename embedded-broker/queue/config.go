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
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidParameter, strings.Join(problems, "; "))
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
