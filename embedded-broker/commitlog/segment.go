package commitlog

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

// segment is one file of a partition, named by the offset of its first
// record, with its two index files beside it.
type segment struct {
	base                          int64
	logPath, idxPath, timeIdxPath string
	log                           vfs.File
	// idx and timeIdx are open for writing on the active segment only; a
	// sealed segment's indexes are in memory and its files are not touched.
	idx, timeIdx vfs.File

	// Guarded by partition.mu.
	readable int64 // bytes readers may read: the durable (or written) prefix
	next     int64 // offset after the last readable record
	lastBase int64 // base offset of the last readable batch
	offsets  []indexEntry
	times    []timeEntry
	maxTs    int64 // largest record timestamp, ms; -1 when empty
	refs     int   // readers inside the file; a deleted segment closes at 0
	deleted  bool

	// Owned by the flusher goroutine (and by Open before it starts).
	size             int64 // bytes written
	written          int64 // offset after the last written record
	sinceIndex       int64 // bytes written since the last offset index entry
	idxPersisted     int   // offsets[:idxPersisted] are in the index file
	timePersisted    int
	created          time.Time // for SegmentAge; the first append's time
	indexScratch     []byte
	timeIndexScratch []byte
}

func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

func parseSegmentName(name string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	return base, err == nil && base >= 0
}

func newSegmentPaths(dir string, base int64) *segment {
	return &segment{
		base:        base,
		logPath:     filepath.Join(dir, segmentName(base, logSuffix)),
		idxPath:     filepath.Join(dir, segmentName(base, indexSuffix)),
		timeIdxPath: filepath.Join(dir, segmentName(base, timeIndexSuffix)),
		next:        base,
		written:     base,
		maxTs:       -1,
	}
}

// addBatchLocked records a readable batch at pos in the in-memory indexes.
// Called with partition.mu held, in offset order.
func (s *segment) addBatchLocked(base int64, pos, size int64, count int, maxTs int64, interval int64) {
	s.maxTs = max(s.maxTs, maxTs)
	if s.sinceIndex >= interval && pos > 0 {
		rel := uint32(base - s.base)
		s.offsets = append(s.offsets, indexEntry{rel: rel, pos: uint32(pos)})
		s.sinceIndex = 0
		s.addTimeEntryLocked(timeEntry{ts: s.maxTs, rel: rel})
	}
	s.sinceIndex += size
	s.next = base + int64(count)
	s.lastBase = base
	s.readable = pos + size
}

func (s *segment) addTimeEntryLocked(e timeEntry) {
	if n := len(s.times); n > 0 && (e.ts <= s.times[n-1].ts || e.rel <= s.times[n-1].rel) {
		return
	}
	s.times = append(s.times, e)
}

// sealLocked adds the closing time index entry, so that a sealed segment's
// last time entry is its largest timestamp (retention and time lookups of
// reopened segments rely on it, as Kafka's do).
func (s *segment) sealLocked() {
	if s.maxTs >= 0 {
		s.addTimeEntryLocked(timeEntry{ts: s.maxTs, rel: uint32(s.lastBase - s.base)})
	}
}

// persistIndexes appends the index entries added since the last call to the
// index files. The entries are read outside the lock: only the flusher
// appends to them, and it is the caller.
func (s *segment) persistIndexes(offsets []indexEntry, times []timeEntry) error {
	if s.idx == nil {
		return nil
	}
	if len(offsets) > s.idxPersisted {
		s.indexScratch = s.indexScratch[:0]
		for _, e := range offsets[s.idxPersisted:] {
			s.indexScratch = appendIndexEntry(s.indexScratch, e)
		}
		if _, err := s.idx.WriteAt(s.indexScratch, int64(s.idxPersisted)*indexEntrySize); err != nil {
			return err
		}
		s.idxPersisted = len(offsets)
	}
	if len(times) > s.timePersisted {
		s.timeIndexScratch = s.timeIndexScratch[:0]
		for _, e := range times[s.timePersisted:] {
			s.timeIndexScratch = appendTimeEntry(s.timeIndexScratch, e)
		}
		if _, err := s.timeIdx.WriteAt(s.timeIndexScratch, int64(s.timePersisted)*timeIndexEntrySize); err != nil {
			return err
		}
		s.timePersisted = len(times)
	}
	return nil
}

func (s *segment) closeFiles() error {
	var errs []error
	for _, f := range []vfs.File{s.log, s.idx, s.timeIdx} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// scanResult is what a scan of a segment file found.
type scanResult struct {
	validEnd int64 // bytes of whole, valid batches from the start
	next     int64 // offset after the last valid batch
	batches  int
	err      error // why the scan stopped before the file's end; nil at a clean end
}

// scanSegment reads every batch of f from the start, checking the header,
// the CRC and that offsets continue from base, and calls fn for each valid
// one. It stops at the first invalid or incomplete batch.
func scanSegment(f vfs.File, fileSize, base int64, fn func(h *batchHeader, pos int64)) scanResult {
	res := scanResult{next: base}
	buf := make([]byte, 1<<20)
	var bufStart, bufEnd int64 // file range held in buf[:bufEnd-bufStart]
	ensure := func(pos, n int64) ([]byte, error) {
		if pos+n > fileSize {
			return nil, io.ErrUnexpectedEOF
		}
		if pos < bufStart || pos+n > bufEnd {
			if int64(len(buf)) < n {
				buf = make([]byte, n)
			}
			want := min(int64(len(buf)), fileSize-pos)
			got, err := f.ReadAt(buf[:want], pos)
			if int64(got) < want {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			bufStart, bufEnd = pos, pos+want
		}
		return buf[pos-bufStart : pos-bufStart+n], nil
	}
	pos := int64(0)
	for pos < fileSize {
		hb, err := ensure(pos, batchHeaderSize)
		if err != nil {
			res.err = fmt.Errorf("torn batch header at byte %d: %w", pos, err)
			break
		}
		h, err := parseBatchHeader(hb)
		if err != nil {
			res.err = fmt.Errorf("byte %d: %w", pos, err)
			break
		}
		if h.baseOffset != res.next {
			res.err = corruptf("byte %d: batch base offset %d, want %d", pos, h.baseOffset, res.next)
			break
		}
		b, err := ensure(pos, int64(h.size()))
		if err != nil {
			res.err = fmt.Errorf("torn batch at byte %d (%d bytes): %w", pos, h.size(), err)
			break
		}
		if err := checkCRC(&h, b); err != nil {
			res.err = fmt.Errorf("byte %d: %w", pos, err)
			break
		}
		fn(&h, pos)
		pos += int64(h.size())
		res.next = h.nextOffset()
		res.batches++
	}
	res.validEnd = pos
	return res
}
