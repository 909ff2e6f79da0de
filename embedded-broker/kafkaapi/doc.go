// Package kafkaapi serves bridge's embedded backbone (commitlog) over the
// Kafka wire protocol, so that unmodified Kafka clients produce to and
// consume from it. Every request and response goes through
// github.com/twmb/franz-go/pkg/kmsg, except the Fetch response, whose
// record bytes are copied from the segment files to the socket (sendfile on
// plain TCP) and whose frame is therefore written by hand (and tested
// byte for byte against kmsg).
//
// # Guarantees
//
//   - A Produce is answered only once its batches are durable under the
//     log's fsync policy; batches are stored as the client sent them
//     (commitlog.AppendBatches), so compression, timestamps and producer
//     fields survive, and pipelines read them as events.
//   - Bad batches are refused with Kafka's codes (CORRUPT_MESSAGE,
//     INVALID_RECORD, UNSUPPORTED_FOR_MESSAGE_FORMAT, MESSAGE_TOO_LARGE) and
//     append nothing.
//   - Idempotent producers: sequence numbers are checked per partition
//     (duplicates answered with their first offset, gaps refused with
//     OUT_OF_ORDER_SEQUENCE_NUMBER, old epochs with INVALID_PRODUCER_EPOCH);
//     the state is rebuilt from the log at Open.
//   - Consumer groups (classic protocol): committed offsets are durable (the
//     log's checkpoint store, group "kafka-group:NAME"); membership is in
//     memory and rebuilt by the clients rejoining after a restart.
//   - A connection's requests are answered in order; an API or version that
//     is not served is answered with UNSUPPORTED_VERSION where the response
//     has a top-level error code, and otherwise closes the connection with
//     the reason logged.
//
// # Non-guarantees
//
//   - One node: Metadata names one broker (node 0) that leads every
//     partition; replication factor is 1.
//   - No transactions (InitProducerId with a transactional id, and
//     transactional batches, are refused), no fetch sessions (every Fetch
//     is a full one), no static group membership, no offset-commit
//     metadata (OffsetFetch answers an empty string).
//
// See DESIGN.md for the connection model, the data paths and the lock
// order.
package kafkaapi
