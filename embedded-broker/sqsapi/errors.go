package sqsapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// errorKind is one SQS error as the JSON 1.0 protocol reports it: the shape
// name the SDK looks up in its type registry (__type), the legacy query code
// the SDK prefers when the x-amzn-query-error header is present (SQS is
// "awsQueryCompatible", so ErrorCode() returns that code), and the status.
type errorKind struct {
	shape  string
	query  string
	status int
	sender bool
}

// The kinds below use the shape names and query codes of the SQS Smithy
// model, so errors.As(err, &*types.QueueDoesNotExist) works on the client and
// ErrorCode() matches what real SQS returns.
var (
	kindQueueDoesNotExist      = errorKind{"com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400, true}
	kindQueueNameExists        = errorKind{"com.amazonaws.sqs#QueueNameExists", "QueueAlreadyExists", 400, true}
	kindReceiptHandleInvalid   = errorKind{"com.amazonaws.sqs#ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 400, true}
	kindMessageNotInflight     = errorKind{"com.amazonaws.sqs#MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", 400, true}
	kindBatchIDsNotDistinct    = errorKind{"com.amazonaws.sqs#BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400, true}
	kindEmptyBatch             = errorKind{"com.amazonaws.sqs#EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400, true}
	kindTooManyEntries         = errorKind{"com.amazonaws.sqs#TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400, true}
	kindBatchTooLong           = errorKind{"com.amazonaws.sqs#BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", 400, true}
	kindInvalidBatchEntryID    = errorKind{"com.amazonaws.sqs#InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", 400, true}
	kindInvalidAttributeName   = errorKind{"com.amazonaws.sqs#InvalidAttributeName", "InvalidAttributeName", 400, true}
	kindInvalidAttributeValue  = errorKind{"com.amazonaws.sqs#InvalidAttributeValue", "InvalidAttributeValue", 400, true}
	kindInvalidMessageContents = errorKind{"com.amazonaws.sqs#InvalidMessageContents", "InvalidMessageContents", 400, true}
	kindInvalidAddress         = errorKind{"com.amazonaws.sqs#InvalidAddress", "InvalidAddress", 400, true}
	kindResourceNotFound       = errorKind{"com.amazonaws.sqs#ResourceNotFoundException", "ResourceNotFoundException", 400, true}
	kindUnsupportedOperation   = errorKind{"com.amazonaws.sqs#UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400, true}
	// The kinds below have no modeled shape: the SDK returns a
	// *smithy.GenericAPIError whose ErrorCode() is the query code.
	kindInvalidParameterValue = errorKind{"com.amazonaws.sqs#InvalidParameterValue", "InvalidParameterValue", 400, true}
	kindMissingParameter      = errorKind{"com.amazonaws.sqs#MissingParameter", "MissingParameter", 400, true}
	kindInvalidAction         = errorKind{"com.amazon.coral.service#UnknownOperationException", "InvalidAction", 400, true}
	kindMissingAction         = errorKind{"com.amazon.coral.service#MissingAction", "MissingAction", 400, true}
	kindSerialization         = errorKind{"com.amazon.coral.service#SerializationException", "MalformedInput", 400, true}
	kindRequestTooLarge       = errorKind{"com.amazon.coral.service#RequestEntityTooLarge", "RequestEntityTooLarge", 413, true}
	kindMethodNotAllowed      = errorKind{"com.amazon.coral.service#MethodNotAllowed", "InvalidHttpRequest", 405, true}
	kindSignatureDoesNotMatch = errorKind{"com.amazon.coral.service#InvalidSignatureException", "SignatureDoesNotMatch", 403, true}
	kindInvalidClientTokenID  = errorKind{"com.amazon.coral.service#UnrecognizedClientException", "InvalidClientTokenId", 403, true}
	kindMissingAuthentication = errorKind{"com.amazon.coral.service#MissingAuthenticationTokenException", "MissingAuthenticationToken", 403, true}
	kindRequestExpired        = errorKind{"com.amazon.coral.service#InvalidSignatureException", "RequestExpired", 403, true}
	kindInternal              = errorKind{"com.amazon.coral.service#InternalFailure", "InternalError", 500, false}
)

// apiError is an error the server reports to the client verbatim.
type apiError struct {
	kind    errorKind
	message string
}

func (e *apiError) Error() string { return e.kind.query + ": " + e.message }

func newError(kind errorKind, format string, args ...any) *apiError {
	return &apiError{kind: kind, message: fmt.Sprintf(format, args...)}
}

// code is the short code used in batch result entries (Failed[].Code), which
// real SQS fills with the query code.
func (e *apiError) code() string { return e.kind.query }

// fromQueueError maps an error of the queue engine to the SQS error a client
// expects. Errors the engine does not classify become InternalError: they are
// server faults (disk, closed manager), never the client's.
func fromQueueError(err error, queueName string) *apiError {
	var apiErr *apiError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, queue.ErrNoSuchQueue):
		return newError(kindQueueDoesNotExist, "The specified queue %s does not exist.", queueName)
	case errors.Is(err, queue.ErrQueueExists):
		return newError(kindQueueNameExists, "A queue already exists with the same name and a different value for attribute(s).")
	case errors.Is(err, queue.ErrReceiptInvalid):
		return newError(kindReceiptHandleInvalid, "The input receipt handle is invalid.")
	case errors.Is(err, queue.ErrMessageNotInflight):
		return newError(kindMessageNotInflight, "The message referred to is not in flight.")
	case errors.Is(err, queue.ErrMessageTooLarge):
		return newError(kindInvalidParameterValue, "One or more parameters are invalid. Reason: Message must be shorter than the queue's MaximumMessageSize.")
	case errors.Is(err, queue.ErrInvalidParameter):
		return newError(kindInvalidParameterValue, "%v", err)
	default:
		return newError(kindInternal, "%v", err)
	}
}

// writeError writes e as the JSON 1.0 protocol error body plus the
// x-amzn-query-error header that gives the SDK the legacy code and fault.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	fault := "Receiver"
	if e.kind.sender {
		fault = "Sender"
	}
	h.Set("X-Amzn-Query-Error", e.kind.query+";"+fault)
	body := make([]byte, 0, 64+len(e.message))
	body = append(body, `{"__type":`...)
	body = appendJSONString(body, e.kind.shape)
	body = append(body, `,"message":`...)
	body = appendJSONString(body, e.message)
	body = append(body, '}')
	w.WriteHeader(e.kind.status)
	_, _ = w.Write(body) // the client went away; nothing to report to
}
