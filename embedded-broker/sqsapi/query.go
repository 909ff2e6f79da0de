package sqsapi

import (
	"net/http"
	"strings"
)

// serveQuery serves one query-protocol request: the parameters come from
// the URL's query string and, for a form POST, the body (SigV4 covers
// both: the query string in the canonical request, the body in its hash).
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	c := &queryCodec{requestID: s.ids.appendNext(make([]byte, 0, 36))}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		c.writeError(w, newError(kindMethodNotAllowed, "Only GET and POST are supported."))
		return
	}
	bufp := s.getBuf()
	defer s.putBuf(bufp)
	body, apiErr := readBody(w, r, (*bufp)[:0])
	if apiErr != nil {
		c.writeError(w, apiErr)
		return
	}
	if s.keys != nil {
		if apiErr := s.verifySignature(r, body); apiErr != nil {
			c.writeError(w, apiErr)
			return
		}
	}
	var formBody string
	if r.Method == http.MethodPost && strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Type"))), formContentType) {
		formBody = string(body) // a copy: the values outlive the pooled buffer
	}
	*bufp = body[:0]
	f, apiErr := parseForm(r.URL.RawQuery, formBody)
	if apiErr != nil {
		c.writeError(w, apiErr)
		return
	}
	action, ok := f.get("Action")
	if !ok {
		c.writeError(w, newError(kindMissingAction, "The request must contain the parameter Action."))
		return
	}
	h := handlers[action]
	if h == nil {
		c.writeError(w, newError(kindInvalidAction, "The action %s is not valid for this endpoint.", truncate(action, 64)))
		return
	}
	f.action, f.pathQueue = action, queueFromPath(r.URL.Path)
	outp := s.getBuf()
	defer s.putBuf(outp)
	out, apiErr := h(s, s.withRequestTrace(r.Context(), r), c, action, request{form: &f}, (*outp)[:0])
	if apiErr != nil {
		s.logFailure(r.Context(), action, apiErr)
		c.writeError(w, apiErr)
		return
	}
	*outp = out[:0]
	s.writeAnswer(w, c, out)
}

// queueFromPath returns the path of a request sent to a queue URL
// (/ACCOUNT/QUEUE), which the query protocol accepts instead of a QueueUrl
// parameter, or "".
func queueFromPath(path string) string {
	account, name, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || account == "" || name == "" || strings.Contains(name, "/") {
		return ""
	}
	return path
}
