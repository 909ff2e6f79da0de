package sqs

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/connectors/sqsattr"
	"github.com/bridgeio/bridge/event"
)

// HeaderPrefix starts the headers that carry SQS system attributes.
const HeaderPrefix = "sqs."

// Headers the source sets besides sqs.<SystemAttribute>.
const (
	HeaderMessageID      = "sqs.MessageId"
	HeaderAWSTraceHeader = "sqs.AWSTraceHeader"
)

// MaxMessageSize is SQS's limit for one message and for one batch request:
// body plus attribute names, types and values.
const MaxMessageSize = 256 * 1024

const defaultGroupID = "default"

// fromMessage maps a received message to an event (see the package doc).
// A malformed bridge-headers attribute is kept as a plain header; err
// reports it so that the source can log it.
func fromMessage(m *types.Message, fifo bool, source string, now time.Time) (event.Event, error) {
	e := event.Event{Value: []byte(aws.ToString(m.Body)), Source: source, Timestamp: now}
	names := make([]string, 0, len(m.MessageAttributes))
	for name := range m.MessageAttributes {
		names = append(names, name)
	}
	// Attributes arrive as a map: sort the names for a stable order, but
	// unpack bridge-headers last. It holds the later values of a repeated
	// name (the first is an attribute of its own), so the values of one
	// name keep their order.
	slices.SortFunc(names, func(a, b string) int {
		if (a == event.HeaderOverflow) != (b == event.HeaderOverflow) {
			if a == event.HeaderOverflow {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	attrs := make([]sqsattr.Attribute, 0, len(names))
	for _, name := range names {
		v := m.MessageAttributes[name]
		value := aws.ToString(v.StringValue)
		if v.StringValue == nil && v.BinaryValue != nil {
			value = string(v.BinaryValue)
		}
		attrs = append(attrs, sqsattr.Attribute{Name: name, Value: value})
	}
	key, headers, err := sqsattr.FromAttributes(attrs)
	e.Key = key
	sysNames := make([]string, 0, len(m.Attributes))
	for name := range m.Attributes {
		sysNames = append(sysNames, name)
	}
	slices.Sort(sysNames)
	for _, name := range sysNames {
		headers = append(headers, event.Header{Key: HeaderPrefix + name, Value: []byte(m.Attributes[name])})
	}
	if m.MessageId != nil {
		headers = append(headers, event.Header{Key: HeaderMessageID, Value: []byte(*m.MessageId)})
	}
	e.Headers = headers
	if group, ok := m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]; ok && fifo && e.Key == nil {
		e.Key = []byte(group)
	}
	if ms, perr := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); perr == nil && ms > 0 {
		e.Timestamp = time.UnixMilli(ms)
	}
	return e, err
}

// errBody is wrapped by the permanent error of a body SQS cannot carry.
var errBody = errors.New("sqs: message body must be 1 or more characters SQS allows (valid UTF-8, no control characters but tab, LF, CR)")

// entry is one message prepared for SendMessageBatch.
type entry struct {
	index int // position in the caller's batch
	req   types.SendMessageBatchRequestEntry
	size  int // as SQS counts it against MaxMessageSize
}

// toEntry prepares event i of a batch, or returns the permanent reason it
// cannot be sent.
func toEntry(i int, e *event.Event, p event.Params, fifo bool) (entry, error) {
	if !sqsattr.ValidBody(e.Value) {
		return entry{}, event.Permanent(errBody)
	}
	headers := make([]event.Header, 0, len(e.Headers))
	var trace string
	for _, h := range e.Headers {
		// The JSON protocol would replace invalid UTF-8 with U+FFFD:
		// refuse rather than alter a header name. (Binary values are
		// carried base64 in bridge-headers by sqsattr.)
		if !utf8.ValidString(h.Key) {
			return entry{}, event.Permanent(fmt.Errorf("sqs: header %q: name must be valid UTF-8", h.Key))
		}
		if h.Key == HeaderAWSTraceHeader {
			trace = string(h.Value)
		}
		if strings.HasPrefix(h.Key, HeaderPrefix) {
			continue
		}
		headers = append(headers, h)
	}
	en := entry{index: i, size: len(e.Value)}
	en.req.Id = aws.String(strconv.Itoa(i))
	en.req.MessageBody = aws.String(string(e.Value))
	attrs := sqsattr.ToAttributes(e.Key, headers)
	if len(attrs) > 0 {
		en.req.MessageAttributes = make(map[string]types.MessageAttributeValue, len(attrs))
		for _, a := range attrs {
			en.req.MessageAttributes[a.Name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(a.Value)}
			en.size += len(a.Name) + len("String") + len(a.Value)
		}
	}
	if trace != "" {
		en.req.MessageSystemAttributes = map[string]types.MessageSystemAttributeValue{
			string(types.MessageSystemAttributeNameForSendsAWSTraceHeader): {DataType: aws.String("String"), StringValue: aws.String(trace)},
		}
	}
	if fifo {
		group := p.GroupID
		if group == "" {
			group = string(e.Key)
		}
		if group == "" {
			group = defaultGroupID
		}
		en.req.MessageGroupId = aws.String(group)
		dedup := p.DedupID
		if dedup == "" {
			if id, ok := e.Header(event.HeaderEventID); ok {
				dedup = string(id)
			}
		}
		if dedup != "" {
			en.req.MessageDeduplicationId = aws.String(dedup)
		}
	}
	if en.size > MaxMessageSize {
		return entry{}, event.Permanent(errors.New("sqs: message of " + strconv.Itoa(en.size) +
			" bytes (body and attributes) exceeds SQS's " + strconv.Itoa(MaxMessageSize)))
	}
	return en, nil
}

// split groups entries into requests of at most 10 entries and
// MaxMessageSize bytes, keeping their order.
func split(entries []entry) [][]entry {
	var out [][]entry
	start, size := 0, 0
	for i, en := range entries {
		if i > start && (i-start == 10 || size+en.size > MaxMessageSize) {
			out = append(out, entries[start:i])
			start, size = i, 0
		}
		size += en.size
	}
	if start < len(entries) {
		out = append(out, entries[start:])
	}
	return out
}
