package leanhttp

import (
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// head is a parsed request head: the request line and the header fields.
// The strings all point into one string converted from the head's bytes
// (one allocation per request), so parsing allocates little.
type head struct {
	method, target string
	minor          int // HTTP/1.minor
	host           string
	hostSeen       bool
	contentLength  int64 // -1: none given
	chunked        bool
	expectContinue bool
	connClose      bool // Connection: close
	keepAlive      bool // Connection: keep-alive (HTTP/1.0)
}

// statusError is a request the server refuses before any handler sees it;
// the connection is closed after the answer.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return strconv.Itoa(e.code) + " " + e.msg }

func badRequest(msg string) *statusError {
	return &statusError{code: http.StatusBadRequest, msg: msg}
}

// headEnd returns the length of the request head at the start of b (up to
// and including the empty line that ends it), or -1 when b holds no
// complete head yet. Lines may end in CRLF or a bare LF, as RFC 9112 §2.2
// lets a recipient accept.
func headEnd(b []byte) int {
	// Skip empty lines before the request line (RFC 9112 §2.2).
	start := 0
	for start < len(b) && (b[start] == '\r' || b[start] == '\n') {
		start++
	}
	for i := start; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
		if i+1 >= len(b) {
			return -1
		}
	}
}

// parseHead parses a complete request head (as delimited by headEnd) into
// h and the header fields into hdr, which must be empty. vals is a reused
// backing array for hdr's one-value slices; parseHead returns it grown.
func parseHead(raw []byte, h *head, hdr http.Header, vals []string) ([]string, error) {
	*h = head{contentLength: -1}
	s := string(raw) // the one allocation: every field below is a substring
	s = strings.TrimLeft(s, "\r\n")
	line, rest, ok := cutLine(s)
	if !ok {
		return vals, badRequest("malformed request line")
	}
	method, rest1, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest1, " ")
	if !ok1 || !ok2 || method == "" || target == "" || !isToken(method) || !validTarget(target) {
		return vals, badRequest("malformed request line")
	}
	switch proto {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		if strings.HasPrefix(proto, "HTTP/") && len(proto) == 8 && proto[6] == '.' && proto[5] >= '2' && proto[5] <= '9' {
			return vals, &statusError{code: http.StatusHTTPVersionNotSupported, msg: "unsupported protocol version"}
		}
		return vals, badRequest("malformed HTTP version")
	}
	h.method, h.target = method, target
	var contentLengthSeen bool
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return vals, badRequest("malformed header")
		}
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return vals, badRequest("obsolete line folding")
		}
		name, value, found := strings.Cut(line, ":")
		if !found || !isToken(name) {
			return vals, badRequest("malformed header line")
		}
		value = strings.Trim(value, " \t")
		if !validValue(value) {
			return vals, badRequest("invalid header value")
		}
		key := canonicalKey(name)
		switch key {
		case "Host":
			if h.hostSeen {
				return vals, badRequest("too many Host headers")
			}
			h.hostSeen, h.host = true, value
			continue // net/http moves Host out of the header map too
		case "Content-Length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || value[0] == '+' {
				return vals, badRequest("bad Content-Length")
			}
			if contentLengthSeen && n != h.contentLength {
				return vals, badRequest("conflicting Content-Length")
			}
			contentLengthSeen, h.contentLength = true, n
		case "Transfer-Encoding":
			if h.chunked || !strings.EqualFold(value, "chunked") {
				return vals, &statusError{code: http.StatusNotImplemented, msg: "unsupported transfer encoding"}
			}
			h.chunked = true
		case "Expect":
			if !strings.EqualFold(value, "100-continue") {
				return vals, &statusError{code: http.StatusExpectationFailed, msg: "unsupported expectation"}
			}
			h.expectContinue = true
		case "Connection":
			for opt := range strings.SplitSeq(value, ",") {
				opt = strings.Trim(opt, " \t")
				switch {
				case strings.EqualFold(opt, "close"):
					h.connClose = true
				case strings.EqualFold(opt, "keep-alive"):
					h.keepAlive = true
				}
			}
		}
		vals = append(vals, value)
		hdr[key] = append(hdr[key], vals[len(vals)-1:len(vals):len(vals)]...)
	}
	if h.chunked && contentLengthSeen {
		// RFC 9112 §6.3 lets a server read such a message by its
		// Transfer-Encoding, but the pair is the stuff of request
		// smuggling: refuse it, as a proxy in front may frame it otherwise.
		return vals, badRequest("both Transfer-Encoding and Content-Length")
	}
	if h.chunked && h.minor == 0 {
		return vals, badRequest("chunked encoding in HTTP/1.0")
	}
	if h.minor == 1 && !h.hostSeen {
		return vals, badRequest("missing required Host header")
	}
	return vals, nil
}

// cutLine cuts s at its first line end (CRLF or LF).
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return "", "", false
	}
	line, rest = strings.TrimSuffix(s[:i], "\r"), s[i+1:]
	if strings.IndexByte(line, '\r') >= 0 {
		return "", "", false // a bare CR inside a line
	}
	return line, rest, true
}

// canonicalKey returns the canonical form of a header name, without an
// allocation for the names SQS clients send (in any case).
func canonicalKey(name string) string {
	for _, k := range commonKeys {
		if len(k) == len(name) && strings.EqualFold(k, name) {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

var commonKeys = [...]string{
	"Host", "Content-Type", "Content-Length", "X-Amz-Target", "Authorization", "X-Amz-Date",
	"User-Agent", "Accept-Encoding", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "X-Amz-Content-Sha256",
	"X-Amz-Security-Token", "X-Amz-Query-Mode", "Connection", "Accept", "Transfer-Encoding", "Expect",
	"X-Amz-User-Agent", "Traceparent", "Tracestate",
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validValue reports whether a header value holds no control characters
// other than horizontal tab.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validTarget reports whether a request target holds only visible ASCII.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

var errChunk = errors.New("leanhttp: malformed chunked encoding")
