package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// sourceRT is one configured source: an external reader whose batches are
// appended to a backbone topic before the source acknowledges upstream.
type sourceRT struct {
	name   string
	topic  string
	src    event.Source
	key    *rules.Program // nil keeps the upstream key
	events atomic.Int64
	errors atomic.Int64
	state  atomic.Value // string
}

// addSource registers a source delivering into topic.
func (e *Engine) addSource(name, topic string, src event.Source, key *rules.Program) {
	s := &sourceRT{name: name, topic: topic, src: src, key: key}
	s.state.Store("starting")
	e.sources = append(e.sources, s)
}

// deliverFunc appends a source's batch to the backbone. It returns nil only
// once the backbone made the batch durable; only then may the source
// acknowledge upstream (SPEC §5.1). The key rule runs here, once per event.
func (e *Engine) deliverFunc(s *sourceRT) event.DeliverFunc {
	// A source may deliver from several goroutines (SQS pollers), and an Env
	// serves one goroutine: take one from a pool per call.
	envs := sync.Pool{New: func() any { return rules.NewEnv() }}
	return func(ctx context.Context, batch []event.Event) error {
		env := envs.Get().(*rules.Env)
		defer envs.Put(env)
		for i := range batch {
			ev := &batch[i]
			ev.Source = s.name
			if s.key != nil {
				ev.Topic = s.topic
				env.Reset(ev)
				k, ok, err := s.key.EvalString(env)
				if err != nil {
					s.errors.Add(1)
					// A key rule that fails keeps the upstream key: dropping the
					// event would lose it, and the source cannot dead-letter.
					e.log.Warn("source key rule failed; keeping upstream key", "source", s.name, "err", err)
					continue
				}
				if ok {
					ev.Key = []byte(k)
				} else {
					ev.Key = nil
				}
			}
		}
		if _, err := e.backbone.Append(ctx, s.topic, batch); err != nil {
			s.errors.Add(1)
			return fmt.Errorf("source %s: append to %s: %w", s.name, s.topic, err)
		}
		s.events.Add(int64(len(batch)))
		return nil
	}
}

// runSource runs a source until ctx is done, restarting it with backoff
// when it fails: an unreachable system is retried, never given up on
// (SPEC §5.6).
func (e *Engine) runSource(ctx context.Context, s *sourceRT) {
	deliver := e.deliverFunc(s)
	backoff := RetryPolicy{InitialBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second}
	for attempt := 1; ctx.Err() == nil; attempt++ {
		s.state.Store("running")
		e.log.Info("source started", "source", s.name, "topic", s.topic)
		err := s.src.Run(ctx, deliver)
		if ctx.Err() != nil || err == nil {
			break
		}
		if errors.Is(err, context.Canceled) {
			break
		}
		s.state.Store("retrying")
		s.errors.Add(1)
		pause := backoff.backoff(min(attempt, 10))
		e.log.Warn("source failed; restarting", "source", s.name, "attempt", attempt, "backoff", pause, "err", err)
		if !sleep(ctx, pause) {
			break
		}
	}
	s.state.Store("stopped")
}

// SourceStatus is a source's state and counters.
type SourceStatus struct {
	Name   string `json:"name"`
	Topic  string `json:"topic"`
	State  string `json:"state"`
	Events int64  `json:"events"`
	Errors int64  `json:"errors"`
}

// Sources returns every source's status.
func (e *Engine) Sources() []SourceStatus {
	out := make([]SourceStatus, 0, len(e.sources))
	for _, s := range e.sources {
		out = append(out, SourceStatus{Name: s.name, Topic: s.topic, State: s.state.Load().(string),
			Events: s.events.Load(), Errors: s.errors.Load()})
	}
	return out
}
