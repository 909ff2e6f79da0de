// Package wire encodes and decodes AMQP 0-9-1 frames, methods, content
// headers and field tables. The method structs and the property list are
// generated from the specification XML (spec_gen.go, see internal/gen);
// framing and the primitive types are written here.
//
// Decoding is strict: a decoder accepts only what its encoder produces
// (no trailing bytes, no undefined property flags, booleans 0 or 1), so
// that decode, encode and decode again give the same value (fuzzed).
// Nothing here does I/O except FrameReader, which reads from a
// bufio.Reader; nothing is safe for concurrent use unless it says so.
package wire

//go:generate go run ../gen/cmd/amqpgen -spec /usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml -o spec_gen.go

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolHeader is what a 0-9-1 client sends first.
const ProtocolHeader = "AMQP\x00\x00\x09\x01"

// FrameHeaderSize is the type, channel and size fields before a payload.
const FrameHeaderSize = 7

// FrameOverhead is the header plus the frame-end octet.
const FrameOverhead = FrameHeaderSize + 1

// ErrFrame marks a malformed frame: unknown type, bad frame-end octet, or
// a size over the negotiated maximum. A server answers it with FrameError.
var ErrFrame = errors.New("amqp: frame error")

// Frame is one frame. Payload aliases the reader's buffer and is valid
// until the next ReadFrame.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// FrameReader reads frames from a buffered connection.
type FrameReader struct {
	r   *bufio.Reader
	buf []byte
	// MaxSize is the largest frame accepted, header and frame-end included
	// (the negotiated frame-max); 0 means FrameMinSize until tuned.
	MaxSize uint32
}

// NewFrameReader returns a reader of r.
func NewFrameReader(r *bufio.Reader) *FrameReader { return &FrameReader{r: r} }

// ReadFrame reads the next frame. io.EOF is returned only between frames;
// a frame cut short is io.ErrUnexpectedEOF.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	var hdr [FrameHeaderSize]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return Frame{}, err
	}
	typ, channel, size := hdr[0], binary.BigEndian.Uint16(hdr[1:]), binary.BigEndian.Uint32(hdr[3:])
	if err := checkFrame(typ, size, fr.maxSize()); err != nil {
		return Frame{}, err
	}
	need := int(size) + 1
	if cap(fr.buf) < need {
		fr.buf = make([]byte, need)
	}
	buf := fr.buf[:need]
	if _, err := io.ReadFull(fr.r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if buf[size] != FrameEnd {
		return Frame{}, fmt.Errorf("%w: frame-end octet %#x, want %#x", ErrFrame, buf[size], FrameEnd)
	}
	return Frame{Type: typ, Channel: channel, Payload: buf[:size]}, nil
}

func (fr *FrameReader) maxSize() uint32 {
	if fr.MaxSize == 0 {
		return FrameMinSize
	}
	return fr.MaxSize
}

func checkFrame(typ uint8, size, maxSize uint32) error {
	switch typ {
	case FrameMethod, FrameHeader, FrameBody, FrameHeartbeat:
	default:
		return fmt.Errorf("%w: unknown frame type %d", ErrFrame, typ)
	}
	if uint64(size)+FrameOverhead > uint64(maxSize) {
		return fmt.Errorf("%w: frame of %d bytes exceeds frame-max %d", ErrFrame, uint64(size)+FrameOverhead, maxSize)
	}
	return nil
}

// ParseFrame parses one frame at the start of buf, as ReadFrame would
// read it, and returns it with the number of bytes it took. A buffer that
// ends inside the frame is io.ErrUnexpectedEOF.
func ParseFrame(buf []byte, maxSize uint32) (Frame, int, error) {
	if len(buf) < FrameHeaderSize {
		return Frame{}, 0, io.ErrUnexpectedEOF
	}
	typ, channel, size := buf[0], binary.BigEndian.Uint16(buf[1:]), binary.BigEndian.Uint32(buf[3:])
	if err := checkFrame(typ, size, maxSize); err != nil {
		return Frame{}, 0, err
	}
	end := FrameHeaderSize + int(size)
	if len(buf) <= end {
		return Frame{}, 0, io.ErrUnexpectedEOF
	}
	if buf[end] != FrameEnd {
		return Frame{}, 0, fmt.Errorf("%w: frame-end octet %#x, want %#x", ErrFrame, buf[end], FrameEnd)
	}
	return Frame{Type: typ, Channel: channel, Payload: buf[FrameHeaderSize:end]}, end + 1, nil
}

// AppendFrame appends a frame with the given payload.
func AppendFrame(dst []byte, typ uint8, channel uint16, payload []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, channel)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return append(dst, FrameEnd)
}

// beginFrame appends a frame header with a zero size; endFrame fills the
// size from what was appended since and adds the frame-end octet.
func beginFrame(dst []byte, typ uint8, channel uint16) ([]byte, int) {
	start := len(dst)
	dst = append(dst, typ, byte(channel>>8), byte(channel), 0, 0, 0, 0)
	return dst, start
}

func endFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start+3:], uint32(len(dst)-start-FrameHeaderSize))
	return append(dst, FrameEnd)
}

// AppendHeartbeat appends a heartbeat frame (channel 0, empty payload).
func AppendHeartbeat(dst []byte) []byte {
	return append(dst, FrameHeartbeat, 0, 0, 0, 0, 0, 0, FrameEnd)
}
