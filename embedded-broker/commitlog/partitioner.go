package commitlog

// murmur2 is the 32-bit MurmurHash2 exactly as Kafka's Java client computes
// it (org.apache.kafka.common.utils.Utils.murmur2: seed 0x9747b28c, the
// length mixed into the seed, little-endian 4-byte blocks). Java's int
// arithmetic wraps like uint32 and ">>>" is the unsigned shift, so uint32
// gives the same bits.
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	length := len(data)
	h := uint32(seed) ^ uint32(length)
	blocks := length / 4
	for i := range blocks {
		b := data[i*4 : i*4+4]
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[blocks*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// Partition returns the partition Kafka's default partitioner gives key
// among partitions: toPositive(murmur2(key)) % partitions, where toPositive
// masks the sign bit (it does not negate). A nil key has no fixed partition
// and gives -1; an empty non-nil key is a key and hashes like any other.
func Partition(key []byte, partitions int) int32 {
	if key == nil || partitions <= 0 {
		return -1
	}
	return int32((murmur2(key) & 0x7fffffff) % uint32(partitions))
}
