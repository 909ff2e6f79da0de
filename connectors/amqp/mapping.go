package amqp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
)

// Property headers (SPEC §8).
const (
	HeaderContentType   = "amqp.content_type"
	HeaderMessageID     = "amqp.message_id"
	HeaderCorrelationID = "amqp.correlation_id"
	HeaderReplyTo       = "amqp.reply_to"
	HeaderType          = "amqp.type"
	HeaderPriority      = "amqp.priority"
	HeaderTimestamp     = "amqp.timestamp"
	HeaderAppID         = "amqp.app_id"
)

// maxFieldName is the longest table field name AMQP's short string allows.
const maxFieldName = 255

// toPublishing maps an event to an AMQP message (see the package doc).
func toPublishing(e *event.Event) amqp091.Publishing {
	p := amqp091.Publishing{
		DeliveryMode: amqp091.Persistent,
		Body:         e.Value,
	}
	table := make(amqp091.Table, len(e.Headers)+1)
	var overflow []any
	if e.Key != nil {
		table[event.HeaderKey] = string(e.Key)
	}
	for _, h := range e.Headers {
		if setProperty(&p, h) {
			continue
		}
		_, taken := table[h.Key]
		if taken || h.Key == event.HeaderKey || h.Key == event.HeaderOverflow || h.Key == "" || len(h.Key) > maxFieldName {
			overflow = append(overflow, []any{h.Key, string(h.Value)})
			continue
		}
		table[h.Key] = string(h.Value)
	}
	if len(overflow) > 0 {
		table[event.HeaderOverflow] = overflow
	}
	if len(table) > 0 {
		p.Headers = table
	}
	if p.Timestamp.IsZero() && !e.Timestamp.IsZero() {
		p.Timestamp = e.Timestamp
	}
	return p
}

// setProperty stores an amqp.* header in its property and reports whether it
// did. A value that does not parse, or a repeated property header, is left
// to travel as an ordinary header so that nothing is lost.
func setProperty(p *amqp091.Publishing, h event.Header) bool {
	v := string(h.Value)
	set := func(field *string) bool {
		if *field != "" {
			return false
		}
		*field = v
		return v != ""
	}
	switch h.Key {
	case HeaderContentType:
		return set(&p.ContentType)
	case HeaderMessageID:
		return set(&p.MessageId)
	case HeaderCorrelationID:
		return set(&p.CorrelationId)
	case HeaderReplyTo:
		return set(&p.ReplyTo)
	case HeaderType:
		return set(&p.Type)
	case HeaderAppID:
		return set(&p.AppId)
	case HeaderPriority:
		// Only the canonical text maps to the property, so that the
		// source renders back exactly the header it was given.
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil || n == 0 || p.Priority != 0 || strconv.FormatUint(n, 10) != v {
			return false
		}
		p.Priority = uint8(n)
		return true
	case HeaderTimestamp:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || !p.Timestamp.IsZero() || strconv.FormatInt(n, 10) != v {
			return false
		}
		p.Timestamp = time.Unix(n, 0)
		return true
	}
	return false
}

// FromDelivery maps a message as the source does (SPEC §8; see the package
// doc), for tools that read a queue themselves (bridge migrate's
// verification): bridge-key is the key, bridge-headers is unpacked, the
// properties become amqp.* headers.
func FromDelivery(d *amqp091.Delivery) event.Event { return fromDelivery(d, false, "", time.Time{}) }

// fromDelivery maps an AMQP message to an event (see the package doc). The
// event's Timestamp falls back to now when the message has none.
func fromDelivery(d *amqp091.Delivery, keyFromMessageID bool, source string, now time.Time) event.Event {
	e := event.Event{Value: d.Body, Source: source, Timestamp: now}
	if !d.Timestamp.IsZero() {
		e.Timestamp = d.Timestamp
	}
	names := make([]string, 0, len(d.Headers))
	for name := range d.Headers {
		if name != event.HeaderKey && name != event.HeaderOverflow {
			names = append(names, name)
		}
	}
	slices.Sort(names) // a table is a map: give its names a stable order
	e.Headers = make([]event.Header, 0, len(names)+8)
	for _, name := range names {
		e.Headers = append(e.Headers, event.Header{Key: name, Value: renderValue(d.Headers[name])})
	}
	if v, ok := d.Headers[event.HeaderKey]; ok {
		e.Key = renderValue(v)
	}
	if v, ok := d.Headers[event.HeaderOverflow]; ok {
		e.Headers = appendOverflow(e.Headers, v)
	}
	props := []struct{ name, value string }{
		{HeaderContentType, d.ContentType},
		{HeaderMessageID, d.MessageId},
		{HeaderCorrelationID, d.CorrelationId},
		{HeaderReplyTo, d.ReplyTo},
		{HeaderType, d.Type},
		{HeaderAppID, d.AppId},
	}
	for _, p := range props {
		if p.value != "" {
			e.Headers = append(e.Headers, event.Header{Key: p.name, Value: []byte(p.value)})
		}
	}
	if d.Priority != 0 {
		e.Headers = append(e.Headers, event.Header{Key: HeaderPriority, Value: strconv.AppendUint(nil, uint64(d.Priority), 10)})
	}
	if !d.Timestamp.IsZero() {
		e.Headers = append(e.Headers, event.Header{Key: HeaderTimestamp, Value: strconv.AppendInt(nil, d.Timestamp.Unix(), 10)})
	}
	if keyFromMessageID && e.Key == nil && d.MessageId != "" {
		e.Key = []byte(d.MessageId)
	}
	return e
}

// appendOverflow unpacks bridge-headers: an array of [name, value] arrays.
// Anything else under that name (written by another producer) is kept as
// an ordinary header rendered as text.
func appendOverflow(headers []event.Header, v any) []event.Header {
	items, ok := v.([]any)
	if ok {
		for _, it := range items {
			pair, isPair := it.([]any)
			if !isPair || len(pair) != 2 {
				ok = false
				break
			}
			if _, isString := pair[0].(string); !isString {
				ok = false
				break
			}
		}
	}
	if !ok {
		return append(headers, event.Header{Key: event.HeaderOverflow, Value: renderValue(v)})
	}
	for _, it := range items {
		pair := it.([]any)
		headers = append(headers, event.Header{Key: pair[0].(string), Value: renderValue(pair[1])})
	}
	return headers
}

// renderValue renders an AMQP field value as header bytes.
func renderValue(v any) []byte {
	switch x := v.(type) {
	case nil:
		return []byte{}
	case string:
		return []byte(x)
	case []byte:
		return x
	case bool:
		return strconv.AppendBool(nil, x)
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return fmt.Appendf(nil, "%d", x)
	case float32:
		return strconv.AppendFloat(nil, float64(x), 'g', -1, 32)
	case float64:
		return strconv.AppendFloat(nil, x, 'g', -1, 64)
	case time.Time:
		return []byte(x.UTC().Format(time.RFC3339))
	case amqp091.Decimal:
		return []byte(renderDecimal(x))
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return fmt.Appendf(nil, "%v", v)
	}
	return b
}

func renderDecimal(d amqp091.Decimal) string {
	s := strconv.FormatInt(int64(d.Value), 10)
	if d.Scale == 0 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for len(s) <= int(d.Scale) {
		s = "0" + s
	}
	s = s[:len(s)-int(d.Scale)] + "." + s[len(s)-int(d.Scale):]
	if neg {
		s = "-" + s
	}
	return s
}

// jsonable turns nested tables and arrays into values encoding/json renders
// the way renderValue renders scalars (byte arrays as text, not base64).
func jsonable(v any) any {
	switch x := v.(type) {
	case amqp091.Table:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = jsonable(val)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = jsonable(val)
		}
		return out
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case amqp091.Decimal:
		return json.Number(renderDecimal(x))
	}
	return v
}
