package commitlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

// Truncation reports bytes recovery cut from the end of a partition: a torn
// last batch after a crash, or a damaged batch in the active segment and
// everything after it.
type Truncation struct {
	Topic      string
	Partition  int32
	Segment    string // file path
	ValidBytes int64  // bytes kept
	CutBytes   int64  // bytes removed
	NextOffset int64  // the partition's end offset after the cut
	Reason     string
}

// openPartition discovers the segments in dir and recovers them: sealed
// segments load their indexes (rebuilt when missing or invalid); the active
// segment is scanned batch by batch, cut at the first invalid batch, and its
// indexes rebuilt.
func (l *Log) openPartition(topic string, id int32, dir string) (*partition, error) {
	p := &partition{
		l: l, topic: topic, id: id, dir: dir,
		logger: l.logger.With("topic", topic, "partition", id),
		wake:   make(chan struct{}, 1),
		notify: make(chan struct{}),
	}
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	names, err := l.fs.List(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, name := range names {
		if base, ok := parseSegmentName(name); ok {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	if err := l.removeOrphans(dir, names, bases); err != nil {
		return nil, err
	}
	if len(bases) == 0 {
		seg, err := p.createSegment(0)
		if err != nil {
			return nil, err
		}
		seg.created = l.now()
		p.segments = []*segment{seg}
	}
	for i, base := range bases {
		var seg *segment
		if i < len(bases)-1 {
			seg, err = p.openSealed(base, bases[i+1])
		} else {
			seg, err = p.openActive(base)
		}
		if err != nil {
			for _, s := range p.segments {
				s.closeFiles()
			}
			return nil, fmt.Errorf("open segment %d of %s/%d: %w", base, topic, id, err)
		}
		p.segments = append(p.segments, seg)
	}
	for _, seg := range p.segments {
		if err := p.rebuildProducers(seg); err != nil {
			// Damage in a sealed segment surfaces on read; idempotence then
			// knows less, and a retried batch may be refused as unknown.
			p.logger.Error("producer state incomplete: a sealed segment is damaged", "segment", seg.logPath, "err", err)
		}
	}
	p.active = p.segments[len(p.segments)-1]
	p.end = p.active.next
	p.visible = p.end
	return p, nil
}

// removeOrphans deletes index files whose segment is gone (a crash during
// retention can leave them) so they cannot be mistaken for a later segment's.
func (l *Log) removeOrphans(dir string, names []string, bases []int64) error {
	for _, name := range names {
		stem, _, _ := strings.Cut(name, ".")
		if strings.HasSuffix(name, logSuffix) {
			continue
		}
		if !strings.HasSuffix(name, indexSuffix) && !strings.HasSuffix(name, timeIndexSuffix) {
			continue
		}
		if base, ok := parseSegmentName(stem + logSuffix); ok && slices.Contains(bases, base) {
			continue
		}
		if err := l.fs.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func readWhole(fsys vfs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, info.Size())
	if n, err := f.ReadAt(buf, 0); n != len(buf) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// openSealed opens a segment that is not the last one: it was synced when
// it was rolled, so its data is trusted as far as the read path's CRC
// checks go, and only its indexes may need rebuilding.
func (p *partition) openSealed(base, nextBase int64) (*segment, error) {
	seg := newSegmentPaths(p.dir, base)
	f, err := p.l.fs.Open(seg.logPath)
	if err != nil {
		return nil, err
	}
	seg.log = f
	info, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, seg.closeFiles())
	}
	size := info.Size()
	seg.size, seg.readable, seg.next, seg.written = size, size, nextBase, nextBase
	if err := p.loadIndexes(seg); err == nil {
		return seg, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		p.logger.Warn("rebuilding segment index", "segment", seg.logPath, "reason", err)
	}
	seg.offsets, seg.times, seg.maxTs, seg.sinceIndex = nil, nil, -1, 0
	res := scanSegment(f, size, base, func(h *batchHeader, pos int64) {
		seg.addBatchLocked(h.baseOffset, pos, int64(h.size()), int(h.count), h.maxTimestamp, int64(p.l.opts.IndexIntervalBytes))
	})
	// Keep what the scan says about the data, but the next segment's name
	// stays the authority on where this one ends: a damaged batch must
	// surface as ErrCorruption when read, not shrink the log silently.
	seg.readable, seg.next = size, nextBase
	if res.err != nil || res.next != nextBase {
		p.logger.Error("sealed segment is damaged; reads past the damage fail with ErrCorruption",
			"segment", seg.logPath, "valid_bytes", res.validEnd, "size", size, "reason", res.err)
	}
	seg.sealLocked()
	return seg, writeIndexFiles(p.l.fs, seg)
}

// loadIndexes reads and validates a sealed segment's index files.
func (p *partition) loadIndexes(seg *segment) error {
	ib, err := readWhole(p.l.fs, seg.idxPath)
	if err != nil {
		return err
	}
	tb, err := readWhole(p.l.fs, seg.timeIdxPath)
	if err != nil {
		return err
	}
	offsets, err := decodeIndex(ib)
	if err != nil {
		return err
	}
	times, err := decodeTimeIndex(tb)
	if err != nil {
		return err
	}
	span := seg.next - seg.base
	if n := len(offsets); n > 0 {
		last := offsets[n-1]
		if int64(last.rel) >= span || int64(last.pos)+batchHeaderSize > seg.size {
			return corruptf("index entry %d@%d outside the segment", last.rel, last.pos)
		}
		// Spot-check the last entry against the data it points at.
		hb := make([]byte, batchHeaderSize)
		if _, err := seg.log.ReadAt(hb, int64(last.pos)); err != nil {
			return err
		}
		h, err := parseBatchHeader(hb)
		if err != nil {
			return err
		}
		if h.baseOffset != seg.base+int64(last.rel) {
			return corruptf("index entry %d@%d points at batch %d", last.rel, last.pos, h.baseOffset)
		}
	}
	if seg.size > 0 && len(times) == 0 {
		return corruptf("sealed segment without its closing time index entry")
	}
	if n := len(times); n > 0 && int64(times[n-1].rel) >= span {
		return corruptf("time index entry offset %d outside the segment", times[n-1].rel)
	}
	seg.offsets, seg.times = offsets, times
	if n := len(times); n > 0 {
		seg.maxTs = times[n-1].ts
		seg.lastBase = seg.base + int64(times[n-1].rel)
	}
	return nil
}

// writeIndexFiles replaces a segment's index files with its in-memory
// indexes, durably.
func writeIndexFiles(fsys vfs.FS, seg *segment) error {
	var ib, tb []byte
	for _, e := range seg.offsets {
		ib = appendIndexEntry(ib, e)
	}
	for _, e := range seg.times {
		tb = appendTimeEntry(tb, e)
	}
	for _, file := range []struct {
		name string
		data []byte
	}{{seg.idxPath, ib}, {seg.timeIdxPath, tb}} {
		f, err := fsys.Create(file.name)
		if err != nil {
			return err
		}
		_, werr := f.Write(file.data)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return err
		}
	}
	return nil
}

// openActive recovers the last segment: every batch is checked, the file is
// cut after the last valid one (and the cut reported), and the indexes are
// rebuilt from the data, since they were written without fsync.
func (p *partition) openActive(base int64) (*segment, error) {
	seg := newSegmentPaths(p.dir, base)
	f, err := p.l.fs.OpenReadWrite(seg.logPath)
	if err != nil {
		return nil, err
	}
	seg.log = f
	info, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, seg.closeFiles())
	}
	size := info.Size()
	interval := int64(p.l.opts.IndexIntervalBytes)
	res := scanSegment(f, size, base, func(h *batchHeader, pos int64) {
		seg.addBatchLocked(h.baseOffset, pos, int64(h.size()), int(h.count), h.maxTimestamp, interval)
	})
	if res.validEnd < size {
		cut := Truncation{
			Topic: p.topic, Partition: p.id, Segment: seg.logPath,
			ValidBytes: res.validEnd, CutBytes: size - res.validEnd, NextOffset: res.next,
			Reason: fmt.Sprint(res.err),
		}
		p.logger.Warn("truncating the torn tail of the log", "segment", cut.Segment,
			"valid_bytes", cut.ValidBytes, "cut_bytes", cut.CutBytes, "next_offset", cut.NextOffset, "reason", cut.Reason)
		if err := errors.Join(f.Truncate(res.validEnd), f.Sync()); err != nil {
			return nil, errors.Join(err, seg.closeFiles())
		}
		p.l.recordTruncation(cut)
	}
	seg.size, seg.written, seg.next = res.validEnd, res.next, res.next
	seg.created = p.l.now()
	if err := writeIndexFiles(p.l.fs, seg); err != nil {
		return nil, errors.Join(err, seg.closeFiles())
	}
	seg.idxPersisted, seg.timePersisted = len(seg.offsets), len(seg.times)
	if seg.idx, err = p.l.fs.OpenReadWrite(seg.idxPath); err != nil {
		return nil, errors.Join(err, seg.closeFiles())
	}
	if seg.timeIdx, err = p.l.fs.OpenReadWrite(seg.timeIdxPath); err != nil {
		return nil, errors.Join(err, seg.closeFiles())
	}
	return seg, nil
}
