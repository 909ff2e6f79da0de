package leanhttp

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// response is the http.ResponseWriter of a connection, reused for every
// request. It buffers the whole answer; writeAnswer sends it with a
// Content-Length.
type response struct {
	c           *conn
	hdr         http.Header
	status      int
	wroteHeader bool
	body        []byte
}

func (w *response) reset() {
	clear(w.hdr)
	w.status, w.wroteHeader = 0, false
	if cap(w.body) > maxPooledBytes {
		w.body = nil
	}
	w.body = w.body[:0]
}

func (w *response) Header() http.Header { return w.hdr }

// WriteHeader records the status. Informational codes (1xx) are not
// supported and ignored; a second call is ignored, as net/http does.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader || code < 200 || code > 999 {
		return
	}
	w.wroteHeader, w.status = true, code
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// WriteString spares io.WriteString a conversion.
func (w *response) WriteString(s string) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.body = append(w.body, s...)
	return len(s), nil
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// skipHeader lists the fields the server writes itself.
func skipHeader(k string) bool {
	switch k {
	case "Content-Length", "Connection", "Transfer-Encoding", "Keep-Alive", "Trailer":
		return true
	}
	return false
}

// writeAnswer writes the answer of the current request: head and body in
// one write (writev for a large body).
func (c *conn) writeAnswer(closing bool) error {
	w := &c.w
	if !w.wroteHeader {
		w.status = http.StatusOK
	}
	out := c.out[:0]
	if c.h.minor == 0 {
		out = append(out, "HTTP/1.0 "...)
	} else {
		out = append(out, "HTTP/1.1 "...)
	}
	out = strconv.AppendInt(out, int64(w.status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(w.status)...)
	out = append(out, "\r\n"...)
	now := time.Now()
	hasDate := false
	for k, vs := range w.hdr {
		if skipHeader(k) || !isToken(k) {
			continue
		}
		if k == "Date" {
			hasDate = true
		}
		for _, v := range vs {
			out = append(out, k...)
			out = append(out, ": "...)
			out = appendValue(out, v)
			out = append(out, "\r\n"...)
		}
	}
	if !hasDate {
		out = append(out, "Date: "...)
		out = append(out, c.s.date.get(now)...)
		out = append(out, "\r\n"...)
	}
	if bodyAllowed(w.status) {
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(len(w.body)), 10)
		out = append(out, "\r\n"...)
	}
	switch {
	case closing:
		out = append(out, "Connection: close\r\n"...)
	case c.h.minor == 0:
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	out = append(out, "\r\n"...)
	body := w.body
	if c.h.method == http.MethodHead {
		body = nil
	}
	if c.s.WriteTimeout > 0 {
		_ = c.nc.SetWriteDeadline(now.Add(c.s.WriteTimeout))
	}
	var err error
	if len(body) <= writeInline {
		out = append(out, body...)
		_, err = c.nc.Write(out)
	} else {
		bufs := net.Buffers{out, body}
		_, err = bufs.WriteTo(c.nc)
	}
	if cap(out) > maxPooledBytes {
		out = nil
	}
	c.out = out[:0]
	return err
}

// appendValue appends a header value with line breaks turned into spaces,
// as net/http does: a handler must not be able to inject header lines.
func appendValue(out []byte, v string) []byte {
	if !strings.ContainsAny(v, "\r\n") {
		return append(out, v...)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		out = append(out, c)
	}
	return out
}
