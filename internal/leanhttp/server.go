// Package leanhttp is a small HTTP/1.1 server for one kind of traffic:
// many short request/answer exchanges on keep-alive connections, each
// answered whole (the SQS API). It serves an http.Handler, so the handler
// code is the same as under net/http, but it spends less per request:
//
//   - one goroutine per connection and none per request: the handler runs
//     on the connection's goroutine (net/http starts a background read per
//     request to notice a client that goes away; here the request's context
//     starts that read only when a handler waits on ctx.Done(), as a long
//     poll does, and only while no further request is buffered);
//   - one read system call per request when the request arrives in one
//     segment, and one write per answer (head and body together; writev for
//     large bodies): answers are buffered whole, with a Content-Length;
//   - the request, its URL, header maps and buffers are reused per
//     connection: a handler must not keep the *http.Request, its Header or
//     the ResponseWriter after ServeHTTP returns (net/http's rule too).
//
// What it speaks: HTTP/1.1 and 1.0, keep-alive, pipelining (requests are
// answered in order), Content-Length and chunked request bodies, "Expect:
// 100-continue", limits on the head and body size, read/idle/write
// timeouts, graceful shutdown, TLS. What it does not: HTTP/2, upgrades,
// streaming answers (Flush), Hijack, response trailers, content sniffing (a
// handler sets Content-Type). Standard library only.
package leanhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves an http.Handler over HTTP/1.x. Set its fields before
// Serve; they must not change afterwards.
type Server struct {
	Handler http.Handler
	// MaxHeaderBytes bounds a request head (request line and header
	// fields); larger heads get 431. It is also the connection's read
	// buffer size. Default 16 KiB, minimum 4 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body: a larger Content-Length gets 413
	// before the handler runs, and a chunked body's Read fails past it with
	// ErrBodyTooLarge. 0: no bound.
	MaxBodyBytes int64
	// ReadHeaderTimeout bounds reading a request head once its first byte
	// arrived; ReadTimeout bounds reading head and body. IdleTimeout bounds
	// the wait for the next request on a kept-alive connection (default:
	// ReadTimeout, else no bound). WriteTimeout bounds writing an answer.
	// Zero means no bound.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout, WriteTimeout time.Duration
	// TLSConfig, when set, makes Serve speak TLS on its listener.
	TLSConfig *tls.Config
	// Logger receives panics of the handler and accept errors. Default:
	// discarded.
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	wg        sync.WaitGroup // connection goroutines
	date      dateCache
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

const (
	defaultMaxHeaderBytes = 16 << 10
	minBufferBytes        = 4 << 10
)

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close; then it returns ErrServerClosed. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	if s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"http/1.1"}
		}
		ln = tls.NewListener(ln, cfg)
	}
	return s.serve(ln)
}

func (s *Server) serve(ln net.Listener) error {
	if !s.track(ln) {
		_ = ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("http accept failed; retrying", "error", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(nc)
		if !s.addConn(c) {
			_ = nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// ServeTLS is Serve with TLS from a certificate and key file.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	var cfg *tls.Config
	if s.TLSConfig != nil {
		cfg = s.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg.Certificates = append(cfg.Certificates, cert)
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	return s.serve(tls.NewListener(ln, cfg))
}

// Shutdown stops accepting, closes idle connections and waits for the
// active ones to finish their request (each closes after its answer). If
// ctx ends first, it closes the rest and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for {
		if s.closeIdle() {
			s.wg.Wait()
			return nil
		}
		select {
		case <-ctx.Done():
			_ = s.Close()
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// Close closes the listeners and every connection at once, cancelling the
// contexts of the requests in flight, and waits for the connection
// goroutines.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.cancel(context.Canceled)
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	_ = ln.Close()
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		_ = ln.Close()
	}
}

func (s *Server) addConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// closeIdle closes the connections waiting for a request and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			_ = c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) maxHeaderBytes() int {
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = defaultMaxHeaderBytes
	}
	return max(n, minBufferBytes)
}

// dateCache formats the Date header once per second.
type dateCache struct {
	v atomic.Pointer[dateValue]
}

type dateValue struct {
	sec int64
	s   []byte
}

func (d *dateCache) get(now time.Time) []byte {
	sec := now.Unix()
	if v := d.v.Load(); v != nil && v.sec == sec {
		return v.s
	}
	v := &dateValue{sec: sec, s: now.UTC().AppendFormat(nil, http.TimeFormat)}
	d.v.Store(v)
	return v.s
}
