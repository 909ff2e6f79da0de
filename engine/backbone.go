package engine

import (
	"context"
	"time"

	"github.com/bridgeio/bridge/event"
)

// Backbone is the log the engine reads pipelines from and appends sources
// to: the embedded commitlog, or a Kafka cluster at scale. It is defined
// here, where it is consumed; *commitlog.Log satisfies it through
// EmbeddedBackbone.
type Backbone interface {
	// Append is durable under the backbone's fsync policy when it returns.
	Append(ctx context.Context, topic string, evs []event.Event) ([]event.Position, error)
	// Fetch long-polls: it returns at least one event at from, or ctx's error.
	// An offset outside the log is an error matched by OutOfRange.
	Fetch(ctx context.Context, topic string, partition int32, from int64, maxEvents, maxBytes int) ([]event.Event, error)
	// Read is Fetch without waiting: (nil, nil) at the end of the log.
	Read(topic string, partition int32, from int64, maxEvents, maxBytes int) ([]event.Event, error)
	Offsets(topic string, partition int32) (start, end int64, err error)
	// Topics lists the backbone's topic names, sorted.
	Topics() []string
	OffsetForTime(topic string, partition int32, t time.Time) (int64, error)
	Partitions(topic string) (int, error)
	// Commit stores next, the offset after the last processed event, for a
	// consumer group; Committed reads it back (ok false when none).
	Commit(ctx context.Context, group, topic string, partition int32, next int64) error
	Committed(ctx context.Context, group, topic string, partition int32) (next int64, ok bool, err error)
	// OutOfRange reports whether err says an offset is outside the log, and
	// where the log starts and ends.
	OutOfRange(err error) (earliest, latest int64, ok bool)
}
