package amqpapi

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
)

// serverProperties are sent in connection.start. The capabilities are the
// ones clients look for before using RabbitMQ's extensions.
func serverProperties() wire.Table {
	return wire.Table{
		{Name: "product", Value: "bridge"},
		{Name: "version", Value: "0.9.1"},
		{Name: "platform", Value: "Go"},
		{Name: "information", Value: "bridge embedded broker: AMQP 0-9-1 listener"},
		{Name: "capabilities", Value: wire.Table{
			{Name: "publisher_confirms", Value: true},
			{Name: "basic.nack", Value: true},
			{Name: "consumer_cancel_notify", Value: true},
			{Name: "per_consumer_qos", Value: true},
			{Name: "authentication_failure_close", Value: true},
			{Name: "connection.blocked", Value: true},
			{Name: "exchange_exchange_bindings", Value: false},
			{Name: "consumer_priorities", Value: false},
			{Name: "direct_reply_to", Value: false},
		}},
	}
}

// errHandshake ends a connection during the handshake; what the client
// was told (if anything) is already in the outbox.
var errHandshake = errors.New("amqp handshake failed")

// handshake runs the protocol header, start/start-ok (authentication),
// tune/tune-ok and open/open-ok, within HandshakeTimeout.
func (c *conn) handshake() error {
	_ = c.nc.SetDeadline(time.Now().Add(c.s.opts.HandshakeTimeout))
	defer c.nc.SetDeadline(time.Time{})
	br := newReader(c.nc)
	var header [8]byte
	if _, err := io.ReadFull(br, header[:]); err != nil {
		return fmt.Errorf("protocol header: %w", err)
	}
	if !bytes.Equal(header[:], []byte(wire.ProtocolHeader)) {
		// The specification's answer: the header of the version we speak.
		c.out.write(func(b []byte) []byte { return append(b, wire.ProtocolHeader...) })
		return fmt.Errorf("%w: protocol header %q", errHandshake, header[:])
	}
	c.fr = wire.NewFrameReader(br)
	c.out.write(func(b []byte) []byte {
		return wire.AppendMethodFrame(b, 0, &wire.ConnectionStart{VersionMajor: 0, VersionMinor: 9,
			ServerProperties: serverProperties(), Mechanisms: "PLAIN", Locales: "en_US"})
	})
	startOk, err := readHandshakeMethod[*wire.ConnectionStartOk](c)
	if err != nil {
		return err
	}
	c.caps = clientCapabilities(startOk.ClientProperties)
	if err := c.authenticate(startOk); err != nil {
		return err
	}
	c.out.write(func(b []byte) []byte {
		return wire.AppendMethodFrame(b, 0, &wire.ConnectionTune{ChannelMax: c.s.opts.ChannelMax,
			FrameMax: c.s.opts.FrameMax, Heartbeat: uint16(c.s.opts.Heartbeat / time.Second)})
	})
	tuneOk, err := readHandshakeMethod[*wire.ConnectionTuneOk](c)
	if err != nil {
		return err
	}
	if err := c.tune(tuneOk); err != nil {
		return err
	}
	open, err := readHandshakeMethod[*wire.ConnectionOpen](c)
	if err != nil {
		return err
	}
	if open.VirtualHost != "/" && open.VirtualHost != "" {
		c.handshakeClose(wire.NotAllowed, fmt.Sprintf("vhost '%s' not found: bridge has the one vhost '/'", open.VirtualHost), open)
		return fmt.Errorf("%w: vhost %q", errHandshake, open.VirtualHost)
	}
	c.out.write(func(b []byte) []byte { return wire.AppendMethodFrame(b, 0, &wire.ConnectionOpenOk{}) })
	return nil
}

// readHandshakeMethod reads the next frame, which must be method T on
// channel 0 (heartbeats are skipped).
func readHandshakeMethod[T wire.Method](c *conn) (T, error) {
	var zero T
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return zero, err
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type != wire.FrameMethod || f.Channel != 0 {
			c.handshakeClose(wire.UnexpectedFrame, "unexpected frame during the handshake", nil)
			return zero, fmt.Errorf("%w: frame type %d on channel %d", errHandshake, f.Type, f.Channel)
		}
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			c.handshakeClose(wire.SyntaxError, err.Error(), nil)
			return zero, fmt.Errorf("%w: %v", errHandshake, err)
		}
		if cm, ok := m.(*wire.ConnectionClose); ok {
			c.out.write(func(b []byte) []byte { return wire.AppendMethodFrame(b, 0, &wire.ConnectionCloseOk{}) })
			return zero, fmt.Errorf("%w: client closed: %d %s", errHandshake, cm.ReplyCode, cm.ReplyText)
		}
		t, ok := m.(T)
		if !ok {
			c.handshakeClose(wire.CommandInvalid, "expected "+zero.Name()+", got "+m.Name(), m)
			return zero, fmt.Errorf("%w: got %s", errHandshake, m.Name())
		}
		return t, nil
	}
}

// handshakeClose sends connection.close; the connection ends right after
// (the client's close-ok is not awaited during the handshake).
func (c *conn) handshakeClose(code uint16, text string, m wire.Method) {
	e := newError(code, "%s", text)
	if m != nil {
		e.classID, e.methodID = m.ClassID(), m.MethodID()
	}
	c.out.write(func(b []byte) []byte {
		return wire.AppendMethodFrame(b, 0, &wire.ConnectionClose{ReplyCode: e.code, ReplyText: e.replyText(), ClassId: e.classID, MethodId: e.methodID})
	})
}

func clientCapabilities(props wire.Table) capabilities {
	var caps capabilities
	v, _ := props.Get("capabilities")
	t, _ := v.(wire.Table)
	flag := func(name string) bool {
		b, _ := t.Get(name)
		on, _ := b.(bool)
		return on
	}
	caps.consumerCancelNotify = flag("consumer_cancel_notify")
	caps.connectionBlocked = flag("connection.blocked")
	caps.authFailureClose = flag("authentication_failure_close")
	return caps
}

// authenticate checks PLAIN credentials against the tokens: with none
// configured every login is an admin (the HTTP API's open mode);
// otherwise the password must be one of the tokens, whose role the
// connection gets. The user name is free-form.
func (c *conn) authenticate(m *wire.ConnectionStartOk) error {
	if m.Mechanism != "PLAIN" {
		c.refuse(fmt.Sprintf("unsupported authentication mechanism '%s' (bridge offers PLAIN)", m.Mechanism), m)
		return fmt.Errorf("%w: mechanism %q", errHandshake, m.Mechanism)
	}
	// PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd.
	parts := bytes.SplitN([]byte(m.Response), []byte{0}, 3)
	if len(parts) != 3 {
		c.refuse("malformed PLAIN response", m)
		return fmt.Errorf("%w: malformed PLAIN response", errHandshake)
	}
	user, password := string(parts[1]), parts[2]
	c.user = user
	if len(c.s.opts.Tokens) == 0 {
		c.role = RoleAdmin
		return nil
	}
	for token, role := range c.s.opts.Tokens {
		if subtle.ConstantTimeCompare([]byte(token), password) == 1 {
			c.role = role
			return nil
		}
	}
	c.refuse(fmt.Sprintf("Login was refused using authentication mechanism PLAIN for user '%s': the password must be one of auth.tokens", user), m)
	return fmt.Errorf("%w: user %q: bad token", errHandshake, user)
}

// refuse answers a failed login: connection.close 403 for clients that
// announced authentication_failure_close, a plain socket close for the
// others (the specification's behaviour).
func (c *conn) refuse(text string, m wire.Method) {
	c.log.Warn("AMQP login refused", "reason", text)
	if c.caps.authFailureClose {
		c.handshakeClose(wire.AccessRefused, text, m)
	}
}

// tune applies the client's tune-ok: it may lower channel-max and
// frame-max, and sets the heartbeat (0 disables it).
func (c *conn) tune(m *wire.ConnectionTuneOk) error {
	c.channelMax = c.s.opts.ChannelMax
	if m.ChannelMax != 0 && m.ChannelMax < c.channelMax {
		c.channelMax = m.ChannelMax
	}
	c.frameMax = c.s.opts.FrameMax
	switch {
	case m.FrameMax != 0 && m.FrameMax < wire.FrameMinSize:
		c.handshakeClose(wire.NotAllowed, fmt.Sprintf("frame_max=%d < %d min size", m.FrameMax, wire.FrameMinSize), m)
		return fmt.Errorf("%w: frame-max %d", errHandshake, m.FrameMax)
	case m.FrameMax > c.frameMax:
		c.handshakeClose(wire.NotAllowed, fmt.Sprintf("frame_max=%d > %d max size", m.FrameMax, c.frameMax), m)
		return fmt.Errorf("%w: frame-max %d", errHandshake, m.FrameMax)
	case m.FrameMax != 0:
		c.frameMax = m.FrameMax
	}
	c.fr.MaxSize = c.frameMax
	c.heartbeat.Store(int64(time.Duration(m.Heartbeat) * time.Second))
	return nil
}
