// Package queue implements bridge's embedded queues with the semantics of
// Amazon SQS: visibility timeouts, receive counts, dead-letter queues with
// redrive, delays, retention, maximum message size, long polling, purge, and
// FIFO queues with message groups and deduplication.
//
// A Manager owns the queues of one directory; each Queue is one journal file
// (NAME.q) of CRC-checked records, replayed on Open and compacted by
// rewriting the live state into a new file renamed over the old. See
// DESIGN.md in this folder for the format, the data structures and the
// lock order.
//
// Guarantees:
//   - Send returns only once its messages are durable under the fsync
//     policy: "always" fsyncs before returning (concurrent senders share
//     one write and one fsync); "interval" and "never" write to the file
//     (surviving kill -9) and fsync every FsyncInterval, or never.
//   - A message whose Send returned is never lost across restart, kill -9
//     or (policy "always") power loss; a message whose Delete returned never
//     comes back, under the same policy conditions.
//   - A message in flight when the process stops becomes visible again when
//     its visibility timeout ends, measured from the receive; a held one
//     (ReceiveHold) at once.
//   - A receipt handle names one delivery: it cannot delete or extend a
//     later delivery of the same message, not even across a restart.
//   - FIFO queues deliver each message group in send order and deliver
//     nothing of a group while one of its messages is in flight; a
//     deduplication id (or the body's SHA-256 under content-based
//     deduplication) seen in the last 5 minutes, restarts included, is not
//     enqueued again.
//   - Moving a message to a dead-letter queue or back (Redrive) never loses
//     it: the copy is durable before the original is deleted.
//   - Waiting receivers wake when a message arrives or becomes visible;
//     deadlines live in one heap per queue, and nothing polls.
//
// Non-guarantees:
//   - Delivery is at least once. A crash may forget receives and visibility
//     changes (they are journaled without waiting), which makes a message
//     visible earlier with a lower ReceiveCount; a move interrupted by a
//     crash leaves a duplicate.
//   - Standard queues deliver roughly, not strictly, in send order.
//   - Every stored message is held in memory; a queue's size is bounded by
//     its retention and the producer's rate, not by a byte limit.
//   - Retention is measured from SentAt, which a dead-lettered message
//     keeps; the sweep runs in send order, so such a message may outlive
//     its retention until it is next at the head or offered to a receiver.
//   - One process owns a directory; nothing guards against two.
package queue
