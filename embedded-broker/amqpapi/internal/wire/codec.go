package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrSyntax marks bytes that do not decode as the specification says: a
// short read, an unknown field type, trailing bytes. A server answers it
// with SyntaxError (502) or FrameError (501).
var ErrSyntax = errors.New("amqp: syntax error")

// decoder reads big-endian AMQP primitives from buf. The first failure is
// sticky: later reads return zero values, and err says what went wrong.
type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrSyntax, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.buf)-d.off < n {
		d.fail("need %d bytes at offset %d, have %d", n, d.off, len(d.buf)-d.off)
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

func (d *decoder) octet() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) short() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) long() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) longlong() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) shortstr() string {
	n := int(d.octet())
	return string(d.take(n))
}

func (d *decoder) longstr() string {
	return string(d.longBytes())
}

func (d *decoder) longBytes() []byte {
	n := d.long()
	if d.err == nil && int64(n) > int64(len(d.buf)-d.off) {
		d.fail("long string of %d bytes at offset %d, have %d", n, d.off, len(d.buf)-d.off)
		return nil
	}
	return d.take(int(n))
}

// maxNesting bounds how deep tables and arrays may nest, so that a hostile
// peer cannot exhaust the stack with a frame of nested tables.
const maxNesting = 32

func (d *decoder) table() Table {
	return d.tableAt(0)
}

func (d *decoder) tableAt(depth int) Table {
	raw := d.longBytes()
	if d.err != nil {
		return nil
	}
	if depth > maxNesting {
		d.fail("tables nested deeper than %d", maxNesting)
		return nil
	}
	sub := decoder{buf: raw}
	var t Table
	for sub.off < len(sub.buf) && sub.err == nil {
		name := sub.shortstr()
		v := sub.value(depth)
		if sub.err == nil {
			t = append(t, Field{Name: name, Value: v})
		}
	}
	if sub.err != nil {
		d.err = sub.err
		return nil
	}
	if t == nil {
		t = Table{} // present but empty: distinct from an absent table
	}
	return t
}

func (d *decoder) array(depth int) []any {
	raw := d.longBytes()
	if d.err != nil {
		return nil
	}
	if depth > maxNesting {
		d.fail("arrays nested deeper than %d", maxNesting)
		return nil
	}
	sub := decoder{buf: raw}
	out := []any{}
	for sub.off < len(sub.buf) && sub.err == nil {
		v := sub.value(depth)
		if sub.err == nil {
			out = append(out, v)
		}
	}
	if sub.err != nil {
		d.err = sub.err
		return nil
	}
	return out
}

// value reads one typed field value. The type letters are RabbitMQ's (its
// errata to the 0-9-1 table grammar), which every client of RabbitMQ uses.
func (d *decoder) value(depth int) any {
	kind := d.octet()
	if d.err != nil {
		return nil
	}
	switch kind {
	case 't':
		b := d.octet()
		if b > 1 {
			d.fail("boolean %d", b) // only 0 and 1 re-encode to the same byte
		}
		return b == 1
	case 'b':
		return int8(d.octet())
	case 'B':
		return d.octet()
	case 's':
		return int16(d.short())
	case 'u':
		return d.short()
	case 'I':
		return int32(d.long())
	case 'i':
		return d.long()
	case 'l':
		return int64(d.longlong())
	case 'f':
		return math.Float32frombits(d.long())
	case 'd':
		return math.Float64frombits(d.longlong())
	case 'D':
		return Decimal{Scale: d.octet(), Value: int32(d.long())}
	case 'S':
		return d.longstr()
	case 'x':
		b := d.longBytes()
		return append([]byte{}, b...)
	case 'A':
		return d.array(depth + 1)
	case 'T':
		return Timestamp(d.longlong())
	case 'F':
		return d.tableAt(depth + 1)
	case 'V':
		return nil
	}
	d.fail("unknown field type %q", kind)
	return nil
}

// Table is an AMQP field table. It is a list, not a map, so that a decoded
// table re-encodes to the same bytes (order and repeated names kept).
type Table []Field

// Field is one named value of a Table. Value is one of: bool, int8, uint8,
// int16, uint16, int32, uint32, int64, float32, float64, Decimal, string
// (long string), []byte (byte array), []any (array), Timestamp, Table, or
// nil (void).
type Field struct {
	Name  string
	Value any
}

// Get returns the value of the last field named name.
func (t Table) Get(name string) (any, bool) {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].Name == name {
			return t[i].Value, true
		}
	}
	return nil, false
}

// Decimal is AMQP's decimal: Value / 10^Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// Timestamp is seconds since the Unix epoch (field type 'T').
type Timestamp uint64

func appendOctet(dst []byte, v uint8) []byte     { return append(dst, v) }
func appendShort(dst []byte, v uint16) []byte    { return binary.BigEndian.AppendUint16(dst, v) }
func appendLong(dst []byte, v uint32) []byte     { return binary.BigEndian.AppendUint32(dst, v) }
func appendLonglong(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }
func appendLongstr(dst []byte, s string) []byte  { return append(appendLong(dst, uint32(len(s))), s...) }
func appendLongBytes(dst []byte, b []byte) []byte {
	return append(appendLong(dst, uint32(len(b))), b...)
}
func appendTable(dst []byte, t Table) []byte     { return AppendTable(dst, t) }
func appendShortstr(dst []byte, s string) []byte { return AppendShortstr(dst, s) }
func appendBool(dst []byte, v bool) []byte       { return append(dst, boolByte(v)) }
func appendFloat32(dst []byte, v float32) []byte { return appendLong(dst, math.Float32bits(v)) }
func appendFloat64(dst []byte, v float64) []byte { return appendLonglong(dst, math.Float64bits(v)) }
func appendDecimal(dst []byte, v Decimal) []byte {
	return appendLong(append(dst, v.Scale), uint32(v.Value))
}
func appendTimestamp(dst []byte, v Timestamp) []byte { return appendLonglong(dst, uint64(v)) }

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// MaxShortstr is the longest short string.
const MaxShortstr = 255

// AppendShortstr appends s as a short string. A string longer than 255
// bytes is cut at 255: callers validate what they send, so a cut only
// happens to server-made text such as a long reply text.
func AppendShortstr(dst []byte, s string) []byte {
	if len(s) > MaxShortstr {
		s = s[:MaxShortstr]
	}
	return append(append(dst, byte(len(s))), s...)
}

// AppendTable appends t as a field table (length-prefixed). A value of a
// type outside Field's list is encoded as void, as it cannot be sent.
func AppendTable(dst []byte, t Table) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, f := range t {
		dst = AppendShortstr(dst, f.Name)
		dst = appendValue(dst, f.Value)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func appendArray(dst []byte, vs []any) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, v := range vs {
		dst = appendValue(dst, v)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func appendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case bool:
		return appendBool(append(dst, 't'), x)
	case int8:
		return append(dst, 'b', byte(x))
	case uint8:
		return append(dst, 'B', x)
	case int16:
		return appendShort(append(dst, 's'), uint16(x))
	case uint16:
		return appendShort(append(dst, 'u'), x)
	case int32:
		return appendLong(append(dst, 'I'), uint32(x))
	case uint32:
		return appendLong(append(dst, 'i'), x)
	case int64:
		return appendLonglong(append(dst, 'l'), uint64(x))
	case float32:
		return appendFloat32(append(dst, 'f'), x)
	case float64:
		return appendFloat64(append(dst, 'd'), x)
	case Decimal:
		return appendDecimal(append(dst, 'D'), x)
	case string:
		return appendLongstr(append(dst, 'S'), x)
	case []byte:
		return appendLongBytes(append(dst, 'x'), x)
	case []any:
		return appendArray(append(dst, 'A'), x)
	case Timestamp:
		return appendTimestamp(append(dst, 'T'), x)
	case Table:
		return AppendTable(append(dst, 'F'), x)
	}
	return append(dst, 'V')
}

// DecodeTable decodes a length-prefixed field table that fills buf exactly.
func DecodeTable(buf []byte) (Table, error) {
	d := decoder{buf: buf}
	t := d.table()
	if d.err == nil && d.off != len(buf) {
		d.fail("%d bytes after the table", len(buf)-d.off)
	}
	return t, d.err
}
