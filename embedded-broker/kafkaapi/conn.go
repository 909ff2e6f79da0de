package kafkaapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection: a reader goroutine decodes requests and
// handles them in order (cheap parts inline: decoding, validation, offset
// assignment), queueing a reply per request on a bounded channel; a writer
// goroutine waits for each reply in order (durability, long polls) and
// writes it. Kafka answers a connection's requests in order; this keeps the
// order while letting produce requests pipeline their fsyncs.
type conn struct {
	s      *Server
	nc     net.Conn
	tcp    *net.TCPConn // nil under TLS: no sendfile
	logger *slog.Logger
	cancel context.CancelFunc

	replies chan reply

	// Reader-goroutine state.
	role     Role   // "" until authenticated when the server has users
	sasl     string // mechanism chosen by SaslHandshake
	saslRaw  bool   // after SaslHandshake v0: bare SASL tokens until authenticated
	scram    *scramServer
	clientID string
	frameBuf []byte // reused for Produce frames (read)

	closeOnce sync.Once
}

// reply is the answer to one request, written by the writer goroutine.
type reply interface {
	// wait blocks until the answer is ready, or ctx ends, and appends it to
	// out. A nil out with a nil error writes nothing (produce with acks=0).
	wait(ctx context.Context, out *output) error
}

// ready is a reply whose frame is already encoded.
type ready []byte

func (r ready) wait(_ context.Context, out *output) error {
	out.bytes(r)
	return nil
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, replies: make(chan reply, s.opts.MaxInFlight),
		logger: s.logger.With("remote", nc.RemoteAddr().String())}
	c.tcp, _ = nc.(*net.TCPConn)
	if len(s.opts.Credentials) == 0 {
		c.role = RoleAdmin
	}
	return c
}

func (c *conn) close() {
	c.closeOnce.Do(func() { _ = c.nc.Close() })
}

// serve runs the connection until the client leaves, a frame is malformed,
// or ctx ends.
func (c *conn) serve(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.write(ctx); err != nil && ctx.Err() == nil {
			c.logger.Debug("kafka connection write ended", "err", err)
		}
		c.cancel()
		c.close()
	})
	err := c.read(ctx)
	close(c.replies)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
		c.logger.Warn("closing kafka connection", "client_id", c.clientID, "err", err)
		c.cancel()
		c.close()
	}
	wg.Wait()
	c.close()
	c.s.groups.connClosed(c)
}

func (c *conn) read(ctx context.Context) error {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 0 || int(size) > c.s.opts.MaxRequestBytes {
			return fmt.Errorf("%w: request of %d bytes (limit %d)", ErrMalformed, size, c.s.opts.MaxRequestBytes)
		}
		// A Produce frame is read into a buffer reused from one request to
		// the next: its records are copied into the log by the submit in
		// handle, and nothing keeps the decoded request after it (a
		// produceReply holds only the header). Any other request may keep
		// slices of its frame (group metadata, assignments, SASL tokens),
		// so it gets a frame of its own.
		frame := c.frame(int(size))
		if _, err := io.ReadFull(br, frame); err != nil {
			return err
		}
		if c.saslRaw || len(frame) < 2 || int16(binary.BigEndian.Uint16(frame)) != kmsg.Produce.Int16() {
			frame = bytes.Clone(frame)
		}
		if c.saslRaw {
			r, err := c.rawSASL(frame)
			if err != nil {
				return err
			}
			select {
			case c.replies <- r:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		req, err := parseRequest(frame)
		if err != nil {
			return err
		}
		if req.clientID != "" {
			c.clientID = req.clientID
		}
		if c.logger.Enabled(ctx, slog.LevelDebug) {
			c.logger.Debug("kafka request", "api", kmsg.NameForKey(req.key), "version", req.version, "correlation", req.correlation)
		}
		r, err := c.handle(ctx, req)
		if err != nil {
			return err
		}
		if r == nil {
			continue
		}
		select {
		case c.replies <- r:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// maxKeptFrame bounds the produce frame buffer a connection keeps between
// requests; a larger request's buffer is dropped after it.
const maxKeptFrame = 8 << 20

// frame returns c's reusable frame buffer resized to size bytes (reader
// goroutine only).
func (c *conn) frame(size int) []byte {
	if cap(c.frameBuf) < size {
		buf := make([]byte, size)
		if size <= maxKeptFrame {
			c.frameBuf = buf
		}
		return buf
	}
	return c.frameBuf[:size]
}

// write answers replies in order; consecutive replies that are already
// ready share one write.
func (c *conn) write(ctx context.Context) error {
	out := &output{c: c}
	for {
		var r reply
		var ok bool
		select {
		case r, ok = <-c.replies:
		default:
			if err := out.flush(); err != nil {
				return err
			}
			r, ok = <-c.replies
		}
		if !ok {
			return out.flush()
		}
		if _, isReady := r.(ready); !isReady {
			if err := out.flush(); err != nil {
				return err
			}
		}
		if err := r.wait(ctx, out); err != nil {
			return err
		}
		if err := out.err; err != nil {
			return err
		}
		if len(out.buf) >= 64<<10 {
			if err := out.flush(); err != nil {
				return err
			}
		}
	}
}

// output collects what the writer sends: buffered bytes, and batch ranges
// that go out by sendfile on plain TCP (flushing the bytes before them) or
// through the buffer under TLS.
type output struct {
	c   *conn
	buf []byte
	err error
}

func (o *output) bytes(b []byte) { o.buf = append(o.buf, b...) }

// batches writes a range of segment bytes and releases it.
func (o *output) batches(r *commitlog.BatchRange) {
	defer r.Release()
	if o.err != nil || r.Len() == 0 {
		return
	}
	if f, pos, ok := r.File(); ok && o.c.tcp != nil {
		if o.err = o.flush(); o.err != nil {
			return
		}
		o.err = sendFile(o.c.tcp, f, pos, r.Len())
		o.c.s.sentFile.Add(r.Len())
		return
	}
	o.c.s.sentBuffered.Add(r.Len())
	start := len(o.buf)
	o.buf = append(o.buf, make([]byte, r.Len())...)
	if _, err := r.ReadAt(o.buf[start:], 0); err != nil && !errors.Is(err, io.EOF) {
		o.err = fmt.Errorf("kafkaapi: read batches: %w", err)
	}
}

func (o *output) flush() error {
	if o.err != nil || len(o.buf) == 0 {
		return o.err
	}
	_, o.err = o.c.nc.Write(o.buf)
	if cap(o.buf) > 4<<20 {
		o.buf = nil
	} else {
		o.buf = o.buf[:0]
	}
	return o.err
}

// respond encodes resp, versioned like the request, as a ready reply.
func respond(req request, resp kmsg.Response) reply {
	resp.SetVersion(req.version)
	return ready(appendResponse(nil, req.correlation, resp))
}

func (c *conn) remoteHost() string {
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		return c.nc.RemoteAddr().String()
	}
	return host
}
