package commitlog

import (
	"errors"
	"fmt"
)

// Sentinels callers branch on with errors.Is.
var (
	// ErrUnknownTopic: the topic does not exist.
	ErrUnknownTopic = errors.New("commitlog: unknown topic")
	// ErrTopicExists: CreateTopic found the topic with another partition count.
	ErrTopicExists = errors.New("commitlog: topic exists with another partition count")
	// ErrClosed: the log is closed (or closing).
	ErrClosed = errors.New("commitlog: closed")
	// ErrUnknownPartition: the partition number is not in the topic.
	ErrUnknownPartition = errors.New("commitlog: unknown partition")
	// ErrInvalidTopic: the name breaks Kafka's topic naming rules.
	ErrInvalidTopic = errors.New("commitlog: invalid topic name")
	// ErrBatchTooLarge: one Append's events for one partition encode to more
	// than 256 MiB.
	ErrBatchTooLarge = errors.New("commitlog: batch too large")
)

// OffsetOutOfRangeError reports a read outside [Earliest, Latest], where
// Latest is the end offset (the next offset to be written).
type OffsetOutOfRangeError struct {
	Earliest, Latest int64
}

func (e *OffsetOutOfRangeError) Error() string {
	return fmt.Sprintf("commitlog: offset out of range [%d, %d]", e.Earliest, e.Latest)
}
