package amqpapi

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// FuzzDecodeEnvelope: an envelope that decodes re-encodes to the same
// bytes; anything else is errEnvelope.
func FuzzDecodeEnvelope(f *testing.F) {
	p := wire.BasicProperties{Flags: wire.BasicFlagHeaders | wire.BasicFlagContentType, ContentType: "t", Headers: wire.Table{{Name: "h", Value: int32(1)}}}
	f.Add(appendEnvelope(nil, envelope{exchange: "x", routingKey: "a.b", properties: p.Append(nil)}))
	f.Add(appendEnvelope(nil, envelope{properties: []byte{0, 0}}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := decodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, errEnvelope) {
				t.Fatalf("error %v does not wrap errEnvelope", err)
			}
			return
		}
		if again := appendEnvelope(nil, env); !bytes.Equal(again, data) {
			t.Fatalf("re-encoded %x from %x", again, data)
		}
	})
}

// A message sent without an envelope (over SQS, by a pipeline) is
// delivered with its amqp.* attributes as properties and the rest as
// headers.
func TestDeliveryFormWithoutEnvelope(t *testing.T) {
	m := queue.Message{Attributes: []queue.Attribute{
		{Name: "amqp.content_type", DataType: "String", Value: []byte("text/plain")},
		{Name: "amqp.priority", DataType: "String", Value: []byte("5")},
		{Name: "bridge-key", DataType: "String", Value: []byte("k1")},
		{Name: "blob", DataType: "Binary", Value: []byte{0, 1}},
	}}
	x, key, raw := deliveryForm(&m, "q1")
	p, err := wire.DecodeProperties(raw)
	if err != nil {
		t.Fatal(err)
	}
	if x != "" || key != "q1" || p.ContentType != "text/plain" || p.Priority != 5 || p.DeliveryMode != 2 {
		t.Fatalf("form %q %q %+v", x, key, p)
	}
	if v, _ := p.Headers.Get("bridge-key"); v != "k1" {
		t.Fatalf("headers %v", p.Headers)
	}
	if v, _ := p.Headers.Get("blob"); !bytes.Equal(v.([]byte), []byte{0, 1}) {
		t.Fatalf("headers %v", p.Headers)
	}
}
