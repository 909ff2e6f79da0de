package sqsapi

import (
	"encoding/base64"

	"github.com/bridgeio/bridge/internal/jsonstr"
)

// A fast path for the requests a busy producer or worker sends thousands of
// times a second: SendMessage(Batch), ReceiveMessage, DeleteMessage(Batch)
// and ChangeMessageVisibilityBatch. encoding/json spends about a third of
// the server's CPU on them (reflection, a validating pre-scan, an
// allocation per field); this reads the shapes the SDKs send in one pass.
//
// It declines, and decode falls back to encoding/json with its exact
// semantics and error messages, on anything it does not know for certain:
// an unknown or differently-cased key, a key given twice, an escape in a
// key, null, a number that is not a plain integer, string or binary list
// attributes, an empty or malformed base64 value, trailing data. Strings
// are decoded by internal/jsonstr, with encoding/json's rules.
// FuzzFastDecode checks that whatever it accepts, encoding/json decodes to
// the same value.

// fastDecode fills v from body when v is one of the hot request types and
// body is in the subset described above; otherwise it reports false and
// leaves v untouched.
func fastDecode(body []byte, v any) bool {
	// Each case reads into a fresh value and stores it only on success, so
	// that a declined request leaves v as encoding/json expects to find it.
	// (The cases are spelled out: behind a generic helper taking the reader
	// as a func value, the scanner and the value escape to the heap.)
	s := scanner{b: body}
	switch r := v.(type) {
	case *sendMessageBatchRequest:
		var req sendMessageBatchRequest
		if s.sendBatch(&req) && s.end() {
			*r = req
			return true
		}
	case *sendEntry:
		var req sendEntry
		if s.sendEntry(&req) && s.end() {
			*r = req
			return true
		}
	case *receiveMessageRequest:
		var req receiveMessageRequest
		if s.receive(&req) && s.end() {
			*r = req
			return true
		}
	case *batchRequest:
		var req batchRequest
		if s.batch(&req) && s.end() {
			*r = req
			return true
		}
	case *deleteMessageRequest:
		var req deleteMessageRequest
		if s.deleteOne(&req) && s.end() {
			*r = req
			return true
		}
	}
	return false
}

// scanner reads JSON from b at i. Its methods report false to decline.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c after optional whitespace.
func (s *scanner) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// object reads {"key": value, ...}, calling member for each key with the
// scanner positioned before the value. keys lists the known keys by bit
// position: an unknown key or a key seen twice declines.
func (s *scanner) object(keys []string, member func(k int) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var seen uint64
	for {
		s.ws()
		k := s.key(keys)
		if k < 0 || seen&(1<<k) != 0 || !s.next(':') {
			return false
		}
		seen |= 1 << k
		s.ws()
		if !member(k) {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next('}')
	}
}

// key reads a quoted key without escapes and returns its index in keys,
// or -1.
func (s *scanner) key(keys []string) int {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return -1
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			for k, name := range keys {
				if string(s.b[start:j]) == name {
					return k
				}
			}
			return -1
		case c == '\\' || c < 0x20 || c >= 0x80:
			return -1
		}
	}
	return -1
}

// array reads [value, ...], calling elem with the scanner before each value.
func (s *scanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		s.ws()
		if !elem() {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next(']')
	}
}

// str reads a string value, decoded as encoding/json does (a lone
// surrogate or an invalid UTF-8 byte becomes U+FFFD).
func (s *scanner) str() (string, bool) {
	raw, esc, high, end, ok := jsonstr.Scan(s.b, s.i)
	if !ok {
		return "", false
	}
	s.i = end
	return jsonstr.Decode(raw, esc, high), true
}

// int reads a plain integer: -?(0|[1-9][0-9]*), at most 18 digits, not
// followed by a fraction or exponent.
func (s *scanner) int() (*int, bool) {
	j := s.i
	neg := j < len(s.b) && s.b[j] == '-'
	if neg {
		j++
	}
	digits := j
	n := 0
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		n = n*10 + int(s.b[j]-'0')
		j++
	}
	switch {
	case j == digits || j-digits > 18:
		return nil, false
	case s.b[digits] == '0' && j-digits > 1:
		return nil, false
	case j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E'):
		return nil, false
	}
	if neg {
		n = -n
	}
	s.i = j
	return &n, true
}

// strPtr reads a string value into a new pointer.
func (s *scanner) strPtr() (*string, bool) {
	v, ok := s.str()
	if !ok {
		return nil, false
	}
	return &v, true
}

func (s *scanner) strings() ([]string, bool) {
	out := []string{}
	ok := s.array(func() bool {
		v, ok := s.str()
		out = append(out, v)
		return ok
	})
	return out, ok
}

var batchKeys = []string{"QueueUrl", "Entries"}

func (s *scanner) sendBatch(r *sendMessageBatchRequest) bool {
	return readBatch(s, &r.QueueUrl, &r.Entries, (*scanner).sendEntry)
}

func (s *scanner) batch(r *batchRequest) bool {
	return readBatch(s, &r.QueueUrl, &r.Entries, (*scanner).batchEntry)
}

// readBatch reads {"QueueUrl": ..., "Entries": [...]}, the shape of every
// batch request, each entry by entry.
func readBatch[E any](s *scanner, url *string, entries *[]E, entry func(*scanner, *E) bool) bool {
	return s.object(batchKeys, func(k int) bool {
		if k == 0 {
			var ok bool
			*url, ok = s.str()
			return ok
		}
		*entries = make([]E, 0, 10)
		return s.array(func() bool {
			*entries = append(*entries, *new(E))
			return entry(s, &(*entries)[len(*entries)-1])
		})
	})
}

var sendEntryKeys = []string{"Id", "QueueUrl", "MessageBody", "DelaySeconds", "MessageAttributes",
	"MessageSystemAttributes", "MessageDeduplicationId", "MessageGroupId"}

func (s *scanner) sendEntry(e *sendEntry) bool {
	return s.object(sendEntryKeys, func(k int) bool {
		var ok bool
		switch k {
		case 0:
			e.Id, ok = s.str()
		case 1:
			e.QueueUrl, ok = s.str()
		case 2:
			e.MessageBody, ok = s.strPtr()
		case 3:
			e.DelaySeconds, ok = s.int()
		case 4:
			e.MessageAttributes, ok = s.attributes()
		case 5:
			e.MessageSystemAttributes, ok = s.attributes()
		case 6:
			e.MessageDeduplicationId, ok = s.str()
		case 7:
			e.MessageGroupId, ok = s.str()
		}
		return ok
	})
}

func (s *scanner) attributes() (map[string]messageAttributeValue, bool) {
	m := map[string]messageAttributeValue{}
	if !s.next('{') {
		return nil, false
	}
	if s.next('}') {
		return m, true
	}
	for {
		s.ws()
		name, ok := s.str()
		if !ok || !s.next(':') {
			return nil, false
		}
		if _, dup := m[name]; dup {
			return nil, false
		}
		s.ws()
		var v messageAttributeValue
		if !s.attributeValue(&v) {
			return nil, false
		}
		m[name] = v
		if s.next(',') {
			continue
		}
		return m, s.next('}')
	}
}

var attributeValueKeys = []string{"DataType", "StringValue", "BinaryValue"}

func (s *scanner) attributeValue(v *messageAttributeValue) bool {
	return s.object(attributeValueKeys, func(k int) bool {
		var ok bool
		switch k {
		case 0:
			v.DataType, ok = s.str()
		case 1:
			v.StringValue, ok = s.strPtr()
		case 2:
			var text string
			if text, ok = s.str(); ok && text != "" {
				v.BinaryValue, ok = decodeBase64(text)
			} else {
				ok = false // encoding/json's empty-but-not-nil slice: leave it to encoding/json
			}
		}
		return ok
	})
}

// decodeBase64 decodes as encoding/json does for a []byte field.
func decodeBase64(text string) ([]byte, bool) {
	out := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(out, []byte(text))
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

var receiveKeys = []string{"QueueUrl", "AttributeNames", "MessageSystemAttributeNames", "MessageAttributeNames",
	"MaxNumberOfMessages", "VisibilityTimeout", "WaitTimeSeconds", "ReceiveRequestAttemptId"}

func (s *scanner) receive(r *receiveMessageRequest) bool {
	return s.object(receiveKeys, func(k int) bool {
		var ok bool
		switch k {
		case 0:
			r.QueueUrl, ok = s.str()
		case 1:
			r.AttributeNames, ok = s.strings()
		case 2:
			r.MessageSystemAttributeNames, ok = s.strings()
		case 3:
			r.MessageAttributeNames, ok = s.strings()
		case 4:
			r.MaxNumberOfMessages, ok = s.int()
		case 5:
			r.VisibilityTimeout, ok = s.int()
		case 6:
			r.WaitTimeSeconds, ok = s.int()
		case 7:
			r.ReceiveRequestAttemptId, ok = s.str()
		}
		return ok
	})
}

var batchEntryKeys = []string{"Id", "ReceiptHandle", "VisibilityTimeout"}

func (s *scanner) batchEntry(e *batchEntry) bool {
	return s.object(batchEntryKeys, func(k int) bool {
		var ok bool
		switch k {
		case 0:
			e.Id, ok = s.str()
		case 1:
			e.ReceiptHandle, ok = s.str()
		case 2:
			e.VisibilityTimeout, ok = s.int()
		}
		return ok
	})
}

var deleteOneKeys = []string{"QueueUrl", "ReceiptHandle"}

func (s *scanner) deleteOne(r *deleteMessageRequest) bool {
	return s.object(deleteOneKeys, func(k int) bool {
		var ok bool
		switch k {
		case 0:
			r.QueueUrl, ok = s.str()
		case 1:
			r.ReceiptHandle, ok = s.str()
		}
		return ok
	})
}
