package commitlog

import (
	"encoding/binary"
	"sort"
)

// The sparse offset index maps a batch's offset, relative to the segment's
// base, to the batch's byte position: 8 bytes per entry, big-endian
// (relOffset uint32, position uint32), as Kafka's .index. The time index
// maps the largest timestamp seen so far in the segment to the relative
// offset of the batch that completed it: 12 bytes (timestamp int64 ms,
// relOffset uint32), as Kafka's .timeindex. Both are caches: recovery
// rebuilds them from the segment when they fail validation.
const (
	indexEntrySize     = 8
	timeIndexEntrySize = 12
)

type indexEntry struct {
	rel uint32
	pos uint32
}

type timeEntry struct {
	ts  int64
	rel uint32
}

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	return binary.BigEndian.AppendUint32(dst, e.pos)
}

func appendTimeEntry(dst []byte, e timeEntry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
	return binary.BigEndian.AppendUint32(dst, e.rel)
}

// decodeIndex parses an offset index file. Entries must be strictly
// increasing in both offset and position (a sparse index never repeats
// either); anything else is corruption and makes recovery rebuild it.
func decodeIndex(b []byte) ([]indexEntry, error) {
	if len(b)%indexEntrySize != 0 {
		return nil, corruptf("offset index of %d bytes is not a whole number of entries", len(b))
	}
	entries := make([]indexEntry, 0, len(b)/indexEntrySize)
	for i := 0; i < len(b); i += indexEntrySize {
		e := indexEntry{rel: binary.BigEndian.Uint32(b[i:]), pos: binary.BigEndian.Uint32(b[i+4:])}
		if n := len(entries); n > 0 && (e.rel <= entries[n-1].rel || e.pos <= entries[n-1].pos) {
			return nil, corruptf("offset index entry %d (%d@%d) does not increase", n, e.rel, e.pos)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// decodeTimeIndex parses a time index file: timestamps never decrease and
// relative offsets strictly increase.
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeIndexEntrySize != 0 {
		return nil, corruptf("time index of %d bytes is not a whole number of entries", len(b))
	}
	entries := make([]timeEntry, 0, len(b)/timeIndexEntrySize)
	for i := 0; i < len(b); i += timeIndexEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i:])), rel: binary.BigEndian.Uint32(b[i+8:])}
		if n := len(entries); n > 0 && (e.ts < entries[n-1].ts || e.rel <= entries[n-1].rel) {
			return nil, corruptf("time index entry %d (%d@%d) goes backwards", n, e.ts, e.rel)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// lookupPosition returns the position of the last indexed batch whose
// offset is <= rel (0, the segment start, when none is).
func lookupPosition(entries []indexEntry, rel uint32) int64 {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].rel > rel })
	if i == 0 {
		return 0
	}
	return int64(entries[i-1].pos)
}

// lookupTime returns the relative offset of the batch from which a scan for
// the first timestamp >= ts must start: the last entry whose running
// maximum is still below ts proves every record up to its batch is older,
// so the scan may start at that batch (0 when no entry proves anything).
func lookupTime(entries []timeEntry, ts int64) uint32 {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].ts >= ts })
	if i == 0 {
		return 0
	}
	return entries[i-1].rel
}
