package sqsapi

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The query protocol's requests: Action=SendMessageBatch&QueueUrl=...&
// SendMessageBatchRequestEntry.1.Id=m0&SendMessageBatchRequestEntry.1.
// MessageBody=..., form-encoded in a POST body or a GET query string. The
// parameter names are those of the SQS API reference (the "flattened"
// locationNames of the 2012-11-05 query model): lists are NAME.N, maps are
// NAME.N.Name / NAME.N.Value (Key / Value for tags), structures in lists
// are NAME.N.Field, with N counted from 1.
//
// A form is read into a sorted slice once; every structure, list and map is
// then a contiguous run of it (all keys of "Entry.1." sort together, before
// "Entry.10."), found by binary search without copying. Unknown parameters
// are ignored, as JSON ignores unknown fields; a parameter given twice, a
// malformed escape or a list index that is not a positive integer without
// leading zeros is MalformedInput.

const formContentType = "application/x-www-form-urlencoded"

// param is one decoded name=value pair.
type param struct{ key, value string }

// form is a set of parameters sorted by key, keys distinct. Every key of a
// nested form shares its first skip bytes (the enclosing "Entry.N." part),
// which lookups ignore.
type form struct {
	params []param
	skip   int
	// action is the request's Action: the two batch actions share one
	// request type and differ only in their entries' parameter name.
	action string
	// pathQueue is the queue URL named by the request path
	// (/ACCOUNT/QUEUE), used when QueueUrl is not given.
	pathQueue string
}

// parseForm reads raw query strings (the URL's, then the body's) into a
// form. The values are substrings of raw where nothing was escaped.
func parseForm(raws ...string) (form, *apiError) {
	n := 0
	for _, raw := range raws {
		n += strings.Count(raw, "&") + 1
	}
	params := make([]param, 0, n)
	for _, raw := range raws {
		for raw != "" {
			var pair string
			pair, raw, _ = strings.Cut(raw, "&")
			if pair == "" {
				continue
			}
			k, v, _ := strings.Cut(pair, "=")
			key, err1 := unescape(k)
			value, err2 := unescape(v)
			if err1 != nil || err2 != nil {
				return form{}, newError(kindSerialization, "The request has a malformed parameter %q.", truncate(pair, 64))
			}
			params = append(params, param{key, value})
		}
	}
	slices.SortFunc(params, func(a, b param) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(params); i++ {
		if params[i].key == params[i-1].key {
			return form{}, newError(kindSerialization, "The parameter %s is given more than once.", truncate(params[i].key, 64))
		}
	}
	return form{params: params}, nil
}

// unescape decodes a query component; most have nothing to decode.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// find returns the index of the first parameter whose name (past skip) is
// >= name.
func (f *form) find(name string) int {
	i, _ := slices.BinarySearchFunc(f.params, name, func(p param, name string) int {
		return strings.Compare(p.key[f.skip:], name)
	})
	return i
}

// get returns the value of parameter name.
func (f *form) get(name string) (string, bool) {
	i := f.find(name)
	if i < len(f.params) && f.params[i].key[f.skip:] == name {
		return f.params[i].value, true
	}
	return "", false
}

func (f *form) str(name string) string {
	v, _ := f.get(name)
	return v
}

func (f *form) strPtr(name string) *string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	return &v
}

// int reads an optional integer parameter; ranges are the handlers' to check.
func (f *form) int(name string) (*int, *apiError) {
	v, ok := f.get(name)
	if !ok {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, newError(kindInvalidParameterValue, "Value %s for parameter %s is invalid. Reason: must be an integer.", truncate(v, 64), f.fullName(name))
	}
	return &n, nil
}

// fullName is name as the client spelled it, for error messages.
func (f *form) fullName(name string) string {
	if f.skip == 0 || len(f.params) == 0 {
		return name
	}
	return f.params[0].key[:f.skip] + name
}

// queueURL is the QueueUrl parameter, else the queue of the request path.
func (f *form) queueURL() string {
	if v, ok := f.get("QueueUrl"); ok {
		return v
	}
	return f.pathQueue
}

// member is the N-th element of a flattened list, map or structure list.
type member struct {
	index int
	form  form // the element's parameters: "" for a list value, else "Field..."
}

// members returns the elements NAME.1, NAME.2, ... (with their nested
// parameters) in index order; prefix is "NAME." (a constant, so that the
// hot path builds no string).
func (f *form) members(prefix string) ([]member, *apiError) {
	var out []member
	i := f.find(prefix)
	for i < len(f.params) && strings.HasPrefix(f.params[i].key[f.skip:], prefix) {
		rest := f.params[i].key[f.skip+len(prefix):]
		digits, _, nested := strings.Cut(rest, ".")
		n, err := strconv.Atoi(digits)
		if err != nil || n < 1 || digits[0] == '0' {
			return nil, newError(kindSerialization, "The parameter %s has no valid index: a list's indexes are 1, 2, ...", truncate(f.params[i].key, 64))
		}
		skip := f.skip + len(prefix) + len(digits)
		if nested {
			skip++ // the dot
		}
		// The run of this index: every key that starts with "NAME.N." or is "NAME.N".
		j := i + 1
		for j < len(f.params) && len(f.params[j].key) >= skip && f.params[j].key[:skip] == f.params[i].key[:skip] &&
			(nested || len(f.params[j].key) == skip) {
			j++
		}
		if !nested && j < len(f.params) && strings.HasPrefix(f.params[j].key, f.params[i].key+".") {
			// "NAME.N" and "NAME.N.Field" together: one element, two shapes.
			return nil, newError(kindSerialization, "The parameter %s is both a value and a structure.", truncate(f.params[i].key, 64))
		}
		if out == nil {
			out = make([]member, 0, maxBatchEntries)
		}
		out = append(out, member{n, form{params: f.params[i:j], skip: skip, action: f.action}})
		i = j
	}
	if !slices.IsSortedFunc(out, compareMembers) {
		slices.SortFunc(out, compareMembers) // "NAME.10" sorts before "NAME.2"
	}
	return out, nil
}

func compareMembers(a, b member) int { return a.index - b.index }

// list reads the flattened list NAME.1, NAME.2, ... of strings; prefix is
// "NAME.".
func (f *form) list(prefix string) ([]string, *apiError) {
	ms, apiErr := f.members(prefix)
	if apiErr != nil || ms == nil {
		return nil, apiErr
	}
	out := make([]string, len(ms))
	for i := range ms {
		out[i] = ms[i].form.str("")
	}
	return out, nil
}

// stringMap reads the flattened map NAME.N.<keyName> / NAME.N.Value;
// prefix is "NAME.".
func (f *form) stringMap(prefix, keyName string) (map[string]string, *apiError) {
	ms, apiErr := f.members(prefix)
	if apiErr != nil || ms == nil {
		return nil, apiErr
	}
	out := make(map[string]string, len(ms))
	for i := range ms {
		k, ok := ms[i].form.get(keyName)
		if !ok {
			return nil, newError(kindMissingParameter, "The request must contain the parameter %s%d.%s.", f.fullName(prefix), ms[i].index, keyName)
		}
		if _, dup := out[k]; dup {
			return nil, newError(kindInvalidParameterValue, "%s%s is given more than once.", f.fullName(prefix), truncate(k, 64))
		}
		out[k] = ms[i].form.str("Value")
	}
	return out, nil
}

// messageAttributes reads NAME.N.Name and NAME.N.Value.{DataType,
// StringValue, BinaryValue, StringListValue.M, BinaryListValue.M}; prefix is
// "NAME.".
func (f *form) messageAttributes(prefix string) (map[string]messageAttributeValue, *apiError) {
	ms, apiErr := f.members(prefix)
	if apiErr != nil || ms == nil {
		return nil, apiErr
	}
	out := make(map[string]messageAttributeValue, len(ms))
	for i := range ms {
		m := &ms[i].form
		k, ok := m.get("Name")
		if !ok {
			return nil, newError(kindMissingParameter, "The request must contain the parameter %s%d.Name.", f.fullName(prefix), ms[i].index)
		}
		if _, dup := out[k]; dup {
			return nil, newError(kindInvalidParameterValue, "Message attribute name '%s' is given more than once.", truncate(k, 64))
		}
		v := messageAttributeValue{DataType: m.str("Value.DataType"), StringValue: m.strPtr("Value.StringValue")}
		if text, ok := m.get("Value.BinaryValue"); ok {
			if v.BinaryValue, apiErr = decodeBinary(text, m.fullName("Value.BinaryValue")); apiErr != nil {
				return nil, apiErr
			}
		}
		if v.StringListValues, apiErr = m.list("Value.StringListValue."); apiErr != nil {
			return nil, apiErr
		}
		binaries, apiErr := m.list("Value.BinaryListValue.")
		if apiErr != nil {
			return nil, apiErr
		}
		for _, b := range binaries {
			v.BinaryListValues = append(v.BinaryListValues, []byte(b))
		}
		out[k] = v
	}
	return out, nil
}

// decodeBinary decodes a base64 blob parameter. An empty one is an empty,
// non-nil value, which the handlers reject as encoding/json's "" is.
func decodeBinary(text, name string) ([]byte, *apiError) {
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, newError(kindSerialization, "The parameter %s is not valid base64.", name)
	}
	return b, nil
}

// decode fills v, one of the handlers' request types, from the form.
func (f *form) decode(v any) *apiError {
	switch r := v.(type) {
	case *sendEntry:
		r.QueueUrl = f.queueURL()
		return f.sendEntry(r)
	case *sendMessageBatchRequest:
		r.QueueUrl = f.queueURL()
		return f.sendBatch(r)
	case *receiveMessageRequest:
		return f.receive(r)
	case *deleteMessageRequest:
		r.QueueUrl, r.ReceiptHandle = f.queueURL(), f.str("ReceiptHandle")
		return nil
	case *batchRequest:
		r.QueueUrl = f.queueURL()
		return f.batch(r)
	case *changeVisibilityRequest:
		r.QueueUrl = f.queueURL()
		return f.batchEntry(&r.batchEntry)
	case *createQueueRequest:
		var apiErr *apiError
		r.QueueName = f.str("QueueName")
		if r.Attributes, apiErr = f.stringMap("Attribute.", "Name"); apiErr != nil {
			return apiErr
		}
		r.Tags, apiErr = f.stringMap("Tag.", "Key")
		return apiErr
	case *getQueueURLRequest:
		r.QueueName = f.str("QueueName")
	case *listQueuesRequest:
		var apiErr *apiError
		r.QueueNamePrefix, r.NextToken = f.str("QueueNamePrefix"), f.str("NextToken")
		r.MaxResults, apiErr = f.int("MaxResults")
		return apiErr
	case *queueURLRequest:
		r.QueueUrl = f.queueURL()
	case *getQueueAttributesRequest:
		var apiErr *apiError
		r.QueueUrl = f.queueURL()
		r.AttributeNames, apiErr = f.list("AttributeName.")
		return apiErr
	case *setQueueAttributesRequest:
		var apiErr *apiError
		r.QueueUrl = f.queueURL()
		r.Attributes, apiErr = f.stringMap("Attribute.", "Name")
		return apiErr
	case *listDeadLetterSourceQueuesRequest:
		var apiErr *apiError
		r.QueueUrl, r.NextToken = f.queueURL(), f.str("NextToken")
		r.MaxResults, apiErr = f.int("MaxResults")
		return apiErr
	case *startMessageMoveTaskRequest:
		var apiErr *apiError
		r.SourceArn, r.DestinationArn = f.str("SourceArn"), f.str("DestinationArn")
		r.MaxNumberOfMessagesPerSecond, apiErr = f.int("MaxNumberOfMessagesPerSecond")
		return apiErr
	case *listMessageMoveTasksRequest:
		var apiErr *apiError
		r.SourceArn = f.str("SourceArn")
		r.MaxResults, apiErr = f.int("MaxResults")
		return apiErr
	case *cancelMessageMoveTaskRequest:
		r.TaskHandle = f.str("TaskHandle")
	default:
		// A handler whose request type has no case here: a programmer
		// error that TestQueryDecodesEveryAction catches.
		return newError(kindInternal, "no query decoder for %T", v)
	}
	return nil
}

// sendEntry reads SendMessage's parameters, or one SendMessageBatch entry's
// (whose QueueUrl is the batch's).
func (f *form) sendEntry(e *sendEntry) *apiError {
	var apiErr *apiError
	e.Id = f.str("Id")
	e.MessageBody = f.strPtr("MessageBody")
	e.MessageDeduplicationId = f.str("MessageDeduplicationId")
	e.MessageGroupId = f.str("MessageGroupId")
	if e.DelaySeconds, apiErr = f.int("DelaySeconds"); apiErr != nil {
		return apiErr
	}
	if e.MessageAttributes, apiErr = f.messageAttributes("MessageAttribute."); apiErr != nil {
		return apiErr
	}
	e.MessageSystemAttributes, apiErr = f.messageAttributes("MessageSystemAttribute.")
	return apiErr
}

func (f *form) sendBatch(r *sendMessageBatchRequest) *apiError {
	ms, apiErr := f.members("SendMessageBatchRequestEntry.")
	if apiErr != nil {
		return apiErr
	}
	r.Entries = make([]sendEntry, len(ms))
	for i := range ms {
		if apiErr := ms[i].form.sendEntry(&r.Entries[i]); apiErr != nil {
			return apiErr
		}
	}
	return nil
}

func (f *form) receive(r *receiveMessageRequest) *apiError {
	var apiErr *apiError
	r.QueueUrl = f.queueURL()
	r.ReceiveRequestAttemptId = f.str("ReceiveRequestAttemptId")
	if r.AttributeNames, apiErr = f.list("AttributeName."); apiErr != nil {
		return apiErr
	}
	if r.MessageSystemAttributeNames, apiErr = f.list("MessageSystemAttributeName."); apiErr != nil {
		return apiErr
	}
	if r.MessageAttributeNames, apiErr = f.list("MessageAttributeName."); apiErr != nil {
		return apiErr
	}
	if r.MaxNumberOfMessages, apiErr = f.int("MaxNumberOfMessages"); apiErr != nil {
		return apiErr
	}
	if r.VisibilityTimeout, apiErr = f.int("VisibilityTimeout"); apiErr != nil {
		return apiErr
	}
	r.WaitTimeSeconds, apiErr = f.int("WaitTimeSeconds")
	return apiErr
}

// batch reads the entries of DeleteMessageBatch
// (DeleteMessageBatchRequestEntry.N) or ChangeMessageVisibilityBatch
// (ChangeMessageVisibilityBatchRequestEntry.N).
func (f *form) batch(r *batchRequest) *apiError {
	prefix := "DeleteMessageBatchRequestEntry."
	if f.action == "ChangeMessageVisibilityBatch" {
		prefix = "ChangeMessageVisibilityBatchRequestEntry."
	}
	ms, apiErr := f.members(prefix)
	if apiErr != nil {
		return apiErr
	}
	r.Entries = make([]batchEntry, len(ms))
	for i := range ms {
		if apiErr := ms[i].form.batchEntry(&r.Entries[i]); apiErr != nil {
			return apiErr
		}
	}
	return nil
}

func (f *form) batchEntry(e *batchEntry) *apiError {
	var apiErr *apiError
	e.Id, e.ReceiptHandle = f.str("Id"), f.str("ReceiptHandle")
	e.VisibilityTimeout, apiErr = f.int("VisibilityTimeout")
	return apiErr
}
