package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"slices"

	"github.com/bridgeio/bridge/internal/atomicfile"
)

// File image (little endian):
//
//	magic   "BRHIST1\n"
//	window  uint32          minutes per series
//	nseries uint32
//	stamps  window × int64  unix minute per slot (0 = empty)
//	series  nseries × { nameLen uint16, name, window × float64 bits }, sorted by name, no repeats
//	crc     uint32          CRC-32C of everything before it
//
// Only committed minutes are stored (Flush first). The encoding is
// canonical: decoding then encoding gives the same bytes.
const magic = "BRHIST1\n"

// ErrCorrupt is returned by UnmarshalBinary for a damaged image.
var ErrCorrupt = errors.New("history: corrupt file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the committed minutes.
func (r *Ring) MarshalBinary() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.series))
	for n := range r.series {
		names = append(names, n)
	}
	slices.Sort(names)
	size := len(magic) + 8 + 8*r.window + 4
	for _, n := range names {
		size += 2 + len(n) + 8*r.window
	}
	b := make([]byte, 0, size)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(r.window))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(names)))
	for _, s := range r.stamps {
		b = binary.LittleEndian.AppendUint64(b, uint64(s))
	}
	for _, n := range names {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
		for _, v := range r.series[n] {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// maxNameLen bounds a series name.
const maxNameLen = 1 << 10

// UnmarshalBinary replaces the ring's contents with an image. The image's
// window must equal the ring's; a damaged image is ErrCorrupt and leaves
// the ring unchanged.
func (r *Ring) UnmarshalBinary(b []byte) error {
	stamps, series, err := decode(b, r.window, r.maxSeries)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stamps, r.series = stamps, series
	clear(r.pending)
	r.newPending, r.open = 0, 0
	return nil
}

func decode(b []byte, window, maxSeries int) ([]int64, map[string][]float64, error) {
	if len(b) < len(magic)+12 || string(b[:len(magic)]) != magic {
		return nil, nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	p := body[len(magic):]
	w := int(binary.LittleEndian.Uint32(p))
	n := int(binary.LittleEndian.Uint32(p[4:]))
	p = p[8:]
	if w != window {
		return nil, nil, fmt.Errorf("%w: window %d, want %d", ErrCorrupt, w, window)
	}
	if n > maxSeries {
		return nil, nil, fmt.Errorf("%w: %d series, at most %d", ErrCorrupt, n, maxSeries)
	}
	if len(p) < 8*w {
		return nil, nil, fmt.Errorf("%w: short stamps", ErrCorrupt)
	}
	stamps := make([]int64, w)
	for i := range stamps {
		stamps[i] = int64(binary.LittleEndian.Uint64(p[8*i:]))
		if stamps[i] < 0 || (stamps[i] != 0 && int(stamps[i]%int64(w)) != i) {
			return nil, nil, fmt.Errorf("%w: slot %d holds minute %d", ErrCorrupt, i, stamps[i])
		}
	}
	p = p[8*w:]
	series := make(map[string][]float64, n)
	prev := ""
	for i := range n {
		if len(p) < 2 {
			return nil, nil, fmt.Errorf("%w: short series %d", ErrCorrupt, i)
		}
		l := int(binary.LittleEndian.Uint16(p))
		p = p[2:]
		if l == 0 || l > maxNameLen || len(p) < l+8*w {
			return nil, nil, fmt.Errorf("%w: series %d", ErrCorrupt, i)
		}
		name := string(p[:l])
		if i > 0 && name <= prev {
			return nil, nil, fmt.Errorf("%w: series names not sorted", ErrCorrupt)
		}
		prev = name
		p = p[l:]
		vals := make([]float64, w)
		for j := range vals {
			vals[j] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*j:]))
		}
		p = p[8*w:]
		series[name] = vals
	}
	if len(p) != 0 {
		return nil, nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(p))
	}
	return stamps, series, nil
}

// Save flushes the open minute and writes the image to path atomically
// (a temporary file, fsynced, renamed over path).
func (r *Ring) Save(path string) error {
	r.Flush()
	data, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o644)
}

// Load reads an image written by Save. A missing file is not an error (a
// first start); a damaged one is ErrCorrupt and leaves the ring empty.
func (r *Ring) Load(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.UnmarshalBinary(data)
}
