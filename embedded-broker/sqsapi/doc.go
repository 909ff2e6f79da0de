// Package sqsapi serves the Amazon SQS JSON 1.0 protocol (POST /,
// X-Amz-Target: AmazonSQS.<Action>, Content-Type application/x-amz-json-1.0)
// over the embedded queues of package queue, so that an unmodified
// aws-sdk-go-v2 SQS client (or any SDK speaking the JSON protocol) can use
// them with BaseEndpoint set to the server.
//
// # Supported actions
//
// CreateQueue, GetQueueUrl, ListQueues, GetQueueAttributes,
// SetQueueAttributes, DeleteQueue, PurgeQueue, SendMessage, SendMessageBatch,
// ReceiveMessage, DeleteMessage, DeleteMessageBatch, ChangeMessageVisibility,
// ChangeMessageVisibilityBatch, ListDeadLetterSourceQueues,
// StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask. Any
// other target is answered with InvalidAction.
//
// # Guarantees
//
//   - A SendMessage or SendMessageBatch success is returned only after the
//     queue engine reported the message durable under its fsync policy.
//   - Errors carry SQS's shape name in __type and its legacy code in the
//     x-amzn-query-error header, so the SDK returns its typed errors
//     (*types.QueueDoesNotExist, *types.ReceiptHandleIsInvalid, ...) with
//     the ErrorCode() real SQS gives (AWS.SimpleQueueService.NonExistentQueue).
//   - MD5OfMessageBody, MD5OfMessageAttributes and
//     MD5OfMessageSystemAttributes are computed as SQS computes them (see
//     md5OfAttributes); on receive, the attribute digest covers the
//     attributes returned, as in SQS.
//   - Batch actions validate the batch as a whole (EmptyBatchRequest,
//     TooManyEntriesInBatchRequest, InvalidBatchEntryId,
//     BatchEntryIdsNotDistinct, BatchRequestTooLong) and then each entry on
//     its own: a bad entry is reported in Failed and does not fail the
//     others.
//   - Request bodies are bounded (2 MiB); malformed JSON or wrong field
//     types get a 400 SerializationException; the server never panics on
//     input (fuzzed). The hot requests (send, receive, delete, batches)
//     are read by a one-pass decoder that hands anything unusual to
//     encoding/json, so both agree on every input (fuzzed against each
//     other).
//   - With Options.Credentials set, every request must carry a valid AWS
//     Signature V4 (Authorization header form) by one of the keys, signed
//     within 15 minutes of the server clock; signatures are compared in
//     constant time.
//   - Long polls (WaitTimeSeconds) end when a message arrives, when the wait
//     ends, or when the client disconnects.
//   - DeleteMessageBatch deletes its entries with one engine commit (one
//     fsync under the "always" policy); ChangeMessageVisibilityBatch applies
//     its entries in order.
//   - Engine failures that are not the client's (I/O, a closed manager) are
//     500 InternalError with fault Receiver, which the SDK retries, and are
//     logged at Error.
//
// # Deviations from SQS
//
//   - One account (000000000000) and one region per server; queue URLs are
//     http://Addr/000000000000/NAME. A request's QueueUrl is resolved by its
//     last path segment only, whatever host it names.
//   - FIFO-ness follows the name: a ".fifo" name is a FIFO queue even
//     without the FifoQueue attribute; FifoQueue=true on another name, or
//     false on a ".fifo" name, is InvalidParameterValue.
//   - CreateQueue on an existing queue compares only the attributes given
//     (as SQS does in practice); tags are accepted and ignored.
//   - Policy, KMS/SSE, DeduplicationScope, FifoThroughputLimit and
//     RedriveAllowPolicy attributes are accepted and ignored, and not
//     returned. StringListValues/BinaryListValues (never implemented by SQS
//     either) are rejected.
//   - ReceiveRequestAttemptId is accepted and ignored: a retried FIFO
//     receive does not return the same batch again.
//   - SenderId is always the account id; PurgeQueue has no 60-second
//     PurgeQueueInProgress guard.
//   - StartMessageMoveTask moves the messages the dead-letter queue held
//     when the task started, in chunks, in a goroutine the Server owns;
//     ApproximateNumberOfMessagesMoved is exact. Task history is kept in
//     memory (ten per source) and lost on restart.
//   - Permissions, tagging and the query (XML) protocol are not served.
//
// # Tracing
//
// With Options.TracerProvider set, ReceiveMessage records a "receive QUEUE"
// span continuing the trace in the first message's traceparent attribute
// (other messages' traces are links) and DeleteMessage(Batch) a "delete
// QUEUE" span under the request's traceparent header, if any. Message
// attributes are returned as stored. Without a provider nothing is parsed.
//
// # Concurrency
//
// A Server is safe for concurrent use; each request runs on its HTTP
// goroutine. Locks: moveTasks.mu may be held while taking a moveTask.mu,
// never the reverse.
package sqsapi
