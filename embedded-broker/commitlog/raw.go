package commitlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/bridgeio/bridge/embedded-broker/internal/compression"
)

// Errors of AppendBatches' validation: the client's bytes are wrong, nothing
// was appended. Each maps onto one Kafka error code.
var (
	// ErrCorruptBatch: framing or CRC does not hold (Kafka's CORRUPT_MESSAGE).
	ErrCorruptBatch = errors.New("commitlog: corrupt record batch")
	// ErrInvalidBatch: well-framed but breaks a rule of the format, e.g.
	// record offsets that do not count up from 0 (Kafka's INVALID_RECORD).
	ErrInvalidBatch = errors.New("commitlog: invalid record batch")
	// ErrUnsupportedBatch: magic other than 2, transactional or control
	// batches (Kafka's UNSUPPORTED_FOR_MESSAGE_FORMAT).
	ErrUnsupportedBatch = errors.New("commitlog: unsupported record batch")
)

// BatchMeta describes one validated client batch.
type BatchMeta struct {
	Records        int32
	FirstTimestamp int64 // ms
	MaxTimestamp   int64 // ms
	ProducerID     int64 // -1 when not idempotent
	ProducerEpoch  int16
	BaseSequence   int32
	Codec          compression.Codec
	Size           int // bytes of the batch
}

// ValidateBatches checks a Produce request's records field: one or more
// whole Kafka RecordBatch v2 in a row, each with a matching CRC-32C, a
// known codec, no transactional or control flag, at least one record, a
// last offset delta of count-1, and records (decompressed when needed) that
// parse exactly: lengths, offset deltas 0..count-1, non-null header keys,
// no trailing bytes. It returns one BatchMeta per batch, or an error
// wrapping ErrCorruptBatch, ErrInvalidBatch, ErrUnsupportedBatch or
// ErrBatchTooLarge. It does not modify records.
func ValidateBatches(records []byte) ([]BatchMeta, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no batches", ErrInvalidBatch)
	}
	if len(records) > maxBatchBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrBatchTooLarge, len(records))
	}
	var metas []BatchMeta
	for rest := records; len(rest) > 0; {
		m, err := validateBatch(rest)
		if err != nil {
			return nil, fmt.Errorf("batch %d (byte %d): %w", len(metas), len(records)-len(rest), err)
		}
		metas = append(metas, m)
		rest = rest[m.Size:]
	}
	return metas, nil
}

func validateBatch(b []byte) (BatchMeta, error) {
	if len(b) < batchLengthEnd+5 {
		return BatchMeta{}, fmt.Errorf("%w: %d bytes, a batch header needs %d", ErrCorruptBatch, len(b), batchHeaderSize)
	}
	if magic := int8(b[16]); magic != magicV2 {
		return BatchMeta{}, fmt.Errorf("%w: magic %d (only record batch v2 is accepted)", ErrUnsupportedBatch, magic)
	}
	if len(b) < batchHeaderSize {
		return BatchMeta{}, fmt.Errorf("%w: %d bytes, a batch header needs %d", ErrCorruptBatch, len(b), batchHeaderSize)
	}
	be := binary.BigEndian
	length := int64(int32(be.Uint32(b[8:])))
	if length < batchHeaderSize-batchLengthEnd || batchLengthEnd+length > int64(len(b)) {
		return BatchMeta{}, fmt.Errorf("%w: batch length %d, %d bytes available", ErrCorruptBatch, length, len(b)-batchLengthEnd)
	}
	b = b[:batchLengthEnd+length]
	if got, want := crc32.Checksum(b[crcStart:], castagnoli), be.Uint32(b[17:]); got != want {
		return BatchMeta{}, fmt.Errorf("%w: crc %#08x, header says %#08x", ErrCorruptBatch, got, want)
	}
	h := decodeBatchHeader(b)
	m := BatchMeta{Records: h.count, FirstTimestamp: h.firstTimestamp, MaxTimestamp: h.maxTimestamp,
		ProducerID: h.producerID, ProducerEpoch: h.producerEpoch, BaseSequence: h.baseSequence, Codec: h.codec(), Size: len(b)}
	switch {
	case h.attributes&attrTransactional != 0:
		return m, fmt.Errorf("%w: transactional batch (transactions are not supported)", ErrUnsupportedBatch)
	case h.attributes&attrControl != 0:
		return m, fmt.Errorf("%w: control batch", ErrUnsupportedBatch)
	case h.codec() > compression.Zstd:
		return m, fmt.Errorf("%w: compression codec %d", ErrUnsupportedBatch, h.codec())
	case h.count <= 0 || h.lastOffsetDelta != h.count-1:
		return m, fmt.Errorf("%w: %d records with last offset delta %d", ErrInvalidBatch, h.count, h.lastOffsetDelta)
	case h.producerID < -1 || h.producerID >= 0 && (h.producerEpoch < 0 || h.baseSequence < 0):
		return m, fmt.Errorf("%w: producer id %d, epoch %d, base sequence %d", ErrInvalidBatch, h.producerID, h.producerEpoch, h.baseSequence)
	}
	records, err := recordsOf(&h, b)
	if err != nil {
		return m, fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	if err := walkRecords(records, int(h.count)); err != nil {
		return m, fmt.Errorf("%w: %v", ErrInvalidBatch, err)
	}
	return m, nil
}

// walkRecords checks that records holds exactly count well-formed records
// with offset deltas 0..count-1, without building events.
func walkRecords(records []byte, count int) error {
	d := recordDecoder{b: records}
	for i := range count {
		length := d.varint()
		if d.err != nil {
			return fmt.Errorf("record %d: %v", i, d.err)
		}
		if length < 1 || length > int64(len(d.b)) {
			return fmt.Errorf("record %d: length %d, %d bytes left", i, length, len(d.b))
		}
		rec := recordDecoder{b: d.b[1:length]} // attributes byte skipped
		d.b = d.b[length:]
		rec.varint() // timestamp delta
		if delta := rec.varint(); rec.err == nil && delta != int64(i) {
			return fmt.Errorf("record %d: offset delta %d", i, delta)
		}
		rec.bytes() // key
		rec.bytes() // value
		n := rec.varint()
		if rec.err == nil && (n < 0 || n > int64(len(rec.b))) {
			return fmt.Errorf("record %d: %d headers in %d bytes", i, n, len(rec.b))
		}
		for range n {
			if key := rec.bytes(); rec.err == nil && key == nil {
				return fmt.Errorf("record %d: null header key", i)
			}
			rec.bytes()
		}
		if rec.err != nil {
			return fmt.Errorf("record %d: %v", i, rec.err)
		}
		if len(rec.b) != 0 {
			return fmt.Errorf("record %d: %d trailing bytes", i, len(rec.b))
		}
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%d bytes after the last record", len(d.b))
	}
	return nil
}

// AppendBatches appends a Produce request's records field (see
// ValidateBatches) to one partition as it is: the bytes on disk are the
// client's, except the base offset (outside the CRC), which gets the
// partition's next offset, and the partition leader epoch, set to 0. Producer
// id, epoch, sequence, compression and timestamps are kept. The batches of
// one call are consecutive in the partition. It returns the first batch's
// base offset once all are durable under the fsync policy (Append's
// contract); validation errors wrap the sentinels ValidateBatches names and
// append nothing.
func (l *Log) AppendBatches(ctx context.Context, topic string, partition int32, records []byte) (int64, error) {
	pending, err := l.SubmitBatches(topic, partition, records)
	if err != nil {
		return 0, err
	}
	return pending.Wait(ctx)
}

// PendingAppend is a submitted AppendBatches whose durability is awaited
// by Wait.
type PendingAppend struct {
	base int64
	g    *commitGroup
}

// Wait blocks until the batches are durable under the fsync policy and
// returns the first one's base offset. When ctx ends first, it returns
// ctx.Err() and the batches may or may not be appended.
func (a PendingAppend) Wait(ctx context.Context) (int64, error) {
	if err := a.g.wait(ctx); err != nil {
		return 0, err
	}
	return a.base, nil
}

// SubmitBatches is the first half of AppendBatches: it validates records,
// runs the idempotence checks and assigns offsets, without waiting for the
// write. Submits to a partition are appended in the order they return, so
// a caller may submit several requests and wait for them in order (a Kafka
// connection's pipelined produce requests). records is copied; its leader
// epoch field is zeroed in place.
func (l *Log) SubmitBatches(topic string, partition int32, records []byte) (PendingAppend, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return PendingAppend{}, err
	}
	metas, err := ValidateBatches(records)
	if err != nil {
		return PendingAppend{}, fmt.Errorf("commitlog: append %s/%d: %w", topic, partition, err)
	}
	spans := make([]batchSpan, len(metas))
	pos := 0
	for i, m := range metas {
		// Zero the partition leader epoch (bytes 12-15, outside the CRC):
		// it is the broker's field, and this log has a single leader.
		binary.BigEndian.PutUint32(records[pos+12:], 0)
		spans[i] = batchSpan{pos: pos, size: m.Size, info: batchInfo{count: int(m.Records), firstTimestamp: m.FirstTimestamp, maxTimestamp: m.MaxTimestamp,
			producer: producerFields{id: m.ProducerID, epoch: m.ProducerEpoch, sequence: m.BaseSequence}}}
		pos += m.Size
	}
	if l.closing.Load() {
		return PendingAppend{}, ErrClosed
	}
	base, g, err := p.submit(records, spans)
	if err != nil {
		return PendingAppend{}, fmt.Errorf("commitlog: append %s/%d: %w", p.topic, p.id, err)
	}
	return PendingAppend{base: base, g: g}, nil
}

// BatchRange is a byte range of one segment file holding whole batches,
// pinned until Release: retention cannot close the file under a reader.
// It is for one goroutine.
type BatchRange struct {
	p        *partition
	seg      *segment
	pos, len int64
}

// Len is the range's size in bytes; 0 when there was nothing to read.
func (r *BatchRange) Len() int64 { return r.len }

// ReadAt reads from the range; off is relative to its start.
func (r *BatchRange) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off >= r.len {
		return 0, io.EOF
	}
	n := min(int64(len(b)), r.len-off)
	got, err := r.seg.log.ReadAt(b[:n], r.pos+off)
	if got == int(n) {
		err = nil
		if n < int64(len(b)) {
			err = io.EOF
		}
	}
	return got, err
}

// File returns the segment's operating-system file and the range's
// absolute position in it, for a copy that bypasses user space (sendfile).
// ok is false when the log is not on the OS file system. The caller must not
// use the file's own position (it is shared) nor close it.
func (r *BatchRange) File() (f *os.File, pos int64, ok bool) {
	if r.seg == nil {
		return nil, 0, false
	}
	if of, isOS := r.seg.log.(interface{ OSFile() *os.File }); isOS {
		return of.OSFile(), r.pos, true
	}
	return nil, 0, false
}

// Release unpins the segment. Idempotent.
func (r *BatchRange) Release() {
	if r.seg != nil {
		r.p.release(r.seg)
		r.seg = nil
	}
}

// PartitionState is a partition's offsets at one moment.
type PartitionState struct {
	LogStart      int64 // first readable offset
	HighWatermark int64 // next offset to be written and read
}

// ReadBatches returns the whole batches that hold offsets from `from` on,
// starting with the batch that contains from (which may also hold earlier
// records, as Kafka's Fetch does), cut on a batch boundary within maxBytes,
// but at least one batch when one exists. The range lies in one segment: a
// caller wanting more fetches again from the offset after it. from equal to
// the high watermark gives an empty range; outside [LogStart, HighWatermark]
// an *OffsetOutOfRangeError. The range must be released.
func (l *Log) ReadBatches(topic string, partition int32, from int64, maxBytes int) (BatchRange, PartitionState, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return BatchRange{}, PartitionState{}, err
	}
	return p.readBatches(from, maxBytes)
}

func (p *partition) readBatches(from int64, maxBytes int) (BatchRange, PartitionState, error) {
	p.mu.Lock()
	st := PartitionState{LogStart: p.segments[0].base, HighWatermark: p.visible}
	if from == p.visible && from >= st.LogStart {
		p.mu.Unlock()
		return BatchRange{}, st, nil
	}
	seg, err := p.locateLocked(from)
	if err != nil {
		p.mu.Unlock()
		return BatchRange{}, st, err
	}
	// The index entries are only appended to, so the slice read here stays
	// valid outside the lock.
	offsets, limit := seg.offsets, seg.readable
	p.mu.Unlock()
	r := BatchRange{p: p, seg: seg}
	start, end, err := p.cutRange(seg, offsets, limit, from, int64(maxBytes))
	if err != nil {
		r.Release()
		return BatchRange{}, st, fmt.Errorf("commitlog: read batches %s/%d at offset %d: %w", p.topic, p.id, from, err)
	}
	r.pos, r.len = start, end-start
	if r.len == 0 {
		r.Release()
	}
	return r, st, nil
}

// cutRange finds [start, end): start is the position of the batch holding
// from; end the furthest batch boundary with end-start <= maxBytes (or the
// end of the first batch). Index entries are batch starts, so it jumps by
// index and reads batch headers only across the last stretch.
func (p *partition) cutRange(seg *segment, offsets []indexEntry, limit, from, maxBytes int64) (int64, int64, error) {
	w := headerWalker{seg: seg, limit: limit, window: int64(p.l.opts.IndexIntervalBytes) + 8<<10}
	start := lookupPosition(offsets, uint32(from-seg.base))
	for {
		base, size, err := w.batchAt(start)
		if err != nil {
			return 0, 0, err
		}
		if base > from {
			return 0, 0, corruptf("no batch of %s holds offset %d (next starts at %d)", seg.logPath, from, base)
		}
		last, err := w.lastOffsetAt(start)
		if err != nil {
			return 0, 0, err
		}
		if last >= from {
			end := start + size
			// Jump to the furthest indexed batch start within budget.
			for i := len(offsets) - 1; i >= 0 && int64(offsets[i].pos) > end; i-- {
				if int64(offsets[i].pos)-start <= maxBytes {
					end = int64(offsets[i].pos)
					break
				}
			}
			for end < limit {
				_, size, err := w.batchAt(end)
				if err != nil {
					return 0, 0, err
				}
				if end+size-start > maxBytes {
					break
				}
				end += size
			}
			return start, end, nil
		}
		start += size
		if start >= limit {
			return 0, 0, corruptf("offset %d not found in %s before byte %d", from, seg.logPath, limit)
		}
	}
}

// headerWalker reads batch headers through a window buffer, so that walking
// many small batches costs one read per window.
type headerWalker struct {
	seg              *segment
	limit, window    int64
	buf              []byte
	bufStart, bufEnd int64
}

func (w *headerWalker) header(pos int64) ([]byte, error) {
	const need = 27 // base offset, length, epoch, magic, crc, attributes, last offset delta
	if pos+need > w.limit {
		return nil, corruptf("batch header at byte %d of %s runs past %d", pos, w.seg.logPath, w.limit)
	}
	if pos < w.bufStart || pos+need > w.bufEnd {
		n := min(w.window, w.limit-pos)
		if int64(cap(w.buf)) < n {
			w.buf = make([]byte, n)
		}
		w.buf = w.buf[:n]
		if err := readFull(w.seg, w.buf, pos); err != nil {
			return nil, err
		}
		w.bufStart, w.bufEnd = pos, pos+n
	}
	return w.buf[pos-w.bufStart:], nil
}

func (w *headerWalker) batchAt(pos int64) (base, size int64, err error) {
	h, err := w.header(pos)
	if err != nil {
		return 0, 0, err
	}
	base = int64(binary.BigEndian.Uint64(h))
	size = batchLengthEnd + int64(int32(binary.BigEndian.Uint32(h[8:])))
	if size < batchHeaderSize || pos+size > w.limit {
		return 0, 0, corruptf("batch at byte %d of %s: size %d past %d", pos, w.seg.logPath, size, w.limit)
	}
	return base, size, nil
}

func (w *headerWalker) lastOffsetAt(pos int64) (int64, error) {
	h, err := w.header(pos)
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(h)) + int64(int32(binary.BigEndian.Uint32(h[23:]))), nil
}

// Changed returns a channel closed when the partition's high watermark next
// moves (or the partition is reopened): the long-poll wake-up of Fetch.
func (l *Log) Changed(topic string, partition int32) (<-chan struct{}, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return nil, err
	}
	return p.waitChan(), nil
}

// Done is closed when the log closes; long polls select on it.
func (l *Log) Done() <-chan struct{} { return l.stop }

// State returns a partition's offsets.
func (l *Log) State(topic string, partition int32) (PartitionState, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return PartitionState{}, err
	}
	start, end := p.offsets()
	return PartitionState{LogStart: start, HighWatermark: end}, nil
}

// MaxProducerID is the largest idempotent producer id found in any
// partition (-1 when none), so that ids handed out after a restart never
// collide with a producer the log remembers.
func (l *Log) MaxProducerID() int64 {
	id := int64(-1)
	for _, p := range l.allPartitions() {
		p.mu.Lock()
		for pid := range p.producers {
			id = max(id, pid)
		}
		p.mu.Unlock()
	}
	return id
}
