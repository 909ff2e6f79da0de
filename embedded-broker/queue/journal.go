package queue

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

// Compaction thresholds: rewrite a journal once it is past compactMinBytes
// and more than compactRatio times the live data, so a steady
// send/receive/delete flow keeps the file bounded while a large backlog is
// not rewritten over and over.
const (
	compactMinBytes = 16 << 20
	compactRatio    = 4
	// maxSpareBytes: a flush buffer grown past this is dropped rather than
	// kept for reuse, so one burst does not pin memory forever.
	maxSpareBytes = 8 << 20
)

func (q *Queue) path() string { return filepath.Join(q.m.dir, q.name+journalSuffix) }

// commit returns once the journal holds everything up to the logical offset
// end: written to the file, and fsynced when sync is set. Concurrent callers
// share writes and fsyncs (group commit): whoever holds flushMu writes all
// pending records, so the callers queued behind it usually find their
// records already covered and return without I/O.
func (q *Queue) commit(end uint64, sync bool) error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	if sync && q.syncedEnd.Load() >= end || !sync && q.writtenEnd >= end {
		return nil
	}
	return q.writePendingLocked(sync)
}

// writePendingLocked writes all pending records and syncs when asked.
// flushMu must be held.
func (q *Queue) writePendingLocked(sync bool) error {
	if q.ioErr != nil {
		return q.ioErr
	}
	if q.file == nil {
		return fmt.Errorf("write journal of %s: %w", q.name, ErrClosed)
	}
	q.mu.Lock()
	buf, base := q.pending, q.pendingBase
	q.pending, q.spare = q.spare[:0], nil
	q.pendingBase += uint64(len(buf))
	q.mu.Unlock()
	if len(buf) > 0 {
		if _, err := q.file.WriteAt(buf, q.fileSize); err != nil {
			err = fmt.Errorf("write journal of %s: %w", q.name, err)
			if terr := q.file.Truncate(q.fileSize); terr != nil {
				// The tail of the file is unknown; refuse further writes
				// rather than append after garbage. Reopening recovers.
				q.ioErr = err
				return err
			}
			// A full disk: the partial tail is gone. The records describe
			// changes already made in memory, so they go back in front of
			// the pending ones and the next write retries them; the queue
			// works again once space is freed. (It used to refuse every
			// write until a restart: found by the e2e soak.)
			q.mu.Lock()
			q.pending = append(buf, q.pending...)
			q.pendingBase = base
			q.mu.Unlock()
			return err
		}
		q.fileSize += int64(len(buf))
	}
	q.writtenEnd = base + uint64(len(buf))
	if sync && q.syncedEnd.Load() < q.writtenEnd {
		if err := q.file.Sync(); err != nil {
			q.ioErr = fmt.Errorf("sync journal of %s: %w", q.name, err)
			return q.ioErr
		}
		q.advanceSynced(q.writtenEnd)
	}
	if cap(buf) <= maxSpareBytes {
		q.spare = buf[:0]
	}
	return nil
}

// background is one tick of the manager's flusher: write records nobody
// waits for (receives, visibility changes), compact when the journal has
// grown well past the live data, and fsync under the interval policy.
func (q *Queue) background(syncInterval bool) {
	q.flushMu.Lock()
	if q.file == nil || q.ioErr != nil {
		q.flushMu.Unlock()
		return
	}
	q.mu.Lock()
	idle := len(q.pending) == 0
	live := q.liveBytes
	q.mu.Unlock()
	if !idle {
		if err := q.writePendingLocked(false); err != nil {
			q.flushMu.Unlock()
			q.m.log.Error("queue journal write failed", "queue", q.name, "error", err)
			return
		}
	}
	if q.fileSize > q.m.compactMinBytes && q.fileSize > compactRatio*live {
		if err := q.compactLocked(); err != nil {
			q.m.log.Warn("queue journal compaction failed; will retry", "queue", q.name, "error", err)
		}
	}
	file, target := q.file, q.writtenEnd
	q.flushMu.Unlock()
	if syncInterval && q.syncedEnd.Load() < target {
		q.syncOutsideFlush(file, target)
	}
}

// syncOutsideFlush fsyncs file up to target without holding flushMu: an
// fsync can take milliseconds on a busy disk, and holding flushMu would
// stall every Send and Delete of the queue meanwhile (measured: 10x lower
// Send throughput under disk contention). Compaction takes syncMu before
// closing a file, so file stays open while we sync it.
func (q *Queue) syncOutsideFlush(file vfs.File, target uint64) {
	q.syncMu.Lock()
	err := file.Sync()
	q.syncMu.Unlock()
	if err == nil {
		q.advanceSynced(target)
		return
	}
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	if q.file == file && q.ioErr == nil { // a replaced file's data is in the snapshot
		q.ioErr = fmt.Errorf("sync journal of %s: %w", q.name, err)
		q.m.log.Error("queue journal sync failed", "queue", q.name, "error", err)
	}
}

// advanceSynced raises syncedEnd to end (never lowers it).
func (q *Queue) advanceSynced(end uint64) {
	for {
		cur := q.syncedEnd.Load()
		if cur >= end || q.syncedEnd.CompareAndSwap(cur, end) {
			return
		}
	}
}

// compactLocked rewrites the journal as a snapshot of the live state into a
// new file and renames it over the old one. Records appended meanwhile stay
// pending and go to the new file. flushMu must be held.
//
// The snapshot is encoded under mu (a pause proportional to the live data)
// so that it and the pending offset it covers are one consistent cut.
func (q *Queue) compactLocked() error {
	q.mu.Lock()
	snap := q.snapshotLocked()
	covered := q.endLocked()
	q.mu.Unlock()

	f, err := q.m.writeFileSynced(q.path()+tmpSuffix, snap)
	if err != nil {
		return err
	}
	if err := q.m.fs.Rename(q.path()+tmpSuffix, q.path()); err != nil {
		return errors.Join(fmt.Errorf("compact %s: %w", q.name, err), f.Close())
	}
	if err := q.m.fs.SyncDir(q.m.dir); err != nil {
		// The rename may not be durable; either file is a complete
		// journal, so continue with the new one.
		q.m.log.Warn("queue dir sync failed after compaction", "queue", q.name, "error", err)
	}
	if q.file != nil {
		q.syncMu.Lock()    // wait for a background fsync of the old file
		_ = q.file.Close() // replaced; its contents are in the snapshot
		q.syncMu.Unlock()
	}
	q.file, q.fileSize = f, int64(len(snap))
	q.mu.Lock()
	// Drop the pending bytes the snapshot already covers.
	cut := covered - q.pendingBase
	q.pending = append(q.pending[:0], q.pending[cut:]...)
	q.pendingBase = covered
	q.mu.Unlock()
	q.writtenEnd = covered
	q.advanceSynced(covered)
	return nil
}

// snapshotLocked encodes the queue's whole state: config, epoch and next
// seq, live dedup entries, then every stored message in seq order.
func (q *Queue) snapshotLocked() []byte {
	buf := make([]byte, 0, q.liveBytes+4096)
	buf = appendConfigRecord(buf, q.m.encodeMeta(q.meta))
	buf = appendEpoch(buf, q.epoch, q.nextSeq)
	for i := 0; i < q.dedupExp.len(); i++ {
		e := q.dedupExp.at(i)
		if cur, ok := q.dedup[e.key]; ok && cur.expiresAt == e.expiresAt {
			buf = appendDedup(buf, e.key, cur.id, cur.seq, cur.expiresAt)
		}
	}
	for i := 0; i < q.order.len(); i++ {
		if m := q.order.at(i); m.state != stateGone {
			buf = appendPut(buf, m)
		}
	}
	return buf
}

// replayed is a journal's content after replay.
type replayed struct {
	meta      queueMeta
	msgs      map[uint64]*message
	dedup     []record
	epoch     uint32
	nextSeq   uint64
	tornBytes int
}

// replay decodes a journal. A damaged tail (a record cut short, zeros to
// the end, or a bad last record) is dropped and counted in tornBytes: that
// is what a crash during an append leaves. A bad record followed by more
// data is corruption and fails the open: silently dropping acknowledged
// messages is worse than refusing to start.
func (m *Manager) replay(name string, data []byte) (*replayed, error) {
	out := &replayed{msgs: map[uint64]*message{}, nextSeq: 1}
	sawConfig := false
	for off := 0; off < len(data); {
		rec, size, err := readRecord(data[off:])
		if err != nil {
			if isTornTail(data[off:]) {
				out.tornBytes = len(data) - off
				break
			}
			return nil, fmt.Errorf("replay %s at byte %d: %w", name, off, err)
		}
		if !sawConfig && rec.kind != kindConfig {
			return nil, fmt.Errorf("replay %s: %w: first record is kind %d, not config", name, ErrCorrupt, rec.kind)
		}
		if err := out.apply(&rec); err != nil {
			return nil, fmt.Errorf("replay %s at byte %d: %w", name, off, err)
		}
		sawConfig = true
		off += size
	}
	if !sawConfig {
		return nil, fmt.Errorf("replay %s: %w: no config record", name, ErrCorrupt)
	}
	return out, nil
}

func (r *replayed) apply(rec *record) error {
	if rec.kind == kindPut && rec.msg.seq >= r.nextSeq {
		r.nextSeq = rec.msg.seq + 1
	}
	if rec.kind == kindDedup && rec.seq >= r.nextSeq {
		r.nextSeq = rec.seq + 1
	}
	switch rec.kind {
	case kindConfig:
		meta, err := decodeMeta(rec.meta)
		if err != nil {
			return err
		}
		r.meta = meta
	case kindEpoch:
		r.epoch = max(r.epoch, rec.epoch)
		r.nextSeq = max(r.nextSeq, rec.seq)
	case kindPut:
		msg := rec.msg
		r.msgs[msg.seq] = msg
		r.epoch = max(r.epoch, msg.epoch)
		if msg.dedupID != "" {
			// The entry outlives the message: a FIFO duplicate sent after
			// the original was deleted is still dropped within the window.
			r.dedup = append(r.dedup, record{kind: kindDedup, key: msg.dedupID, id: msg.id, seq: msg.seq, at: msg.sentAt + int64(DedupWindow)})
		}
	case kindReceive:
		if msg := r.msgs[rec.seq]; msg != nil {
			msg.epoch, msg.receiveCount, msg.visibleAt, msg.firstRecvAt = rec.epoch, rec.receiveCount, rec.at, rec.firstRecvAt
			r.epoch = max(r.epoch, rec.epoch)
		}
	case kindVisibility:
		if msg := r.msgs[rec.seq]; msg != nil {
			msg.visibleAt = rec.at
		}
	case kindDelete:
		delete(r.msgs, rec.seq)
	case kindPurge:
		for seq := range r.msgs {
			if seq < rec.seq {
				delete(r.msgs, seq)
			}
		}
	case kindDedup:
		r.dedup = append(r.dedup, *rec)
	}
	return nil
}

// isTornTail reports whether bad, the journal from the first undecodable
// record on, looks like an interrupted append rather than corruption.
func isTornTail(bad []byte) bool {
	_, _, err := readRecord(bad)
	if errors.Is(err, errTruncated) {
		return true
	}
	if len(bad) >= recordHeaderLength {
		if length := int(uint32(bad[0]) | uint32(bad[1])<<8 | uint32(bad[2])<<16 | uint32(bad[3])<<24); recordHeaderLength+length == len(bad) {
			return true // the last record itself is damaged
		}
	}
	for _, b := range bad {
		if b != 0 {
			return false
		}
	}
	return true
}

// restore builds the queue's in-memory state from a replay at now.
func (q *Queue) restore(r *replayed, now time.Time) {
	q.epoch = r.epoch + 1 // new deliveries never reuse a receipt of an earlier run
	q.nextSeq = r.nextSeq
	nowNanos := now.UnixNano()
	// Dedup entries come from dedup records and from puts; the expiry
	// ring must be in expiry order for pruning to stop at the first live one.
	entries := make([]record, 0, len(r.dedup))
	for _, d := range r.dedup {
		if q.fifo && d.at > nowNanos {
			entries = append(entries, d)
		}
	}
	seqs := make([]uint64, 0, len(r.msgs))
	for seq := range r.msgs {
		seqs = append(seqs, seq)
	}
	slices.SortFunc(entries, func(a, b record) int { return cmp.Compare(a.at, b.at) })
	for _, d := range entries {
		q.rememberDedupLocked(d.key, d.id, d.seq, d.at)
	}
	slices.Sort(seqs)
	retention := int64(q.cfg.Retention)
	for _, seq := range seqs {
		msg := r.msgs[seq]
		if msg.sentAt+retention <= nowNanos {
			continue
		}
		if !q.fifo {
			msg.groupID = ""
		}
		q.insertLocked(msg, nowNanos)
	}
}

// writeFileSynced creates name with data, fsyncs it and returns it open.
func (m *Manager) writeFileSynced(name string, data []byte) (vfs.File, error) {
	f, err := m.fs.Create(name)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return nil, errors.Join(fmt.Errorf("write %s: %w", name, err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return nil, errors.Join(fmt.Errorf("sync %s: %w", name, err), f.Close())
	}
	return f, nil
}
