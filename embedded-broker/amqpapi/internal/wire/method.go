package wire

import (
	"errors"
	"fmt"
)

// Method is an AMQP method: one of the generated structs (ConnectionStart,
// BasicPublish, ...). AppendArgs encodes its arguments without the class
// and method ids.
type Method interface {
	ClassID() uint16
	MethodID() uint16
	Name() string
	Synchronous() bool
	HasContent() bool
	AppendArgs(dst []byte) []byte
	readArgs(d *decoder)
}

// ErrUnknownMethod marks a class and method id pair the specification does
// not define. A server answers it with CommandInvalid.
var ErrUnknownMethod = errors.New("amqp: unknown method")

// DecodeMethod decodes a method frame's payload. Strings and tables are
// copied: the result does not alias payload.
func DecodeMethod(payload []byte) (Method, error) {
	d := decoder{buf: payload}
	classID, methodID := d.short(), d.short()
	if d.err != nil {
		return nil, d.err
	}
	m := newMethod(classID, methodID)
	if m == nil {
		return nil, fmt.Errorf("%w: class %d method %d", ErrUnknownMethod, classID, methodID)
	}
	m.readArgs(&d)
	if d.err == nil && d.off != len(payload) {
		d.fail("%d bytes after the arguments of %s", len(payload)-d.off, m.Name())
	}
	if d.err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name(), d.err)
	}
	return m, nil
}

// AppendMethod appends the payload of a method frame: ids, then arguments.
func AppendMethod(dst []byte, m Method) []byte {
	dst = appendShort(dst, m.ClassID())
	dst = appendShort(dst, m.MethodID())
	return m.AppendArgs(dst)
}

// AppendMethodFrame appends a whole method frame on channel.
func AppendMethodFrame(dst []byte, channel uint16, m Method) []byte {
	dst, start := beginFrame(dst, FrameMethod, channel)
	dst = AppendMethod(dst, m)
	return endFrame(dst, start)
}

// Header is a decoded content header frame.
type Header struct {
	ClassID  uint16
	Weight   uint16
	BodySize uint64
	// RawProperties is the property flags and list as sent, so that a
	// message can be stored and delivered without re-encoding them. It
	// aliases the payload given to DecodeHeader.
	RawProperties []byte
	Properties    BasicProperties
}

// DecodeHeader decodes a content header frame's payload. Only class basic
// carries content in 0-9-1; the weight must be zero.
func DecodeHeader(payload []byte) (Header, error) {
	d := decoder{buf: payload}
	h := Header{ClassID: d.short(), Weight: d.short(), BodySize: d.longlong()}
	if d.err != nil {
		return Header{}, fmt.Errorf("content header: %w", d.err)
	}
	if h.ClassID != ClassBasic {
		return Header{}, fmt.Errorf("%w: content header of class %d, want %d", ErrSyntax, h.ClassID, ClassBasic)
	}
	if h.Weight != 0 {
		return Header{}, fmt.Errorf("%w: content header weight %d, want 0", ErrSyntax, h.Weight)
	}
	h.RawProperties = payload[d.off:]
	h.Properties.read(&d)
	if d.err == nil && d.off != len(payload) {
		d.fail("%d bytes after the properties", len(payload)-d.off)
	}
	if d.err != nil {
		return Header{}, fmt.Errorf("content header: %w", d.err)
	}
	return h, nil
}

// DecodeProperties decodes a basic property list (flags and values) that
// fills raw exactly, as RawProperties holds it.
func DecodeProperties(raw []byte) (BasicProperties, error) {
	d := decoder{buf: raw}
	var p BasicProperties
	p.read(&d)
	if d.err == nil && d.off != len(raw) {
		d.fail("%d bytes after the properties", len(raw)-d.off)
	}
	return p, d.err
}

// AppendHeaderFrame appends a content header frame of class basic whose
// property list is rawProperties (flags included, as BasicProperties.Append
// writes it).
func AppendHeaderFrame(dst []byte, channel uint16, bodySize uint64, rawProperties []byte) []byte {
	dst, start := beginFrame(dst, FrameHeader, channel)
	dst = appendShort(dst, ClassBasic)
	dst = appendShort(dst, 0)
	dst = appendLonglong(dst, bodySize)
	dst = append(dst, rawProperties...)
	return endFrame(dst, start)
}

// AppendBodyFrames appends body as body frames of at most frameMax bytes
// each (frame overhead included). An empty body has no body frame.
func AppendBodyFrames(dst []byte, channel uint16, body []byte, frameMax uint32) []byte {
	chunk := int(frameMax) - FrameOverhead
	for len(body) > 0 {
		n := min(chunk, len(body))
		var start int
		dst, start = beginFrame(dst, FrameBody, channel)
		dst = append(dst, body[:n]...)
		dst = endFrame(dst, start)
		body = body[n:]
	}
	return dst
}
