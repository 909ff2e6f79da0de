package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
)

// errNotInLog: a dead letter names an event the log no longer holds.
var errNotInLog = errors.New("engine: the event is no longer in the log")

// checkDLQReplay checks a replay of the events a dead-letter queue names.
func (e *Engine) checkDLQReplay(req RouteReplay) error {
	if req.From.Earliest || req.From.Latest || req.From.Offsets != nil || !req.From.Time.IsZero() || req.To != nil {
		return fmt.Errorf("%w: a replay of a dead-letter queue takes no range (the messages name their events)", ErrBadReplay)
	}
	if e.replays.queues == nil {
		return fmt.Errorf("%w: no embedded queues", ErrBadReplay)
	}
	if _, err := e.replays.queues.Get(req.DeadLetterQueue); err != nil {
		return fmt.Errorf("%w: %w", ErrUnknownQueue, err)
	}
	return nil
}

// replayDeadLetters sends the events the dead-letter queue's messages name
// (bridge-event-id of this pipeline's topic) through the task's route,
// paced, and deletes each message once its event went through. A message
// whose event is gone stays, counted as skipped; so do messages of other
// topics, which this pipeline cannot replay (they are not even taken).
func (e *Engine) replayDeadLetters(ctx context.Context, p *pipeline, t *replayTask, dlq string, perSecond int) error {
	cursors := map[int32]*cursor{}
	match := func(m queue.PeekedMessage) bool {
		_, _, ok := eventPosition(m.Attributes, p.topic)
		return ok
	}
	handle := func(m queue.PeekedMessage) error {
		partition, offset, _ := eventPosition(m.Attributes, p.topic)
		evs, err := e.backbone.Read(p.topic, partition, offset, 1, t.route.maxBytes)
		if err != nil || len(evs) == 0 || evs[0].Offset != offset {
			t.skipped.Add(1)
			return errNotInLog
		}
		c := cursors[partition]
		if c == nil {
			c = newCursor(t.route, partition, e.backbone, e.log.With("replay", t.status.ID))
			cursors[partition] = c
		}
		if err := c.handle(ctx, ctx, evs); err != nil {
			return err
		}
		t.read.Add(1)
		return nil
	}
	_, _, err := e.replays.queues.HandleMatching(ctx, dlq, 0, perSecond, match, handle, nil)
	return err
}

// eventPosition finds the bridge-event-id attribute TOPIC/PARTITION/OFFSET
// of a message and returns its position when TOPIC is topic.
func eventPosition(attrs []queue.Attribute, topic string) (int32, int64, bool) {
	for _, a := range attrs {
		if a.Name != event.HeaderEventID {
			continue
		}
		id := string(a.Value)
		i := strings.LastIndexByte(id, '/')
		if i < 0 {
			return 0, 0, false
		}
		j := strings.LastIndexByte(id[:i], '/')
		if j < 0 || id[:j] != topic {
			return 0, 0, false
		}
		partition, err1 := strconv.ParseInt(id[j+1:i], 10, 32)
		offset, err2 := strconv.ParseInt(id[i+1:], 10, 64)
		if err1 != nil || err2 != nil || partition < 0 || offset < 0 {
			return 0, 0, false
		}
		return int32(partition), offset, true
	}
	return 0, 0, false
}

// replayingSink marks every output of a replay with bridge-replayed: true.
// It does not own the route's sink: Close does nothing.
type replayingSink struct{ inner event.Sink }

func replaySink(s event.Sink) event.Sink { return &replayingSink{inner: s} }

func (s *replayingSink) Name() string                { return targetName(s.inner) }
func (s *replayingSink) Close(context.Context) error { return nil }

func (s *replayingSink) Send(ctx context.Context, batch []event.Event) error {
	return s.inner.Send(ctx, markReplayed(batch))
}

func (s *replayingSink) SendParams(ctx context.Context, batch []event.Event, params []event.Params) error {
	if ps, ok := s.inner.(event.ParamSink); ok {
		return ps.SendParams(ctx, markReplayed(batch), params)
	}
	return s.inner.Send(ctx, markReplayed(batch))
}

var replayedValue = []byte("true")

// markReplayed returns copies of the events with header bridge-replayed
// set (the events' header slices may alias the log's buffers).
func markReplayed(batch []event.Event) []event.Event {
	out := make([]event.Event, len(batch))
	for i := range batch {
		out[i] = batch[i]
		hs := make([]event.Header, 0, len(batch[i].Headers)+1)
		for _, h := range batch[i].Headers {
			if h.Key != HeaderReplayed {
				hs = append(hs, h)
			}
		}
		out[i].Headers = append(hs, event.Header{Key: HeaderReplayed, Value: replayedValue})
	}
	return out
}
