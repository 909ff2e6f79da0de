package migrate

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/bridgeio/bridge/event"
)

// system is one endpoint's system: how to read it as a source, write it as
// a target, and read the target back for verification. There is one
// implementation per Kind; each wraps the existing connector for the data
// path and only adds what migrations need (depth, preflight, read-back).
type system interface {
	// source builds a connector source. maxBatch > 0 caps the events of
	// one deliver call (for --limit); 0 keeps the connector's default.
	source(maxBatch int) (event.Source, error)
	// sink builds the connector sink the route sends to.
	sink() (event.Sink, error)
	// checkSource fails when the source cannot be read at all (no such
	// queue or topic), so that a typo ends the command instead of a retry
	// loop.
	checkSource(ctx context.Context) error
	// prepareTarget creates the target when the system allows it and it
	// is absent (Kafka topic, SQS queue, AMQP queue) and fails when it
	// cannot be written.
	prepareTarget(ctx context.Context, partitions int) error
	// depth is the source's backlog as the system reports it; ok false
	// when it cannot tell.
	depth(ctx context.Context) (n int64, ok bool, err error)
	// mark is the target's end position before the migration writes, so
	// that verification reads only what came after (logs); nil for queues,
	// which are read whole.
	mark(ctx context.Context) (map[int32]int64, error)
	// readBack reads the target without consuming it and calls fn for
	// every message, in the target's order per partition.
	readBack(ctx context.Context, from map[int32]int64, fn func(targetMessage)) error
	close()
}

// targetMessage is one message read back from the target, mapped to the
// canonical event the connectors would produce from it.
type targetMessage struct {
	Event     event.Event
	Partition int32  // target partition (0 for queues)
	Position  string // target position for the position map
}

// newSystem returns the system of e. name identifies the migration (the
// consumer group of a Kafka source, connection names).
func newSystem(e *Endpoint, name, stateDir string, log *slog.Logger) (system, error) {
	switch e.Kind {
	case KindAMQP:
		return &amqpSystem{ep: e, name: name, log: log}, nil
	case KindKafka:
		return newKafkaSystem(e, name, log)
	case KindSQS:
		return newSQSSystem(e, name, log)
	case KindBridge:
		return newBridgeSystem(e, stateDir, log), nil
	}
	return nil, fmt.Errorf("migrate: no system for %q", e.Kind)
}
