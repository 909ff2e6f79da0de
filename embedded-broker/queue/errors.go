package queue

import (
	"errors"

	"github.com/bridgeio/bridge/event"
)

// Sentinel errors. Callers branch on them with errors.Is; the SQS API layer
// maps each to its SQS error code.
var (
	// ErrNoSuchQueue: the named queue does not exist (SQS QueueDoesNotExist).
	ErrNoSuchQueue = errors.New("queue: no such queue")
	// ErrQueueExists: Create with attributes that differ from the existing
	// queue of that name (SQS QueueAlreadyExists).
	ErrQueueExists = errors.New("queue: queue exists with different attributes")
	// ErrReceiptInvalid: a receipt handle that is malformed or belongs to
	// another queue (SQS ReceiptHandleIsInvalid).
	ErrReceiptInvalid = errors.New("queue: receipt handle is invalid")
	// ErrMessageNotInflight: ChangeVisibility on a message that is not in
	// flight under that receipt (SQS MessageNotInflight).
	ErrMessageNotInflight = errors.New("queue: message is not in flight")
	// ErrMessageTooLarge: body plus attributes exceed MaxMessageSize.
	ErrMessageTooLarge = errors.New("queue: message too large")
	// ErrInvalidParameter: an argument or config value out of range.
	ErrInvalidParameter = errors.New("queue: invalid parameter")
	// ErrClosed: the Manager was closed or the queue deleted while the call ran.
	ErrClosed = errors.New("queue: closed")
	// ErrCorrupt: a journal record failed its integrity check. It also
	// matches event.ErrCorruption.
	ErrCorrupt error = corruptError{}
)

type corruptError struct{}

func (corruptError) Error() string { return "queue: corrupt journal record" }

// Is makes errors.Is(ErrCorrupt, event.ErrCorruption) hold, so the engine
// classifies queue corruption like log corruption.
func (corruptError) Is(target error) bool { return target == event.ErrCorruption }
