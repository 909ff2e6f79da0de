// Package compression decodes and encodes the payload of Kafka record
// batches in the four codecs Kafka defines: gzip (1), snappy (2), lz4 (3)
// and zstd (4).
//
// Guarantees:
//   - Decode accepts what the Java, librdkafka, franz-go, kafkajs and
//     kafka-python producers write: gzip streams (several members are
//     read as one stream), snappy as a raw block or in the xerial framing
//     the Java client uses, lz4 frames, zstd frames.
//   - Decode never returns more than maxSize bytes: a larger result is an
//     error wrapping ErrTooLarge (a compression bomb costs at most maxSize).
//   - Every failure wraps ErrCorrupt or ErrTooLarge or ErrUnknownCodec.
//   - Safe for concurrent use.
//
// Non-guarantees: Encode's output is one valid encoding, not byte for byte
// what any client writes.
package compression

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is the compression field of a record batch's attributes (bits 0-2).
type Codec int8

// The codecs Kafka defines.
const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Errors callers branch on.
var (
	ErrCorrupt      = errors.New("compression: corrupt input")
	ErrTooLarge     = errors.New("compression: decoded size over the limit")
	ErrUnknownCodec = errors.New("compression: unknown codec")
)

// xerialMagic starts the framing snappy-java writes: magic, then a version
// and a minimum-compatible version (int32 each), then blocks of a big-endian
// int32 length followed by a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// One zstd decoder serves every caller: DecodeAll is safe for concurrent
// use, and creating a decoder allocates its tables (~1 MiB).
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
})

var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
})

// Decode decompresses src, compressed with c, and appends the result to dst.
// It fails with ErrTooLarge when the result would pass maxSize bytes.
func Decode(dst []byte, c Codec, src []byte, maxSize int) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch c {
	case None:
		if len(src) > maxSize {
			return nil, ErrTooLarge
		}
		return append(dst, src...), nil
	case Gzip:
		out, err = decodeGzip(dst, src, maxSize)
	case Snappy:
		out, err = decodeSnappy(dst, src, maxSize)
	case LZ4:
		out, err = readBounded(dst, lz4.NewReader(bytes.NewReader(src)), maxSize)
	case Zstd:
		out, err = decodeZstd(dst, src, maxSize)
	default:
		return nil, fmt.Errorf("%w %d", ErrUnknownCodec, c)
	}
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("%s: %w (%d bytes)", c, ErrTooLarge, maxSize)
		}
		return nil, fmt.Errorf("%s: %w: %v", c, ErrCorrupt, err)
	}
	return out, nil
}

func decodeGzip(dst, src []byte, maxSize int) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	return readBounded(dst, r, maxSize)
}

// readBounded reads r to its end into dst, failing past maxSize bytes.
func readBounded(dst []byte, r io.Reader, maxSize int) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(r, int64(maxSize)+1-int64(len(dst))))
	if err != nil {
		return nil, err
	}
	if n > int64(maxSize) {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

func decodeSnappy(dst, src []byte, maxSize int) ([]byte, error) {
	if len(src) >= xerialHeaderSize && bytes.HasPrefix(src, xerialMagic) {
		return decodeXerial(dst, src[xerialHeaderSize:], maxSize)
	}
	return appendSnappyBlock(dst, src, maxSize)
}

func appendSnappyBlock(dst, block []byte, maxSize int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if len(dst)+n > maxSize {
		return nil, ErrTooLarge
	}
	start := len(dst)
	dst = growLen(dst, n)
	if _, err := s2.Decode(dst[start:], block); err != nil {
		return nil, err
	}
	return dst, nil
}

func decodeXerial(dst, src []byte, maxSize int) ([]byte, error) {
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("xerial: %d bytes where a block length is due", len(src))
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, fmt.Errorf("xerial: block of %d bytes, %d left", n, len(src))
		}
		var err error
		if dst, err = appendSnappyBlock(dst, src[:n], maxSize); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return dst, nil
}

func decodeZstd(dst, src []byte, maxSize int) ([]byte, error) {
	d, err := zstdDecoder()
	if err != nil {
		return nil, err
	}
	// DecodeAll trusts a frame's declared size for its allocation; check it
	// first so that a tiny frame cannot claim gigabytes.
	var h zstd.Header
	if err := h.Decode(src); err == nil && h.HasFCS && h.FrameContentSize > uint64(maxSize) {
		return nil, ErrTooLarge
	}
	start := len(dst)
	out, err := d.DecodeAll(src, dst)
	if err != nil {
		return nil, err
	}
	if len(out)-start > maxSize {
		return nil, ErrTooLarge
	}
	return out, nil
}

func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}

// Encode compresses src with c and appends the result to dst. Snappy uses
// the xerial framing when xerial is true (the Java client's format), a raw
// block otherwise.
func Encode(dst []byte, c Codec, src []byte, xerial bool) ([]byte, error) {
	switch c {
	case None:
		return append(dst, src...), nil
	case Gzip:
		buf := bytes.NewBuffer(dst)
		w := gzip.NewWriter(buf)
		_, werr := w.Write(src)
		if err := errors.Join(werr, w.Close()); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Snappy:
		if !xerial {
			return append(dst, s2.EncodeSnappy(nil, src)...), nil
		}
		dst = append(dst, xerialMagic...)
		dst = binary.BigEndian.AppendUint32(dst, 1)
		dst = binary.BigEndian.AppendUint32(dst, 1)
		for len(src) > 0 {
			n := min(len(src), 32<<10)
			block := s2.EncodeSnappy(nil, src[:n])
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(block)))
			dst = append(dst, block...)
			src = src[n:]
		}
		return dst, nil
	case LZ4:
		buf := bytes.NewBuffer(dst)
		w := lz4.NewWriter(buf)
		_, werr := w.Write(src)
		if err := errors.Join(werr, w.Close()); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Zstd:
		e, err := zstdEncoder()
		if err != nil {
			return nil, err
		}
		return e.EncodeAll(src, dst), nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnknownCodec, c)
}
