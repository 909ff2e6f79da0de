package sqsapi

import (
	"context"
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

func (s *Server) receiveMessage(ctx context.Context, req *receiveMessageRequest) (*receiveResult, *apiError) {
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return nil, apiErr
	}
	maxMessages := 1
	if req.MaxNumberOfMessages != nil {
		maxMessages = *req.MaxNumberOfMessages
		if maxMessages < 1 || maxMessages > 10 {
			return nil, newError(kindInvalidParameterValue, "Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", maxMessages)
		}
	}
	visibility := time.Duration(-1) // the queue's default
	if req.VisibilityTimeout != nil {
		v := *req.VisibilityTimeout
		if v < 0 || v > maxVisibility {
			return nil, newError(kindInvalidParameterValue, "Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", v)
		}
		visibility = time.Duration(v) * time.Second
	}
	wait := time.Duration(-1) // the queue's ReceiveMessageWaitTimeSeconds
	if req.WaitTimeSeconds != nil {
		v := *req.WaitTimeSeconds
		if v < 0 || v > maxWaitSeconds {
			return nil, newError(kindInvalidParameterValue, "Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", v)
		}
		wait = time.Duration(v) * time.Second
	}
	msgs, err := q.Receive(ctx, maxMessages, visibility, wait)
	if err != nil {
		return nil, fromQueueError(err, name)
	}
	s.traceReceive(ctx, name, msgs)
	sel := selection{
		system: systemAttributeSet(req.AttributeNames, req.MessageSystemAttributeNames),
		user:   req.MessageAttributeNames,
	}
	return s.receiveResult(msgs, &sel), nil
}

// receiveResult is ReceiveMessage's result: each message with what the
// request asked to see of it.
type receiveResult struct {
	messages []receivedMessage
}

// receivedMessage is one message as a codec writes it.
type receivedMessage struct {
	msg     *queue.Message
	md5Body string
	// system holds the system attributes asked for, in SQS's order;
	// systemAsked tells an empty selection from none (JSON writes an empty
	// "Attributes" object for the former).
	system      []attrPair
	systemAsked bool
	user        []queue.Attribute // the user attributes asked for, sorted by name
	md5User     string            // their digest, "" when none
}

// attrPair is a system attribute's name and value.
type attrPair struct{ name, value string }

func (s *Server) receiveResult(msgs []queue.Message, sel *selection) *receiveResult {
	res := &receiveResult{messages: make([]receivedMessage, len(msgs))}
	// One backing array per kind for the whole batch: each message's
	// selection is a capped window into it.
	var pairs []attrPair
	var picked []queue.Attribute
	for i := range msgs {
		m := &msgs[i]
		rm := &res.messages[i]
		rm.msg = m
		rm.md5Body = m.MD5OfBody
		if rm.md5Body == "" {
			rm.md5Body = md5Hex(m.Body)
		}
		if len(sel.system) > 0 {
			rm.systemAsked = true
			start := len(pairs)
			pairs = s.appendSystemAttributes(pairs, m, sel.system)
			rm.system = pairs[start:len(pairs):len(pairs)]
		}
		if len(sel.user) > 0 {
			start := len(picked)
			for _, a := range m.Attributes {
				if wantsUserAttribute(sel.user, a.Name) {
					picked = append(picked, a)
				}
			}
			rm.user = picked[start:len(picked):len(picked)]
			rm.md5User = md5OfAttributes(rm.user)
		}
	}
	return res
}

// selection is what a ReceiveMessage asked to see of each message.
type selection struct {
	system map[string]bool
	user   []string
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

// appendSystemAttributes appends the system attributes of m that want
// selects, in SQS's order; attributes without a value are left out.
func (s *Server) appendSystemAttributes(pairs []attrPair, m *queue.Message, want map[string]bool) []attrPair {
	add := func(name, value string) {
		if want[name] && value != "" {
			pairs = append(pairs, attrPair{name, value})
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
	return pairs
}

type deleteMessageRequest struct {
	QueueUrl      string //nolint:revive // the wire name
	ReceiptHandle string
}

func (s *Server) deleteMessage(ctx context.Context, req *deleteMessageRequest) (emptyResult, *apiError) {
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return emptyResult{}, apiErr
	}
	if req.ReceiptHandle == "" {
		return emptyResult{}, newError(kindMissingParameter, "The request must contain the parameter ReceiptHandle.")
	}
	span := s.startDelete(ctx, name, 1)
	defer span.End()
	if err := q.Delete(ctx, req.ReceiptHandle); err != nil {
		span.SetStatus(codes.Error, err.Error())
		return emptyResult{}, fromQueueError(err, name)
	}
	return emptyResult{}, nil
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

// batchResult is the result of DeleteMessageBatch and
// ChangeMessageVisibilityBatch: each entry's id and its error, nil for
// success. Entries fail independently.
type batchResult struct {
	ids  []string
	errs []*apiError
}

// deleteMessageBatch deletes with one engine call, so the batch shares one
// journal commit (one fsync under the "always" policy) instead of ten.
func (s *Server) deleteMessageBatch(ctx context.Context, req *batchRequest) (*batchResult, *apiError) {
	return s.runBatch(req, func(q *queue.Queue, name string, entries []batchEntry) []*apiError {
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
func (s *Server) changeMessageVisibilityBatch(ctx context.Context, req *batchRequest) (*batchResult, *apiError) {
	return s.runBatch(req, func(q *queue.Queue, name string, entries []batchEntry) []*apiError {
		errs := make([]*apiError, len(entries))
		for i := range entries {
			errs[i] = changeVisibility(ctx, q, name, &entries[i])
		}
		return errs
	})
}

// runBatch checks a DeleteMessageBatch or ChangeMessageVisibilityBatch
// request as a whole, runs op on its entries, and reports each entry's
// outcome.
func (s *Server) runBatch(req *batchRequest, op func(*queue.Queue, string, []batchEntry) []*apiError) (*batchResult, *apiError) {
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return nil, apiErr
	}
	r := &batchResult{ids: make([]string, len(req.Entries))}
	for i := range req.Entries {
		r.ids[i] = req.Entries[i].Id
	}
	if apiErr := checkBatchIDs(r.ids); apiErr != nil {
		return nil, apiErr
	}
	r.errs = op(q, name, req.Entries)
	return r, nil
}

// changeVisibilityRequest is ChangeMessageVisibility's input.
type changeVisibilityRequest struct {
	QueueUrl string //nolint:revive // the wire name
	batchEntry
}

func (s *Server) changeMessageVisibility(ctx context.Context, req *changeVisibilityRequest) (emptyResult, *apiError) {
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return emptyResult{}, apiErr
	}
	return emptyResult{}, changeVisibility(ctx, q, name, &req.batchEntry)
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
