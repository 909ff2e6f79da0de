package pipelines

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/rules"
)

// The fields of queue and exchange targets beyond SQS (docs/queues.md):
// each is an expression, type-checked when the config loads.
var messageFieldNames = []string{"priority", "ttl", "delay", "reply_to", "correlation_id"}

// messageFields reports which of them a target sets.
func (tc *TargetConfig) messageFields() map[string]bool {
	return map[string]bool{"priority": tc.Priority != "", "ttl": tc.TTL != "", "delay": tc.Delay != "",
		"reply_to": tc.ReplyTo != "", "correlation_id": tc.CorrelationID != ""}
}

// messageRules compiles the target's priority, ttl, delay, reply_to and
// correlation_id rules into t. q is the target queue (nil for an exchange
// target, whose bindings decide the queues): a priority for a queue
// without max_priority, or a delay for a FIFO queue, is refused here,
// since it could only be ignored or fail for every event.
func (v *validator) messageRules(p string, tc *TargetConfig, t *Target, q *Queue) {
	t.Priority = v.compile(p+".priority", tc.Priority, rules.Int)
	t.TTL = v.compile(p+".ttl", tc.TTL, rules.Duration)
	t.Delay = v.compile(p+".delay", tc.Delay, rules.Duration)
	t.ReplyTo = v.compile(p+".reply_to", tc.ReplyTo, rules.String)
	t.CorrelationID = v.compile(p+".correlation_id", tc.CorrelationID, rules.String)
	if q == nil {
		return
	}
	if tc.Priority != "" && q.MaxPriority == 0 {
		v.fail(p+".priority", ErrConflict, "queue %q has no max_priority: set broker.queues.%s.max_priority", tc.Queue, tc.Queue)
	}
	if tc.Delay != "" && q.FIFO {
		v.fail(p+".delay", ErrConflict, "a FIFO queue takes no per-message delay")
	}
}

// queueExtensions checks a queue's max_priority, priority_aging and
// message_ttl with the queue package's bounds.
func (v *validator) queueExtensions(p string, q *Queue) {
	switch {
	case q.MaxPriority < 0 || q.MaxPriority > 255:
		v.fail(p+".max_priority", ErrInvalid, "must be between 1 and 255 (0 or absent: not a priority queue)")
	case q.MaxPriority > 0 && q.FIFO:
		v.fail(p+".max_priority", ErrConflict, "a FIFO queue cannot be a priority queue: it delivers each group in send order")
	}
	if q.PriorityAging != 0 {
		if q.MaxPriority == 0 {
			v.fail(p+".priority_aging", ErrConflict, "priority_aging needs max_priority")
		}
		v.between(p+".priority_aging", q.PriorityAging, time.Millisecond, 24*time.Hour)
	}
	if q.MessageTTL != 0 {
		v.between(p+".message_ttl", q.MessageTTL, time.Millisecond, time.Duration(q.Retention))
	}
}

// MessageValues are what a queue or exchange target's message rules
// computed for one output. A rule that is not configured, or whose result is
// nil, leaves its Has flag false: the queue's own default applies.
type MessageValues struct {
	Priority                      int
	TTL, Delay                    time.Duration
	ReplyTo, CorrelationID        string
	HasPriority, HasTTL, HasDelay bool
	HasReplyTo, HasCorrelationID  bool
}

// Any reports whether any value is set.
func (m *MessageValues) Any() bool {
	return m.HasPriority || m.HasTTL || m.HasDelay || m.HasReplyTo || m.HasCorrelationID
}

// HasMessageRules reports whether t computes any message value.
func (t *Target) HasMessageRules() bool {
	return t.Priority != nil || t.TTL != nil || t.Delay != nil || t.ReplyTo != nil || t.CorrelationID != nil
}

// RenderMessage evaluates t's priority, ttl, delay, reply_to and
// correlation_id rules against env (reset to the output). A failure is a
// *RuleError naming the rule (the caller fills in pipeline and route): a
// priority outside 0..255 is one, as is a ttl of zero.
func (t *Target) RenderMessage(env *rules.Env) (MessageValues, error) {
	var m MessageValues
	fail := func(rule string, err error) (MessageValues, error) {
		return MessageValues{}, &RuleError{Rule: rule, Err: err}
	}
	if t.Priority != nil {
		n, ok, err := t.Priority.EvalInt(env)
		if err != nil {
			return fail("priority", err)
		}
		if ok && (n < 0 || n > 255) {
			return fail("priority", fmt.Errorf("priority %d is outside 0..255", n))
		}
		m.Priority, m.HasPriority = int(n), ok
	}
	var err error
	if t.TTL != nil {
		if m.TTL, m.HasTTL, err = t.TTL.EvalDuration(env); err != nil {
			return fail("ttl", err)
		}
		if m.HasTTL && m.TTL == 0 {
			return fail("ttl", errors.New("a ttl of 0 would expire the message at once"))
		}
	}
	if t.Delay != nil {
		if m.Delay, m.HasDelay, err = t.Delay.EvalDuration(env); err != nil {
			return fail("delay", err)
		}
	}
	if t.ReplyTo != nil {
		if m.ReplyTo, m.HasReplyTo, err = t.ReplyTo.EvalString(env); err != nil {
			return fail("reply_to", err)
		}
	}
	if t.CorrelationID != nil {
		if m.CorrelationID, m.HasCorrelationID, err = t.CorrelationID.EvalString(env); err != nil {
			return fail("correlation_id", err)
		}
	}
	return m, nil
}

// messageExpect is what a `bridge test` case expects of a queue target's
// message values; unset fields are not checked. ttl and delay are durations
// ("90s"), compared by value.
type messageExpect struct {
	Priority      *string `yaml:"priority"`
	TTL           *string `yaml:"ttl"`
	Delay         *string `yaml:"delay"`
	ReplyTo       *string `yaml:"reply_to"`
	CorrelationID *string `yaml:"correlation_id"`
}

// diffMessage writes the differences between want and have to diff.
func diffMessage(diff *strings.Builder, what string, want *messageExpect, have *MessageValues) {
	duration := func(d time.Duration, has bool) (string, bool) { return d.String(), has }
	norm := func(s *string) *string {
		if s == nil {
			return nil
		}
		if d, err := time.ParseDuration(*s); err == nil {
			v := d.String()
			return &v
		}
		return s
	}
	ttl, hasTTL := duration(have.TTL, have.HasTTL)
	delay, hasDelay := duration(have.Delay, have.HasDelay)
	for _, f := range []struct {
		field string
		want  *string
		got   string
		has   bool
	}{
		{"priority", want.Priority, strconv.Itoa(have.Priority), have.HasPriority},
		{"ttl", norm(want.TTL), ttl, hasTTL},
		{"delay", norm(want.Delay), delay, hasDelay},
		{"reply_to", want.ReplyTo, have.ReplyTo, have.HasReplyTo},
		{"correlation_id", want.CorrelationID, have.CorrelationID, have.HasCorrelationID},
	} {
		if f.want != nil && (!f.has || *f.want != f.got) {
			fmt.Fprintf(diff, "    %s of %s:\n      expected: %q\n      got:      %s\n", f.field, what, *f.want, quoteOrUnset(f.got, f.has))
		}
	}
}
