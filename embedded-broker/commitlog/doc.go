// Package commitlog is bridge's embedded backbone: a durable, segmented,
// append-only log of topics and partitions in Kafka's model, with offsets,
// sparse indexes, retention, long-poll reads and consumer checkpoints.
//
// # Guarantees
//
//   - Durability: Append and AppendPartition return only once their events
//     are durable under the fsync policy. FsyncAlways: fdatasynced (group
//     commit: concurrent appends to a partition share one write and one
//     fdatasync). FsyncInterval: written to the file, fdatasynced within
//     Options.FsyncInterval. FsyncNever: written; synced when a segment rolls
//     and on Close.
//   - Visibility: readers see an offset only once it is as durable as the
//     policy promises (under FsyncAlways, after its fdatasync), so nothing a
//     consumer has read can vanish in a crash under that policy.
//   - Order: offsets within a partition are dense and assigned in the order
//     appenders take the partition lock; the events of one call that land in
//     one partition are consecutive.
//   - Recovery: Open checks every batch of each partition's active segment
//     (CRC-32C and offset continuity) and cuts the file after the last valid
//     batch; the cut is logged and returned by Truncations. A damaged batch
//     inside a sealed segment is not cut: reading it returns an error
//     wrapping event.ErrCorruption. Missing or invalid index files are rebuilt.
//   - Partitioning: Partition is Kafka's default partitioner for keyed
//     records (murmur2, sign bit masked, modulo), so a key lands on the same
//     partition number as with the Kafka Java client.
//   - On disk, batches are Kafka RecordBatch v2 (magic 2), byte for byte
//     what kmsg.RecordBatch encodes; an event's Source travels as a last
//     header named event.HeaderSource. Append writes them uncompressed with
//     producer id -1; AppendBatches stores a Kafka client's batches as they
//     came (compression, producer id, epoch, sequence and timestamps kept;
//     only the base offset and the leader epoch, both outside the CRC, are
//     set), after validating them (ValidateBatches). Every reader decodes
//     gzip, snappy (raw or xerial-framed), lz4 and zstd batches.
//   - ReadBatches serves whole batches as a pinned byte range of a segment
//     file, cut on batch boundaries with the offset index, for a Kafka Fetch
//     that copies file to socket without decoding.
//   - Concurrency: every method of Log is safe for concurrent use. A Reader
//     is for one goroutine.
//
// # Non-guarantees
//
//   - Timestamps are stored in milliseconds (Kafka's unit); sub-millisecond
//     precision is dropped.
//   - Under FsyncInterval and FsyncNever a crash can lose acknowledged and
//     already-read events; a consumer checkpoint may then point past the
//     recovered end.
//   - When ctx ends while Append waits, the events may or may not be
//     appended.
//   - A failed write or fsync fails the partition for further appends until
//     the log is reopened (the state of the file tail is unknown; recovery
//     decides it), as pebble does with a failed WAL sync.
//   - An event whose last header is named event.HeaderSource and whose
//     Source is empty comes back with that header moved into Source.
//   - Transactional and control batches are refused by AppendBatches and
//     read as corruption (bridge has no transactions).
//
// See DESIGN.md in this directory for the files, the data path, the lock
// order and the non-obvious invariants.
package commitlog
