// Package sqs connects bridge to Amazon SQS (or any endpoint speaking the
// SQS JSON protocol: the embedded SQS API, fauxqs, LocalStack) as a source
// (long-poll a queue into the backbone) and as a sink (SendMessageBatch).
//
// # Client
//
// NewClient builds an SDK client with the standard AWS credential chain
// (environment, shared config, SSO, web identity, IMDS), or with static keys
// when ClientConfig has them; Endpoint overrides the service endpoint.
// Secrets never appear in logs or errors (ClientConfig logs redacted).
//
// # Source guarantees
//
//   - At-least-once: each poller long-polls ReceiveMessage (up to
//     MaxMessages, WaitTime), hands the messages to deliver in receive
//     order, and deletes them (DeleteMessageBatch, failed entries retried)
//     only after deliver returned nil. A receipt that expired meanwhile
//     cannot be deleted: the message comes again, which is logged.
//   - Visibility extension: the queue's real VisibilityTimeout is read at
//     start (GetQueueAttributes); while deliver runs, the messages'
//     visibility is extended (ChangeMessageVisibilityBatch) at 2/3 of it,
//     so that a slow backbone does not let them reappear to another consumer.
//   - A failed deliver makes the messages visible again after a backoff (1s
//     doubling to 60s, following the messages' ApproximateReceiveCount); a stop in the middle of deliver makes them visible
//     at once, for the next consumer. Nothing loops hot.
//   - FIFO queues (URL ending in .fifo) use a single poller, so events of
//     a message group enter the backbone in group order.
//   - Every call is bounded: a long poll by WaitTime + RequestTimeout, the
//     others by RequestTimeout (30s by default; the connection's
//     request_timeout), so a connection left half-open by a network
//     partition costs one timeout and a retry, not the poller.
//   - Run returns nil when ctx is cancelled (a pending long poll is
//     abandoned), and an error only for a failure retrying cannot fix (the
//     queue does not exist, access denied).
//
// Non-guarantees: a standard queue has no order and may deliver a message
// twice; both pass through. Several pollers (Concurrency) deliver
// concurrently. Stopping abandons the pending long polls; a server that
// still answers one of them (fauxqs does, for up to WaitTime) makes those
// messages invisible until their visibility timeout ends, after which any
// consumer gets them: late, not lost.
//
// # Sink guarantees
//
//   - SendParams splits the batch into SendMessageBatch requests of at most
//     10 entries and 256 KiB, sent one after another in batch order, and
//     returns nil only when SQS accepted every entry. Entries that failed
//     with a server fault are retried (3 attempts); what still fails is
//     reported as a *event.BatchError, permanent when SQS blamed the sender
//     (SenderFault) or the message cannot be sent at all (over 256 KiB,
//     empty body, characters SQS rejects).
//   - Each SendMessageBatch call is bounded by RequestTimeout; one nobody
//     answers fails retryably ("no answer within the request timeout").
//   - A request that fails as a whole fails its entries and every later
//     entry (not sent, to keep FIFO order); a missing queue or denied access
//     is permanent, throttling and network errors retryable. On a FIFO
//     queue, a request with any failed entry also leaves the later requests
//     unsent (reported as retryable), so a group moves past a failed message
//     by at most the rest of one request of 10.
//   - FIFO: MessageGroupId = Params.GroupID, else the event key, else
//     "default"; MessageDeduplicationId = Params.DedupID, else the header
//     bridge-event-id, else unset (the queue's content-based deduplication
//     then applies, or SQS rejects the message as permanent).
//
// # Mapping (SPEC §8)
//
// Headers become String message attributes through package sqsattr: at most
// 10, the rest packed in bridge-headers and unpacked by the source; the key
// travels in the attribute bridge-key. On receipt the key is bridge-key if
// present, else the MessageGroupId of a FIFO message, else nil: bridge-key
// wins because it keeps a key exactly, while a group id may be a default.
// A nil key sent to a FIFO queue therefore comes back as the key "default".
//
// System attributes become headers named sqs.<Name> (sqs.SentTimestamp,
// sqs.ApproximateReceiveCount, sqs.ApproximateFirstReceiveTimestamp,
// sqs.SenderId, sqs.MessageGroupId, sqs.MessageDeduplicationId,
// sqs.SequenceNumber, sqs.AWSTraceHeader, ... whatever SQS returns), plus
// sqs.MessageId. The event's Timestamp is SentTimestamp. The sink does not
// send sqs.* headers as attributes (they describe the previous hop and SQS
// sets its own), except that sqs.AWSTraceHeader becomes the AWSTraceHeader
// system attribute, so an X-Ray trace survives SQS → bridge → SQS. W3C
// trace context (traceparent, tracestate) travels as ordinary attributes.
//
// Message bodies and attributes are text: a value that is not valid UTF-8
// (or a body holding characters SQS rejects, or an empty body), and a header
// whose name or value is not valid UTF-8, fail with event.ErrPermanent
// instead of being altered.
package sqs
