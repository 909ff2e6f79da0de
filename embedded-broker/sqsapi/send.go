package sqsapi

import (
	"context"
	"slices"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// messageAttributeValue is SQS's MessageAttributeValue on the wire; binary
// values are base64 in JSON, which encoding/json does for []byte.
type messageAttributeValue struct {
	DataType         string
	StringValue      *string
	BinaryValue      []byte
	StringListValues []string
	BinaryListValues [][]byte
}

// sendEntry is SendMessage's input and one SendMessageBatch entry.
type sendEntry struct {
	Id                      string //nolint:revive // the wire name
	QueueUrl                string //nolint:revive // the wire name
	MessageBody             *string
	DelaySeconds            *int
	MessageAttributes       map[string]messageAttributeValue
	MessageSystemAttributes map[string]messageAttributeValue
	MessageDeduplicationId  string //nolint:revive // the wire name
	MessageGroupId          string //nolint:revive // the wire name
}

// preparedSend is a validated entry, ready for the engine, with the digests
// the response reports.
type preparedSend struct {
	input        queue.SendInput
	md5Body      string
	md5Attrs     string
	md5SysAttrs  string
	payloadBytes int // body plus attributes, as SQS counts message size
}

// prepareSend validates one entry against cfg as SQS does and converts it.
func prepareSend(cfg *queue.Config, e *sendEntry) (preparedSend, *apiError) {
	var p preparedSend
	if e.MessageBody == nil || *e.MessageBody == "" {
		return p, newError(kindMissingParameter, "The request must contain the parameter MessageBody.")
	}
	body := *e.MessageBody
	if !validMessageChars(body) {
		return p, newError(kindInvalidMessageContents, "Invalid characters found in the message body. Allowed: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.")
	}
	attrs, attrBytes, apiErr := parseMessageAttributes(e.MessageAttributes)
	if apiErr != nil {
		return p, apiErr
	}
	sysAttrs, apiErr := parseSystemAttributes(e.MessageSystemAttributes)
	if apiErr != nil {
		return p, apiErr
	}
	p.payloadBytes = len(body) + attrBytes
	if p.payloadBytes > cfg.MaxMessageSize {
		return p, newError(kindInvalidParameterValue, "One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", cfg.MaxMessageSize)
	}
	if apiErr := checkOrdering(cfg, e); apiErr != nil {
		return p, apiErr
	}
	p.input = queue.SendInput{
		Body:             []byte(body),
		Attributes:       attrs,
		SystemAttributes: sysAttrs,
		GroupID:          e.MessageGroupId,
		DedupID:          e.MessageDeduplicationId,
	}
	if e.DelaySeconds != nil {
		d := *e.DelaySeconds
		if d < 0 || d > maxDelaySeconds {
			return p, newError(kindInvalidParameterValue, "Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900.", d)
		}
		// A FIFO queue has only the queue-level delay; SQS accepts an
		// explicit 0 (checkOrdering rejects any other value).
		if !cfg.FIFO {
			p.input.Delay, p.input.HasDelay = time.Duration(d)*time.Second, true
		}
	}
	if apiErr := applyMessageExtensions(cfg, e, &p.input); apiErr != nil {
		return p, apiErr
	}
	p.md5Body = md5Hex(p.input.Body)
	p.md5Attrs = md5OfAttributes(attrs)
	p.md5SysAttrs = md5OfAttributes(sysAttrs)
	return p, nil
}

// checkOrdering checks the FIFO-only and standard-only parameters.
func checkOrdering(cfg *queue.Config, e *sendEntry) *apiError {
	if e.MessageGroupId != "" && !validGroupOrDedupID(e.MessageGroupId) {
		return newError(kindInvalidParameterValue, "Value %s for parameter MessageGroupId is invalid. Reason: up to 128 alphanumeric or punctuation characters.", e.MessageGroupId)
	}
	if e.MessageDeduplicationId != "" && !validGroupOrDedupID(e.MessageDeduplicationId) {
		return newError(kindInvalidParameterValue, "Value %s for parameter MessageDeduplicationId is invalid. Reason: up to 128 alphanumeric or punctuation characters.", e.MessageDeduplicationId)
	}
	if !cfg.FIFO {
		if e.MessageDeduplicationId != "" {
			return newError(kindInvalidParameterValue, "The request includes the parameter MessageDeduplicationId, which is only valid for FIFO queues.")
		}
		return nil
	}
	if e.MessageGroupId == "" {
		return newError(kindMissingParameter, "The request must contain the parameter MessageGroupId.")
	}
	if e.MessageDeduplicationId == "" && !cfg.ContentBasedDeduplication {
		return newError(kindInvalidParameterValue, "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly.")
	}
	if e.DelaySeconds != nil && *e.DelaySeconds != 0 {
		return newError(kindInvalidParameterValue, "Value %d for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.", *e.DelaySeconds)
	}
	return nil
}

// parseMessageAttributes validates user message attributes and returns them
// sorted by name with their size as SQS counts it (name + type + value).
func parseMessageAttributes(in map[string]messageAttributeValue) ([]queue.Attribute, int, *apiError) {
	if len(in) == 0 {
		return nil, 0, nil
	}
	if len(in) > maxAttributesPerMsg {
		return nil, 0, newError(kindInvalidParameterValue, "Number of message attributes [%d] exceeds the allowed maximum [%d].", len(in), maxAttributesPerMsg)
	}
	attrs := make([]queue.Attribute, 0, len(in))
	size := 0
	for name, v := range in {
		if !validAttributeName(name) {
			return nil, 0, newError(kindInvalidParameterValue, "Message attribute name '%s' is invalid: up to 256 alphanumerics, '-', '_' or '.', not starting with AWS. or Amazon., no leading, trailing or doubled '.'.", name)
		}
		a, apiErr := convertAttribute(name, &v)
		if apiErr != nil {
			return nil, 0, apiErr
		}
		size += len(a.Name) + len(a.DataType) + len(a.Value)
		attrs = append(attrs, a)
	}
	slices.SortFunc(attrs, compareAttributes)
	return attrs, size, nil
}

// parseSystemAttributes accepts the only system attribute SQS defines for
// sending, AWSTraceHeader, a String.
func parseSystemAttributes(in map[string]messageAttributeValue) ([]queue.Attribute, *apiError) {
	if len(in) == 0 {
		return nil, nil
	}
	attrs := make([]queue.Attribute, 0, len(in))
	for name, v := range in {
		if name != "AWSTraceHeader" {
			return nil, newError(kindInvalidParameterValue, "Message system attribute name '%s' is invalid.", name)
		}
		if v.DataType != "String" {
			return nil, newError(kindInvalidParameterValue, "Message system attribute '%s' must be of type String.", name)
		}
		a, apiErr := convertAttribute(name, &v)
		if apiErr != nil {
			return nil, apiErr
		}
		attrs = append(attrs, a)
	}
	return attrs, nil
}

func convertAttribute(name string, v *messageAttributeValue) (queue.Attribute, *apiError) {
	base := baseDataType(v.DataType)
	if base == "" {
		return queue.Attribute{}, newError(kindInvalidParameterValue, "The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", name)
	}
	if len(v.StringListValues) > 0 || len(v.BinaryListValues) > 0 {
		return queue.Attribute{}, newError(kindInvalidParameterValue, "Message attribute '%s': StringListValues and BinaryListValues are not implemented.", name)
	}
	a := queue.Attribute{Name: name, DataType: v.DataType}
	switch base {
	case "Binary":
		if len(v.BinaryValue) == 0 || v.StringValue != nil {
			return a, newError(kindInvalidParameterValue, "Message (user) attribute '%s' must contain a non-empty value of type 'Binary'.", name)
		}
		a.Value = v.BinaryValue
	default:
		if v.StringValue == nil || *v.StringValue == "" || v.BinaryValue != nil {
			return a, newError(kindInvalidParameterValue, "Message (user) attribute '%s' must contain a non-empty value of type '%s'.", name, base)
		}
		if !validMessageChars(*v.StringValue) {
			return a, newError(kindInvalidParameterValue, "Message (user) attribute '%s' contains characters outside the allowed set.", name)
		}
		if base == "Number" && !validNumber(*v.StringValue) {
			return a, newError(kindInvalidParameterValue, "Can't cast the value of message (user) attribute '%s' to a number.", name)
		}
		a.Value = []byte(*v.StringValue)
	}
	return a, nil
}

// sendResult is SendMessage's result.
type sendResult struct {
	prepared preparedSend
	result   queue.SendResult
}

func (s *Server) sendMessage(ctx context.Context, req *sendEntry) (*sendResult, *apiError) {
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return nil, apiErr
	}
	cfg := q.Config()
	p, apiErr := prepareSend(&cfg, req)
	if apiErr != nil {
		return nil, apiErr
	}
	results, err := q.Send(ctx, []queue.SendInput{p.input})
	if err != nil {
		return nil, fromQueueError(err, name)
	}
	if len(results) != 1 {
		return nil, newError(kindInternal, "queue returned %d results for 1 message", len(results))
	}
	if results[0].Err != nil {
		return nil, fromQueueError(results[0].Err, name)
	}
	return &sendResult{prepared: p, result: results[0]}, nil
}

type sendMessageBatchRequest struct {
	QueueUrl string //nolint:revive // the wire name
	Entries  []sendEntry
}

// batchFailure is one Failed entry of a batch response.
type batchFailure struct {
	id  string
	err *apiError
}

// sendBatchResult is SendMessageBatch's result: the entries sent, in the
// order of the request, and the entries that failed.
type sendBatchResult struct {
	ids      []string       // of every entry of the request
	index    []int          // prepared[k] is entry index[k]
	prepared []preparedSend // the entries handed to the engine
	results  []queue.SendResult
	failed   []batchFailure
}

// each calls f for each successful entry with its id.
func (r *sendBatchResult) each(f func(id string, p *preparedSend, res *queue.SendResult)) {
	for k := range r.results {
		if r.results[k].Err == nil {
			f(r.ids[r.index[k]], &r.prepared[k], &r.results[k])
		}
	}
}

func (s *Server) sendMessageBatch(ctx context.Context, req *sendMessageBatchRequest) (*sendBatchResult, *apiError) {
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return nil, apiErr
	}
	r := &sendBatchResult{ids: make([]string, len(req.Entries))}
	for i := range req.Entries {
		r.ids[i] = req.Entries[i].Id
	}
	if apiErr := checkBatchIDs(r.ids); apiErr != nil {
		return nil, apiErr
	}
	cfg := q.Config()
	r.prepared = make([]preparedSend, 0, len(req.Entries))
	inputs := make([]queue.SendInput, 0, len(req.Entries))
	r.index = make([]int, 0, len(req.Entries))
	total := 0
	for i := range req.Entries {
		p, apiErr := prepareSend(&cfg, &req.Entries[i])
		if apiErr != nil {
			r.failed = append(r.failed, batchFailure{r.ids[i], apiErr})
			continue
		}
		total += p.payloadBytes
		r.prepared = append(r.prepared, p)
		inputs = append(inputs, p.input)
		r.index = append(r.index, i)
	}
	if total > maxBatchPayload {
		return nil, newError(kindBatchTooLong, "Batch requests cannot be longer than %d bytes. You have sent %d bytes.", maxBatchPayload, total)
	}
	if len(inputs) > 0 {
		var err error
		if r.results, err = q.Send(ctx, inputs); err != nil {
			return nil, fromQueueError(err, name)
		}
		if len(r.results) != len(inputs) {
			return nil, newError(kindInternal, "queue returned %d results for %d messages", len(r.results), len(inputs))
		}
	}
	for k := range r.results {
		if r.results[k].Err != nil {
			r.failed = append(r.failed, batchFailure{r.ids[r.index[k]], fromQueueError(r.results[k].Err, name)})
		}
	}
	return r, nil
}

// checkBatchIDs applies the batch-level rules of every *Batch action: 1 to
// 10 entries, each Id valid, all Ids distinct. A violation fails the whole
// request, as in SQS.
func checkBatchIDs(ids []string) *apiError {
	if len(ids) == 0 {
		return newError(kindEmptyBatch, "There should be at least one entry in the request.")
	}
	if len(ids) > maxBatchEntries {
		return newError(kindTooManyEntries, "Maximum number of entries per request are %d. You have sent %d.", maxBatchEntries, len(ids))
	}
	for i, id := range ids {
		if !validBatchEntryID(id) {
			return newError(kindInvalidBatchEntryID, "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if slices.Contains(ids[:i], id) {
			return newError(kindBatchIDsNotDistinct, "Id %s repeated.", id)
		}
	}
	return nil
}
