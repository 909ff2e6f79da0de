package commitlog

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bridgeio/bridge/event"
)

// encodeBufs recycles batch encode buffers: an encoded batch lives only
// until submit copies it into the commit group.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// Append picks each event's partition with the default partitioner (see
// Partition; events with a nil key all go to one sticky partition chosen
// round-robin per call) and appends them. It returns every event's
// position, in input order, once all are durable under the fsync policy.
// Events with a zero Timestamp get Now(); timestamps are stored in
// milliseconds. The events of one call that land in one partition are
// consecutive there. evs is not modified.
//
// If ctx ends while waiting, Append returns ctx.Err() and the events may or
// may not have been appended. A failed data write (a full disk) fails the
// appends it concerns and the partition accepts appends again once space
// is freed; an fsync failure fails the partition for good (its on-disk
// tail is unknown until a reopen recovers it).
func (l *Log) Append(ctx context.Context, topic string, evs []event.Event) ([]event.Position, error) {
	t, err := l.topic(topic)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, nil
	}
	n := len(t.partitions)
	if n == 1 {
		// No hashing needed: every event lands in partition 0.
		base, err := l.appendTo(ctx, t.partitions[0], evs, nil)
		if err != nil {
			return nil, err
		}
		positions := make([]event.Position, len(evs))
		for i := range positions {
			positions[i] = event.Position{Partition: 0, Offset: base + int64(i)}
		}
		return positions, nil
	}
	sticky := int32(-1)
	chosen := make([]int32, len(evs))
	counts := make([]int32, n)
	for i := range evs {
		p := Partition(evs[i].Key, n)
		if p < 0 {
			if sticky < 0 {
				sticky = int32((t.sticky.Add(1) - 1) % uint32(n))
			}
			p = sticky
		}
		chosen[i] = p
		counts[p]++
	}
	positions := make([]event.Position, len(evs))
	if counts[chosen[0]] == int32(len(evs)) {
		// Common case: one partition, no index list needed.
		base, err := l.appendTo(ctx, t.partitions[chosen[0]], evs, nil)
		if err != nil {
			return nil, err
		}
		for i := range positions {
			positions[i] = event.Position{Partition: chosen[0], Offset: base + int64(i)}
		}
		return positions, nil
	}
	// Group the indexes by partition, keeping input order inside each.
	idx := make([][]int32, n)
	for i, p := range chosen {
		if idx[p] == nil {
			idx[p] = make([]int32, 0, counts[p])
		}
		idx[p] = append(idx[p], int32(i))
	}
	type waiting struct {
		part int32
		base int64
		g    *commitGroup
	}
	var waits []waiting
	var firstErr error
	for p, list := range idx {
		if list == nil {
			continue
		}
		base, g, err := l.encodeAndSubmit(t.partitions[p], evs, list)
		if err != nil {
			firstErr = err
			break
		}
		waits = append(waits, waiting{part: int32(p), base: base, g: g})
	}
	// Wait for everything submitted, even after a failure, so no group is
	// abandoned mid-flight by this call's bookkeeping.
	for _, w := range waits {
		if err := w.g.wait(ctx); err != nil && firstErr == nil {
			firstErr = err
		}
		for rank, i := range idx[w.part] {
			positions[i] = event.Position{Partition: w.part, Offset: w.base + int64(rank)}
		}
	}
	if firstErr != nil {
		return nil, fmt.Errorf("commitlog: append %s: %w", topic, firstErr)
	}
	return positions, nil
}

// AppendPartition appends evs, in order, to one partition and returns the
// offset of the first once all are durable under the fsync policy. The
// contract is Append's.
func (l *Log) AppendPartition(ctx context.Context, topic string, partition int32, evs []event.Event) (int64, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return 0, err
	}
	if len(evs) == 0 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.end, nil
	}
	return l.appendTo(ctx, p, evs, nil)
}

func (l *Log) appendTo(ctx context.Context, p *partition, evs []event.Event, idx []int32) (int64, error) {
	base, g, err := l.encodeAndSubmit(p, evs, idx)
	if err != nil {
		return 0, fmt.Errorf("commitlog: append %s/%d: %w", p.topic, p.id, err)
	}
	if err := g.wait(ctx); err != nil {
		return 0, err
	}
	return base, nil
}

// encodeAndSubmit encodes before taking any lock (the expensive part runs
// in parallel across appenders) and then queues the batch.
func (l *Log) encodeAndSubmit(p *partition, evs []event.Event, idx []int32) (int64, *commitGroup, error) {
	if l.closing.Load() {
		return 0, nil, ErrClosed
	}
	bufp := encodeBufs.Get().(*[]byte)
	enc, info := appendBatch((*bufp)[:0], evs, idx, l.now().UnixMilli())
	defer func() {
		// Huge one-off batches are not worth keeping around.
		if cap(enc) <= 4<<20 {
			*bufp = enc[:0]
			encodeBufs.Put(bufp)
		}
	}()
	if len(enc) > maxBatchBytes {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrBatchTooLarge, len(enc))
	}
	return p.submit(enc, []batchSpan{{pos: 0, size: len(enc), info: info}})
}

// Read returns events starting at offset from without waiting: at most
// maxEvents and about maxBytes (always at least one event when one exists).
// from == end returns (nil, nil); from < start or from > end returns an
// *OffsetOutOfRangeError. Returned events have Topic, Partition, Offset,
// Timestamp and Source set; their byte slices alias a buffer the log never
// reuses, so callers may keep them. Damage wraps event.ErrCorruption.
func (l *Log) Read(topic string, partition int32, from int64, maxEvents, maxBytes int) ([]event.Event, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return nil, err
	}
	return p.read(from, maxEvents, maxBytes)
}

// Fetch is Read that long-polls: it blocks until at least one event exists
// at from, or ctx is done (then it returns nil, ctx.Err()), or the log
// closes (ErrClosed). Waiting costs nothing: the partition closes a channel
// when its end moves.
func (l *Log) Fetch(ctx context.Context, topic string, partition int32, from int64, maxEvents, maxBytes int) ([]event.Event, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return nil, err
	}
	return l.fetch(ctx, p, from, maxEvents, maxBytes)
}

func (l *Log) fetch(ctx context.Context, p *partition, from int64, maxEvents, maxBytes int) ([]event.Event, error) {
	for {
		// Take the channel before reading, so an append between the read
		// and the wait still wakes us.
		ch := p.waitChan()
		evs, err := p.read(from, maxEvents, maxBytes)
		if err != nil || len(evs) > 0 {
			return evs, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.stop:
			return nil, ErrClosed
		}
	}
}

// Offsets returns the partition's start offset (the first readable) and
// end offset (the next to be written).
func (l *Log) Offsets(topic string, partition int32) (start, end int64, err error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return 0, 0, err
	}
	start, end = p.offsets()
	return start, end, nil
}

// OffsetForTime returns the first offset whose timestamp is >= t, or the end
// offset when there is none, using the time index.
func (l *Log) OffsetForTime(topic string, partition int32, t time.Time) (int64, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return 0, err
	}
	return p.offsetForTime(t.UnixMilli())
}

// Reader is a cursor over one partition, for one goroutine (a pipeline's
// partition worker). It is not safe for concurrent use.
type Reader struct {
	l    *Log
	p    *partition
	next int64
}

// NewReader returns a Reader positioned at from. from is checked lazily,
// by Next, so a reader may be created for an offset retention later removes.
func (l *Log) NewReader(topic string, partition int32, from int64) (*Reader, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return nil, err
	}
	return &Reader{l: l, p: p, next: from}, nil
}

// Next long-polls like Fetch from the reader's offset and advances past the
// events it returns.
func (r *Reader) Next(ctx context.Context, maxEvents, maxBytes int) ([]event.Event, error) {
	evs, err := r.l.fetch(ctx, r.p, r.next, maxEvents, maxBytes)
	if len(evs) > 0 {
		r.next = evs[len(evs)-1].Offset + 1
	}
	return evs, err
}

// Offset is the next offset Next will return.
func (r *Reader) Offset() int64 { return r.next }

// SetOffset moves the reader; the offset is checked by the next Next. (The
// brief named it Seek, but go vet's stdmethods check reserves that name for
// io.Seeker's signature.)
func (r *Reader) SetOffset(offset int64) { r.next = offset }
