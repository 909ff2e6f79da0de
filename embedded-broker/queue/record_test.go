package queue

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bridgeio/bridge/event"
)

func sampleRecords() []record {
	return []record{
		{kind: kindConfig, meta: []byte(`{"config":{"Name":"q"}}`)},
		{kind: kindPut, msg: &message{seq: 7, id: "id", body: []byte("body"), sentAt: -5, visibleAt: 1 << 50, firstRecvAt: 3, receiveCount: 2, epoch: 9,
			groupID: "g", dedupID: "d", deadLetterSource: "src",
			attrs:    []Attribute{{Name: "a", DataType: "String", Value: []byte("v")}},
			sysAttrs: []Attribute{{Name: "AWSTraceHeader", DataType: "String", Value: []byte("t")}}}},
		{kind: kindPut, msg: &message{seq: 1, id: "x", body: []byte{}}},
		{kind: kindPutExt, msg: &message{seq: 2, id: "p", body: []byte("b"), priority: 255, expiresAt: 1 << 55,
			attrs: []Attribute{{Name: "bridge-error", DataType: "String", Value: []byte("expired")}}}},
		{kind: kindPutExt, msg: &message{seq: 3, id: "t", body: []byte("b"), expiresAt: -1}},
		{kind: kindPutExt, msg: &message{seq: 4, id: "q", body: []byte("b"), priority: 1}},
		{kind: kindReceive, seq: 1 << 40, epoch: 1<<32 - 1, receiveCount: 1000, at: -1, firstRecvAt: 1},
		{kind: kindVisibility, seq: 3, at: 99},
		{kind: kindDelete, seq: 0},
		{kind: kindPurge, seq: 12},
		{kind: kindDedup, key: "k", id: "i", seq: 4, at: 1234567},
		{kind: kindEpoch, epoch: 3, seq: 77},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, rec := range sampleRecords() {
		t.Run(string(rune('0'+rec.kind)), func(t *testing.T) {
			enc := appendRecord(nil, &rec)
			got, size, err := readRecord(append(enc, 0xAA)) // trailing bytes are the next record's
			if err != nil {
				t.Fatal(err)
			}
			if size != len(enc) {
				t.Fatalf("size %d, want %d", size, len(enc))
			}
			if again := appendRecord(nil, &got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again, enc)
			}
			for cut := range len(enc) {
				if _, _, err := readRecord(enc[:cut]); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("prefix of %d bytes: %v", cut, err)
				}
			}
		})
	}
}

func TestReadRecordRejects(t *testing.T) {
	good := appendSeqRecord(nil, kindDelete, 5)
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	padded := func() []byte {
		// A non-minimal varint for seq 5 (0x85 0x00) with a valid CRC.
		b, start := beginRecord(nil, kindDelete)
		b = append(b, 0x85, 0x00)
		return finishRecord(b, start)
	}
	unknown := func() []byte {
		b, start := beginRecord(nil, 99)
		return finishRecord(b, start)
	}
	// ext builds an extended put whose extension is raw.
	ext := func(raw ...byte) []byte {
		plain := appendPut(nil, &message{seq: 1, id: "x", body: []byte("b")})
		b, start := beginRecord(nil, kindPutExt)
		b = append(b, plain[recordHeaderLength+1:]...)
		b = append(b, raw...)
		return finishRecord(b, start)
	}
	trailing := func() []byte {
		b, start := beginRecord(nil, kindDelete)
		b = append(b, 5, 0)
		return finishRecord(b, start)
	}
	tests := []struct {
		name string
		buf  []byte
	}{
		{"empty", nil},
		{"zero length", make([]byte, 16)},
		{"huge length", []byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 5}},
		{"bad crc", flip(5)},
		{"bad payload", flip(len(good) - 1)},
		{"non-minimal varint", padded()},
		{"unknown kind", unknown()},
		{"trailing payload", trailing()},
		{"extended put without extension", ext(0, 0)},
		{"priority above 255", ext(0x80, 0x02, 0)},
		{"extended put cut short", ext(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readRecord(tc.buf)
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, event.ErrCorruption) {
				t.Fatalf("err = %v, want ErrCorrupt and event.ErrCorruption", err)
			}
		})
	}
}

// FuzzReadRecord: readRecord never panics, fails only with ErrCorrupt, never
// claims more bytes than it got, and whatever it accepts re-encodes to the
// exact bytes it consumed.
func FuzzReadRecord(f *testing.F) {
	f.Add([]byte{})
	for _, rec := range sampleRecords() {
		enc := appendRecord(nil, &rec)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
		f.Add(append(bytes.Clone(enc), enc...))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		rec, size, err := readRecord(buf)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, event.ErrCorruption) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if size <= recordHeaderLength || size > len(buf) {
			t.Fatalf("consumed %d bytes of %d", size, len(buf))
		}
		if again := appendRecord(nil, &rec); !bytes.Equal(again, buf[:size]) {
			t.Fatalf("re-encoding differs from the input prefix:\n%x\n%x", again, buf[:size])
		}
	})
}

func TestReceiptRoundTrip(t *testing.T) {
	r := receipt{queueID: 1<<64 - 1, epoch: 7, seq: 1 << 62, gen: 3}
	got, ok := decodeReceipt(r.encode())
	if !ok || got != r {
		t.Fatalf("round trip = %+v, %v", got, ok)
	}
	for _, bad := range []string{"", "x", r.encode() + "A", r.encode()[:31] + "!"} {
		if _, ok := decodeReceipt(bad); ok {
			t.Fatalf("decoded %q", bad)
		}
	}
}

// FuzzDecodePayload reaches the payload decoders behind the CRC: any
// (kind, payload) the decoder accepts must re-encode to the same bytes.
func FuzzDecodePayload(f *testing.F) {
	for _, rec := range sampleRecords() {
		enc := appendRecord(nil, &rec)
		f.Add(byte(rec.kind), enc[recordHeaderLength+1:])
	}
	f.Fuzz(func(t *testing.T, kind byte, payload []byte) {
		rec, err := decodePayload(recordKind(kind), payload)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		want, start := beginRecord(nil, recordKind(kind))
		want = finishRecord(append(want, payload...), start)
		if got := appendRecord(nil, &rec); !bytes.Equal(got, want) {
			t.Fatalf("re-encoding differs:\n%x\n%x", got, want)
		}
	})
}
