package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"reflect"
	"testing"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/gen"
)

// TestGeneratedMatchesSpec regenerates spec_gen.go from the installed
// specification (Debian's amqp-specs, installed by
// scripts/ensure.d/amqp-clients.sh) and fails if it differs from the
// committed file: the generated code is never edited by hand.
func TestGeneratedMatchesSpec(t *testing.T) {
	data, err := os.ReadFile(gen.DefaultSpec)
	if err != nil {
		if os.Getenv("BRIDGE_SKIP_AMQP_CLIENTS") != "" {
			t.Skipf("BRIDGE_SKIP_AMQP_CLIENTS set and %v", err)
		}
		t.Fatalf("%v: install Debian's amqp-specs (scripts/ensure.d/amqp-clients.sh does), or set BRIDGE_SKIP_AMQP_CLIENTS=1", err)
	}
	want, err := gen.Generate(data, gen.DefaultSpec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("spec_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("spec_gen.go differs from what the generator makes of the installed specification: run go generate ./embedded-broker/amqpapi/internal/wire and commit the result")
	}
}

func sampleMethods() []Method {
	return []Method{
		&ConnectionStart{VersionMajor: 0, VersionMinor: 9, ServerProperties: Table{
			{"product", "bridge"}, {"capabilities", Table{{"publisher_confirms", true}}}},
			Mechanisms: "PLAIN", Locales: "en_US"},
		&ConnectionStartOk{ClientProperties: Table{}, Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"},
		&ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 60},
		&ConnectionClose{ReplyCode: 320, ReplyText: "shutdown", ClassId: 0, MethodId: 0},
		&ConnectionBlocked{Reason: "low on disk"},
		&ConnectionUnblocked{},
		&ChannelOpen{},
		&ChannelFlow{Active: true},
		&QueueDeclare{Queue: "orders", Durable: true, AutoDelete: true, NoWait: false, Arguments: Table{{"x-queue-type", "quorum"}}},
		&QueueDeclareOk{Queue: "amq.gen-x", MessageCount: 7, ConsumerCount: 1},
		&BasicPublish{Exchange: "amq.topic", RoutingKey: "a.b", Mandatory: true},
		&BasicDeliver{ConsumerTag: "ctag", DeliveryTag: math.MaxUint64, Redelivered: true, Exchange: "", RoutingKey: "q"},
		&BasicNack{DeliveryTag: 9, Multiple: true, Requeue: true},
		&ExchangeDeclare{Exchange: "x", Type: "headers", Passive: true, Durable: false, AutoDelete: true, Internal: true, NoWait: true,
			Arguments: Table{{"a", int8(-1)}, {"b", uint8(2)}, {"c", int16(-3)}, {"d", uint16(4)}, {"e", int32(-5)}, {"f", uint32(6)},
				{"g", int64(-7)}, {"h", float32(1.5)}, {"i", 2.5}, {"j", Decimal{2, 314}}, {"k", []byte{0, 1}}, {"l", []any{"x", int32(1), nil}},
				{"m", Timestamp(1700000000)}, {"n", nil}, {"a", false}}},
		&ConfirmSelect{Nowait: true},
	}
}

func TestMethodRoundTrip(t *testing.T) {
	for _, m := range sampleMethods() {
		t.Run(m.Name(), func(t *testing.T) {
			payload := AppendMethod(nil, m)
			got, err := DecodeMethod(payload)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("decoded %#v, want %#v", got, m)
			}
			// Every strict prefix is a short read, never a different method.
			for n := 0; n < len(payload); n++ {
				if _, err := DecodeMethod(payload[:n]); !errors.Is(err, ErrSyntax) {
					t.Fatalf("prefix of %d bytes: %v, want ErrSyntax", n, err)
				}
			}
			if _, err := DecodeMethod(append(payload, 0)); !errors.Is(err, ErrSyntax) {
				t.Fatalf("trailing byte: %v, want ErrSyntax", err)
			}
		})
	}
}

func TestDecodeMethodErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"unknown method", []byte{0, 60, 0, 99}, ErrUnknownMethod},
		{"unknown class", []byte{0, 1, 0, 1}, ErrUnknownMethod},
		{"unknown field type", append(AppendMethod(nil, &ExchangeDeclare{})[:9], 0, 0, 0, 3, 1, 'a', 'Z'), ErrSyntax},
		{"boolean 2", append([]byte{0, 40, 0, 10, 0, 0, 1, 'x', 0, 0}, 0, 0, 0, 4, 1, 'a', 't', 2), ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeMethod(tc.payload); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	p := BasicProperties{
		Flags:       BasicFlagContentType | BasicFlagHeaders | BasicFlagDeliveryMode | BasicFlagTimestamp | BasicFlagMessageId,
		ContentType: "application/json", Headers: Table{{"k", "v"}}, DeliveryMode: 2, Timestamp: 1700000000, MessageId: "m-1",
		AppId: "ignored: flag clear",
	}
	raw := p.Append(nil)
	frame := AppendHeaderFrame(nil, 3, 100, raw)
	f, n, err := ParseFrame(frame, 1<<20)
	if err != nil || n != len(frame) || f.Type != FrameHeader || f.Channel != 3 {
		t.Fatalf("ParseFrame = %+v, %d, %v", f, n, err)
	}
	h, err := DecodeHeader(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	p.AppId = ""
	if h.BodySize != 100 || !reflect.DeepEqual(h.Properties, p) || !bytes.Equal(h.RawProperties, raw) {
		t.Fatalf("header %+v", h)
	}
	bad := append([]byte(nil), f.Payload...)
	bad[13] |= 1 // continuation flag: not defined for basic
	if _, err := DecodeHeader(bad); !errors.Is(err, ErrSyntax) {
		t.Fatalf("undefined flag: %v", err)
	}
}

func TestFrameReader(t *testing.T) {
	var stream []byte
	stream = AppendMethodFrame(stream, 1, &BasicPublish{Exchange: "x", RoutingKey: "k"})
	stream = AppendHeaderFrame(stream, 1, 10000, (&BasicProperties{}).Append(nil))
	stream = AppendBodyFrames(stream, 1, bytes.Repeat([]byte("b"), 10000), FrameMinSize)
	stream = AppendHeartbeat(stream)
	fr := NewFrameReader(bufio.NewReader(bytes.NewReader(stream)))
	var types []uint8
	var body int
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, f.Type)
		if f.Type == FrameBody {
			body += len(f.Payload)
			if len(f.Payload) > FrameMinSize-FrameOverhead {
				t.Fatalf("body frame of %d bytes exceeds frame-max", len(f.Payload))
			}
		}
	}
	want := []uint8{FrameMethod, FrameHeader, FrameBody, FrameBody, FrameBody, FrameHeartbeat}
	if !reflect.DeepEqual(types, want) || body != 10000 {
		t.Fatalf("frames %v body %d", types, body)
	}
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"bad end", append(AppendHeartbeat(nil)[:7], 0), ErrFrame},
		{"unknown type", []byte{9, 0, 0, 0, 0, 0, 0, FrameEnd}, ErrFrame},
		{"too large", []byte{1, 0, 0, 0, 1, 0, 0}, ErrFrame},
		{"cut short", AppendHeartbeat(nil)[:5], io.ErrUnexpectedEOF},
		{"payload cut", []byte{3, 0, 1, 0, 0, 0, 5, 'a'}, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fr := NewFrameReader(bufio.NewReader(bytes.NewReader(tc.frame)))
			if _, err := fr.ReadFrame(); !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame: %v, want %v", err, tc.want)
			}
		})
	}
}
