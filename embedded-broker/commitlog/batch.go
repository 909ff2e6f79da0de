package commitlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
	"unsafe"

	"github.com/bridgeio/bridge/embedded-broker/internal/compression"
	"github.com/bridgeio/bridge/event"
)

// The on-disk batch is Kafka's RecordBatch v2, uncompressed, written by hand
// rather than through kmsg.RecordBatch: kmsg builds a []kmsg.Record and then
// a second buffer per batch, which doubled the encode cost and allocations
// in BenchmarkAppend; the layout below is the same bytes (the test
// TestBatchMatchesKmsg checks it against kmsg).
//
//	offset  size  field
//	0       8     baseOffset             (not covered by the CRC: patched under the lock)
//	8       4     batchLength            (bytes after this field)
//	12      4     partitionLeaderEpoch   (0)
//	16      1     magic                  (2)
//	17      4     crc                    (CRC-32C of bytes 21..end)
//	21      2     attributes             (0: no compression, not transactional)
//	23      4     lastOffsetDelta
//	27      8     firstTimestamp         (ms)
//	35      8     maxTimestamp           (ms)
//	43      8     producerId             (-1)
//	51      2     producerEpoch          (-1)
//	53      4     baseSequence           (-1)
//	57      4     recordCount
//	61            records: varint length, int8 attributes, varlong timestampDelta,
//	              varint offsetDelta, key, value, headers (zigzag varints, -1 = null)
const (
	batchHeaderSize = 61
	batchLengthEnd  = 12 // baseOffset + batchLength: the prefix batchLength does not count
	magicV2         = 2
	crcStart        = 21
	// maxBatchBytes bounds one encoded batch so that file positions in a
	// segment stay far below the 4 GiB the index's uint32 positions allow.
	maxBatchBytes = 256 << 20

	// Attribute bits of a batch.
	attrCodecMask     = 0x07
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the fixed part of a batch.
type batchHeader struct {
	baseOffset      int64
	length          int32 // batchLength: total size is batchLengthEnd + length
	magic           int8
	crc             uint32
	attributes      int16
	lastOffsetDelta int32
	firstTimestamp  int64
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	count           int32
}

func (h *batchHeader) size() int { return batchLengthEnd + int(h.length) }
func (h *batchHeader) codec() compression.Codec {
	return compression.Codec(h.attributes & attrCodecMask)
}
func (h *batchHeader) lastOffset() int64 { return h.baseOffset + int64(h.lastOffsetDelta) }
func (h *batchHeader) nextOffset() int64 { return h.baseOffset + int64(h.lastOffsetDelta) + 1 }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("commitlog: %w: "+format, append([]any{event.ErrCorruption}, args...)...)
}

// decodeBatchHeader reads the fixed header's fields from b, which holds at
// least batchHeaderSize bytes; it checks nothing.
func decodeBatchHeader(b []byte) batchHeader {
	be := binary.BigEndian
	return batchHeader{
		baseOffset:      int64(be.Uint64(b[0:])),
		length:          int32(be.Uint32(b[8:])),
		magic:           int8(b[16]),
		crc:             be.Uint32(b[17:]),
		attributes:      int16(be.Uint16(b[21:])),
		lastOffsetDelta: int32(be.Uint32(b[23:])),
		firstTimestamp:  int64(be.Uint64(b[27:])),
		maxTimestamp:    int64(be.Uint64(b[35:])),
		producerID:      int64(be.Uint64(b[43:])),
		producerEpoch:   int16(be.Uint16(b[51:])),
		baseSequence:    int32(be.Uint32(b[53:])),
		count:           int32(be.Uint32(b[57:])),
	}
}

// parseBatchHeader reads and sanity-checks the fixed header; b must hold at
// least batchHeaderSize bytes. It does not check the CRC.
func parseBatchHeader(b []byte) (batchHeader, error) {
	if len(b) < batchHeaderSize {
		return batchHeader{}, corruptf("batch header needs %d bytes, have %d", batchHeaderSize, len(b))
	}
	h := decodeBatchHeader(b)
	switch {
	case h.magic != magicV2:
		return h, corruptf("batch magic %d, want 2", h.magic)
	case h.length < batchHeaderSize-batchLengthEnd || h.length > maxBatchBytes:
		return h, corruptf("batch length %d out of range", h.length)
	case h.baseOffset < 0:
		return h, corruptf("negative base offset %d", h.baseOffset)
	case h.count <= 0 || h.lastOffsetDelta != h.count-1:
		// We never write empty or compacted batches, so a gap is damage.
		return h, corruptf("batch of %d records with last offset delta %d", h.count, h.lastOffsetDelta)
	case h.attributes&attrControl != 0 || h.attributes&attrTransactional != 0 || h.codec() > compression.Zstd:
		// Control and transactional batches are refused at append (no
		// transactions here), and codecs past zstd do not exist.
		return h, corruptf("unsupported batch attributes %#x", h.attributes)
	}
	return h, nil
}

// checkCRC verifies the CRC of a whole batch b (b = exactly h.size() bytes).
func checkCRC(h *batchHeader, b []byte) error {
	if got := crc32.Checksum(b[crcStart:], castagnoli); got != h.crc {
		return corruptf("batch at offset %d: crc %#08x, want %#08x", h.baseOffset, got, h.crc)
	}
	return nil
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63) // zigzag, as Kafka's varints
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// bytesLen is the encoded size of a nullable byte field (-1 length = nil).
func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// eventMillis is the timestamp a record gets: the event's, or nowMs when
// the event has none.
func eventMillis(ev *event.Event, nowMs int64) int64 {
	if ev.Timestamp.IsZero() {
		return nowMs
	}
	return ev.Timestamp.UnixMilli()
}

// batchInfo is what the flusher needs to index an encoded batch.
type batchInfo struct {
	count          int
	firstTimestamp int64
	maxTimestamp   int64
	producer       producerFields // id -1 for the log's own batches
}

// appendBatch encodes the events evs[i] for i in idx (all of evs when idx is
// nil) as one batch with base offset 0 and appends it to dst. The CRC does
// not cover the base offset, so the caller patches it later with
// setBaseOffset without recomputing anything.
func appendBatch(dst []byte, evs []event.Event, idx []int32, nowMs int64) ([]byte, batchInfo) {
	count := len(evs)
	if idx != nil {
		count = len(idx)
	}
	at := func(i int) *event.Event {
		if idx != nil {
			return &evs[idx[i]]
		}
		return &evs[i]
	}
	info := batchInfo{count: count, firstTimestamp: eventMillis(at(0), nowMs), producer: producerFields{id: -1}}
	info.maxTimestamp = info.firstTimestamp
	start := len(dst)
	dst = append(dst, make([]byte, batchHeaderSize)...)
	for i := range count {
		ev := at(i)
		ts := eventMillis(ev, nowMs)
		info.maxTimestamp = max(info.maxTimestamp, ts)
		dst = appendRecord(dst, ev, ts-info.firstTimestamp, int64(i))
	}
	h := dst[start:]
	be := binary.BigEndian
	be.PutUint32(h[8:], uint32(len(h)-batchLengthEnd))
	h[16] = magicV2
	be.PutUint32(h[23:], uint32(count-1))
	be.PutUint64(h[27:], uint64(info.firstTimestamp))
	be.PutUint64(h[35:], uint64(info.maxTimestamp))
	be.PutUint64(h[43:], ^uint64(0)) // producerId -1
	be.PutUint16(h[51:], ^uint16(0)) // producerEpoch -1
	be.PutUint32(h[53:], ^uint32(0)) // baseSequence -1
	be.PutUint32(h[57:], uint32(count))
	be.PutUint32(h[17:], crc32.Checksum(h[crcStart:], castagnoli))
	return dst, info
}

func setBaseOffset(batch []byte, base int64) {
	binary.BigEndian.PutUint64(batch, uint64(base))
}

func appendRecord(dst []byte, ev *event.Event, tsDelta, offsetDelta int64) []byte {
	nHeaders := len(ev.Headers)
	headersLen := 0
	for _, h := range ev.Headers {
		headersLen += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	if ev.Source != "" {
		nHeaders++
		headersLen += varintLen(int64(len(event.HeaderSource))) + len(event.HeaderSource) +
			varintLen(int64(len(ev.Source))) + len(ev.Source)
	}
	bodyLen := 1 + varintLen(tsDelta) + varintLen(offsetDelta) + bytesLen(ev.Key) + bytesLen(ev.Value) +
		varintLen(int64(nHeaders)) + headersLen
	dst = binary.AppendVarint(dst, int64(bodyLen))
	dst = append(dst, 0) // record attributes
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, offsetDelta)
	dst = appendBytes(dst, ev.Key)
	dst = appendBytes(dst, ev.Value)
	dst = binary.AppendVarint(dst, int64(nHeaders))
	for _, h := range ev.Headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	if ev.Source != "" {
		dst = binary.AppendVarint(dst, int64(len(event.HeaderSource)))
		dst = append(dst, event.HeaderSource...)
		dst = binary.AppendVarint(dst, int64(len(ev.Source)))
		dst = append(dst, ev.Source...)
	}
	return dst
}

// recordDecoder walks the records of one CRC-checked batch. Decoded byte
// slices and strings alias the batch buffer, which the log never reuses:
// that is what makes the read path copy-free.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	// Fast paths for one- and two-byte varints (attributes, deltas, key,
	// value and header lengths under 8 KiB: nearly every field), the same
	// zig-zag decoding as binary.Varint.
	b := d.b
	if len(b) > 0 && b[0] < 0x80 {
		u := uint64(b[0])
		d.b = b[1:]
		return int64(u>>1) ^ -int64(u&1)
	}
	if len(b) > 1 && b[1] < 0x80 {
		u := uint64(b[0]&0x7f) | uint64(b[1])<<7
		d.b = b[2:]
		return int64(u>>1) ^ -int64(u&1)
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = corruptf("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a nullable byte field.
func (d *recordDecoder) bytes() []byte {
	n := d.varint()
	if d.err != nil {
		return nil
	}
	if n == -1 {
		return nil
	}
	if n < 0 || n > int64(len(d.b)) {
		d.err = corruptf("field length %d, %d bytes left", n, len(d.b))
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

// recordsOf returns the records section of the whole, CRC-checked batch b:
// the bytes after the header, decompressed into a fresh buffer when the
// batch is compressed (which the returned events may then alias).
func recordsOf(h *batchHeader, b []byte) ([]byte, error) {
	payload := b[batchHeaderSize:h.size()]
	if h.codec() == compression.None {
		return payload, nil
	}
	out, err := compression.Decode(make([]byte, 0, 4*len(payload)), h.codec(), payload, maxBatchBytes)
	if err != nil {
		return nil, corruptf("batch at offset %d: %v", h.baseOffset, err)
	}
	return out, nil
}

// decodeRecords appends the records (the section recordsOf returns) of the
// batch h with offsets >= from to evs, at most limit of them, and returns
// the extended slice and the number of record bytes consumed. It stops early
// once it has returned limit events or byteBudget record bytes (after at
// least one event). hdrs is scratch capacity for headers.
func decodeRecords(evs []event.Event, hdrs *[]event.Header, h *batchHeader, records []byte, topic string,
	partition int32, from int64, limit, byteBudget int,
) ([]event.Event, int, error) {
	d := recordDecoder{b: records}
	consumed := 0
	for i := range int(h.count) {
		length := d.varint()
		if d.err != nil {
			return evs, consumed, d.err
		}
		if length < 0 || length > int64(len(d.b)) {
			return evs, consumed, corruptf("record %d of batch %d: length %d, %d bytes left", i, h.baseOffset, length, len(d.b))
		}
		rec := recordDecoder{b: d.b[:length]}
		d.b = d.b[length:]
		if len(rec.b) < 1 {
			return evs, consumed, corruptf("empty record")
		}
		rec.b = rec.b[1:] // attributes: unused in v2
		tsDelta := rec.varint()
		offsetDelta := rec.varint()
		if rec.err == nil && offsetDelta != int64(i) {
			return evs, consumed, corruptf("record %d of batch %d has offset delta %d", i, h.baseOffset, offsetDelta)
		}
		ev := event.Event{Topic: topic, Partition: partition, Offset: h.baseOffset + offsetDelta}
		ev.Key = rec.bytes()
		ev.Value = rec.bytes()
		nHeaders := rec.varint()
		if rec.err == nil && (nHeaders < 0 || nHeaders > int64(len(rec.b))) {
			rec.err = corruptf("%d headers in %d bytes", nHeaders, len(rec.b))
		}
		first := len(*hdrs)
		for range nHeaders {
			key := rec.bytes()
			value := rec.bytes()
			if rec.err != nil {
				break
			}
			if key == nil {
				rec.err = corruptf("null header key")
				break
			}
			*hdrs = append(*hdrs, event.Header{Key: unsafeString(key), Value: value})
		}
		if rec.err == nil && len(rec.b) != 0 {
			rec.err = corruptf("%d trailing bytes in record", len(rec.b))
		}
		if rec.err != nil {
			return evs, consumed, fmt.Errorf("record %d of batch %d: %w", i, h.baseOffset, rec.err)
		}
		if ev.Offset < from {
			*hdrs = (*hdrs)[:first]
			continue
		}
		if n := len(*hdrs); n > first {
			ev.Headers = (*hdrs)[first:n:n]
			if last := ev.Headers[len(ev.Headers)-1]; last.Key == event.HeaderSource {
				ev.Source = unsafeString(last.Value)
				ev.Headers = ev.Headers[:len(ev.Headers)-1]
				if len(ev.Headers) == 0 {
					ev.Headers = nil
				}
			}
		}
		ev.Timestamp = time.UnixMilli(h.firstTimestamp + tsDelta).UTC()
		evs = append(evs, ev)
		consumed += int(length)
		if limit--; limit <= 0 || consumed >= byteBudget {
			return evs, consumed, nil
		}
	}
	if len(d.b) != 0 {
		return evs, consumed, corruptf("%d trailing bytes after the records of batch %d", len(d.b), h.baseOffset)
	}
	return evs, consumed, nil
}

// unsafeString views b as a string without copying. Safe because the read
// buffers that b points into are never written after the read returns.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// decodeBatch decodes one whole batch at the start of buf: the fuzz target's
// entry point and the reference the read path is tested against. It returns
// the events, the batch size, and an error wrapping event.ErrCorruption when
// buf does not start with a valid batch.
func decodeBatch(buf []byte, topic string, partition int32) ([]event.Event, int, error) {
	h, err := parseBatchHeader(buf)
	if err != nil {
		return nil, 0, err
	}
	if h.size() > len(buf) {
		return nil, 0, corruptf("batch of %d bytes, %d available", h.size(), len(buf))
	}
	b := buf[:h.size()]
	if err := checkCRC(&h, b); err != nil {
		return nil, 0, err
	}
	records, err := recordsOf(&h, b)
	if err != nil {
		return nil, 0, err
	}
	var hdrs []event.Header
	evs, _, err := decodeRecords(make([]event.Event, 0, min(int(h.count), len(records))), &hdrs, &h, records, topic, partition, 0, int(h.count), len(records))
	if err != nil {
		return nil, 0, err
	}
	return evs, h.size(), nil
}
