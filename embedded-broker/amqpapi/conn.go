package amqpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
)

// closeTimeout bounds how long a closing connection waits for the
// client's connection.close-ok.
const closeTimeout = 5 * time.Second

// capabilities are what the client announced in client-properties.
type capabilities struct {
	consumerCancelNotify bool
	connectionBlocked    bool
	authFailureClose     bool
}

// conn is one client connection. Its goroutines: serve (the reader,
// which also runs the handshake and the teardown), the writer, one worker
// per open channel and one per consumer, all waited for by serve.
type conn struct {
	s   *Server
	nc  net.Conn
	id  uint64
	log *slog.Logger
	fr  *wire.FrameReader
	out *outbox

	// Set by the handshake before any worker starts; read-only after.
	frameMax   uint32
	channelMax uint16
	user       string
	role       Role
	caps       capabilities
	heartbeat  atomic.Int64 // nanoseconds; read by the writer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // channel workers and consumers

	channels map[uint16]*channel // the reader's alone

	closing   atomic.Bool // connection.close sent by the server
	closeOnce sync.Once

	exMu      sync.Mutex
	exclusive []string // exclusive queues declared by this connection

	// Publish back-pressure (see Options.MaxPendingPublishBytes).
	pendMu      sync.Mutex
	pendBytes   int64
	pendDrained chan struct{} // non-nil while the reader waits; closed at half
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	return &conn{s: s, nc: nc, id: id, channels: map[uint16]*channel{},
		log: s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		out: newOutbox(1 << 20)}
}

// serve runs the connection to its end.
func (c *conn) serve(ctx context.Context) {
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	writerDone := make(chan struct{})
	go func() { // the writer; serve waits for it below
		defer close(writerDone)
		c.out.runWriter(c.nc, func() time.Duration { return time.Duration(c.heartbeat.Load()) }, func(err error) {
			c.log.Debug("write failed", "err", err)
			_ = c.nc.Close() // unblocks the reader
		})
	}()
	stopWatch := context.AfterFunc(c.ctx, func() {
		c.fail(newError(wire.ConnectionForced, "broker forced connection closure with reason 'shutdown'"))
	})
	if err := c.handshake(); err != nil {
		c.log.Debug("handshake failed", "err", err)
	} else {
		c.log.Info("AMQP connection open", "user", c.user, "role", c.role)
		c.readLoop()
	}
	stopWatch()
	c.teardown()
	c.out.close()
	<-writerDone
	_ = c.nc.Close()
}

// teardown ends every channel (their workers requeue what was not
// acknowledged), waits for the workers and consumers, and deletes the
// connection's exclusive queues.
func (c *conn) teardown() {
	for id, ch := range c.channels {
		delete(c.channels, id)
		close(ch.inbox)
	}
	c.cancel()
	c.wg.Wait()
	c.exMu.Lock()
	names := c.exclusive
	c.exclusive = nil
	c.exMu.Unlock()
	if len(names) > 0 {
		c.s.topo.dropExclusive(c, names)
	}
	c.log.Debug("AMQP connection closed")
}

func (c *conn) addExclusive(name string) {
	c.exMu.Lock()
	c.exclusive = append(c.exclusive, name)
	c.exMu.Unlock()
}

// fail closes the connection with a hard error: connection.close goes
// out, and the reader drops everything but close-ok (or gives up after
// closeTimeout).
func (c *conn) fail(e *protoError) {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		if e.code != wire.ConnectionForced {
			c.log.Warn("closing AMQP connection", "code", e.code, "text", e.text)
		}
		c.out.write(func(b []byte) []byte {
			return wire.AppendMethodFrame(b, 0, &wire.ConnectionClose{ReplyCode: e.code, ReplyText: e.replyText(),
				ClassId: e.classID, MethodId: e.methodID})
		})
		_ = c.nc.SetReadDeadline(time.Now().Add(closeTimeout))
	})
}

// readLoop reads and dispatches frames until the connection ends.
func (c *conn) readLoop() {
	var deadlineSet time.Time
	_ = c.nc.SetReadDeadline(time.Time{})
	for {
		// The deadline is two heartbeats from the last frame. Moving it
		// costs a syscall-heavy timer update, so it moves at most every
		// quarter heartbeat (a frame-rate cost measured at 1-2% of CPU).
		if hb := time.Duration(c.heartbeat.Load()); hb > 0 && !c.closing.Load() {
			if now := time.Now(); now.Sub(deadlineSet) >= hb/4 {
				_ = c.nc.SetReadDeadline(now.Add(2 * hb))
				deadlineSet = now
			}
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, wire.ErrFrame) {
				c.fail(newError(wire.FrameError, "%v", err))
				return // the stream is unusable past a bad frame
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !c.closing.Load() {
				c.log.Warn("missed heartbeats from client; closing", "heartbeat", time.Duration(c.heartbeat.Load()))
			} else if !errors.Is(err, io.EOF) && !c.closing.Load() {
				c.log.Debug("read failed", "err", err)
			}
			return
		}
		if c.closing.Load() {
			if c.closedByPeer(f) {
				return
			}
			continue
		}
		if err := c.dispatch(f); err != nil {
			var pe *protoError
			if !errors.As(err, &pe) {
				pe = newError(wire.InternalError, "%v", err)
			}
			if !pe.hard() {
				pe = &protoError{code: wire.InternalError, text: pe.text}
			}
			c.fail(pe)
			continue
		}
		if c.out.isClosed() {
			return
		}
	}
}

// closedByPeer handles a frame while the server's connection.close is
// out: only close-ok (or a crossing close) ends the wait.
func (c *conn) closedByPeer(f wire.Frame) bool {
	if f.Type != wire.FrameMethod || f.Channel != 0 {
		return false
	}
	m, err := wire.DecodeMethod(f.Payload)
	if err != nil {
		return false
	}
	switch m.(type) {
	case *wire.ConnectionCloseOk:
		return true
	case *wire.ConnectionClose:
		c.out.write(func(b []byte) []byte { return wire.AppendMethodFrame(b, 0, &wire.ConnectionCloseOk{}) })
		return true
	}
	return false
}

// dispatch handles one frame. A returned error is a connection error.
func (c *conn) dispatch(f wire.Frame) error {
	switch f.Type {
	case wire.FrameHeartbeat:
		if f.Channel != 0 {
			return newError(wire.FrameError, "heartbeat frame on channel %d", f.Channel)
		}
		return nil
	case wire.FrameMethod:
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			if errors.Is(err, wire.ErrUnknownMethod) {
				return newError(wire.CommandInvalid, "%v", err)
			}
			return newError(wire.SyntaxError, "%v", err)
		}
		if f.Channel == 0 {
			return withMethod(c.connectionMethod(m), m)
		}
		return withMethod(c.channelMethod(f.Channel, m), m)
	case wire.FrameHeader, wire.FrameBody:
		if f.Channel == 0 {
			return newError(wire.CommandInvalid, "content frame on channel 0")
		}
		ch := c.channels[f.Channel]
		if ch == nil {
			return newError(wire.ChannelError, "content frame on channel %d, which is not open", f.Channel)
		}
		if ch.closing.Load() {
			return nil
		}
		if f.Type == wire.FrameHeader {
			return c.contentHeader(ch, f.Payload)
		}
		return c.contentBody(ch, f.Payload)
	}
	return newError(wire.FrameError, "frame type %d", f.Type)
}

// connectionMethod handles a method on channel 0 after the handshake.
func (c *conn) connectionMethod(m wire.Method) error {
	switch m.(type) {
	case *wire.ConnectionClose:
		c.out.write(func(b []byte) []byte { return wire.AppendMethodFrame(b, 0, &wire.ConnectionCloseOk{}) })
		c.out.close() // readLoop returns; the teardown follows
		return nil
	case *wire.ConnectionCloseOk:
		return nil
	}
	return newError(wire.CommandInvalid, "%s on channel 0 after the handshake", m.Name())
}

// channelMethod routes a method to its channel, opening and closing
// channels itself so that channel ids are free again as soon as the
// client may reuse them.
func (c *conn) channelMethod(id uint16, m wire.Method) error {
	ch := c.channels[id]
	if ch == nil {
		if _, ok := m.(*wire.ChannelOpen); !ok {
			return newError(wire.ChannelError, "expected 'channel.open' on channel %d, got %s", id, m.Name())
		}
		if id > c.channelMax {
			return newError(wire.ChannelError, "channel %d exceeds channel-max %d", id, c.channelMax)
		}
		ch = newChannel(c, id)
		c.channels[id] = ch
		c.wg.Go(ch.run)
		c.out.write(func(b []byte) []byte { return wire.AppendMethodFrame(b, id, &wire.ChannelOpenOk{}) })
		return nil
	}
	if ch.closing.Load() {
		switch m.(type) {
		case *wire.ChannelCloseOk:
			delete(c.channels, id)
			close(ch.inbox)
		case *wire.ChannelClose: // both sides closed at once
			delete(c.channels, id)
			close(ch.inbox)
			c.out.write(func(b []byte) []byte { return wire.AppendMethodFrame(b, id, &wire.ChannelCloseOk{}) })
		}
		return nil // everything else is dropped until close-ok
	}
	if ch.assembling != nil || ch.skipBody > 0 {
		return newError(wire.UnexpectedFrame, "%s on channel %d while a message's content was expected", m.Name(), id)
	}
	switch m.(type) {
	case *wire.ChannelOpen:
		return newError(wire.ChannelError, "second 'channel.open' seen on channel %d", id)
	case *wire.ChannelClose:
		delete(c.channels, id)
		c.enqueue(ch, &command{method: m})
		close(ch.inbox)
		return nil
	case *wire.ChannelCloseOk:
		return nil
	case *wire.BasicPublish:
		ch.assembling = &command{method: m}
		return nil
	}
	c.enqueue(ch, &command{method: m})
	return nil
}

func (c *conn) contentHeader(ch *channel, payload []byte) error {
	cmd := ch.assembling
	if cmd == nil || cmd.props != nil {
		return newError(wire.UnexpectedFrame, "content header on channel %d without a publish", ch.id)
	}
	h, err := wire.DecodeHeader(payload)
	if err != nil {
		return newError(wire.SyntaxError, "%v", err)
	}
	if h.BodySize > maxBodySize {
		ch.assembling = nil
		ch.skipBody = h.BodySize // read past the body; the worker closes the channel
		c.enqueue(ch, &command{err: newError(wire.PreconditionFailed,
			"message size %d is larger than configured max size %d", h.BodySize, maxBodySize)})
		return nil
	}
	// The payload is the reader's buffer: keep a copy of the properties.
	cmd.raw = append([]byte(nil), h.RawProperties...)
	cmd.props = &h.Properties
	cmd.bodySize = int(h.BodySize)
	if cmd.bodySize == 0 {
		return c.completePublish(ch)
	}
	cmd.body = make([]byte, 0, cmd.bodySize)
	return nil
}

func (c *conn) contentBody(ch *channel, payload []byte) error {
	if ch.skipBody > 0 {
		ch.skipBody -= min(ch.skipBody, uint64(len(payload)))
		return nil
	}
	cmd := ch.assembling
	if cmd == nil || cmd.props == nil {
		return newError(wire.UnexpectedFrame, "content body on channel %d without a header", ch.id)
	}
	if len(cmd.body)+len(payload) > cmd.bodySize {
		return newError(wire.FrameError, "content body exceeds the header's body size %d", cmd.bodySize)
	}
	cmd.body = append(cmd.body, payload...)
	if len(cmd.body) == cmd.bodySize {
		return c.completePublish(ch)
	}
	return nil
}

func (c *conn) completePublish(ch *channel) error {
	cmd := ch.assembling
	ch.assembling = nil
	cmd.size = int64(len(cmd.body) + len(cmd.raw) + 64)
	c.pendMu.Lock()
	c.pendBytes += cmd.size
	c.pendMu.Unlock()
	c.enqueue(ch, cmd)
	c.waitPending()
	return nil
}

// enqueue hands a command to its channel's worker. A full inbox blocks the
// reader, which stops reading the socket: TCP back-pressure on the client.
func (c *conn) enqueue(ch *channel, cmd *command) {
	select {
	case ch.inbox <- cmd:
	case <-c.ctx.Done():
	}
}

// waitPending applies publish back-pressure: past the limit of bytes
// published but not yet stored it sends connection.blocked (if the client
// understands it) and waits, not reading the socket, until half of the
// limit has drained. The command that crossed the limit is already with
// its worker, so the wait always ends.
func (c *conn) waitPending() {
	limit := c.s.opts.MaxPendingPublishBytes
	c.pendMu.Lock()
	if c.pendBytes <= limit {
		c.pendMu.Unlock()
		return
	}
	drained := make(chan struct{})
	c.pendDrained = drained
	c.pendMu.Unlock()
	if c.caps.connectionBlocked {
		c.out.write(func(b []byte) []byte {
			return wire.AppendMethodFrame(b, 0, &wire.ConnectionBlocked{Reason: "bridge: publishes are arriving faster than they are stored"})
		})
	}
	select {
	case <-drained:
	case <-c.ctx.Done():
	}
	if c.caps.connectionBlocked {
		c.out.write(func(b []byte) []byte { return wire.AppendMethodFrame(b, 0, &wire.ConnectionUnblocked{}) })
	}
}

// releasePending is called by workers once publishes are stored (or
// dropped).
func (c *conn) releasePending(n int64) {
	c.pendMu.Lock()
	c.pendBytes -= n
	var wake chan struct{}
	if c.pendDrained != nil && c.pendBytes <= c.s.opts.MaxPendingPublishBytes/2 {
		wake, c.pendDrained = c.pendDrained, nil
	}
	c.pendMu.Unlock()
	if wake != nil {
		close(wake)
	}
}

// newReader wraps the socket for the frame reader.
func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReaderSize(nc, 64<<10) }
