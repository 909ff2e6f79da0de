package commitlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/bridgeio/bridge/embedded-broker/internal/compression"
	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var noProducer = producerFields{id: -1, epoch: -1, sequence: -1}

// clientBatch encodes evs as a Kafka client would: records through kmsg,
// compressed with codec, CRC over the header, base offset 0.
func clientBatch(t testing.TB, evs []event.Event, codec compression.Codec, pf producerFields) []byte {
	t.Helper()
	first := evs[0].Timestamp.UnixMilli()
	maxTs := first
	var records []byte
	for i, ev := range evs {
		ts := ev.Timestamp.UnixMilli()
		maxTs = max(maxTs, ts)
		r := kmsg.Record{TimestampDelta64: ts - first, OffsetDelta: int32(i), Key: ev.Key, Value: ev.Value}
		for _, h := range ev.Headers {
			r.Headers = append(r.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		// kmsg writes the Length field as given: encode with 0 (one byte),
		// then prefix the body with its real length.
		body := r.AppendTo(nil)[1:]
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	payload, err := compression.Encode(nil, codec, records, true)
	if err != nil {
		t.Fatal(err)
	}
	b := kmsg.RecordBatch{
		Magic: 2, Attributes: int16(codec), LastOffsetDelta: int32(len(evs) - 1),
		FirstTimestamp: first, MaxTimestamp: maxTs, ProducerID: pf.id, ProducerEpoch: pf.epoch,
		FirstSequence: pf.sequence, NumRecords: int32(len(evs)), Records: payload,
		PartitionLeaderEpoch: 7,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

func TestAppendBatchesRoundTrip(t *testing.T) {
	t.Parallel()
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		l := openLog(t, Options{Dir: dir, FS: fsys, SegmentBytes: 8 << 10, IndexIntervalBytes: 512})
		mustCreate(t, l, "t", 1)
		var want []event.Event
		for i, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd, compression.None} {
			evs := makeEvents(fmt.Sprintf("c%d", i), 20, 50+i*40)
			raw := clientBatch(t, evs, codec, producerFields{id: 9, epoch: 1, sequence: int32(i * 20)})
			orig := slices.Clone(raw)
			base, err := l.AppendBatches(ctxT(t), "t", 0, raw)
			if err != nil {
				t.Fatalf("%s: %v", codec, err)
			}
			if base != int64(len(want)) {
				t.Fatalf("%s: base %d, want %d", codec, base, len(want))
			}
			want = append(want, evs...)
			// The stored batch is the client's, but for the base offset and
			// the leader epoch (both outside the CRC).
			rng, _, err := l.ReadBatches("t", 0, base, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(orig))
			if _, err := rng.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			rng.Release()
			if int64(binary.BigEndian.Uint64(got)) != base || !bytes.Equal(got[8:12], orig[8:12]) || !bytes.Equal(got[16:], orig[16:]) {
				t.Fatalf("%s: stored batch differs from the client's beyond base offset and epoch", codec)
			}
		}
		// The engine's reader decodes every codec.
		got := readAll(t, l, "t", 0)
		if len(got) != len(want) {
			t.Fatalf("read %d events, want %d", len(got), len(want))
		}
		for i := range got {
			if !sameEvent(got[i], want[i]) || got[i].Offset != int64(i) {
				t.Fatalf("event %d differs: %+v", i, got[i])
			}
		}
	})
}

func TestReadBatchesCutsOnBoundaries(t *testing.T) {
	t.Parallel()
	l := openLog(t, Options{Dir: t.TempDir(), SegmentBytes: 1 << 20, IndexIntervalBytes: 256})
	mustCreate(t, l, "t", 1)
	var sizes []int64
	for i := range 50 {
		raw := clientBatch(t, makeEvents(fmt.Sprint(i), 1+i%4, 30+i*3), compression.None, noProducer)
		sizes = append(sizes, int64(len(raw)))
		if _, err := l.AppendBatches(ctxT(t), "t", 0, raw); err != nil {
			t.Fatal(err)
		}
	}
	// Batch i starts at offset firsts[i] and byte starts[i].
	var firsts, starts []int64
	var off, pos int64
	for i := range 50 {
		firsts, starts = append(firsts, off), append(starts, pos)
		off += int64(1 + i%4)
		pos += sizes[i]
	}
	for _, tc := range []struct{ from, maxBytes int64 }{{0, 1}, {0, 1 << 20}, {1, 300}, {37, 1000}, {off - 1, 1 << 20}, {10, 2000}} {
		rng, st, err := l.ReadBatches("t", 0, tc.from, int(tc.maxBytes))
		if err != nil {
			t.Fatal(err)
		}
		if st.HighWatermark != off || st.LogStart != 0 {
			t.Fatalf("state %+v", st)
		}
		i, _ := slices.BinarySearch(firsts, tc.from+1)
		i-- // the batch holding from
		buf := make([]byte, rng.Len())
		rng.ReadAt(buf, 0)
		rng.Release()
		if int64(binary.BigEndian.Uint64(buf)) != firsts[i] {
			t.Fatalf("from %d: range starts at batch %d, want %d", tc.from, binary.BigEndian.Uint64(buf), firsts[i])
		}
		// Whole batches only, as many as fit (at least one).
		j, end := i, starts[i]
		for j < 50 && (j == i || end+sizes[j]-starts[i] <= tc.maxBytes) {
			end += sizes[j]
			j++
		}
		if rng.Len() != end-starts[i] {
			t.Fatalf("from %d max %d: %d bytes, want %d", tc.from, tc.maxBytes, rng.Len(), end-starts[i])
		}
	}
	if rng, _, err := l.ReadBatches("t", 0, off, 100); err != nil || rng.Len() != 0 {
		t.Fatalf("at the end: %d bytes, %v", rng.Len(), err)
	}
	var oor *OffsetOutOfRangeError
	if _, _, err := l.ReadBatches("t", 0, off+1, 100); !errors.As(err, &oor) {
		t.Fatalf("past the end: %v", err)
	}
}

func TestAppendBatchesRejects(t *testing.T) {
	t.Parallel()
	good := clientBatch(t, makeEvents("g", 3, 20), compression.None, noProducer)
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrInvalidBatch},
		{"short", good[:40], ErrCorruptBatch},
		{"torn", good[:len(good)-1], ErrCorruptBatch},
		{"crc", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCorruptBatch},
		{"magic 1", mutate(func(b []byte) []byte { b[16] = 1; return b }), ErrUnsupportedBatch},
		{"transactional", mutate(func(b []byte) []byte { b[22] |= 0x10; return recrc(b) }), ErrUnsupportedBatch},
		{"control", mutate(func(b []byte) []byte { b[22] |= 0x20; return recrc(b) }), ErrUnsupportedBatch},
		{"codec 5", mutate(func(b []byte) []byte { b[22] |= 5; return recrc(b) }), ErrUnsupportedBatch},
		{"count", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 4); return recrc(b) }), ErrInvalidBatch},
		{"last delta", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 5); return recrc(b) }), ErrInvalidBatch},
		{"gzip flag on plain records", mutate(func(b []byte) []byte { b[22] |= 1; return recrc(b) }), ErrCorruptBatch},
		{"second batch torn", append(slices.Clone(good), good[:70]...), ErrCorruptBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLog(t, Options{Dir: t.TempDir()})
			mustCreate(t, l, "t", 1)
			if _, err := l.AppendBatches(ctxT(t), "t", 0, tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, end, _ := l.Offsets("t", 0); end != 0 {
				t.Fatalf("a rejected request appended: end %d", end)
			}
		})
	}
}

// TestCrashRecoveryRawAppends is TestCrashRecovery for client batches of
// every codec: what AppendBatches acknowledged under FsyncAlways survives a
// crash byte for byte, and appends continue at the recovered end.
func TestCrashRecoveryRawAppends(t *testing.T) {
	t.Parallel()
	for _, crashOpts := range []vfs.CrashOptions{{}, {UnsyncedDataPercent: 50, Seed: 3}, {KeepAllUnsynced: true}} {
		fsys := vfs.NewMem()
		opts := Options{Dir: "/d", FS: fsys, SegmentBytes: 6000, IndexIntervalBytes: 400}
		l := openLog(t, opts)
		mustCreate(t, l, "t", 1)
		var mu sync.Mutex
		var acked []ackedBatch
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 11))
				for i := 0; ; i++ {
					evs := makeEvents(fmt.Sprintf("w%d-%d", w, i), 1+rng.IntN(6), rng.IntN(200))
					raw := clientBatch(t, evs, compression.Codec(rng.IntN(5)), noProducer)
					base, err := l.AppendBatches(context.Background(), "t", 0, raw)
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
					mu.Lock()
					acked = append(acked, ackedBatch{0, base, evs})
					mu.Unlock()
					select {
					case <-stop:
						return
					default:
					}
				}
			})
		}
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 60 || t.Failed() {
				break
			}
			runtime.Gosched()
		}
		if t.Failed() {
			close(stop)
			wg.Wait()
			return
		}
		mu.Lock()
		before := slices.Clone(acked)
		mu.Unlock()
		clone := fsys.CrashClone(crashOpts)
		close(stop)
		wg.Wait()
		truth := readAll(t, l, "t", 0)

		opts.FS = clone
		l2 := openLog(t, opts)
		got := readAll(t, l2, "t", 0)
		for i := range got {
			if !sameEvent(got[i], truth[i]) {
				t.Fatalf("%+v: offset %d is not what was written there", crashOpts, i)
			}
		}
		for _, b := range before {
			if b.base+int64(len(b.evs)) > int64(len(got)) {
				t.Fatalf("%+v: acknowledged batch [%d,+%d) lost (end %d)", crashOpts, b.base, len(b.evs), len(got))
			}
			for i, ev := range b.evs {
				if !sameEvent(got[b.base+int64(i)], ev) {
					t.Fatalf("%+v: acknowledged event %d differs", crashOpts, b.base+int64(i))
				}
			}
		}
		next, err := l2.AppendBatches(ctxT(t), "t", 0, clientBatch(t, makeEvents("after", 2, 9), compression.Zstd, noProducer))
		if err != nil || next != int64(len(got)) {
			t.Fatalf("append after recovery at %d, %v; want %d", next, err, len(got))
		}
	}
}

// FuzzValidateBatches: whatever the bytes, validation either rejects them
// with one of its sentinels, or accepts batches that the log then stores and
// reads back as exactly the records kmsg decodes from the input.
func FuzzValidateBatches(f *testing.F) {
	f.Add(clientBatch(f, makeEvents("a", 2, 10), compression.None, noProducer))
	f.Add(clientBatch(f, makeEvents("b", 3, 40), compression.Snappy, producerFields{1, 0, 0}))
	f.Add(clientBatch(f, makeEvents("c", 1, 5), compression.Zstd, noProducer))
	two := clientBatch(f, makeEvents("d", 1, 5), compression.Gzip, noProducer)
	f.Add(append(two, clientBatch(f, makeEvents("e", 2, 5), compression.LZ4, noProducer)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		metas, err := ValidateBatches(in)
		if err != nil {
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidBatch) && !errors.Is(err, ErrUnsupportedBatch) && !errors.Is(err, ErrBatchTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		total := 0
		for _, m := range metas {
			total += m.Size
		}
		if total != len(in) {
			t.Fatalf("batches cover %d of %d bytes", total, len(in))
		}
		// Every accepted batch decodes on the read path, once the log has
		// given it its base offset (the client's is ignored).
		for rest := slices.Clone(in); len(rest) > 0; {
			setBaseOffset(rest, 0)
			evs, n, err := decodeBatch(rest, "t", 0)
			if err != nil {
				t.Fatalf("accepted batch does not decode: %v", err)
			}
			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(rest[:n]); err != nil || int(kb.NumRecords) != len(evs) {
				t.Fatalf("kmsg disagrees: %v, %d records vs %d", err, kb.NumRecords, len(evs))
			}
			rest = rest[n:]
		}
	})
}
