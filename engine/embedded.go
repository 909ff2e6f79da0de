package engine

import (
	"context"
	"errors"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/event"
)

// Embedded adapts the embedded commitlog to the Backbone interface.
func Embedded(l *commitlog.Log) Backbone { return embedded{l} }

type embedded struct{ l *commitlog.Log }

func (e embedded) Append(ctx context.Context, topic string, evs []event.Event) ([]event.Position, error) {
	return e.l.Append(ctx, topic, evs)
}

func (e embedded) Fetch(ctx context.Context, topic string, partition int32, from int64, maxEvents, maxBytes int) ([]event.Event, error) {
	return e.l.Fetch(ctx, topic, partition, from, maxEvents, maxBytes)
}

func (e embedded) Read(topic string, partition int32, from int64, maxEvents, maxBytes int) ([]event.Event, error) {
	return e.l.Read(topic, partition, from, maxEvents, maxBytes)
}

func (e embedded) Offsets(topic string, partition int32) (int64, int64, error) {
	return e.l.Offsets(topic, partition)
}

func (e embedded) OffsetForTime(topic string, partition int32, t time.Time) (int64, error) {
	return e.l.OffsetForTime(topic, partition, t)
}

func (e embedded) Topics() []string {
	infos := e.l.Topics()
	names := make([]string, len(infos))
	for i, ti := range infos {
		names[i] = ti.Name
	}
	return names
}

func (e embedded) Partitions(topic string) (int, error) {
	ti, err := e.l.Topic(topic)
	if err != nil {
		return 0, err
	}
	return len(ti.Partitions), nil
}

func (e embedded) Commit(ctx context.Context, group, topic string, partition int32, next int64) error {
	return e.l.Commit(ctx, group, topic, partition, next)
}

func (e embedded) Committed(ctx context.Context, group, topic string, partition int32) (int64, bool, error) {
	return e.l.Committed(ctx, group, topic, partition)
}

func (e embedded) OutOfRange(err error) (int64, int64, bool) {
	var oor *commitlog.OffsetOutOfRangeError
	if errors.As(err, &oor) {
		return oor.Earliest, oor.Latest, true
	}
	return 0, 0, false
}
