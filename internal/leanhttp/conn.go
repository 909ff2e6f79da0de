package leanhttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var errTooManyFiles = syscall.EMFILE

// Connection states, for Shutdown: only an idle connection (waiting for
// the first byte of a request) is closed under a client's feet.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

// maxDrain is how much of a body the handler left unread the server reads
// and drops to keep the connection; past it, it closes the connection.
const maxDrain = 256 << 10

// maxPooledBytes bounds the answer buffers a connection keeps between
// requests: an idle connection must not pin a large answer's memory.
const maxPooledBytes = 64 << 10

// writeInline is the body size up to which an answer is copied behind its
// head for a single write; larger bodies go out with writev.
const writeInline = 16 << 10

var aLongTimeAgo = time.Unix(1, 0)

var chunkedEncoding = []string{"chunked"}

// conn is one client connection. Everything here belongs to the
// connection's goroutine, but for the fields under mu (the disconnect
// watcher's), state and the cancellation of ctx.
type conn struct {
	s          *Server
	nc         net.Conn
	cr         connReader
	br         *bufio.Reader
	remoteAddr string
	tlsState   *tls.ConnectionState
	state      atomic.Int32

	// done is closed, and err set, when the client is gone or the server
	// closes: the context of every request on this connection.
	done    chan struct{}
	err     atomic.Pointer[error]
	ctx     connContext
	reqTmpl *http.Request // carries ctx; copied into req per request

	req  http.Request
	url  url.URL
	hdr  http.Header
	vals []string
	h    head
	body body
	w    response
	out  []byte

	reqStart                     time.Time
	expectContinue, continueSent bool

	mu        sync.Mutex
	watchable bool // the handler runs and nothing past its body is buffered
	watching  bool
	watchDone chan struct{}
	broken    bool // the watcher saw the client go away
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, remoteAddr: nc.RemoteAddr().String(), done: make(chan struct{}),
		hdr: make(http.Header, 16)}
	c.cr.c = c
	c.ctx.c = c
	c.br = bufio.NewReaderSize(&c.cr, s.maxHeaderBytes())
	c.reqTmpl = (&http.Request{}).WithContext(&c.ctx)
	c.w = response{c: c, hdr: make(http.Header, 8)}
	return c
}

// connReader reads from the connection, first handing back the byte the
// disconnect watcher may have read.
type connReader struct {
	c       *conn
	pending bool
	b       [1]byte
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.pending && len(p) > 0 {
		p[0] = r.b[0]
		r.pending = false
		return 1, nil
	}
	return r.c.nc.Read(p)
}

// connContext is the context of the requests of one connection. Its Done
// starts the disconnect watcher: a handler that never waits on it costs no
// goroutine and no read.
type connContext struct{ c *conn }

func (x *connContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (x *connContext) Value(any) any               { return nil }

func (x *connContext) Done() <-chan struct{} {
	x.c.watch()
	return x.c.done
}

func (x *connContext) Err() error {
	if p := x.c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *conn) cancel(err error) {
	if c.err.CompareAndSwap(nil, &err) {
		close(c.done)
	}
}

// watch starts a read on the connection that notices the client going
// away while a handler waits, as net/http's background read does; unwatch
// stops it. A byte it reads (a pipelined request) is kept for the next
// request.
func (c *conn) watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watchable || c.watching {
		return
	}
	c.watching = true
	c.watchDone = make(chan struct{})
	_ = c.nc.SetReadDeadline(time.Time{})
	go func() {
		defer close(c.watchDone)
		n, err := c.nc.Read(c.cr.b[:])
		if n == 1 {
			c.cr.pending = true
			return
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			c.mu.Lock()
			c.broken = true
			c.mu.Unlock()
			c.cancel(context.Canceled)
		}
	}()
}

func (c *conn) unwatch() (broken bool) {
	c.mu.Lock()
	watching := c.watching
	c.watchable, c.watching = false, false
	c.mu.Unlock()
	if watching {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		<-c.watchDone
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

func (c *conn) close() {
	c.state.Store(stateClosed)
	c.cancel(context.Canceled)
	_ = c.nc.Close()
	c.s.removeConn(c)
}

func (c *conn) serve() {
	defer c.close()
	if tc, ok := c.nc.(*tls.Conn); ok {
		if d := c.handshakeTimeout(); d > 0 {
			_ = tc.SetDeadline(time.Now().Add(d))
		}
		if err := tc.Handshake(); err != nil {
			return
		}
		_ = tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	for {
		if !c.serveOne() {
			return
		}
		if !c.state.CompareAndSwap(stateActive, stateIdle) {
			return
		}
	}
}

func (c *conn) handshakeTimeout() time.Duration {
	d := c.s.ReadHeaderTimeout
	if d <= 0 || c.s.ReadTimeout > 0 && c.s.ReadTimeout < d {
		d = c.s.ReadTimeout
	}
	return d
}

// serveOne reads one request, runs the handler and writes the answer. It
// reports whether the connection stays open.
func (c *conn) serveOne() bool {
	s := c.s
	hlen, err := c.readHead()
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			c.writeStatusError(se)
		}
		return false
	}
	raw, _ := c.br.Peek(hlen)
	clear(c.hdr)
	c.vals, err = parseHead(raw, &c.h, c.hdr, c.vals[:0])
	_, _ = c.br.Discard(hlen)
	if err == nil && s.MaxBodyBytes > 0 && c.h.contentLength > s.MaxBodyBytes {
		err = &statusError{code: http.StatusRequestEntityTooLarge, msg: "request body too large"}
	}
	if err == nil {
		err = c.setRequest()
	}
	if err != nil {
		var se *statusError
		if !errors.As(err, &se) {
			se = badRequest(err.Error())
		}
		c.writeStatusError(se)
		return false
	}
	h := &c.h
	if !h.chunked && h.contentLength > 0 && int64(c.br.Buffered()) < h.contentLength {
		// The body is still on its way: give it the request's read time.
		_ = c.nc.SetReadDeadline(c.readDeadline())
	}

	c.mu.Lock()
	c.watchable = !h.chunked && int64(c.br.Buffered()) == max(h.contentLength, 0)
	c.mu.Unlock()
	c.w.reset()
	panicked := c.callHandler()
	broken := c.unwatch()
	if panicked || broken {
		return false
	}

	closing := h.connClose || h.minor == 0 && !h.keepAlive || s.closing.Load()
	if !c.body.done {
		switch {
		case c.body.err != nil, c.expectContinue && !c.continueSent:
			closing = true // the client may never send the body it announced
		default:
			if _, err := io.CopyN(io.Discard, &c.body, maxDrain); err != io.EOF && !(err == nil && c.body.done) {
				closing = true
			}
		}
	}
	if err := c.writeAnswer(closing); err != nil {
		return false
	}
	return !closing
}

// readHead waits for a request and returns the length of its head, which
// is then at the start of the buffered reader.
func (c *conn) readHead() (int, error) {
	s := c.s
	if c.br.Buffered() == 0 {
		idle := s.IdleTimeout
		if idle <= 0 {
			idle = s.ReadTimeout
		}
		if idle > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(idle))
		} else {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		if _, err := c.br.Peek(1); err != nil {
			return 0, err
		}
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return 0, net.ErrClosed
	}
	start := time.Now()
	deadlineSet := false
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if n := headEnd(buf); n >= 0 {
			c.reqStart = start
			return n, nil
		}
		if len(buf) >= c.br.Size() {
			return 0, &statusError{code: http.StatusRequestHeaderFieldsTooLarge, msg: "request header too large"}
		}
		if !deadlineSet {
			deadlineSet = true
			d := s.ReadHeaderTimeout
			if d <= 0 || s.ReadTimeout > 0 && s.ReadTimeout < d {
				d = s.ReadTimeout
			}
			if d > 0 {
				_ = c.nc.SetReadDeadline(start.Add(d))
			}
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 && !errors.Is(err, io.EOF) && !isTimeout(err) {
				return 0, err
			}
			if len(buf) > 0 && isTimeout(err) {
				return 0, &statusError{code: http.StatusRequestTimeout, msg: "request head timed out"}
			}
			return 0, err
		}
	}
}

// readDeadline is when reading the current request must end.
func (c *conn) readDeadline() time.Time {
	if c.s.ReadTimeout > 0 {
		return c.reqStart.Add(c.s.ReadTimeout)
	}
	return time.Time{}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// setRequest fills c.req from the parsed head.
func (c *conn) setRequest() error {
	h := &c.h
	c.req = *c.reqTmpl // the template carries the context
	r := &c.req
	r.Method = h.method
	r.RequestURI = h.target
	r.Proto = "HTTP/1.1"
	r.ProtoMajor, r.ProtoMinor = 1, h.minor
	if h.minor == 0 {
		r.Proto = "HTTP/1.0"
	}
	if err := c.setURL(h.target); err != nil {
		return err
	}
	r.Header = c.hdr
	r.Host = h.host
	if r.URL.Host != "" {
		r.Host = r.URL.Host
	}
	switch {
	case h.chunked:
		r.ContentLength = -1
		r.TransferEncoding = chunkedEncoding
	case h.contentLength > 0:
		r.ContentLength = h.contentLength
	default:
		r.ContentLength = 0
	}
	r.Close = h.connClose || h.minor == 0 && !h.keepAlive
	r.RemoteAddr = c.remoteAddr
	r.TLS = c.tlsState
	c.body.reset(c, h, c.s.MaxBodyBytes)
	r.Body = &c.body
	c.expectContinue = h.expectContinue && h.minor == 1 && !c.body.done
	c.continueSent = false
	return nil
}

// setURL parses the request target: the origin form ("/path?query")
// without escapes reuses the connection's URL, anything else goes through
// url.ParseRequestURI.
func (c *conn) setURL(target string) error {
	if target[0] == '/' && strings.IndexByte(target, '%') < 0 && strings.IndexByte(target, '#') < 0 {
		path, query, _ := strings.Cut(target, "?")
		c.url = url.URL{Path: path, RawQuery: query}
		c.req.URL = &c.url
		return nil
	}
	if target == "*" {
		c.url = url.URL{Path: "*"}
		c.req.URL = &c.url
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return badRequest("malformed request target")
	}
	c.req.URL = u
	return nil
}

// sendContinue answers "Expect: 100-continue" when the handler first reads
// the body.
func (c *conn) sendContinue() error {
	if !c.expectContinue || c.continueSent {
		return nil
	}
	c.continueSent = true
	if c.s.WriteTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.WriteTimeout))
	}
	_, err := io.WriteString(c.nc, "HTTP/1.1 100 Continue\r\n\r\n")
	return err
}

func (c *conn) callHandler() (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			if v != http.ErrAbortHandler {
				c.s.logger().Error("http handler panicked", "remote", c.remoteAddr, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}
	}()
	c.s.Handler.ServeHTTP(&c.w, &c.req)
	return false
}

// writeStatusError answers a request the server refused itself, and the
// connection closes after it.
func (c *conn) writeStatusError(se *statusError) {
	text := http.StatusText(se.code)
	msg := fmt.Sprintf("%d %s: %s", se.code, text, se.msg)
	out := fmt.Appendf(c.out[:0], "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		se.code, text, len(msg), msg)
	if c.s.WriteTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.WriteTimeout))
	}
	_, _ = c.nc.Write(out)
}
