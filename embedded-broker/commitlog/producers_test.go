package commitlog

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/compression"
	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

func TestIdempotentProducer(t *testing.T) {
	t.Parallel()
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		opts := Options{Dir: dir, FS: fsys, SegmentBytes: 2000}
		l := openLog(t, opts)
		mustCreate(t, l, "t", 1)
		batch := func(epoch int16, seq int32, n int) []byte {
			return clientBatch(t, makeEvents(fmt.Sprint(epoch, seq), n, 100), compression.Snappy, producerFields{id: 42, epoch: epoch, sequence: seq})
		}
		appendOK := func(l *Log, b []byte, want int64) {
			t.Helper()
			got, err := l.AppendBatches(ctxT(t), "t", 0, b)
			if err != nil || got != want {
				t.Fatalf("append: base %d, %v; want %d", got, err, want)
			}
		}
		appendErr := func(l *Log, b []byte, want error) {
			t.Helper()
			if _, err := l.AppendBatches(ctxT(t), "t", 0, b); !errors.Is(err, want) {
				t.Fatalf("append: %v, want %v", err, want)
			}
		}
		appendErr(l, batch(0, 5, 1), ErrUnknownProducer)
		// Several segments' worth, so that recovery walks sealed ones too.
		for i := range 12 {
			appendOK(l, batch(0, int32(i*3), 3), int64(i*3))
		}
		// A retry of any of the last five batches is answered with its
		// original offset and appends nothing.
		appendOK(l, batch(0, 33, 3), 33)
		appendOK(l, batch(0, 21, 3), 21)
		appendErr(l, batch(0, 18, 3), ErrOutOfOrderSequence) // older than remembered
		appendErr(l, batch(0, 37, 3), ErrOutOfOrderSequence) // a gap
		appendErr(l, batch(0, 34, 2), ErrOutOfOrderSequence) // overlaps
		if _, end, _ := l.Offsets("t", 0); end != 36 {
			t.Fatalf("end %d after retries, want 36", end)
		}
		// The state survives a reopen.
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openLog(t, opts)
		appendOK(l, batch(0, 33, 3), 33)
		appendOK(l, batch(0, 36, 2), 36)
		// A new epoch starts at 0 and fences the old one.
		appendErr(l, batch(1, 5, 1), ErrOutOfOrderSequence)
		appendOK(l, batch(1, 0, 1), 38)
		appendErr(l, batch(0, 38, 1), ErrProducerFenced)
		// Non-idempotent batches are not checked.
		if _, err := l.AppendBatches(ctxT(t), "t", 0, clientBatch(t, makeEvents("x", 2, 9), compression.None, noProducer)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLastSequenceWraps(t *testing.T) {
	t.Parallel()
	if got := lastSequence(math.MaxInt32-1, 3); got != 0 {
		t.Fatalf("last sequence %d, want 0", got)
	}
	if nextSequence(math.MaxInt32) != 0 || nextSequence(4) != 5 {
		t.Fatal("next sequence does not wrap")
	}
}

// TestProducerStateExpires: a producer idle for producerExpiry is
// forgotten by the periodic sweep (its next batch is refused as unknown);
// recovered producers count from the reopen, not from their batches' old
// timestamps.
func TestProducerStateExpires(t *testing.T) {
	t.Parallel()
	var nowMu sync.Mutex
	now := time.Now()
	opts := Options{Dir: t.TempDir(), Now: func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now }}
	l := openLog(t, opts)
	mustCreate(t, l, "t", 1)
	batch := func(seq int32) []byte {
		// makeEvents' timestamps are months old: only the clock matters.
		return clientBatch(t, makeEvents(fmt.Sprint(seq), 1, 10), compression.None, producerFields{id: 7, epoch: 0, sequence: seq})
	}
	if _, err := l.AppendBatches(ctxT(t), "t", 0, batch(0)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, opts)
	if _, err := l.AppendBatches(ctxT(t), "t", 0, batch(1)); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	p, _ := l.partition("t", 0)
	p.mu.Lock()
	p.expireProducersLocked(now.Add(producerExpiry - time.Minute).UnixMilli())
	kept := p.producers[7] != nil
	p.expireProducersLocked(now.Add(producerExpiry + time.Minute).UnixMilli())
	gone := p.producers[7] == nil
	p.mu.Unlock()
	if !kept || !gone {
		t.Fatalf("expiry: kept before %v, gone after %v", kept, gone)
	}
	if _, err := l.AppendBatches(ctxT(t), "t", 0, batch(2)); !errors.Is(err, ErrUnknownProducer) {
		t.Fatalf("batch of an expired producer: %v, want ErrUnknownProducer", err)
	}
}

// TestIdempotenceSurvivesCrash: an idempotent producer appends under
// FsyncAlways, the file system crashes (unsynced bytes lost), and after
// recovery a retry of the last acknowledged batch is recognised as a
// duplicate (same offset, nothing appended) and the next sequence is
// accepted at the recovered end.
func TestIdempotenceSurvivesCrash(t *testing.T) {
	t.Parallel()
	for _, crash := range []vfs.CrashOptions{{}, {UnsyncedDataPercent: 60, Seed: 5}, {KeepAllUnsynced: true}} {
		fsys := vfs.NewMem()
		opts := Options{Dir: "/d", FS: fsys, SegmentBytes: 3000}
		l := openLog(t, opts)
		mustCreate(t, l, "t", 1)
		batch := func(seq int32) []byte {
			return clientBatch(t, makeEvents(fmt.Sprint(seq), 2, 60), compression.Zstd, producerFields{id: 99, epoch: 3, sequence: seq})
		}
		var lastBase int64
		var seq int32
		for ; seq < 40; seq += 2 {
			base, err := l.AppendBatches(ctxT(t), "t", 0, batch(seq))
			if err != nil {
				t.Fatal(err)
			}
			lastBase = base
		}
		clone := fsys.CrashClone(crash)
		opts.FS = clone
		l2 := openLog(t, opts)
		if got, err := l2.AppendBatches(ctxT(t), "t", 0, batch(seq-2)); err != nil || got != lastBase {
			t.Fatalf("%+v: retry of the last acknowledged batch: %d, %v; want duplicate at %d", crash, got, err, lastBase)
		}
		_, end, _ := l2.Offsets("t", 0)
		if end != lastBase+2 {
			t.Fatalf("%+v: end %d after the retry, want %d", crash, end, lastBase+2)
		}
		if got, err := l2.AppendBatches(ctxT(t), "t", 0, batch(seq)); err != nil || got != end {
			t.Fatalf("%+v: next sequence: %d, %v; want %d", crash, got, err, end)
		}
	}
}
