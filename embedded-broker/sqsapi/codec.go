package sqsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync/atomic"
)

// The protocol is only the codec. One action table (handlers) and one set of
// handlers serve both of SQS's protocols: each handler takes a typed request
// and returns a typed result, and a codec turns the wire into the request
// and the result (or the error) into the wire:
//
//   - jsonCodec, AWS JSON 1.0: POST with X-Amz-Target: AmazonSQS.<Action>
//     and a JSON body; what the current SDKs send (jsoncodec.go).
//   - queryCodec, SQS's query protocol: Action=<Action> and the other
//     parameters form-encoded in a POST body or a GET query string, answered
//     with XML; what AWS CLI v1, early v2 builds, boto3 before 1.31 and
//     aws-sdk-go v1 send (querydecode.go, xmlenc.go).

// Protocol names, as Server.Requests reports them.
const (
	ProtocolJSON  = "json"
	ProtocolQuery = "query"
)

// request is a request as it arrived, decoded on demand into a handler's
// request type: a JSON body, or the parameters of a query request. It is
// passed by value so that the JSON path allocates nothing for it.
type request struct {
	body []byte // JSON 1.0
	form *form  // query; nil for JSON
}

// decode fills v, a pointer to one of the handlers' request types.
func (r request) decode(v any) *apiError {
	if r.form != nil {
		return r.form.decode(v)
	}
	return decode(r.body, v)
}

// codec reads requests and writes answers of one protocol.
type codec interface {
	protocol() string
	// encode appends the answer of action carrying result (a handler's
	// result, or emptyResult) to out.
	encode(out []byte, action string, result any) ([]byte, *apiError)
	// writeHeader sets the headers of a successful answer.
	writeHeader(h http.Header)
	// writeError writes e as this protocol's error answer.
	writeError(w http.ResponseWriter, e *apiError)
}

// handler runs one action: it decodes req, acts, and appends the encoded
// result to out.
type handler func(s *Server, ctx context.Context, c codec, action string, req request, out []byte) ([]byte, *apiError)

// act makes a handler of a typed action function: decoding and encoding
// belong to the codec, the action sees only its request and result types.
func act[Req, Res any](f func(*Server, context.Context, *Req) (Res, *apiError)) handler {
	return func(s *Server, ctx context.Context, c codec, action string, r request, out []byte) ([]byte, *apiError) {
		var req Req
		if apiErr := r.decode(&req); apiErr != nil {
			return out, apiErr
		}
		res, apiErr := f(s, ctx, &req)
		if apiErr != nil {
			return out, apiErr
		}
		return c.encode(out, action, res)
	}
}

// emptyResult is the result of the actions that answer nothing but success
// ("{}" in JSON, only the response metadata in XML).
type emptyResult struct{}

// requestCounts counts served requests per protocol, whatever their outcome,
// so that operators and tests can see which protocol clients really use.
type requestCounts struct {
	json, query atomic.Int64
}

func (c *requestCounts) add(protocol string) {
	if protocol == ProtocolQuery {
		c.query.Add(1)
	} else {
		c.json.Add(1)
	}
}

// Requests returns how many requests the server answered per protocol
// (ProtocolJSON, ProtocolQuery), errors included.
func (s *Server) Requests() map[string]int64 {
	return map[string]int64{ProtocolJSON: s.counts.json.Load(), ProtocolQuery: s.counts.query.Load()}
}

// isQueryRequest reports whether r speaks the query protocol: a GET, or a
// POST without X-Amz-Target whose body is a form or whose URL names an
// Action. Anything else is read as JSON 1.0 (and a request without a target
// gets JSON's InvalidAction, as before the query protocol was served).
func isQueryRequest(r *http.Request) bool {
	if r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	if r.Method == http.MethodGet {
		return true
	}
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), formContentType) {
		return true
	}
	return strings.Contains(r.URL.RawQuery, "Action=")
}

// requestIDs hands out the RequestId of query answers: a random prefix per
// server and a counter, formatted as a UUID as SQS's are. Unique per server
// without a random read per request.
type requestIDs struct {
	prefix [16]byte // 16 hex digits, random per server
	next   atomic.Uint64
}

func (g *requestIDs) init() {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	hex.Encode(g.prefix[:], b[:])
}

// appendNext appends a new id: pppppppp-pppp-pppp-cccc-cccccccccccc.
func (g *requestIDs) appendNext(out []byte) []byte {
	n := g.next.Add(1)
	var c [16]byte
	for i := 15; i >= 0; i-- {
		c[i] = "0123456789abcdef"[n&0xf]
		n >>= 4
	}
	out = append(out, g.prefix[0:8]...)
	out = append(out, '-')
	out = append(out, g.prefix[8:12]...)
	out = append(out, '-')
	out = append(out, g.prefix[12:16]...)
	out = append(out, '-')
	out = append(out, c[0:4]...)
	out = append(out, '-')
	return append(out, c[4:16]...)
}
