package queue

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Journal record framing (see DESIGN.md):
//
//	length uint32 LE   bytes of kind+payload, 1..maxRecordLength
//	crc    uint32 LE   CRC-32C (Castagnoli) of kind+payload
//	kind   byte
//	payload            kind-specific; integers are canonical (minimal) varints,
//	                   strings and byte slices are uvarint-length-prefixed
//
// A decoder accepts only what the encoder produces: non-minimal varints and
// trailing payload bytes are corruption, so decode(encode(r)) == r and
// encode(decode(b)) == b hold byte for byte (the fuzz test checks both).

type recordKind byte

const (
	kindConfig     recordKind = 1 // payload: the queue's meta JSON
	kindPut        recordKind = 2 // a message with its full state
	kindReceive    recordKind = 3 // a delivery: seq, epoch, receive count, visibleAt, firstReceivedAt
	kindVisibility recordKind = 4 // seq, visibleAt
	kindDelete     recordKind = 5 // seq
	kindPurge      recordKind = 6 // seq: every message below it is gone
	kindDedup      recordKind = 7 // FIFO dedup entry of a message no longer stored
	kindEpoch      recordKind = 8 // epoch, next seq: written at every open and compaction
	// kindPutExt is a put with the fields beyond SQS: priority and expiry.
	// It is written only when one of them is set, so a plain queue's
	// journal is unchanged (and readable by a bridge that predates them).
	kindPutExt recordKind = 9
	kindMax    recordKind = kindPutExt
)

const (
	recordHeaderLength = 8
	// maxRecordLength bounds a record so a corrupt length cannot make
	// replay allocate gigabytes: a 1 MiB body plus attributes fits well.
	maxRecordLength = 4 << 20
	// recordSlack bounds a put record's framing and fixed fields (varints,
	// the message id, name lengths) beyond its variable-length contents.
	recordSlack = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded journal record; which fields are meaningful depends on kind.
type record struct {
	kind         recordKind
	seq          uint64 // put, receive, visibility, delete, dedup; purge: exclusive bound; epoch: next seq
	epoch        uint32 // receive, epoch
	receiveCount uint32 // receive
	at           int64  // visibleAt (receive, visibility), expiry (dedup), unix nanoseconds
	firstRecvAt  int64  // receive
	key, id      string // dedup
	meta         []byte // config
	msg          *message
}

// beginRecord reserves the header and writes kind; finishRecord fills the header.
func beginRecord(dst []byte, kind recordKind) ([]byte, int) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, byte(kind))
	return dst, start
}

func finishRecord(dst []byte, start int) []byte {
	body := dst[start+recordHeaderLength:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendAttributes(dst []byte, attrs []Attribute) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(attrs)))
	for _, a := range attrs {
		dst = appendString(dst, a.Name)
		dst = appendString(dst, a.DataType)
		dst = appendBytes(dst, a.Value)
	}
	return dst
}

// appendPut encodes m with its current state (used for sends, moves and
// compaction): a kindPut record, or kindPutExt when m has a priority or an
// expiry.
func appendPut(dst []byte, m *message) []byte {
	ext := m.priority != 0 || m.expiresAt != 0
	kind := kindPut
	if ext {
		kind = kindPutExt
	}
	dst, start := beginRecord(dst, kind)
	dst = binary.AppendUvarint(dst, m.seq)
	dst = binary.AppendVarint(dst, m.sentAt)
	dst = binary.AppendVarint(dst, m.visibleAt)
	dst = binary.AppendVarint(dst, m.firstRecvAt)
	dst = binary.AppendUvarint(dst, uint64(m.receiveCount))
	dst = binary.AppendUvarint(dst, uint64(m.epoch))
	dst = appendString(dst, m.id)
	dst = appendString(dst, m.groupID)
	dst = appendString(dst, m.dedupID)
	dst = appendString(dst, m.deadLetterSource)
	dst = appendBytes(dst, m.body)
	dst = appendAttributes(dst, m.attrs)
	dst = appendAttributes(dst, m.sysAttrs)
	if ext {
		dst = binary.AppendUvarint(dst, uint64(m.priority))
		dst = binary.AppendVarint(dst, m.expiresAt)
	}
	return finishRecord(dst, start)
}

func appendReceive(dst []byte, m *message) []byte {
	dst, start := beginRecord(dst, kindReceive)
	dst = binary.AppendUvarint(dst, m.seq)
	dst = binary.AppendUvarint(dst, uint64(m.epoch))
	dst = binary.AppendUvarint(dst, uint64(m.receiveCount))
	dst = binary.AppendVarint(dst, m.visibleAt)
	dst = binary.AppendVarint(dst, m.firstRecvAt)
	return finishRecord(dst, start)
}

func appendVisibility(dst []byte, seq uint64, visibleAt int64) []byte {
	dst, start := beginRecord(dst, kindVisibility)
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendVarint(dst, visibleAt)
	return finishRecord(dst, start)
}

func appendSeqRecord(dst []byte, kind recordKind, seq uint64) []byte {
	dst, start := beginRecord(dst, kind)
	dst = binary.AppendUvarint(dst, seq)
	return finishRecord(dst, start)
}

func appendDedup(dst []byte, key, id string, seq uint64, expiresAt int64) []byte {
	dst, start := beginRecord(dst, kindDedup)
	dst = appendString(dst, key)
	dst = appendString(dst, id)
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendVarint(dst, expiresAt)
	return finishRecord(dst, start)
}

func appendEpoch(dst []byte, epoch uint32, nextSeq uint64) []byte {
	dst, start := beginRecord(dst, kindEpoch)
	dst = binary.AppendUvarint(dst, uint64(epoch))
	dst = binary.AppendUvarint(dst, nextSeq)
	return finishRecord(dst, start)
}

func appendConfigRecord(dst []byte, meta []byte) []byte {
	dst, start := beginRecord(dst, kindConfig)
	dst = append(dst, meta...)
	return finishRecord(dst, start)
}

// appendRecord encodes any decoded record; the fuzz test uses it for round trips.
func appendRecord(dst []byte, r *record) []byte {
	switch r.kind {
	case kindConfig:
		return appendConfigRecord(dst, r.meta)
	case kindPut, kindPutExt:
		return appendPut(dst, r.msg)
	case kindReceive:
		return appendReceive(dst, &message{seq: r.seq, epoch: r.epoch, receiveCount: r.receiveCount, visibleAt: r.at, firstRecvAt: r.firstRecvAt})
	case kindVisibility:
		return appendVisibility(dst, r.seq, r.at)
	case kindDelete, kindPurge:
		return appendSeqRecord(dst, r.kind, r.seq)
	case kindDedup:
		return appendDedup(dst, r.key, r.id, r.seq, r.at)
	case kindEpoch:
		return appendEpoch(dst, r.epoch, r.seq)
	}
	panic(fmt.Sprintf("queue: appendRecord of unknown kind %d", r.kind))
}

// readRecord decodes the record at the start of buf and returns it with the
// number of bytes it occupies. Every error wraps ErrCorrupt; errTruncated
// (also ErrCorrupt) means buf ends inside the record. Byte slices in the
// result are copies, so the caller may reuse buf.
func readRecord(buf []byte) (record, int, error) {
	if len(buf) < recordHeaderLength {
		return record{}, 0, errTruncated
	}
	length := binary.LittleEndian.Uint32(buf)
	if length == 0 || length > maxRecordLength {
		return record{}, 0, fmt.Errorf("%w: record length %d", ErrCorrupt, length)
	}
	size := recordHeaderLength + int(length)
	if len(buf) < size {
		return record{}, 0, errTruncated
	}
	body := buf[recordHeaderLength:size]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(buf[4:]) {
		return record{}, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r, err := decodePayload(recordKind(body[0]), body[1:])
	if err != nil {
		return record{}, 0, err
	}
	return r, size, nil
}

var errTruncated = fmt.Errorf("%w: truncated record", ErrCorrupt)

func decodePayload(kind recordKind, payload []byte) (record, error) {
	d := decoder{buf: payload}
	r := record{kind: kind}
	switch kind {
	case kindConfig:
		r.meta = append([]byte(nil), payload...)
		d.buf = nil
	case kindPut:
		r.msg = d.message()
	case kindPutExt:
		r.msg = d.message()
		r.msg.priority = d.uint8()
		r.msg.expiresAt = d.varint()
		if d.err == nil && r.msg.priority == 0 && r.msg.expiresAt == 0 {
			// The encoder writes a plain put then; accepting this would
			// break byte-for-byte round trips.
			d.fail("extended put without extension")
		}
	case kindReceive:
		r.seq = d.uvarint()
		r.epoch = d.uint32()
		r.receiveCount = d.uint32()
		r.at = d.varint()
		r.firstRecvAt = d.varint()
	case kindVisibility:
		r.seq = d.uvarint()
		r.at = d.varint()
	case kindDelete, kindPurge:
		r.seq = d.uvarint()
	case kindDedup:
		r.key = d.string()
		r.id = d.string()
		r.seq = d.uvarint()
		r.at = d.varint()
	case kindEpoch:
		r.epoch = d.uint32()
		r.seq = d.uvarint()
	default:
		return record{}, fmt.Errorf("%w: unknown record kind %d", ErrCorrupt, kind)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes in record kind %d", ErrCorrupt, len(d.buf), kind)
	}
	if d.err != nil {
		return record{}, d.err
	}
	return r, nil
}

// decoder reads canonical varints and length-prefixed fields; the first
// failure sticks in err and later reads return zero values.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	d.buf = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	// n != length of the minimal encoding rejects padded varints, which the
	// encoder never writes; accepting them would break byte round trips.
	if n <= 0 || n != uvarintLength(v) {
		d.fail("uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	ux := uint64(v) << 1
	if v < 0 {
		ux = ^ux
	}
	if n <= 0 || n != uvarintLength(ux) {
		d.fail("varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail("uint32")
		return 0
	}
	return uint32(v)
}

func (d *decoder) uint8() uint8 {
	v := d.uvarint()
	if v > 255 {
		d.fail("uint8")
		return 0
	}
	return uint8(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail("length")
		return nil
	}
	out := make([]byte, n)
	copy(out, d.buf)
	d.buf = d.buf[n:]
	return out
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.buf)) {
		d.fail("length")
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

func (d *decoder) attributes() []Attribute {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	// Each attribute takes at least 3 bytes, which bounds the allocation.
	if n > uint64(len(d.buf)/3) {
		d.fail("attribute count")
		return nil
	}
	if n == 0 {
		return nil
	}
	attrs := make([]Attribute, n)
	for i := range attrs {
		attrs[i] = Attribute{Name: d.string(), DataType: d.string(), Value: d.bytes()}
	}
	return attrs
}

func (d *decoder) message() *message {
	m := &message{}
	m.seq = d.uvarint()
	m.sentAt = d.varint()
	m.visibleAt = d.varint()
	m.firstRecvAt = d.varint()
	m.receiveCount = d.uint32()
	m.epoch = d.uint32()
	m.id = d.string()
	m.groupID = d.string()
	m.dedupID = d.string()
	m.deadLetterSource = d.string()
	m.body = d.bytes()
	m.attrs = d.attributes()
	m.sysAttrs = d.attributes()
	return m
}

func uvarintLength(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
