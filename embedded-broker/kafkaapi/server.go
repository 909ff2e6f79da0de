package kafkaapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
)

// Role is what an authenticated client may do; the names are the HTTP
// API's roles.
type Role string

// The roles.
const (
	RoleAdmin    Role = "admin"    // everything
	RoleProducer Role = "producer" // produce (and metadata, api versions)
	RoleConsumer Role = "consumer" // fetch, list offsets, consumer groups
)

// Credential is one SASL identity: PLAIN compares the password; SCRAM
// derives its keys from it. Several credentials may share a username (bridge
// uses the role as the username and each API token of that role as a
// password); any of their passwords is accepted for it.
type Credential struct {
	Username, Password string
	Role               Role
}

// Options configure a Server. Zero fields take the defaults noted.
type Options struct {
	// Log is the embedded backbone served. Required.
	Log *commitlog.Log
	// AdvertisedAddr is the host:port given to clients in Metadata and
	// FindCoordinator; empty = the listener's address.
	AdvertisedAddr string
	// TLS, when set, makes the listener speak TLS.
	TLS *tls.Config
	// Credentials, when non-empty, require SASL before any request but
	// ApiVersions and the SASL ones.
	Credentials []Credential
	// Mechanisms offered when Credentials are set; default PLAIN,
	// SCRAM-SHA-256 and SCRAM-SHA-512.
	Mechanisms []string
	// AutoCreateTopics creates a topic a client produces to or asks
	// Metadata for (when the request allows it), with DefaultPartitions.
	AutoCreateTopics  bool
	DefaultPartitions int // default 1
	// MaxRequestBytes bounds one request frame; default 100 MiB (Kafka's
	// socket.request.max.bytes). A larger frame closes the connection.
	MaxRequestBytes int
	// MaxInFlight bounds the requests of one connection decoded but not yet
	// answered; default 16.
	MaxInFlight int
	// MaxConnections bounds open client connections; one more is closed at
	// once (logged). Default 4096.
	MaxConnections int
	// MaxWait bounds a Fetch long poll, whatever the client asks; default 30s.
	MaxWait time.Duration
	// SessionTimeoutMax bounds a group member's session timeout; default 5m.
	SessionTimeoutMax time.Duration
	Logger            *slog.Logger // nil = discard
}

func (o *Options) ensureDefaults() {
	if o.DefaultPartitions == 0 {
		o.DefaultPartitions = 1
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 100 << 20
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 16
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 4096
	}
	if o.MaxWait == 0 {
		o.MaxWait = 30 * time.Second
	}
	if o.SessionTimeoutMax == 0 {
		o.SessionTimeoutMax = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(o.Mechanisms) == 0 {
		o.Mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Log == nil {
		errs = append(errs, errors.New("kafkaapi: Options.Log is required"))
	}
	if o.DefaultPartitions < 0 || o.MaxRequestBytes < 0 || o.MaxInFlight < 0 || o.MaxWait < 0 || o.MaxConnections < 0 {
		errs = append(errs, errors.New("kafkaapi: sizes and durations must not be negative"))
	}
	for _, c := range o.Credentials {
		switch c.Role {
		case RoleAdmin, RoleProducer, RoleConsumer:
		default:
			errs = append(errs, fmt.Errorf("kafkaapi: user %q: unknown role %q", c.Username, c.Role))
		}
	}
	for _, m := range o.Mechanisms {
		if !slices.Contains(mechanisms, m) {
			errs = append(errs, fmt.Errorf("kafkaapi: unknown SASL mechanism %q", m))
		}
	}
	return errors.Join(errs...)
}

// Server serves the Kafka protocol over a commitlog. New starts nothing;
// Serve runs it on a listener until its context ends; Close stops it.
type Server struct {
	opts   Options
	log    *commitlog.Log
	logger *slog.Logger
	groups *coordinator
	pids   *producerIDs

	// Record bytes served by Fetch, by path (Stats).
	sentFile, sentBuffered atomic.Int64

	mu      sync.Mutex // guards conns, closed, host, port
	conns   map[*conn]struct{}
	closed  bool
	host    string
	port    int32
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

// New validates opts and returns a Server; it starts no goroutine.
func New(opts Options) (*Server, error) {
	opts.ensureDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Log, logger: opts.Logger, conns: map[*conn]struct{}{}, stop: make(chan struct{})}
	s.groups = newCoordinator(s)
	s.pids = newProducerIDs()
	return s, nil
}

// Serve accepts connections on ln until ctx ends or Close is called, then
// closes ln and every connection and waits for their goroutines. It returns
// nil on such a stop, or the accept error that ended it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.setAddr(ln.Addr()); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-s.stop:
		}
		_ = ln.Close()
		s.closeConns()
	})
	s.wg.Go(func() { s.groups.run(ctx, s.stop) })
	var err error
	for {
		var nc net.Conn
		nc, err = ln.Accept()
		if err != nil {
			break
		}
		if s.opts.TLS != nil {
			nc = tls.Server(nc, s.opts.TLS)
		}
		c := newConn(s, nc)
		tracked, full := s.track(c)
		if full {
			s.logger.Warn("Kafka connection refused: too many connections", "remote", nc.RemoteAddr().String(), "max", s.opts.MaxConnections)
			_ = nc.Close()
			continue
		}
		if !tracked {
			_ = nc.Close()
			break
		}
		s.wg.Go(func() {
			c.serve(ctx)
			s.untrack(c)
		})
	}
	cancel()
	s.wg.Wait()
	select {
	case <-s.stop:
		return nil
	default:
	}
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("kafkaapi: accept: %w", err)
}

// Close stops Serve: the listener and every connection close. Idempotent.
// Serve's return is the point where every goroutine has ended.
func (s *Server) Close() error {
	s.stopped.Do(func() { close(s.stop) })
	return nil
}

func (s *Server) setAddr(addr net.Addr) error {
	adv := s.opts.AdvertisedAddr
	if adv == "" {
		adv = addr.String()
	}
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		return fmt.Errorf("kafkaapi: advertised address %q: %w", adv, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("kafkaapi: advertised port %q: %w", port, err)
	}
	if p == 0 {
		if tcp, ok := addr.(*net.TCPAddr); ok {
			p = uint64(tcp.Port)
		}
	}
	s.mu.Lock()
	s.host, s.port = host, int32(p)
	s.mu.Unlock()
	return nil
}

func (s *Server) advertised() (string, int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host, s.port
}

// track adds c to the open connections; full reports the limit reached.
func (s *Server) track(c *conn) (tracked, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, false
	}
	if len(s.conns) >= s.opts.MaxConnections {
		return false, true
	}
	s.conns[c] = struct{}{}
	return true, false
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *Server) closeConns() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// Stats are counters of a running server.
type Stats struct {
	// FetchBytesSendfile and FetchBytesBuffered are record bytes served by
	// Fetch straight from the segment files (sendfile, plain TCP) and
	// through user space (TLS, or a log not on the OS file system).
	FetchBytesSendfile, FetchBytesBuffered int64
}

// Stats returns the server's counters; safe for concurrent use.
func (s *Server) Stats() Stats {
	return Stats{FetchBytesSendfile: s.sentFile.Load(), FetchBytesBuffered: s.sentBuffered.Load()}
}
