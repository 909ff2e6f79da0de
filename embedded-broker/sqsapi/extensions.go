package sqsapi

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// bridge's queue features beyond SQS (docs/queues.md), carried over the
// unchanged SQS protocol so that any SDK can use them:
//
//   - message attributes bridge-priority, bridge-ttl, bridge-delay (a
//     delay past DelaySeconds' 15 minutes), bridge-reply-to and
//     bridge-correlation-id (request-reply), read on send and stored with
//     the message as the attributes they are;
//   - queue attributes bridge-max-priority, bridge-priority-aging and
//     bridge-message-ttl on CreateQueue, SetQueueAttributes and
//     GetQueueAttributes;
//   - the CreateQueue tag bridge-temporary: a queue deleted once idle.
//
// Times are SQS's unit, seconds (a decimal number: "90", "0.5"), or a Go
// duration with its unit ("1500ms", "2h").

// Message attributes bridge reads.
const (
	AttributePriority      = "bridge-priority"
	AttributeTTL           = "bridge-ttl"
	AttributeDelay         = "bridge-delay"
	AttributeReplyTo       = "bridge-reply-to"
	AttributeCorrelationID = "bridge-correlation-id"
)

// Queue attributes and the tag bridge adds.
const (
	attrMaxPriority   = "bridge-max-priority"
	attrPriorityAging = "bridge-priority-aging"
	attrMessageTTL    = "bridge-message-ttl"
	// TagTemporary makes CreateQueue's queue temporary: "true" (deleted
	// after DefaultIdleTimeout unused) or the idle time.
	TagTemporary = "bridge-temporary"
	// DefaultIdleTimeout is a temporary queue's idle time for "true": the
	// AWS temporary queue client's default idle queue retention.
	DefaultIdleTimeout = 300 * time.Second
	// maxCorrelationID is AMQP's shortstr limit, so that the id maps onto
	// the correlation_id property of an AMQP delivery.
	maxCorrelationID = 255
)

// extensionQueueAttributes are the readable queue attributes bridge adds;
// GetQueueAttributes with All returns those that are set.
var extensionQueueAttributes = []string{attrMaxPriority, attrPriorityAging, attrMessageTTL}

// queueAttributeOrder is the order of every readable queue attribute in an
// answer: SQS's, then bridge's.
var queueAttributeOrder = append(slices.Clone(readableQueueAttributes), extensionQueueAttributes...)

// maxTime bounds the times parseTime accepts (the queue package bounds
// each use further).
const maxTime = 100 * 365 * 24 * time.Hour

// parseTime reads a time in seconds ("90", "0.25") or a Go duration
// ("1500ms"). Negative, NaN and values past 100 years are refused.
func parseTime(s string) (time.Duration, bool) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f < 0 || f > maxTime.Seconds() {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxTime {
		return 0, false
	}
	return d, true
}

// formatSeconds renders d in seconds, as the queue attributes are read.
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// applyMessageExtensions reads the bridge-* message attributes of a send
// into in. DelaySeconds (already applied) and bridge-delay exclude each
// other.
func applyMessageExtensions(cfg *queue.Config, e *sendEntry, in *queue.SendInput) *apiError {
	for _, a := range in.Attributes {
		if !strings.HasPrefix(a.Name, "bridge-") {
			continue
		}
		value := string(a.Value)
		invalid := func(reason string) *apiError {
			return newError(kindInvalidParameterValue, "Value %s for message attribute %s is invalid. Reason: %s", value, a.Name, reason)
		}
		if strings.HasPrefix(a.DataType, "Binary") {
			switch a.Name {
			case AttributePriority, AttributeTTL, AttributeDelay, AttributeReplyTo, AttributeCorrelationID:
				return invalid("must be of type String or Number.")
			}
			continue
		}
		switch a.Name {
		case AttributePriority:
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > queue.MaxMaxPriority {
				return invalid("an integer from 0 to 255.")
			}
			in.Priority = n
		case AttributeTTL:
			d, ok := parseTime(value)
			if !ok || d == 0 {
				return invalid("a positive number of seconds or a duration such as 1500ms.")
			}
			in.TTL = d
		case AttributeDelay:
			d, ok := parseTime(value)
			switch {
			case !ok:
				return invalid("a number of seconds or a duration such as 2h.")
			case e.DelaySeconds != nil:
				return invalid("give DelaySeconds or bridge-delay, not both.")
			case cfg.FIFO:
				return invalid("FIFO queues take no per-message delay.")
			case d >= cfg.Retention:
				return invalid("the delay must be shorter than the queue's MessageRetentionPeriod.")
			}
			in.Delay, in.HasDelay = d, true
		case AttributeReplyTo:
			if _, apiErr := nameFromURL(value); apiErr != nil {
				return invalid("a queue URL or a queue name.")
			}
		case AttributeCorrelationID:
			if len(value) > maxCorrelationID {
				return invalid("at most 255 bytes.")
			}
		}
	}
	return nil
}

// applyExtensionAttribute sets one of bridge's queue attributes on cfg; it
// reports false for a name that is not one of them.
func applyExtensionAttribute(cfg *queue.Config, name, value string) (bool, *apiError) {
	invalid := func(reason string) *apiError {
		return newError(kindInvalidAttributeValue, "Invalid value for the parameter %s: %s", name, reason)
	}
	switch name {
	case attrMaxPriority:
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > queue.MaxMaxPriority {
			return true, invalid("must be an integer from 0 to 255.")
		}
		if n > 0 && cfg.FIFO {
			return true, invalid("a FIFO queue cannot be a priority queue.")
		}
		cfg.MaxPriority = n
	case attrPriorityAging:
		d, ok := parseTime(value)
		if !ok {
			return true, invalid("must be a number of seconds or a duration.")
		}
		cfg.PriorityAging = d
	case attrMessageTTL:
		d, ok := parseTime(value)
		if !ok {
			return true, invalid("must be a number of seconds or a duration.")
		}
		cfg.MessageTTL = d
	default:
		return false, nil
	}
	return true, nil
}

// extensionAttributes adds bridge's queue attributes to attrs: those asked
// for by name always, with All those that are set.
func extensionAttributes(cfg *queue.Config, want map[string]bool, all bool, attrs map[string]string) {
	values := map[string]string{
		attrMaxPriority:   strconv.Itoa(cfg.MaxPriority),
		attrPriorityAging: formatSeconds(cfg.PriorityAging),
		attrMessageTTL:    formatSeconds(cfg.MessageTTL),
	}
	for _, name := range extensionQueueAttributes {
		if want[name] || all && values[name] != "0" {
			attrs[name] = values[name]
		}
	}
}

// temporaryIdleTimeout reads CreateQueue's bridge-temporary tag: the idle
// time after which the queue is deleted, 0 when it is not temporary.
func temporaryIdleTimeout(tags map[string]string) (time.Duration, *apiError) {
	value, ok := tags[TagTemporary]
	if !ok {
		return 0, nil
	}
	switch strings.ToLower(value) {
	case "true":
		return DefaultIdleTimeout, nil
	case "false", "":
		return 0, nil
	}
	d, ok := parseTime(value)
	if !ok || d < queue.MinIdleTimeout || d > queue.MaxIdleTimeout {
		return 0, newError(kindInvalidParameterValue, "Value %s for tag %s is invalid. Reason: true, false, or an idle time from 1 second to 14 days.", value, TagTemporary)
	}
	return d, nil
}
