package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bridgeio/bridge/event"
)

var batchCases = []struct {
	name string
	evs  []event.Event
}{
	{"one plain record", []event.Event{{Key: []byte("k"), Value: []byte("v"), Timestamp: baseTime}}},
	{"null and empty fields", []event.Event{
		{Key: nil, Value: nil, Timestamp: baseTime},
		{Key: []byte{}, Value: []byte{}, Timestamp: baseTime.Add(time.Second)},
	}},
	{"headers, source, out-of-order timestamps", []event.Event{
		{Value: []byte("a"), Headers: []event.Header{{Key: "x", Value: []byte("1")}, {Key: "x", Value: nil}}, Timestamp: baseTime.Add(time.Hour)},
		{Value: []byte("b"), Source: "http", Timestamp: baseTime},
		{Value: bytes.Repeat([]byte("z"), 300), Headers: []event.Header{{Key: "", Value: []byte{}}}, Source: "kafka", Timestamp: baseTime.Add(2 * time.Hour)},
	}},
}

// kmsgBatch builds the same batch through kmsg, from Kafka's field
// definitions, as an independent reference for the hand-written encoder.
func kmsgBatch(evs []event.Event, base int64) []byte {
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
		if ev.Source != "" {
			r.Headers = append(r.Headers, kmsg.Header{Key: event.HeaderSource, Value: []byte(ev.Source)})
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // Length 0 took one varint byte
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		FirstOffset: base, Length: int32(49 + len(records)), Magic: 2,
		LastOffsetDelta: int32(len(evs) - 1), FirstTimestamp: first, MaxTimestamp: maxTs,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(evs)), Records: records,
	}
	out := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(out[21:], castagnoli))
	return b.AppendTo(nil)
}

func TestBatchMatchesKmsg(t *testing.T) {
	for _, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			enc, info := appendBatch(nil, tc.evs, nil, 0)
			setBaseOffset(enc, 1234)
			if want := kmsgBatch(tc.evs, 1234); !bytes.Equal(enc, want) {
				t.Fatalf("encoding differs from kmsg's:\n got %x\nwant %x", enc, want)
			}
			if info.count != len(tc.evs) {
				t.Fatalf("info %+v", info)
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(enc); err != nil || rb.NumRecords != int32(len(tc.evs)) || rb.FirstOffset != 1234 {
				t.Fatalf("kmsg cannot read our batch: %v %+v", err, rb)
			}
			got, size, err := decodeBatch(enc, "t", 3)
			if err != nil || size != len(enc) || len(got) != len(tc.evs) {
				t.Fatalf("decodeBatch = %d events, size %d, %v", len(got), size, err)
			}
			for i := range got {
				if !sameEvent(got[i], tc.evs[i]) || got[i].Offset != 1234+int64(i) || got[i].Partition != 3 {
					t.Fatalf("event %d: got %+v want %+v", i, got[i], tc.evs[i])
				}
			}
		})
	}
}

func TestBatchIndexedEncoding(t *testing.T) {
	evs := makeEvents("i", 6, 10)
	enc, _ := appendBatch(nil, evs, []int32{4, 1, 5}, 0)
	got, _, err := decodeBatch(enc, "t", 0)
	if err != nil || len(got) != 3 || !sameEvent(got[0], evs[4]) || !sameEvent(got[1], evs[1]) || !sameEvent(got[2], evs[5]) {
		t.Fatalf("indexed batch decoded to %v, %v", got, err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte{})
	for _, tc := range batchCases {
		enc, _ := appendBatch(nil, tc.evs, nil, 0)
		f.Add(enc)
		f.Add(enc[:len(enc)-3])                        // torn tail
		f.Add(append(enc[:len(enc):len(enc)], enc...)) // two batches
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		checkDecode(t, buf)
		// Random bytes almost never carry a valid CRC; fix it up so the
		// record decoder behind the CRC check is fuzzed too.
		if len(buf) >= batchHeaderSize {
			fixed := bytes.Clone(buf)
			if h, err := parseBatchHeader(fixed); err == nil && h.size() <= len(fixed) {
				binary.BigEndian.PutUint32(fixed[17:], crc32.Checksum(fixed[crcStart:h.size()], castagnoli))
			}
			checkDecode(t, fixed)
		}
	})
}

func checkDecode(t *testing.T, buf []byte) {
	{
		evs, size, err := decodeBatch(buf, "t", 0)
		if err != nil {
			if !errors.Is(err, event.ErrCorruption) {
				t.Fatalf("error %v does not wrap ErrCorruption", err)
			}
			return
		}
		if size > len(buf) || size < batchHeaderSize || len(evs) == 0 {
			t.Fatalf("consumed %d of %d bytes, %d events", size, len(buf), len(evs))
		}
		// Re-encoding what was decoded and decoding again gives the same
		// events: nothing is lost or invented between disk and Event.
		again, _ := appendBatch(nil, evs, nil, 0)
		setBaseOffset(again, evs[0].Offset)
		evs2, size2, err := decodeBatch(again, "t", 0)
		if err != nil || size2 != len(again) || len(evs2) != len(evs) {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		for i := range evs {
			if !sameEvent(evs[i], evs2[i]) || evs[i].Offset != evs2[i].Offset {
				t.Fatalf("event %d changed across re-encoding:\n%+v\n%+v", i, evs[i], evs2[i])
			}
		}
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendIndexEntry(appendIndexEntry(nil, indexEntry{1, 100}), indexEntry{5, 900}))
	f.Add(appendTimeEntry(appendTimeEntry(nil, timeEntry{10, 1}), timeEntry{10, 2}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, buf []byte) {
		offsets, err := decodeIndex(buf)
		if err != nil {
			if !errors.Is(err, event.ErrCorruption) {
				t.Fatalf("offset index error %v does not wrap ErrCorruption", err)
			}
		} else {
			var again []byte
			for i, e := range offsets {
				if i > 0 && (e.rel <= offsets[i-1].rel || e.pos <= offsets[i-1].pos) {
					t.Fatalf("accepted a non-increasing offset index")
				}
				again = appendIndexEntry(again, e)
				if p := lookupPosition(offsets, e.rel); p != int64(e.pos) {
					t.Fatalf("lookup of an indexed offset %d gives %d, want %d", e.rel, p, e.pos)
				}
			}
			if !bytes.Equal(again, buf) {
				t.Fatalf("offset index does not round-trip")
			}
		}
		times, err := decodeTimeIndex(buf)
		if err != nil {
			if !errors.Is(err, event.ErrCorruption) {
				t.Fatalf("time index error %v does not wrap ErrCorruption", err)
			}
			return
		}
		var again []byte
		for i, e := range times {
			if i > 0 && (e.ts < times[i-1].ts || e.rel <= times[i-1].rel) {
				t.Fatalf("accepted a time index that goes backwards")
			}
			again = appendTimeEntry(again, e)
		}
		if !bytes.Equal(again, buf) {
			t.Fatalf("time index does not round-trip")
		}
	})
}

// TestRecordDecoderVarintMatchesBinary: the one- and two-byte fast paths
// decode exactly as binary.Varint, including non-minimal encodings, and a
// truncated varint is an error.
func TestRecordDecoderVarintMatchesBinary(t *testing.T) {
	check := func(in []byte) {
		t.Helper()
		want, n := binary.Varint(in)
		d := recordDecoder{b: in}
		got := d.varint()
		if n <= 0 {
			if d.err == nil {
				t.Fatalf("% x: no error, binary.Varint failed (%d)", in, n)
			}
			return
		}
		if d.err != nil || got != want || len(d.b) != len(in)-n {
			t.Fatalf("% x: got %d (err %v, %d left), want %d (%d left)", in, got, d.err, len(d.b), want, len(in)-n)
		}
	}
	check(nil)
	for a := range 256 {
		check([]byte{byte(a)})
		for b := range 256 {
			check([]byte{byte(a), byte(b)})
			check([]byte{byte(a), byte(b), 0x01})
			check([]byte{byte(a), byte(b), 0x80})
		}
	}
	for _, v := range []int64{0, -1, 63, -64, 64, 8191, -8192, 8192, 1 << 40, -(1 << 62), 1<<63 - 1, -1 << 63} {
		check(binary.AppendVarint(nil, v))
	}
}
