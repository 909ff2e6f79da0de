package amqpapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
)

// How an AMQP message is stored in a queue, and how a stored message is
// delivered over AMQP.
//
// A message published over AMQP keeps its exact AMQP form in one system
// attribute, envelopeAttribute (hidden from SQS clients): the exchange,
// the routing key and the property list bytes as the publisher sent them,
// so an AMQP consumer receives the very properties and headers that were
// published, types included, without re-encoding. For SQS clients the same
// message also carries message attributes: every header, rendered as SQS
// can carry it, and the properties as amqp.* attributes (SPEC §8).
//
// A message that came from elsewhere (the SQS API, a pipeline) has no
// envelope: it is delivered from the default exchange with its queue's
// name as routing key, delivery mode 2, its amqp.* attributes as
// properties and its other attributes as headers (String and Number as
// long strings, Binary as byte arrays).

// envelopeAttribute is the system attribute holding a message's AMQP form.
const envelopeAttribute = "bridge.amqp"

const envelopeVersion = 1

// Property attribute names, as the AMQP connector uses them (SPEC §8).
const (
	attrContentType   = "amqp.content_type"
	attrMessageID     = "amqp.message_id"
	attrCorrelationID = "amqp.correlation_id"
	attrReplyTo       = "amqp.reply_to"
	attrType          = "amqp.type"
	attrPriority      = "amqp.priority"
	attrTimestamp     = "amqp.timestamp"
	attrAppID         = "amqp.app_id"

	attrBridgeReplyTo       = "bridge-reply-to"
	attrBridgeCorrelationID = "bridge-correlation-id"
)

// messageTTL reads the expiration property, RabbitMQ's per-message TTL: a
// string of a non-negative integer of milliseconds ("0" counts as
// queue.MinTTL). Anything else is 406, as RabbitMQ answers.
func messageTTL(p *wire.BasicProperties) (time.Duration, error) {
	if p.Flags&wire.BasicFlagExpiration == 0 {
		return 0, nil
	}
	ms, err := strconv.ParseUint(p.Expiration, 10, 32)
	if err != nil {
		return 0, newError(wire.PreconditionFailed, "invalid expiration '%s': a non-negative integer of milliseconds, at most 4294967295", p.Expiration)
	}
	return max(time.Duration(ms)*time.Millisecond, queue.MinTTL), nil
}

// envelope is the decoded envelopeAttribute.
type envelope struct {
	exchange   string
	routingKey string
	properties []byte // flags and property list
}

func appendEnvelope(dst []byte, e envelope) []byte {
	dst = append(dst, envelopeVersion)
	dst = binary.AppendUvarint(dst, uint64(len(e.exchange)))
	dst = append(dst, e.exchange...)
	dst = binary.AppendUvarint(dst, uint64(len(e.routingKey)))
	dst = append(dst, e.routingKey...)
	return append(dst, e.properties...)
}

var errEnvelope = errors.New("amqpapi: malformed envelope")

// decodeEnvelope is appendEnvelope's inverse; properties alias buf.
func decodeEnvelope(buf []byte) (envelope, error) {
	if len(buf) == 0 || buf[0] != envelopeVersion {
		return envelope{}, fmt.Errorf("%w: version", errEnvelope)
	}
	rest := buf[1:]
	str := func() (string, bool) {
		n, size := binary.Uvarint(rest)
		// Only the canonical (shortest) varint: decode and encode must
		// agree byte for byte.
		if size <= 0 || size != len(binary.AppendUvarint(nil, n)) || n > wire.MaxShortstr || uint64(len(rest)-size) < n {
			return "", false
		}
		s := string(rest[size : size+int(n)])
		rest = rest[size+int(n):]
		return s, true
	}
	exchangeName, ok1 := str()
	key, ok2 := str()
	if !ok1 || !ok2 {
		return envelope{}, fmt.Errorf("%w: names", errEnvelope)
	}
	if _, err := wire.DecodeProperties(rest); err != nil {
		return envelope{}, fmt.Errorf("%w: %v", errEnvelope, err)
	}
	return envelope{exchange: exchangeName, routingKey: key, properties: rest}, nil
}

// sendInput builds the queue message for a publish. attrs are the SQS
// attributes (shared by every target queue: Send copies them).
func sendInput(cmd *command, pub *wire.BasicPublish, attrs []queue.Attribute, fifo bool) queue.SendInput {
	env := appendEnvelope(make([]byte, 0, 8+len(pub.Exchange)+len(pub.RoutingKey)+len(cmd.raw)),
		envelope{exchange: pub.Exchange, routingKey: pub.RoutingKey, properties: cmd.raw})
	in := queue.SendInput{Body: cmd.body, Attributes: attrs,
		SystemAttributes: []queue.Attribute{{Name: envelopeAttribute, DataType: "Binary", Value: env}}}
	if cmd.props.Flags&wire.BasicFlagPriority != 0 {
		in.Priority = int(cmd.props.Priority)
	}
	in.TTL, _ = messageTTL(cmd.props) // checked by checkPublish
	if fifo {
		// FIFO queues (declared in the config or over SQS): the group is
		// the bridge-key header, else the routing key; the deduplication
		// id is message_id, else the queue's content-based hash.
		in.GroupID = pub.RoutingKey
		if v, ok := cmd.props.Headers.Get(event.HeaderKey); ok && cmd.props.Flags&wire.BasicFlagHeaders != 0 {
			if s := renderValue(v); s != "" {
				in.GroupID = s
			}
		}
		if cmd.props.Flags&wire.BasicFlagMessageId != 0 {
			in.DedupID = cmd.props.MessageId
		}
	}
	return in
}

// sqsAttributes renders a publish's headers and properties as SQS message
// attributes. Empty values are left out: SQS cannot carry them.
func sqsAttributes(p *wire.BasicProperties) []queue.Attribute {
	var attrs []queue.Attribute
	add := func(flag uint16, name, value string) {
		if p.Flags&flag != 0 && value != "" {
			attrs = append(attrs, queue.Attribute{Name: name, DataType: "String", Value: []byte(value)})
		}
	}
	if p.Flags&wire.BasicFlagHeaders != 0 {
		for _, f := range p.Headers {
			if a, ok := headerAttribute(f); ok {
				attrs = append(attrs, a)
			}
		}
	}
	add(wire.BasicFlagContentType, attrContentType, p.ContentType)
	add(wire.BasicFlagMessageId, attrMessageID, p.MessageId)
	add(wire.BasicFlagCorrelationId, attrCorrelationID, p.CorrelationId)
	add(wire.BasicFlagReplyTo, attrReplyTo, p.ReplyTo)
	add(wire.BasicFlagType, attrType, p.Type)
	add(wire.BasicFlagAppId, attrAppID, p.AppId)
	// Request-reply as bridge's SQS clients see it (docs/queues.md): an
	// SQS server answering an AMQP client reads these.
	add(wire.BasicFlagReplyTo, attrBridgeReplyTo, p.ReplyTo)
	add(wire.BasicFlagCorrelationId, attrBridgeCorrelationID, p.CorrelationId)
	if p.Flags&wire.BasicFlagPriority != 0 && p.Priority != 0 {
		add(wire.BasicFlagPriority, attrPriority, strconv.Itoa(int(p.Priority)))
	}
	if p.Flags&wire.BasicFlagTimestamp != 0 && p.Timestamp != 0 {
		add(wire.BasicFlagTimestamp, attrTimestamp, strconv.FormatUint(p.Timestamp, 10))
	}
	return attrs
}

func headerAttribute(f wire.Field) (queue.Attribute, bool) {
	switch v := f.Value.(type) {
	case nil:
		return queue.Attribute{}, false
	case []byte:
		if len(v) == 0 {
			return queue.Attribute{}, false
		}
		return queue.Attribute{Name: f.Name, DataType: "Binary", Value: v}, true
	case int8, uint8, int16, uint16, int32, uint32, int64, float32, float64, wire.Decimal, wire.Timestamp:
		return queue.Attribute{Name: f.Name, DataType: "Number", Value: []byte(renderValue(v))}, true
	}
	s := renderValue(f.Value)
	if s == "" {
		return queue.Attribute{}, false
	}
	return queue.Attribute{Name: f.Name, DataType: "String", Value: []byte(s)}, true
}

// renderValue renders a field value as text: numbers in decimal, tables
// and arrays in a bracketed form, bytes as they are.
func renderValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case wire.Decimal:
		return renderDecimal(x)
	case wire.Timestamp:
		return strconv.FormatUint(uint64(x), 10)
	case wire.Table:
		parts := make([]string, len(x))
		for i, f := range x {
			parts[i] = f.Name + ":" + renderValue(f.Value)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = renderValue(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

func renderDecimal(d wire.Decimal) string {
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

// routingHeaders renders a publish's headers for a headers exchange.
func routingHeaders(p *wire.BasicProperties) []event.Header {
	if p.Flags&wire.BasicFlagHeaders == 0 {
		return nil
	}
	out := make([]event.Header, 0, len(p.Headers))
	for _, f := range p.Headers {
		out = append(out, event.Header{Key: f.Name, Value: []byte(renderValue(f.Value))})
	}
	return out
}

// deliveryForm returns how a stored message is delivered: exchange,
// routing key and property bytes.
func deliveryForm(m *queue.Message, queueName string) (exchangeName, key string, props []byte) {
	for _, a := range m.SystemAttributes {
		if a.Name == envelopeAttribute {
			if env, err := decodeEnvelope(a.Value); err == nil {
				return env.exchange, env.routingKey, deadLetterProperties(m, env.properties)
			}
		}
	}
	p := wire.BasicProperties{Flags: wire.BasicFlagDeliveryMode, DeliveryMode: 2}
	for _, a := range m.Attributes {
		if setProperty(&p, a) {
			continue
		}
		if setRequestReply(&p, a) {
			continue
		}
		var v any = string(a.Value)
		if strings.HasPrefix(a.DataType, "Binary") {
			v = append([]byte(nil), a.Value...)
		}
		p.Flags |= wire.BasicFlagHeaders
		p.Headers = append(p.Headers, wire.Field{Name: a.Name, Value: v})
	}
	if m.Priority != 0 && p.Flags&wire.BasicFlagPriority == 0 {
		p.Flags |= wire.BasicFlagPriority
		p.Priority = uint8(m.Priority)
	}
	return defaultExchange, queueName, p.Append(nil)
}

// deadLetterProperties removes the expiration property of a message that
// was dead-lettered, as RabbitMQ does, so that a consumer republishing it
// does not have it expire again. Other messages' properties are returned
// as stored, without re-encoding.
func deadLetterProperties(m *queue.Message, props []byte) []byte {
	if m.DeadLetterSource == "" {
		return props
	}
	p, err := wire.DecodeProperties(props)
	if err != nil || p.Flags&wire.BasicFlagExpiration == 0 {
		return props
	}
	p.Flags &^= wire.BasicFlagExpiration
	p.Expiration = ""
	return p.Append(nil)
}

// setRequestReply maps bridge's request-reply attributes (sent over SQS or
// by a pipeline route) onto reply_to and correlation_id, unless amqp.*
// attributes set them already. bridge-reply-to may be a queue URL: an AMQP
// client replies through the default exchange, by the queue's name.
func setRequestReply(p *wire.BasicProperties, a queue.Attribute) bool {
	v := string(a.Value)
	switch a.Name {
	case attrBridgeReplyTo:
		if p.Flags&wire.BasicFlagReplyTo != 0 {
			return false
		}
		if i := strings.LastIndexByte(v, '/'); i >= 0 {
			v = v[i+1:]
		}
		if v == "" || len(v) > wire.MaxShortstr {
			return false
		}
		p.Flags |= wire.BasicFlagReplyTo
		p.ReplyTo = v
		return true
	case attrBridgeCorrelationID:
		if p.Flags&wire.BasicFlagCorrelationId != 0 || len(v) > wire.MaxShortstr {
			return false
		}
		p.Flags |= wire.BasicFlagCorrelationId
		p.CorrelationId = v
		return true
	}
	return false
}

// setProperty maps an amqp.* attribute back to its property and reports
// whether it did.
func setProperty(p *wire.BasicProperties, a queue.Attribute) bool {
	v := string(a.Value)
	set := func(flag uint16, field *string) bool {
		if p.Flags&flag != 0 || len(v) > wire.MaxShortstr {
			return false
		}
		p.Flags |= flag
		*field = v
		return true
	}
	switch a.Name {
	case attrContentType:
		return set(wire.BasicFlagContentType, &p.ContentType)
	case attrMessageID:
		return set(wire.BasicFlagMessageId, &p.MessageId)
	case attrCorrelationID:
		return set(wire.BasicFlagCorrelationId, &p.CorrelationId)
	case attrReplyTo:
		return set(wire.BasicFlagReplyTo, &p.ReplyTo)
	case attrType:
		return set(wire.BasicFlagType, &p.Type)
	case attrAppID:
		return set(wire.BasicFlagAppId, &p.AppId)
	case attrPriority:
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil || p.Flags&wire.BasicFlagPriority != 0 {
			return false
		}
		p.Flags |= wire.BasicFlagPriority
		p.Priority = uint8(n)
		return true
	case attrTimestamp:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || p.Flags&wire.BasicFlagTimestamp != 0 {
			return false
		}
		p.Flags |= wire.BasicFlagTimestamp
		p.Timestamp = n
		return true
	}
	return false
}

// appendContent appends a message's method frame (deliver, get-ok or
// return), its content header and its body frames.
func appendContent(b []byte, channel uint16, m wire.Method, props, body []byte, frameMax uint32) []byte {
	b = wire.AppendMethodFrame(b, channel, m)
	b = wire.AppendHeaderFrame(b, channel, uint64(len(body)), props)
	return wire.AppendBodyFrames(b, channel, body, frameMax)
}
