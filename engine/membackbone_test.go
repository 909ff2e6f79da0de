package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/bridgeio/bridge/event"
)

// memBackbone is an in-memory Backbone for engine tests: topics of
// partitions of events, long polls woken by a channel, checkpoints in a map.
type memBackbone struct {
	mu      sync.Mutex
	topics  map[string][][]event.Event
	commits map[string]int64
	wake    chan struct{}
	// failCommit makes Commit fail (to test that commit errors are reported).
	failCommit bool
}

type oorError struct{ earliest, latest int64 }

func (e *oorError) Error() string { return fmt.Sprintf("out of range [%d,%d]", e.earliest, e.latest) }

func newMemBackbone(topics map[string]int) *memBackbone {
	b := &memBackbone{topics: map[string][][]event.Event{}, commits: map[string]int64{}, wake: make(chan struct{})}
	for name, n := range topics {
		b.topics[name] = make([][]event.Event, n)
	}
	return b
}

func (b *memBackbone) Append(_ context.Context, topic string, evs []event.Event) ([]event.Position, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	parts, ok := b.topics[topic]
	if !ok {
		return nil, fmt.Errorf("unknown topic %s", topic)
	}
	pos := make([]event.Position, len(evs))
	for i, ev := range evs {
		p := int32(0)
		if ev.Key != nil {
			h := fnv.New32a()
			h.Write(ev.Key)
			p = int32(h.Sum32() % uint32(len(parts)))
		}
		ev.Topic, ev.Partition, ev.Offset = topic, p, int64(len(parts[p]))
		if ev.Timestamp.IsZero() {
			ev.Timestamp = time.Now()
		}
		ev = copyEvent(ev) // a log copies what it stores: the engine reuses its arenas
		parts[p] = append(parts[p], ev)
		pos[i] = event.Position{Partition: p, Offset: ev.Offset}
	}
	close(b.wake)
	b.wake = make(chan struct{})
	return pos, nil
}

func (b *memBackbone) Read(topic string, partition int32, from int64, maxEvents, _ int) ([]event.Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	part := b.topics[topic][partition]
	if from < 0 || from > int64(len(part)) {
		return nil, &oorError{0, int64(len(part))}
	}
	end := min(int64(len(part)), from+int64(maxEvents))
	return slices.Clone(part[from:end]), nil
}

func (b *memBackbone) Fetch(ctx context.Context, topic string, partition int32, from int64, maxEvents, maxBytes int) ([]event.Event, error) {
	for {
		b.mu.Lock()
		wake := b.wake
		b.mu.Unlock()
		evs, err := b.Read(topic, partition, from, maxEvents, maxBytes)
		if err != nil || len(evs) > 0 {
			return evs, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (b *memBackbone) Offsets(topic string, partition int32) (int64, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return 0, int64(len(b.topics[topic][partition])), nil
}

func (b *memBackbone) OffsetForTime(topic string, partition int32, t time.Time) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ev := range b.topics[topic][partition] {
		if !ev.Timestamp.Before(t) {
			return ev.Offset, nil
		}
	}
	return int64(len(b.topics[topic][partition])), nil
}

func (b *memBackbone) Topics() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var names []string
	for n := range b.topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (b *memBackbone) Partitions(topic string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	parts, ok := b.topics[topic]
	if !ok {
		return 0, fmt.Errorf("unknown topic %s", topic)
	}
	return len(parts), nil
}

func commitKey(group, topic string, partition int32) string {
	return fmt.Sprintf("%s|%s|%d", group, topic, partition)
}

func (b *memBackbone) Commit(_ context.Context, group, topic string, partition int32, next int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failCommit {
		return errors.New("commit refused")
	}
	b.commits[commitKey(group, topic, partition)] = next
	return nil
}

func (b *memBackbone) Committed(_ context.Context, group, topic string, partition int32) (int64, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.commits[commitKey(group, topic, partition)]
	return n, ok, nil
}

func (b *memBackbone) OutOfRange(err error) (int64, int64, bool) {
	var o *oorError
	if errors.As(err, &o) {
		return o.earliest, o.latest, true
	}
	return 0, 0, false
}

func (b *memBackbone) events(topic string) []event.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []event.Event
	for _, p := range b.topics[topic] {
		all = append(all, p...)
	}
	return all
}

func (b *memBackbone) committed(group, topic string, partition int32) (int64, bool) {
	n, ok, _ := b.Committed(context.Background(), group, topic, partition)
	return n, ok
}
