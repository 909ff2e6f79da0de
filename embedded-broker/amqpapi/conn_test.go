package amqpapi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
)

func TestHandshakeAndChannels(t *testing.T) {
	b := startBroker(t)
	conn, err := amqp.DialConfig(b.url, amqp.Config{Heartbeat: 2 * time.Second, Properties: amqp.Table{"connection_name": "t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	props := conn.Properties
	if props["product"] != "bridge" {
		t.Fatalf("server properties %v", props)
	}
	caps, _ := props["capabilities"].(amqp.Table)
	for _, c := range []string{"publisher_confirms", "basic.nack", "consumer_cancel_notify", "per_consumer_qos", "authentication_failure_close", "connection.blocked"} {
		if caps[c] != true {
			t.Errorf("capability %s = %v", c, caps[c])
		}
	}
	var chans []*amqp.Channel
	for range 5 {
		chans = append(chans, mustChannel(t, conn))
	}
	for _, ch := range chans[:4] {
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The remaining channel still works after its neighbours closed, and
	// the connection survives several heartbeat intervals of silence.
	time.Sleep(5 * time.Second)
	if _, err := chans[4].QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("declare after idle: %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAuthentication(t *testing.T) {
	b := startBroker(t, func(o *Options) {
		o.Tokens = map[string]Role{"s3cret": RoleAdmin, "prod": RoleProducer, "cons": RoleConsumer}
	})
	addr := strings.TrimPrefix(strings.TrimSuffix(b.url, "/"), "amqp://guest:guest@")
	tests := []struct {
		name    string
		url     string
		wantErr bool
	}{
		{"admin token", "amqp://ops:s3cret@" + addr + "/", false},
		{"producer token", "amqp://app:prod@" + addr + "/", false},
		{"wrong token", "amqp://ops:nope@" + addr + "/", true},
		{"guest refused when tokens are set", "amqp://guest:guest@" + addr + "/", true},
		{"unknown vhost", "amqp://ops:s3cret@" + addr + "/other", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := amqp.Dial(tc.url)
			if tc.wantErr {
				if err == nil {
					conn.Close()
					t.Fatal("connected")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
		})
	}
	// A refused login is answered with 403 (authentication_failure_close).
	_, err := amqp.Dial("amqp://ops:nope@" + addr + "/")
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Fatalf("refused login: %v, want 403", err)
	}
	// Roles: a producer may publish but not declare a new queue or consume.
	conn, err := amqp.Dial("amqp://app:prod@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("new-queue", true, false, false, false, nil); !isCode(err, amqp.AccessRefused) {
		t.Fatalf("producer declared a queue: %v", err)
	}
	ch = mustChannel(t, conn)
	if err := ch.Publish("amq.topic", "k", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive("new-queue", true, false, false, false, nil); !isCode(err, amqp.NotFound) {
		t.Fatalf("passive declare: %v", err)
	}
}

func isCode(err error, code int) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == code
}

// TestProtocolErrors drives the server with raw frames: a wrong protocol
// header gets the server's header back; a malformed frame closes the
// connection with 501.
func TestProtocolErrors(t *testing.T) {
	b := startBroker(t)
	addr := strings.TrimPrefix(strings.TrimSuffix(b.url, "/"), "amqp://guest:guest@")
	t.Run("wrong protocol header", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := nc.Write([]byte("AMQP\x00\x01\x00\x00")); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(nc)
		if err != nil || string(got) != wire.ProtocolHeader {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("bad frame end", func(t *testing.T) {
		nc, br := rawHandshake(t, addr)
		defer nc.Close()
		bad := wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})
		bad[len(bad)-1] = 0
		if _, err := nc.Write(bad); err != nil {
			t.Fatal(err)
		}
		close := readUntilClose(t, br)
		if close.ReplyCode != wire.FrameError {
			t.Fatalf("close %+v", close)
		}
	})
	t.Run("method on an unopened channel", func(t *testing.T) {
		nc, br := rawHandshake(t, addr)
		defer nc.Close()
		if _, err := nc.Write(wire.AppendMethodFrame(nil, 7, &wire.QueueDeclare{Queue: "x"})); err != nil {
			t.Fatal(err)
		}
		close := readUntilClose(t, br)
		if close.ReplyCode != wire.ChannelError || close.ClassId != wire.ClassQueue {
			t.Fatalf("close %+v", close)
		}
	})
}

// rawHandshake opens a connection by hand, up to open-ok.
func rawHandshake(t *testing.T, addr string) (net.Conn, *wire.FrameReader) {
	t.Helper()
	return rawHandshakeTuned(t, addr, 0)
}

// rawHandshakeTuned is rawHandshake with a heartbeat (seconds) in tune-ok.
func rawHandshakeTuned(t *testing.T, addr string, heartbeat uint16) (net.Conn, *wire.FrameReader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	fr := wire.NewFrameReader(bufio.NewReader(nc))
	fr.MaxSize = 1 << 20
	send := func(m wire.Method) {
		if _, err := nc.Write(wire.AppendMethodFrame(nil, 0, m)); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want string) {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil || m.Name() != want {
			t.Fatalf("got %v %v, want %s", m, err, want)
		}
	}
	if _, err := nc.Write([]byte(wire.ProtocolHeader)); err != nil {
		t.Fatal(err)
	}
	expect("connection.start")
	send(&wire.ConnectionStartOk{ClientProperties: wire.Table{}, Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"})
	expect("connection.tune")
	send(&wire.ConnectionTuneOk{ChannelMax: 10, FrameMax: 131072, Heartbeat: heartbeat})
	send(&wire.ConnectionOpen{VirtualHost: "/"})
	expect("connection.open-ok")
	return nc, fr
}

func readUntilClose(t *testing.T, fr *wire.FrameReader) *wire.ConnectionClose {
	t.Helper()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no connection.close: %v", err)
		}
		if f.Type != wire.FrameMethod {
			continue
		}
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := m.(*wire.ConnectionClose); ok {
			return c
		}
	}
}
