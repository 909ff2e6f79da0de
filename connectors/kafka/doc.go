// Package kafka is bridge's connector to Apache Kafka, built on franz-go
// (kgo): a consumer-group Source, a producer Sink, and the connection config
// they share (SPEC §3 connections of type kafka, §5, §8), and Backbone,
// Kafka as bridge's log (backbone.type: kafka; see its type doc). It imports only
// the event package, the standard library and franz-go.
//
// # Source guarantees
//
//   - At-least-once: offsets are committed only for records whose deliver
//     call returned nil (auto-commit is disabled; delivered records are
//     marked and the marks committed right after deliver). A restart, or
//     another member taking over a partition, resumes at the last commit.
//   - Nothing is skipped: when deliver fails, the source rewinds every
//     partition of the batch to its first record, backs off (doubling from
//     InitialBackoff to MaxBackoff) and fetches and delivers the same
//     records again. The rebalance is not held during the backoff.
//   - Rebalances: BlockRebalanceOnPoll keeps a batch from being split by a
//     rebalance while it is in deliver, and OnPartitionsRevoked commits what
//     was delivered before partitions move. Duplicates happen only when a
//     commit fails or the process dies between deliver and commit.
//   - Order: a batch lists each partition's records in offset order; the
//     events keep the record key, so the backbone (which partitions by key)
//     keeps per-key order.
//   - A new group starts at the earliest offset of each partition.
//   - Not guaranteed: exactly-once (no transactions); a deliver call that
//     outlasts the group's rebalance timeout (60s) gets the member kicked
//     out and its batch redelivered by the next owner.
//
// # Sink guarantees
//
//   - Send returns nil only when Kafka acknowledged every record with
//     acks=all, through the idempotent producer (no duplicates from the
//     client's own retries).
//   - Per-partition order holds under retries: the idempotent producer's
//     sequence numbers keep up to 5 in-flight requests per broker in order,
//     and when a record times out franz-go fails every record buffered
//     behind it in that partition, so a later record never lands before an
//     earlier one that failed.
//   - Failures come back as *event.BatchError per record. Permanent (dead
//     letter): MessageTooLarge, RecordListTooLarge, InvalidRecord,
//     InvalidTopicException, TopicAuthorizationFailed, UnknownTopicOrPartition
//     (after franz-go's own retries) and any non-retriable Kafka error.
//     Everything else (broker down, timeouts, cancellation) is retryable.
//   - A record unacknowledged after DeliveryTimeout fails with a retryable
//     error, so an outage surfaces as retries, not as a hung Send.
//   - Not guaranteed: a Send whose ctx is cancelled returns at once; records
//     already in a request are waited for (cancelling them would break
//     idempotence).
//
// # Header mapping (SPEC §8)
//
// Kafka → event: the record key becomes Event.Key (a null key stays nil, an
// empty key stays empty), the record headers become Event.Headers in order
// with repeated names kept, the record timestamp becomes Event.Timestamp,
// and Event.Source is SourceConfig.Name. Three headers are appended with the
// record's origin, for migration verification: kafka.topic, kafka.partition
// and kafka.offset (decimal), unless SourceConfig.NoOriginHeaders is set.
// Event.Topic/Partition/Offset are left for the backbone to assign.
//
// event → Kafka: Event.Key is the record key (the pipeline has already
// applied its key rule), every header is copied in order (bridge-event-id,
// traceparent, tracestate, amqp.*, sqs.*, kafka.* alike), Event.Timestamp is
// the record timestamp (now when zero). If the event has backbone
// coordinates and no bridge-event-id header, the sink adds one. Records
// without a key are spread by franz-go's sticky partitioner; keyed records
// use murmur2 like Kafka's Java client, so a key lands on the same partition
// whichever client produced it.
//
// # Configuration and defaults
//
// ClientConfig: Brokers (required), ClientID ("bridge"), TLS (CAFile
// replaces the system roots; CertFile+KeyFile a client certificate;
// InsecureSkipVerify), SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 with
// Username and Password), DialTimeout (10s), RequestTimeout (10s; the
// request timeout overhead and, for a sink, the produce request timeout).
// The SASL password is redacted in String, GoString and LogValue and never
// quoted in an error.
//
// SourceConfig: Topics, Group, Name (required), MaxBatch (1000),
// InitialBackoff (100ms), MaxBackoff (10s), NoOriginHeaders (false),
// Logger.
//
// SinkConfig: Topic (required), Compression (none; snappy, lz4, zstd),
// Linger (0), DeliveryTimeout (30s), Logger.
//
// # Lifecycle and locks
//
// NewSource and NewSink validate only: no I/O, no goroutines. Source.Run
// builds its client, owns it and closes it before returning (a final
// commit and a group leave, bounded by 10s). The Sink builds its client on
// the first Send; Close flushes (bounded by ctx) and is idempotent.
//
// Locks, none nested and none held during I/O or a callback: Sink.mu guards
// the client pointer and the closed flag; delivered.mu guards the
// source's delivered offsets, which Run's goroutine marks and the rebalance
// callbacks commit and prune (franz-go runs those callbacks only between
// polls, because of BlockRebalanceOnPoll); a per-Send mutex guards the list
// of failed records that promises append to.
//
// # Non-obvious
//
//   - kgo.RecordDeliveryTimeout measures from the record timestamp, which
//     the sink keeps from the event; an old (migrated) record would time out
//     before its first attempt. The sink bounds a Send with a context
//     deadline instead.
//   - kgo.AutoCommitMarks cannot be combined with DisableAutoCommit, so the
//     source keeps its own delivered offsets and commits them with
//     CommitOffsetsSync.
//   - A delivered offset is forgotten when its partition is revoked or lost,
//     so a late commit cannot rewind the next owner's progress.
//   - The sink passes event headers to franz-go without copying, by
//     reinterpreting []event.Header as []kgo.RecordHeader; a compile-time
//     struct conversion proves the two types identical. Copying them cost a
//     third of the sink's own CPU.
//
// # Performance
//
// Benchmarks pair the connector with a bare franz-go client doing the same
// work in the same run against the same kfake cluster:
//
//	go test ./connectors/kafka -run '^$' -bench . -benchtime 60x -count 3
//
// BenchmarkProducePaired and BenchmarkKafkaToKafka report records/s,
// bare-records/s and pct-of-bare.
//
// Logs: lifecycle and rebalances at Info, retries at Warn, franz-go's own
// Info chatter at Debug. Payloads are never logged.
package kafka
