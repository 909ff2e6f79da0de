package commitlog

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Idempotent producers (Kafka's KIP-98 without transactions): a batch with
// a producer id >= 0 carries the producer's epoch and the sequence number of
// its first record. Per partition the log keeps, for each producer id, the
// latest epoch and its last few batches, and checks every new batch against
// them under the partition lock, where offsets are assigned:
//
//   - a lower epoch than the latest is fenced (ErrProducerFenced);
//   - a higher epoch must start at sequence 0;
//   - within an epoch, a batch equal to a remembered one is a duplicate (a
//     client retry): nothing is appended and the original offset returned,
//     once the original is durable;
//   - any other batch must start right after the last one
//     (ErrOutOfOrderSequence); an unknown producer must start at 0
//     (ErrUnknownProducer, which makes clients reset their id).
//
// The state is rebuilt at Open from the batch headers of every segment.

// Errors of the idempotence checks.
var (
	ErrOutOfOrderSequence = errors.New("commitlog: out of order sequence number")
	ErrProducerFenced     = errors.New("commitlog: producer epoch is older than the latest")
	ErrUnknownProducer    = errors.New("commitlog: unknown producer id")
)

// rememberedBatches is how many recent batches per producer are kept for
// duplicate detection: Kafka's max.in.flight.requests.per.connection bound
// for idempotence is 5.
const rememberedBatches = 5

// producerExpiry bounds the state: a producer that has not appended to a
// partition for this long is forgotten there (Kafka's
// producer.id.expiration.ms default); a later batch of it must then start a
// new epoch or is refused as unknown. Every client start takes a new
// producer id, so without expiry the map would only grow.
const producerExpiry = 24 * time.Hour

// producerSweepEvery is how many applied batches pass between sweeps of
// expired producers.
const producerSweepEvery = 4096

type producerState struct {
	lastAppendMs int64 // wall clock of the latest batch (the Open time for recovered ones)
	epoch        int16
	batches      [rememberedBatches]producerBatch // ring, newest at (next-1)
	next         int
	n            int
}

type producerBatch struct {
	firstSeq, lastSeq int32
	base              int64
	group             *commitGroup // nil once recovered from disk
}

func (s *producerState) last() *producerBatch {
	return &s.batches[(s.next+rememberedBatches-1)%rememberedBatches]
}

func (s *producerState) remember(b producerBatch) {
	s.batches[s.next] = b
	s.next = (s.next + 1) % rememberedBatches
	s.n = min(s.n+1, rememberedBatches)
}

func (s *producerState) find(firstSeq, lastSeq int32) *producerBatch {
	for i := range s.n {
		b := &s.batches[(s.next+rememberedBatches-1-i)%rememberedBatches]
		if b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b
		}
	}
	return nil
}

// lastSequence is the sequence of the last record of a batch of count
// records from firstSeq, wrapping past MaxInt32 to 0 as Kafka does.
func lastSequence(firstSeq int32, count int) int32 {
	return int32((int64(firstSeq) + int64(count) - 1) % (math.MaxInt32 + 1))
}

func nextSequence(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// producerFields are the idempotence fields of a batch (id -1: none).
type producerFields struct {
	id       int64
	epoch    int16
	sequence int32
}

// checkProducersLocked checks the batches of one submit against the
// producer state without changing it. It returns a duplicate's original
// base offset and group when every batch is a duplicate (dup true), or an
// error when any is out of order or fenced.
func (p *partition) checkProducersLocked(spans []batchSpan) (dupBase int64, dupGroup *commitGroup, dup bool, err error) {
	duplicates := 0
	for i, s := range spans {
		pf := s.info.producer
		if pf.id < 0 {
			continue
		}
		st := p.producers[pf.id]
		last := lastSequence(pf.sequence, s.info.count)
		switch {
		case st == nil && pf.sequence != 0:
			return 0, nil, false, fmt.Errorf("%w %d (sequence %d)", ErrUnknownProducer, pf.id, pf.sequence)
		case st == nil:
		case pf.epoch < st.epoch:
			return 0, nil, false, fmt.Errorf("%w: producer %d epoch %d, latest %d", ErrProducerFenced, pf.id, pf.epoch, st.epoch)
		case pf.epoch > st.epoch:
			if pf.sequence != 0 {
				return 0, nil, false, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", ErrOutOfOrderSequence, pf.id, pf.epoch, pf.sequence)
			}
		default:
			if b := st.find(pf.sequence, last); b != nil {
				if duplicates == i {
					dupBase, dupGroup = b.base, b.group
				}
				duplicates++
				continue
			}
			if want := nextSequence(st.last().lastSeq); st.n == 0 || pf.sequence != want {
				return 0, nil, false, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected %d", ErrOutOfOrderSequence, pf.id, pf.epoch, pf.sequence, want)
			}
		}
	}
	if duplicates == 0 {
		return 0, nil, false, nil
	}
	if duplicates != len(spans) {
		return 0, nil, false, fmt.Errorf("%w: a request mixes retried and new batches", ErrOutOfOrderSequence)
	}
	return dupBase, dupGroup, true, nil
}

// applyProducerLocked records an accepted batch (or one found at recovery,
// with a nil group).
func (p *partition) applyProducerLocked(pf producerFields, count int, base int64, g *commitGroup, nowMs int64) {
	if pf.id < 0 {
		return
	}
	if p.producers == nil {
		p.producers = map[int64]*producerState{}
	}
	st := p.producers[pf.id]
	if st == nil || pf.epoch > st.epoch {
		st = &producerState{epoch: pf.epoch}
		p.producers[pf.id] = st
	}
	st.lastAppendMs = max(st.lastAppendMs, nowMs)
	st.remember(producerBatch{firstSeq: pf.sequence, lastSeq: lastSequence(pf.sequence, count), base: base, group: g})
	if p.producerApplies++; p.producerApplies%producerSweepEvery == 0 {
		p.expireProducersLocked(nowMs)
	}
}

// forgetProducerBatchesLocked takes back the remembered batches at or past
// end, the offsets a failed write gave back (rewind): the client retries
// them with the same sequences, and they must then be appended, not taken
// for duplicates of batches the log does not hold. Bases grow with the
// ring, so the batches to forget are the newest. A producer left with none
// is forgotten, so that its retry from sequence 0 is a first batch again.
func (p *partition) forgetProducerBatchesLocked(end int64) {
	for id, st := range p.producers {
		for st.n > 0 && st.last().base >= end {
			st.next = (st.next + rememberedBatches - 1) % rememberedBatches
			st.n--
		}
		if st.n == 0 {
			delete(p.producers, id)
		}
	}
}

// expireProducersLocked forgets producers idle for producerExpiry.
func (p *partition) expireProducersLocked(nowMs int64) {
	cutoff := nowMs - producerExpiry.Milliseconds()
	for id, st := range p.producers {
		if st.lastAppendMs < cutoff {
			delete(p.producers, id)
		}
	}
}

// rebuildProducers walks the batch headers of a recovered segment (61 bytes
// read per batch; segments in order) so that idempotence survives a
// restart. Kafka keeps snapshot files to avoid this walk; here it costs one
// small read per batch at Open.
func (p *partition) rebuildProducers(seg *segment) error {
	nowMs := p.l.now().UnixMilli()
	hb := make([]byte, batchHeaderSize)
	for pos := int64(0); pos < seg.readable; {
		if err := readFull(seg, hb, pos); err != nil {
			return err
		}
		h, err := parseBatchHeader(hb)
		if err != nil {
			return fmt.Errorf("byte %d of %s: %w", pos, seg.logPath, err)
		}
		// Recovered producers count as seen now: batch timestamps are the
		// client's (a migration may write old ones), not append times.
		p.applyProducerLocked(producerFields{h.producerID, h.producerEpoch, h.baseSequence}, int(h.count), h.baseOffset, nil, nowMs)
		pos += int64(h.size())
	}
	return nil
}
