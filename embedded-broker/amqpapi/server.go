package amqpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// Role is what a connection may do, as the HTTP API's auth.tokens roles.
type Role string

// The roles.
const (
	RoleAdmin    Role = "admin"    // everything
	RoleProducer Role = "producer" // publish, plus passive and equivalent declarations
	RoleConsumer Role = "consumer" // consume, get, ack, plus passive and equivalent declarations
)

func (r Role) canConfigure() bool { return r == RoleAdmin }
func (r Role) canPublish() bool   { return r == RoleAdmin || r == RoleProducer }
func (r Role) canConsume() bool   { return r == RoleAdmin || r == RoleConsumer }

// ConfigExchange is an exchange of the config file, shared with the
// engine: bindings added over AMQP are seen by the engine's routing too.
type ConfigExchange struct {
	Exchange *exchange.Exchange
	// UnroutableQueue receives messages no binding matches (the config's
	// unroutable: dead_letter); "" drops them (and mandatory publishes
	// are returned).
	UnroutableQueue string
}

// Options configures a Server.
type Options struct {
	Queues *queue.Manager // required
	// Dir holds the runtime topology (exchanges, bindings and queue flags
	// declared over AMQP); required.
	Dir string
	// Exchanges and ConfigQueues are the config file's: they cannot be
	// deleted over AMQP.
	Exchanges    []ConfigExchange
	ConfigQueues []string
	// Tokens maps the HTTP API's auth.tokens to roles. Empty: every login
	// is accepted as admin. Otherwise PLAIN's password must be a token;
	// the user name is free (it names the connection in logs).
	Tokens map[string]Role
	Logger *slog.Logger
	// FrameMax, ChannelMax and Heartbeat are proposed in connection.tune
	// (defaults 131072, 2047, 60s); the client may lower them.
	FrameMax   uint32
	ChannelMax uint16
	Heartbeat  time.Duration
	// MaxPendingPublishBytes bounds the bytes of publishes a connection
	// has sent but the server has not yet stored; past it the server stops
	// reading the socket and sends connection.blocked until half of it
	// drained (default 64 MiB).
	MaxPendingPublishBytes int64
	// HandshakeTimeout bounds the time from accept to connection.open
	// (default 10s).
	HandshakeTimeout time.Duration
}

const (
	defaultFrameMax     = 131072
	defaultChannelMax   = 2047
	defaultHeartbeat    = 60 * time.Second
	defaultPendingBytes = 64 << 20
	defaultHandshake    = 10 * time.Second
	// maxBodySize is the largest message body accepted: the queue's
	// maximum message size.
	maxBodySize = queue.MaxMaxMessageSize
)

// Server is the AMQP 0-9-1 listener of the embedded broker. New checks
// the options; Load restores the runtime topology (call it before the
// engine starts routing, so that bindings declared over AMQP are in
// place); Run accepts connections until its context ends.
type Server struct {
	opts Options
	log  *slog.Logger
	topo *topology

	mu      sync.Mutex
	loaded  bool
	closed  bool
	conns   map[*conn]struct{}
	nextID  uint64
	stopped chan struct{} // closed by Close
}

// New checks opts and returns a Server. It does no I/O and starts nothing.
func New(opts Options) (*Server, error) {
	if opts.Queues == nil {
		return nil, errors.New("amqpapi: Options.Queues is required")
	}
	if opts.Dir == "" {
		return nil, errors.New("amqpapi: Options.Dir is required")
	}
	for token, role := range opts.Tokens {
		if role != RoleAdmin && role != RoleProducer && role != RoleConsumer {
			return nil, fmt.Errorf("amqpapi: token %q…: unknown role %q", token[:min(len(token), 4)], role)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FrameMax == 0 {
		opts.FrameMax = defaultFrameMax
	}
	if opts.FrameMax < 4096 {
		return nil, fmt.Errorf("amqpapi: FrameMax %d below the protocol's minimum 4096", opts.FrameMax)
	}
	if opts.ChannelMax == 0 {
		opts.ChannelMax = defaultChannelMax
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = defaultHeartbeat
	}
	if opts.MaxPendingPublishBytes == 0 {
		opts.MaxPendingPublishBytes = defaultPendingBytes
	}
	if opts.HandshakeTimeout == 0 {
		opts.HandshakeTimeout = defaultHandshake
	}
	topo, err := newTopology(opts.Queues, opts.Dir, opts.Exchanges, opts.ConfigQueues, opts.Logger)
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, log: opts.Logger, topo: topo, conns: map[*conn]struct{}{}, stopped: make(chan struct{})}, nil
}

// Load restores the runtime topology from Dir: transient and exclusive
// queues of an earlier run are deleted, durable exchanges and bindings
// come back. It is idempotent.
func (s *Server) Load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return nil
	}
	if err := s.topo.load(); err != nil {
		return err
	}
	s.loaded = true
	return nil
}

// Run accepts connections on ln until ctx ends or Close is called, then
// closes every connection (connection.close 320, unacknowledged messages
// requeued) and returns once all of them are gone. It closes ln.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	if err := s.Load(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-s.stopped:
		}
		_ = ln.Close()
	})
	var err error
	for {
		nc, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !s.isClosed() {
				var ne net.Error
				if errors.As(aerr, &ne) && ne.Timeout() {
					continue
				}
				err = fmt.Errorf("amqp accept: %w", aerr)
			}
			break
		}
		c := s.newConn(nc)
		if c == nil {
			_ = nc.Close()
			continue
		}
		wg.Go(func() {
			defer s.forget(c)
			c.serve(ctx)
		})
	}
	cancel()
	wg.Wait()
	return err
}

func (s *Server) newConn(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.nextID++
	c := newConn(s, nc, s.nextID)
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops Run: no new connections, and every open one is closed with
// connection.close 320 (CONNECTION_FORCED). Run returns once they are
// gone. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.stopped)
	}
	return nil
}

func (s *Server) queues() *queue.Manager { return s.opts.Queues }

// AddConfig makes the exchanges and queues a config reload added visible
// to AMQP clients, as if they had been in Options.Exchanges and
// Options.ConfigQueues from the start. It is safe to call while serving.
func (s *Server) AddConfig(exchanges []ConfigExchange, queues []string) error {
	return s.topo.addConfig(exchanges, queues)
}
