// Package sse writes Server-Sent Events (the WHATWG EventSource format) and
// fans one stream of messages out to many subscribers.
//
// A Hub numbers its messages (the SSE id) and keeps the last few, so a
// client that reconnects with Last-Event-ID receives what it missed while
// those are still kept, and never a message twice. Publish never blocks on a
// slow client: a subscriber whose buffer is full skips to the newest message
// of each event name (the console publishes whole states, so the newest one
// is all a late client needs), and Serve tells it so with a comment.
//
// Guarantees: ids are strictly increasing per Hub; a frame's data survives
// any bytes, CR and LF included (lines are split the way EventSource joins
// them). Not guaranteed: delivery of every message to a slow client.
package sse

import (
	"bytes"
	"net/http"
	"strconv"
	"time"
)

// AppendFrame appends one SSE frame to dst: an id line (when id is not
// empty), an event line (when event is not empty), the data split into
// data lines at CR, LF and CRLF as EventSource splits them, and the blank
// line that ends the frame. id and event must not contain CR or LF.
func AppendFrame(dst []byte, id, event string, data []byte) []byte {
	if id != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, id...)
		dst = append(dst, '\n')
	}
	if event != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, event...)
		dst = append(dst, '\n')
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			dst = append(dst, '\n')
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

// AppendComment appends a comment frame (": text"), which EventSource
// ignores; proxies see traffic, so idle streams stay open.
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ": "...)
	dst = append(dst, text...)
	return append(dst, '\n', '\n')
}

// Writer writes frames to one HTTP response and flushes each.
type Writer struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
}

// Start sets the event-stream headers, writes the reconnect delay the
// client should use and flushes, so the client sees the stream open.
func Start(w http.ResponseWriter, retry time.Duration) (*Writer, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sw := &Writer{w: w, rc: http.NewResponseController(w)}
	sw.buf = append(sw.buf[:0], "retry: "...)
	sw.buf = strconv.AppendInt(sw.buf, retry.Milliseconds(), 10)
	sw.buf = append(sw.buf, '\n', '\n')
	return sw, sw.flush()
}

// Send writes one message.
func (s *Writer) Send(id, event string, data []byte) error {
	s.buf = AppendFrame(s.buf[:0], id, event, data)
	return s.flush()
}

// Comment writes a comment (a keepalive).
func (s *Writer) Comment(text string) error {
	s.buf = AppendComment(s.buf[:0], text)
	return s.flush()
}

// Raw writes an encoded frame.
func (s *Writer) Raw(frame []byte) error {
	if _, err := s.w.Write(frame); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *Writer) flush() error {
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	return s.rc.Flush()
}

// LastEventID returns the id a reconnecting EventSource sends (the
// Last-Event-ID header) or, for a first connection that wants to resume,
// the lastEventId query parameter.
func LastEventID(r *http.Request) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	return r.URL.Query().Get("lastEventId")
}
