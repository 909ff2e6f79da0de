package sqsapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// The query protocol's answers are XML, in the shapes of the SQS 2012-11-05
// query model: <ActionResponse xmlns=...><ActionResult>...</ActionResult>
// <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
// </ActionResponse>, lists and maps "flattened" (one <Message>, <Attribute>,
// <QueueUrl>... element per item, no wrapper), and errors as <ErrorResponse>
// with SQS's Type, Code and Message. They are appended by hand like the JSON
// answers; FuzzXMLRoundTrip checks that encoding/xml reads back what was
// written.

const (
	xmlNamespace   = "http://queue.amazonaws.com/doc/2012-11-05/"
	xmlContentType = "text/xml"
	xmlHeader      = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
)

// queryCodec is the query protocol for one request: its RequestId is in
// every answer.
type queryCodec struct {
	requestID []byte
}

func (*queryCodec) protocol() string { return ProtocolQuery }

func (c *queryCodec) writeHeader(h http.Header) {
	h.Set("Content-Type", xmlContentType)
	h.Set("X-Amzn-Requestid", string(c.requestID))
}

// writeError writes e as SQS's <ErrorResponse>, with the status of its kind.
func (c *queryCodec) writeError(w http.ResponseWriter, e *apiError) {
	fault := "Receiver"
	if e.kind.sender {
		fault = "Sender"
	}
	body := make([]byte, 0, 256+len(e.message))
	body = append(body, xmlHeader+`<ErrorResponse xmlns="`+xmlNamespace+`"><Error>`...)
	body = appendXMLElement(body, "Type", fault)
	body = appendXMLElement(body, "Code", e.kind.query)
	body = appendXMLElement(body, "Message", e.message)
	body = append(body, "<Detail/></Error><RequestId>"...)
	body = append(body, c.requestID...)
	body = append(body, "</RequestId></ErrorResponse>"...)
	c.writeHeader(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.kind.status)
	_, _ = w.Write(body) // the client went away; nothing to report to
}

// encode appends action's answer carrying result.
func (c *queryCodec) encode(out []byte, action string, result any) ([]byte, *apiError) {
	out = append(out, xmlHeader+"<"...)
	out = append(out, action...)
	out = append(out, `Response xmlns="`+xmlNamespace+`">`...)
	if _, empty := result.(emptyResult); !empty {
		out = appendXMLOpen(out, action, "Result")
		var apiErr *apiError
		if out, apiErr = appendXMLResult(out, action, result); apiErr != nil {
			return out, apiErr
		}
		out = appendXMLClose(out, action, "Result")
	}
	out = append(out, "<ResponseMetadata><RequestId>"...)
	out = append(out, c.requestID...)
	out = append(out, "</RequestId></ResponseMetadata></"...)
	out = append(out, action...)
	return append(out, "Response>"...), nil
}

// appendXMLResult appends the members of result, a handler's result.
func appendXMLResult(out []byte, action string, result any) ([]byte, *apiError) {
	switch r := result.(type) {
	case *sendResult:
		out = appendXMLSendResult(out, &r.prepared, &r.result)
	case *sendBatchResult:
		r.each(func(id string, p *preparedSend, res *queue.SendResult) {
			out = append(out, "<SendMessageBatchResultEntry>"...)
			out = appendXMLElement(out, "Id", id)
			out = appendXMLSendResult(out, p, res)
			out = append(out, "</SendMessageBatchResultEntry>"...)
		})
		out = appendXMLFailed(out, r.failed)
	case *receiveResult:
		for i := range r.messages {
			out = appendXMLMessage(out, &r.messages[i])
		}
	case *batchResult:
		var failed []batchFailure
		for i, id := range r.ids {
			if r.errs[i] != nil {
				failed = append(failed, batchFailure{id, r.errs[i]})
				continue
			}
			out = appendXMLOpen(out, action, "ResultEntry")
			out = appendXMLElement(out, "Id", id)
			out = appendXMLClose(out, action, "ResultEntry")
		}
		out = appendXMLFailed(out, failed)
	case *queueURLResponse:
		out = appendXMLElement(out, "QueueUrl", r.QueueUrl)
	case *listQueuesResponse:
		out = appendXMLURLs(out, r.QueueUrls, r.NextToken)
	case *listDeadLetterSourceQueuesResponse:
		out = appendXMLURLs(out, r.QueueUrls, r.NextToken)
	case *attributesResponse:
		// In GetQueueAttributes' "All" order, so answers are stable.
		for _, name := range queueAttributeOrder {
			if v, ok := r.Attributes[name]; ok {
				out = appendXMLNameValue(out, "Attribute", name, v)
			}
		}
	case *startMessageMoveTaskResult:
		out = appendXMLElement(out, "TaskHandle", r.TaskHandle)
	case *listMessageMoveTasksResult:
		for i := range r.Results {
			out = appendXMLMoveTask(out, &r.Results[i])
		}
	case *cancelMessageMoveTaskResult:
		out = appendXMLInt(out, "ApproximateNumberOfMessagesMoved", r.ApproximateNumberOfMessagesMoved)
	default:
		// A handler whose result type has no case here: a programmer error
		// that the query tests of every action catch.
		return out, newError(kindInternal, "no XML encoding for %T", result)
	}
	return out, nil
}

func appendXMLSendResult(out []byte, p *preparedSend, r *queue.SendResult) []byte {
	out = appendXMLElement(out, "MessageId", r.MessageID)
	out = appendXMLElement(out, "MD5OfMessageBody", p.md5Body)
	if p.md5Attrs != "" {
		out = appendXMLElement(out, "MD5OfMessageAttributes", p.md5Attrs)
	}
	if p.md5SysAttrs != "" {
		out = appendXMLElement(out, "MD5OfMessageSystemAttributes", p.md5SysAttrs)
	}
	if r.SequenceNumber != "" {
		out = appendXMLElement(out, "SequenceNumber", r.SequenceNumber)
	}
	return out
}

// appendXMLFailed appends one <BatchResultErrorEntry> per failed entry.
func appendXMLFailed(out []byte, failed []batchFailure) []byte {
	for _, f := range failed {
		out = append(out, "<BatchResultErrorEntry>"...)
		out = appendXMLElement(out, "Id", f.id)
		out = append(out, "<SenderFault>"...)
		out = strconv.AppendBool(out, f.err.kind.sender)
		out = append(out, "</SenderFault>"...)
		out = appendXMLElement(out, "Code", f.err.code())
		out = appendXMLElement(out, "Message", f.err.message)
		out = append(out, "</BatchResultErrorEntry>"...)
	}
	return out
}

func appendXMLMessage(out []byte, rm *receivedMessage) []byte {
	m := rm.msg
	out = append(out, "<Message>"...)
	out = appendXMLElement(out, "MessageId", m.MessageID)
	out = appendXMLElement(out, "ReceiptHandle", m.ReceiptHandle)
	out = appendXMLElement(out, "MD5OfBody", rm.md5Body)
	out = append(out, "<Body>"...)
	out = appendXMLText(out, m.Body)
	out = append(out, "</Body>"...)
	for _, a := range rm.system {
		out = appendXMLNameValue(out, "Attribute", a.name, a.value)
	}
	if len(rm.user) > 0 {
		out = appendXMLElement(out, "MD5OfMessageAttributes", rm.md5User)
		for _, a := range rm.user {
			out = append(out, "<MessageAttribute>"...)
			out = appendXMLElement(out, "Name", a.Name)
			out = append(out, "<Value>"...)
			out = appendXMLElement(out, "DataType", a.DataType)
			if strings.HasPrefix(a.DataType, "Binary") {
				out = append(out, "<BinaryValue>"...)
				out = base64.StdEncoding.AppendEncode(out, a.Value)
				out = append(out, "</BinaryValue>"...)
			} else {
				out = append(out, "<StringValue>"...)
				out = appendXMLText(out, a.Value)
				out = append(out, "</StringValue>"...)
			}
			out = append(out, "</Value></MessageAttribute>"...)
		}
	}
	return append(out, "</Message>"...)
}

func appendXMLURLs(out []byte, urls []string, next string) []byte {
	for _, u := range urls {
		out = appendXMLElement(out, "QueueUrl", u)
	}
	if next != "" {
		out = appendXMLElement(out, "NextToken", next)
	}
	return out
}

func appendXMLMoveTask(out []byte, t *moveTaskEntry) []byte {
	out = append(out, "<ListMessageMoveTasksResultEntry>"...)
	if t.TaskHandle != "" {
		out = appendXMLElement(out, "TaskHandle", t.TaskHandle)
	}
	out = appendXMLElement(out, "Status", t.Status)
	out = appendXMLElement(out, "SourceArn", t.SourceArn)
	if t.DestinationArn != "" {
		out = appendXMLElement(out, "DestinationArn", t.DestinationArn)
	}
	if t.MaxNumberOfMessagesPerSecond != nil {
		out = appendXMLInt(out, "MaxNumberOfMessagesPerSecond", int64(*t.MaxNumberOfMessagesPerSecond))
	}
	out = appendXMLInt(out, "ApproximateNumberOfMessagesMoved", t.ApproximateNumberOfMessagesMoved)
	out = appendXMLInt(out, "ApproximateNumberOfMessagesToMove", t.ApproximateNumberOfMessagesToMove)
	if t.FailureReason != "" {
		out = appendXMLElement(out, "FailureReason", t.FailureReason)
	}
	out = appendXMLInt(out, "StartedTimestamp", t.StartedTimestamp)
	return append(out, "</ListMessageMoveTasksResultEntry>"...)
}

// appendXMLNameValue appends <elem><Name>name</Name><Value>value</Value></elem>,
// a flattened map entry.
func appendXMLNameValue(out []byte, elem, name, value string) []byte {
	out = append(out, '<')
	out = append(out, elem...)
	out = append(out, '>')
	out = appendXMLElement(out, "Name", name)
	out = appendXMLElement(out, "Value", value)
	out = append(out, "</"...)
	out = append(out, elem...)
	return append(out, '>')
}

// appendXMLOpen appends <prefixsuffix>, e.g. <SendMessageResult>.
func appendXMLOpen(out []byte, prefix, suffix string) []byte {
	out = append(out, '<')
	out = append(out, prefix...)
	out = append(out, suffix...)
	return append(out, '>')
}

func appendXMLClose(out []byte, prefix, suffix string) []byte {
	out = append(out, "</"...)
	out = append(out, prefix...)
	out = append(out, suffix...)
	return append(out, '>')
}

// appendXMLElement appends <name>text</name>; name is one of ours, text is
// escaped.
func appendXMLElement(out []byte, name, text string) []byte {
	out = append(out, '<')
	out = append(out, name...)
	out = append(out, '>')
	out = appendXMLText(out, text)
	out = append(out, "</"...)
	out = append(out, name...)
	return append(out, '>')
}

func appendXMLInt(out []byte, name string, v int64) []byte {
	out = append(out, '<')
	out = append(out, name...)
	out = append(out, '>')
	out = strconv.AppendInt(out, v, 10)
	out = append(out, "</"...)
	out = append(out, name...)
	return append(out, '>')
}

// appendXMLText appends s as XML character data. &, < and > are escaped,
// and so is CR (as &#xD;), which an XML parser would otherwise turn into LF:
// a message body comes back byte for byte. Characters XML 1.0 cannot carry
// (controls other than tab, LF and CR, U+FFFE, U+FFFF, invalid UTF-8)
// become U+FFFD, so the answer is always well-formed; message bodies and
// attribute values never hold them (validMessageChars), but error messages
// may quote any input.
func appendXMLText[T string | []byte](out []byte, s T) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc string
			switch {
			case c == '&':
				esc = "&amp;"
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '\r':
				esc = "&#xD;"
			case c < 0x20 && c != '\t' && c != '\n':
				esc = "\uFFFD"
			default:
				i++
				continue
			}
			out = append(out, s[start:i]...)
			out = append(out, esc...)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			out = append(out, s[start:i]...)
			out = append(out, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(out, s[start:]...)
}
