package kafkaapi

import (
	"context"
	"errors"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/event"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode maps a commitlog (or context) error onto the Kafka error code a
// client acts on: retriable codes make clients retry, the others surface.
func errorCode(err error) int16 {
	var oor *commitlog.OffsetOutOfRangeError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &oor):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, commitlog.ErrUnknownTopic), errors.Is(err, commitlog.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, commitlog.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, commitlog.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, commitlog.ErrInvalidBatch):
		return kerr.InvalidRecord.Code
	case errors.Is(err, commitlog.ErrUnsupportedBatch):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, commitlog.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, commitlog.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, commitlog.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, commitlog.ErrUnknownProducer):
		return kerr.UnknownProducerID.Code
	case errors.Is(err, commitlog.ErrClosed):
		// Shutting down: a retriable code that makes the client look again.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, event.ErrCorruption):
		return kerr.KafkaStorageError.Code
	}
	return kerr.UnknownServerError.Code
}
