// Package sqsapi serves Amazon SQS's API over the embedded queues of package
// queue, in both of SQS's protocols on one listener: AWS JSON 1.0 (POST /,
// X-Amz-Target: AmazonSQS.<Action>, Content-Type application/x-amz-json-1.0),
// which current SDKs speak, and the query protocol (Action=<Action> and
// SQS's parameter names form-encoded in a POST body or a GET query string,
// XML answers), which AWS CLI v1 and early v2, boto3 before 1.31 and
// aws-sdk-go v1 speak. An unmodified client of either kind works with its
// endpoint set to the server.
//
// The protocol is only the codec (codec.go): one action table and one set of
// typed handlers serve both; jsonCodec and queryCodec turn the wire into a
// handler's request and its result or error back into the wire.
//
// # Supported actions
//
// CreateQueue, GetQueueUrl, ListQueues, GetQueueAttributes,
// SetQueueAttributes, DeleteQueue, PurgeQueue, SendMessage, SendMessageBatch,
// ReceiveMessage, DeleteMessage, DeleteMessageBatch, ChangeMessageVisibility,
// ChangeMessageVisibilityBatch, ListDeadLetterSourceQueues,
// StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask, in
// both protocols. Any other action is answered with InvalidAction.
//
// # Guarantees
//
//   - A SendMessage or SendMessageBatch success is returned only after the
//     queue engine reported the message durable under its fsync policy.
//   - Errors carry the same code in both protocols: the query protocol's
//     <ErrorResponse> has SQS's code in <Code>; JSON has SQS's shape name in
//     __type and the code in the x-amzn-query-error header, so both kinds of
//     SDK return their typed errors
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
//   - Query requests are read by a form reader (querydecode.go) that
//     ignores unknown parameters and rejects a parameter given twice, a bad
//     escape or a bad list index with MalformedInput; XML answers are
//     well-formed whatever the input (fuzzed, and parsed back with
//     encoding/xml).
//   - With Options.Credentials set, every request must carry a valid AWS
//     Signature V4 (Authorization header form, over the body or, for a
//     query GET, the query string) by one of the keys, signed
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
// # Beyond SQS
//
// bridge's queue features beyond SQS travel in the unchanged protocol
// (extensions.go, docs/queues.md): message attributes bridge-priority,
// bridge-ttl, bridge-delay (past DelaySeconds' 900 s), bridge-reply-to and
// bridge-correlation-id; queue attributes bridge-max-priority,
// bridge-priority-aging and bridge-message-ttl; and the CreateQueue tag
// bridge-temporary, which makes a queue that is deleted once idle (an RPC
// client's reply queue). Both codecs carry them: they are attributes and
// tags like any other, read by the handlers.
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
//     (as SQS does in practice); tags are accepted and ignored, but for
//     bridge-temporary, which is compared like an attribute.
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
//   - Permissions and tagging are not served; presigned query URLs
//     (X-Amz-Signature in the query string) are not accepted.
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
