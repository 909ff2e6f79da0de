package amqpapi

import (
	"errors"
	"fmt"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
)

// protoError is an AMQP exception: a reply code, its text, and the method
// that caused it. A soft code (404, 406, ...) closes the channel; a hard
// one (5xx, 320, 402) closes the connection.
type protoError struct {
	code     uint16
	text     string
	classID  uint16
	methodID uint16
}

func (e *protoError) Error() string { return fmt.Sprintf("amqp %d: %s", e.code, e.text) }

// hard reports whether the error closes the connection.
func (e *protoError) hard() bool { return wire.IsHardError(e.code) }

// replyText renders the reply text as RabbitMQ does: the code's name, a
// dash, the explanation.
func (e *protoError) replyText() string {
	return codeName(e.code) + " - " + e.text
}

func newError(code uint16, format string, args ...any) *protoError {
	return &protoError{code: code, text: fmt.Sprintf(format, args...)}
}

// withMethod sets the method that caused err, if err is a protoError
// without one.
func withMethod(err error, m wire.Method) error {
	var pe *protoError
	if errors.As(err, &pe) && pe.classID == 0 && m != nil {
		pe.classID, pe.methodID = m.ClassID(), m.MethodID()
	}
	return err
}

func codeName(code uint16) string {
	switch code {
	case wire.ContentTooLarge:
		return "CONTENT_TOO_LARGE"
	case wire.NoConsumers:
		return "NO_CONSUMERS"
	case wire.ConnectionForced:
		return "CONNECTION_FORCED"
	case wire.InvalidPath:
		return "INVALID_PATH"
	case wire.AccessRefused:
		return "ACCESS_REFUSED"
	case wire.NotFound:
		return "NOT_FOUND"
	case wire.ResourceLocked:
		return "RESOURCE_LOCKED"
	case wire.PreconditionFailed:
		return "PRECONDITION_FAILED"
	case wire.FrameError:
		return "FRAME_ERROR"
	case wire.SyntaxError:
		return "SYNTAX_ERROR"
	case wire.CommandInvalid:
		return "COMMAND_INVALID"
	case wire.ChannelError:
		return "CHANNEL_ERROR"
	case wire.UnexpectedFrame:
		return "UNEXPECTED_FRAME"
	case wire.ResourceError:
		return "RESOURCE_ERROR"
	case wire.NotAllowed:
		return "NOT_ALLOWED"
	case wire.NotImplemented:
		return "NOT_IMPLEMENTED"
	case wire.InternalError:
		return "INTERNAL_ERROR"
	case replyNoRoute:
		return "NO_ROUTE"
	}
	return fmt.Sprintf("CODE_%d", code)
}

// replyNoRoute is RabbitMQ's reply code for a mandatory message no
// binding matched (basic.return); it is not in the 0-9-1 XML.
const replyNoRoute = 312
