package sqsapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// jsonCodec is AWS JSON 1.0. Requests are read by decode (the one-pass
// reader of fastdecode.go for the hot shapes, encoding/json otherwise). The
// hot answers (send, receive, the batches) are appended by hand
// (jsonenc.go): encoding/json's reflection was the largest allocation
// source per message; the cold ones go through encoding/json.
type jsonCodec struct{}

func (jsonCodec) protocol() string { return ProtocolJSON }

func (jsonCodec) writeHeader(h http.Header) { h.Set("Content-Type", contentType) }

func (jsonCodec) writeError(w http.ResponseWriter, e *apiError) { writeError(w, e) }

func (jsonCodec) encode(out []byte, _ string, result any) ([]byte, *apiError) {
	switch r := result.(type) {
	case emptyResult:
		return append(out, "{}"...), nil
	case *sendResult:
		out = append(out, '{')
		out = appendSendResult(out, &r.prepared, &r.result)
		return append(out, '}'), nil
	case *sendBatchResult:
		return appendSendBatchResult(out, r), nil
	case *receiveResult:
		out = append(out, `{"Messages":[`...)
		for i := range r.messages {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendMessage(out, &r.messages[i])
		}
		return append(out, "]}"...), nil
	case *batchResult:
		return appendBatchResult(out, r), nil
	case *attributesResponse:
		if len(r.Attributes) == 0 {
			return append(out, "{}"...), nil
		}
	}
	return encode(out, result)
}

// appendSendResult appends the fields of a successful send, shared by
// SendMessage's response and SendMessageBatch's Successful entries.
func appendSendResult(out []byte, p *preparedSend, r *queue.SendResult) []byte {
	out = appendJSONField(out, true, "MessageId", r.MessageID)
	out = appendJSONField(out, false, "MD5OfMessageBody", p.md5Body)
	if p.md5Attrs != "" {
		out = appendJSONField(out, false, "MD5OfMessageAttributes", p.md5Attrs)
	}
	if p.md5SysAttrs != "" {
		out = appendJSONField(out, false, "MD5OfMessageSystemAttributes", p.md5SysAttrs)
	}
	if r.SequenceNumber != "" {
		out = appendJSONField(out, false, "SequenceNumber", r.SequenceNumber)
	}
	return out
}

func appendSendBatchResult(out []byte, r *sendBatchResult) []byte {
	out = append(out, `{"Successful":[`...)
	first := true
	r.each(func(id string, p *preparedSend, res *queue.SendResult) {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '{')
		out = appendJSONField(out, true, "Id", id)
		out = append(out, ',')
		out = appendSendResult(out, p, res)
		out = append(out, '}')
	})
	out = append(out, ']')
	return appendFailed(out, r.failed)
}

func appendBatchResult(out []byte, r *batchResult) []byte {
	out = append(out, `{"Successful":[`...)
	first := true
	var failed []batchFailure
	for i, id := range r.ids {
		if r.errs[i] != nil {
			failed = append(failed, batchFailure{id, r.errs[i]})
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '{')
		out = appendJSONField(out, true, "Id", id)
		out = append(out, '}')
	}
	out = append(out, ']')
	return appendFailed(out, failed)
}

// appendFailed appends ,"Failed":[...] and closes the response object.
// Every per-entry failure here is the sender's, as SQS reports validation
// failures; engine faults are reported as InternalError with SenderFault
// false.
func appendFailed(out []byte, failed []batchFailure) []byte {
	out = append(out, `,"Failed":[`...)
	for i, f := range failed {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '{')
		out = appendJSONField(out, true, "Id", f.id)
		out = append(out, `,"SenderFault":`...)
		out = strconv.AppendBool(out, f.err.kind.sender)
		out = appendJSONField(out, false, "Code", f.err.code())
		out = appendJSONField(out, false, "Message", f.err.message)
		out = append(out, '}')
	}
	return append(out, "]}"...)
}

func appendMessage(out []byte, rm *receivedMessage) []byte {
	m := rm.msg
	out = append(out, '{')
	out = appendJSONField(out, true, "MessageId", m.MessageID)
	out = appendJSONField(out, false, "ReceiptHandle", m.ReceiptHandle)
	out = appendJSONField(out, false, "MD5OfBody", rm.md5Body)
	out = appendJSONField(out, false, "Body", string(m.Body))
	if rm.systemAsked {
		out = append(out, `,"Attributes":{`...)
		for i, a := range rm.system {
			out = appendJSONField(out, i == 0, a.name, a.value)
		}
		out = append(out, '}')
	}
	if len(rm.user) > 0 {
		out = appendJSONField(out, false, "MD5OfMessageAttributes", rm.md5User)
		out = appendUserAttributes(out, rm.user)
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
