package sqsapi

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"go.opentelemetry.io/otel/codes"
)

// Message system attribute names (SQS MessageSystemAttributeName).
const (
	sysSenderID               = "SenderId"
	sysSentTimestamp          = "SentTimestamp"
	sysApproximateReceive     = "ApproximateReceiveCount"
	sysApproximateFirstRecv   = "ApproximateFirstReceiveTimestamp"
	sysSequenceNumber         = "SequenceNumber"
	sysMessageDeduplicationID = "MessageDeduplicationId"
	sysMessageGroupID         = "MessageGroupId"
	sysAWSTraceHeader         = "AWSTraceHeader"
	sysDeadLetterSourceArn    = "DeadLetterQueueSourceArn"
)

var allSystemAttributes = []string{
	sysSenderID, sysSentTimestamp, sysApproximateReceive, sysApproximateFirstRecv, sysSequenceNumber,
	sysMessageDeduplicationID, sysMessageGroupID, sysAWSTraceHeader, sysDeadLetterSourceArn,
}

type receiveMessageRequest struct {
	QueueUrl                    string //nolint:revive // the wire name
	AttributeNames              []string
	MessageSystemAttributeNames []string
	MessageAttributeNames       []string
	MaxNumberOfMessages         *int
	VisibilityTimeout           *int
	WaitTimeSeconds             *int
	ReceiveRequestAttemptId     string //nolint:revive // accepted, not used: see the package doc
}

func (s *Server) receiveMessage(ctx context.Context, body, out []byte) ([]byte, *apiError) {
	var req receiveMessageRequest
	if apiErr := decode(body, &req); apiErr != nil {
		return out, apiErr
	}
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return out, apiErr
	}
	maxMessages := 1
	if req.MaxNumberOfMessages != nil {
		maxMessages = *req.MaxNumberOfMessages
		if maxMessages < 1 || maxMessages > 10 {
			return out, newError(kindInvalidParameterValue, "Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", maxMessages)
		}
	}
	visibility := time.Duration(-1) // the queue's default
	if req.VisibilityTimeout != nil {
		v := *req.VisibilityTimeout
		if v < 0 || v > maxVisibility {
			return out, newError(kindInvalidParameterValue, "Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", v)
		}
		visibility = time.Duration(v) * time.Second
	}
	wait := time.Duration(-1) // the queue's ReceiveMessageWaitTimeSeconds
	if req.WaitTimeSeconds != nil {
		v := *req.WaitTimeSeconds
		if v < 0 || v > maxWaitSeconds {
			return out, newError(kindInvalidParameterValue, "Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", v)
		}
		wait = time.Duration(v) * time.Second
	}
	msgs, err := q.Receive(ctx, maxMessages, visibility, wait)
	if err != nil {
		return out, fromQueueError(err, name)
	}
	s.traceReceive(ctx, name, msgs)
	sel := selection{
		system: systemAttributeSet(req.AttributeNames, req.MessageSystemAttributeNames),
		user:   req.MessageAttributeNames,
	}
	out = append(out, `{"Messages":[`...)
	for i := range msgs {
		if i > 0 {
			out = append(out, ',')
		}
		out = s.appendMessage(out, &msgs[i], &sel)
	}
	return append(out, "]}"...), nil
}

// selection is what a ReceiveMessage asked to see of each message.
type selection struct {
	system map[string]bool
	user   []string
	picked []queue.Attribute // scratch, reused across messages
}

// systemAttributeSet merges the legacy AttributeNames and the current
// MessageSystemAttributeNames; "All" selects every system attribute. Names
// SQS does not define for messages are ignored: the SDK types AttributeNames
// as queue attribute names, so clients send those there.
func systemAttributeSet(lists ...[]string) map[string]bool {
	set := map[string]bool{}
	for _, list := range lists {
		for _, name := range list {
			if name == attrAll {
				for _, n := range allSystemAttributes {
					set[n] = true
				}
				continue
			}
			set[name] = true
		}
	}
	return set
}

// wantsUserAttribute applies MessageAttributeNames: "All" or ".*" select
// every attribute, "prefix.*" those named "prefix.<anything>", anything else
// an exact name.
func wantsUserAttribute(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == attrAll || p == ".*" || p == name {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, ".*"); ok && strings.HasPrefix(name, prefix+".") {
			return true
		}
	}
	return false
}

func (s *Server) appendMessage(out []byte, m *queue.Message, sel *selection) []byte {
	out = append(out, '{')
	out = appendJSONField(out, true, "MessageId", m.MessageID)
	out = appendJSONField(out, false, "ReceiptHandle", m.ReceiptHandle)
	md5Body := m.MD5OfBody
	if md5Body == "" {
		md5Body = md5Hex(m.Body)
	}
	out = appendJSONField(out, false, "MD5OfBody", md5Body)
	out = appendJSONField(out, false, "Body", string(m.Body))
	if len(sel.system) > 0 {
		out = s.appendSystemAttributes(out, m, sel.system)
	}
	sel.picked = sel.picked[:0]
	if len(sel.user) > 0 {
		for _, a := range m.Attributes {
			if wantsUserAttribute(sel.user, a.Name) {
				sel.picked = append(sel.picked, a)
			}
		}
	}
	if len(sel.picked) > 0 {
		out = appendJSONField(out, false, "MD5OfMessageAttributes", md5OfAttributes(sel.picked))
		out = appendUserAttributes(out, sel.picked)
	}
	return append(out, '}')
}

func (s *Server) appendSystemAttributes(out []byte, m *queue.Message, want map[string]bool) []byte {
	out = append(out, `,"Attributes":{`...)
	first := true
	add := func(name, value string) {
		if want[name] && value != "" {
			out = appendJSONField(out, first, name, value)
			first = false
		}
	}
	millis := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	add(sysSenderID, accountID)
	add(sysSentTimestamp, millis(m.SentAt))
	add(sysApproximateReceive, strconv.Itoa(m.ReceiveCount))
	add(sysApproximateFirstRecv, millis(m.FirstReceivedAt))
	add(sysSequenceNumber, m.SequenceNumber)
	add(sysMessageDeduplicationID, m.DedupID)
	add(sysMessageGroupID, m.GroupID)
	for _, a := range m.SystemAttributes {
		if a.Name == sysAWSTraceHeader {
			add(sysAWSTraceHeader, string(a.Value))
		}
	}
	if m.DeadLetterSource != "" {
		add(sysDeadLetterSourceArn, s.queueARN(m.DeadLetterSource))
	}
	return append(out, '}')
}

func appendUserAttributes(out []byte, attrs []queue.Attribute) []byte {
	out = append(out, `,"MessageAttributes":{`...)
	for i, a := range attrs {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, a.Name)
		out = append(out, `:{`...)
		out = appendJSONField(out, true, "DataType", a.DataType)
		if strings.HasPrefix(a.DataType, "Binary") {
			out = append(out, `,"BinaryValue":"`...)
			out = base64.StdEncoding.AppendEncode(out, a.Value)
			out = append(out, '"')
		} else {
			out = appendJSONField(out, false, "StringValue", string(a.Value))
		}
		out = append(out, '}')
	}
	return append(out, '}')
}

type deleteMessageRequest struct {
	QueueUrl      string //nolint:revive // the wire name
	ReceiptHandle string
}

func (s *Server) deleteMessage(ctx context.Context, body, out []byte) ([]byte, *apiError) {
	var req deleteMessageRequest
	if apiErr := decode(body, &req); apiErr != nil {
		return out, apiErr
	}
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return out, apiErr
	}
	if req.ReceiptHandle == "" {
		return out, newError(kindMissingParameter, "The request must contain the parameter ReceiptHandle.")
	}
	span := s.startDelete(ctx, name, 1)
	defer span.End()
	if err := q.Delete(ctx, req.ReceiptHandle); err != nil {
		span.SetStatus(codes.Error, err.Error())
		return out, fromQueueError(err, name)
	}
	return append(out, "{}"...), nil
}

type batchEntry struct {
	Id                string //nolint:revive // the wire name
	ReceiptHandle     string
	VisibilityTimeout *int
}

type batchRequest struct {
	QueueUrl string //nolint:revive // the wire name
	Entries  []batchEntry
}

// deleteMessageBatch deletes with one engine call, so the batch shares one
// journal commit (one fsync under the "always" policy) instead of ten.
func (s *Server) deleteMessageBatch(ctx context.Context, body, out []byte) ([]byte, *apiError) {
	return s.runBatch(ctx, body, out, func(q *queue.Queue, name string, entries []batchEntry) []*apiError {
		errs := make([]*apiError, len(entries))
		handles := make([]string, 0, len(entries))
		index := make([]int, 0, len(entries)) // handles[k] is entries[index[k]]
		for i := range entries {
			if entries[i].ReceiptHandle == "" {
				errs[i] = newError(kindMissingParameter, "The request must contain the parameter ReceiptHandle.")
				continue
			}
			handles = append(handles, entries[i].ReceiptHandle)
			index = append(index, i)
		}
		if len(handles) == 0 {
			return errs
		}
		span := s.startDelete(ctx, name, len(handles))
		results := q.DeleteBatch(ctx, handles)
		span.End()
		for k, i := range index {
			if k >= len(results) {
				errs[i] = newError(kindInternal, "queue returned %d results for %d deletes", len(results), len(handles))
			} else if results[k] != nil {
				errs[i] = fromQueueError(results[k], name)
			}
		}
		return errs
	})
}

// changeMessageVisibilityBatch changes entries in turn: a receipt handle may
// appear twice in one batch, and the later entry must win, as in SQS.
func (s *Server) changeMessageVisibilityBatch(ctx context.Context, body, out []byte) ([]byte, *apiError) {
	return s.runBatch(ctx, body, out, func(q *queue.Queue, name string, entries []batchEntry) []*apiError {
		errs := make([]*apiError, len(entries))
		for i := range entries {
			errs[i] = changeVisibility(ctx, q, name, &entries[i])
		}
		return errs
	})
}

// runBatch checks a DeleteMessageBatch or ChangeMessageVisibilityBatch
// request as a whole, runs op on its entries, and reports each entry's
// outcome; entries fail independently.
func (s *Server) runBatch(ctx context.Context, body, out []byte, op func(*queue.Queue, string, []batchEntry) []*apiError) ([]byte, *apiError) {
	var req batchRequest
	if apiErr := decode(body, &req); apiErr != nil {
		return out, apiErr
	}
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return out, apiErr
	}
	ids := make([]string, len(req.Entries))
	for i := range req.Entries {
		ids[i] = req.Entries[i].Id
	}
	if apiErr := checkBatchIDs(ids); apiErr != nil {
		return out, apiErr
	}
	errs := op(q, name, req.Entries)
	var failed []batchFailure
	out = append(out, `{"Successful":[`...)
	first := true
	for i := range req.Entries {
		if errs[i] != nil {
			failed = append(failed, batchFailure{ids[i], errs[i]})
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '{')
		out = appendJSONField(out, true, "Id", ids[i])
		out = append(out, '}')
	}
	out = append(out, ']')
	return appendFailed(out, failed), nil
}

func (s *Server) changeMessageVisibility(ctx context.Context, body, out []byte) ([]byte, *apiError) {
	var req struct {
		QueueUrl string //nolint:revive // the wire name
		batchEntry
	}
	if apiErr := decode(body, &req); apiErr != nil {
		return out, apiErr
	}
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return out, apiErr
	}
	if apiErr := changeVisibility(ctx, q, name, &req.batchEntry); apiErr != nil {
		return out, apiErr
	}
	return append(out, "{}"...), nil
}

func changeVisibility(ctx context.Context, q *queue.Queue, name string, e *batchEntry) *apiError {
	if e.ReceiptHandle == "" {
		return newError(kindMissingParameter, "The request must contain the parameter ReceiptHandle.")
	}
	if e.VisibilityTimeout == nil {
		return newError(kindMissingParameter, "The request must contain the parameter VisibilityTimeout.")
	}
	v := *e.VisibilityTimeout
	if v < 0 || v > maxVisibility {
		return newError(kindInvalidParameterValue, "Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", v)
	}
	if err := q.ChangeVisibility(ctx, e.ReceiptHandle, time.Duration(v)*time.Second); err != nil {
		return fromQueueError(err, name)
	}
	return nil
}
