package compression

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

var codecs = []Codec{None, Gzip, Snappy, LZ4, Zstd}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	inputs := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("order-42 "), 20000)}
	for _, c := range codecs {
		for _, xerial := range []bool{false, true} {
			for i, in := range inputs {
				t.Run(fmt.Sprintf("%s/xerial=%v/%d", c, xerial, i), func(t *testing.T) {
					enc, err := Encode(nil, c, in, xerial)
					if err != nil {
						t.Fatal(err)
					}
					out, err := Decode([]byte("prefix"), c, enc, len(in)+10)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(out, append([]byte("prefix"), in...)) {
						t.Fatalf("round trip differs: %d bytes back for %d", len(out)-6, len(in))
					}
				})
			}
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte{'a'}, 1<<20)
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			enc, err := Encode(nil, c, big, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Decode(nil, c, enc, 1000); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("1 MiB decoded under a 1000-byte limit: %v", err)
			}
			if c == None {
				return
			}
			if _, err := Decode(nil, c, []byte("definitely not compressed data"), 1<<20); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("garbage: %v, want ErrCorrupt", err)
			}
		})
	}
	if _, err := Decode(nil, 5, nil, 10); !errors.Is(err, ErrUnknownCodec) {
		t.Fatalf("codec 5: %v", err)
	}
}

// FuzzDecode: any input either decodes within the limit or fails with one of
// the package's errors; a decoded result re-encodes and decodes to itself.
func FuzzDecode(f *testing.F) {
	for _, c := range codecs {
		enc, _ := Encode(nil, c, []byte("hello hello hello hello"), true)
		f.Add(int8(c), enc)
		enc, _ = Encode(nil, c, []byte("hello"), false)
		f.Add(int8(c), enc)
	}
	f.Fuzz(func(t *testing.T, codec int8, src []byte) {
		c := Codec(codec)
		const limit = 1 << 16
		out, err := Decode(nil, c, src, limit)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnknownCodec) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(out) > limit {
			t.Fatalf("%d bytes decoded past the %d limit", len(out), limit)
		}
		again, err := Encode(nil, c, out, true)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(nil, c, again, limit)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("re-encoded %s does not decode to itself: %v", c, err)
		}
	})
}
