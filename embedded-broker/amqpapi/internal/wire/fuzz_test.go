package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame: whatever the bytes, the reader either fails with a frame
// error or a short read, or returns frames that re-encode to exactly the
// bytes they were read from; ParseFrame agrees with ReadFrame.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendHeartbeat(nil))
	f.Add(AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "x", RoutingKey: "k", Mandatory: true}))
	f.Add(AppendBodyFrames(AppendHeaderFrame(nil, 2, 5000, []byte{0, 0}), 2, make([]byte, 5000), FrameMinSize))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bufio.NewReader(bytes.NewReader(data)))
		off := 0
		for {
			frame, err := fr.ReadFrame()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrame) {
					t.Fatalf("error %v is neither a short read nor ErrFrame", err)
				}
				if err == io.EOF && off != len(data) {
					t.Fatalf("EOF at %d of %d bytes", off, len(data))
				}
				return
			}
			again := AppendFrame(nil, frame.Type, frame.Channel, frame.Payload)
			if !bytes.HasPrefix(data[off:], again) {
				t.Fatalf("frame at %d re-encodes differently", off)
			}
			parsed, n, err := ParseFrame(data[off:], FrameMinSize)
			if err != nil || n != len(again) || !bytes.Equal(parsed.Payload, frame.Payload) {
				t.Fatalf("ParseFrame disagrees: %v, %d", err, n)
			}
			off += len(again)
		}
	})
}

// FuzzDecodeMethod: a method that decodes re-encodes to bytes that decode
// to a method that encodes to the same bytes again (decode, encode,
// decode, encode is stable), and failures are classified.
func FuzzDecodeMethod(f *testing.F) {
	for _, m := range sampleMethods() {
		f.Add(AppendMethod(nil, m))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := DecodeMethod(payload)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrUnknownMethod) {
				t.Fatalf("error %v is neither ErrSyntax nor ErrUnknownMethod", err)
			}
			return
		}
		enc := AppendMethod(nil, m)
		if len(enc) != len(payload) {
			t.Fatalf("%s: re-encoded to %d bytes from %d", m.Name(), len(enc), len(payload))
		}
		m2, err := DecodeMethod(enc)
		if err != nil {
			t.Fatalf("%s: re-decoding: %v", m.Name(), err)
		}
		if enc2 := AppendMethod(nil, m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: encode(decode(encode(m))) differs", m.Name())
		}
	})
}

// FuzzDecodeHeader: a content header that decodes keeps its raw property
// bytes, and the decoded properties encode back to exactly those bytes.
func FuzzDecodeHeader(f *testing.F) {
	p := BasicProperties{Flags: BasicFlagsAll, ContentType: "t", Headers: Table{{"a", []any{Table{{"b", int64(1)}}}}}, Priority: 3}
	f.Add(AppendHeaderFrame(nil, 0, 12, p.Append(nil))[FrameHeaderSize:])
	f.Add(AppendHeaderFrame(nil, 0, 0, []byte{0, 0})[FrameHeaderSize:])
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > 0 && payload[len(payload)-1] == FrameEnd {
			payload = payload[:len(payload)-1]
		}
		h, err := DecodeHeader(payload)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		if enc := h.Properties.Append(nil); !bytes.Equal(enc, h.RawProperties) {
			t.Fatalf("properties re-encode to %x, raw %x", enc, h.RawProperties)
		}
		again, err := DecodeProperties(h.RawProperties)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Append(nil), h.RawProperties) {
			t.Fatal("DecodeProperties disagrees with DecodeHeader")
		}
	})
}

// FuzzDecodeTable: a table that decodes encodes to the same bytes.
func FuzzDecodeTable(f *testing.F) {
	for _, m := range sampleMethods() {
		if x, ok := m.(*ExchangeDeclare); ok {
			f.Add(AppendTable(nil, x.Arguments))
		}
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := DecodeTable(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		if enc := AppendTable(nil, tab); !bytes.Equal(enc, data) {
			t.Fatalf("table re-encodes to %x from %x", enc, data)
		}
	})
}
