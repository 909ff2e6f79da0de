package migrate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/event"
)

// meteredSource wraps the source connector: it counts what was delivered,
// remembers when the source last delivered (the drain check's idle
// period), enforces --limit, and can be stopped on its own, before the
// engine, so that no deliver is in flight when the route drains.
//
// --limit is exact: a connector acknowledges a whole batch once deliver
// returns nil, so a batch that would pass the limit is refused (the
// connector requeues it, or leaves it uncommitted) and the connector is
// rebuilt with its batch size capped at what remains.
type meteredSource struct {
	build func(maxBatch int) (event.Source, error)
	limit int64

	moved      atomic.Int64
	lastActive atomic.Int64 // unix nanoseconds of the last delivery (or of the start)
	reached    atomic.Bool

	stopCtx context.Context
	stopFn  context.CancelFunc
	runMu   sync.Mutex // held while Run runs: idle() waits for it
}

// errBatchOverLimit refuses a batch that would pass the limit; errLimit
// ends the connector run that reached it.
var (
	errBatchOverLimit = errors.New("migrate: batch would pass --limit")
	errLimit          = errors.New("migrate: --limit reached")
)

func newMeteredSource(build func(int) (event.Source, error), limit int64) *meteredSource {
	ctx, cancel := context.WithCancel(context.Background())
	m := &meteredSource{build: build, limit: limit, stopCtx: ctx, stopFn: cancel}
	m.lastActive.Store(time.Now().UnixNano())
	return m
}

// Run runs the connector until ctx is cancelled, stop is called, or the
// limit is reached; those return nil. A connector failure is returned,
// and the engine restarts Run with backoff.
func (m *meteredSource) Run(ctx context.Context, deliver event.DeliverFunc) error {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.stopCtx, cancel)()
	for ctx.Err() == nil {
		maxBatch := 0
		if m.limit > 0 {
			remaining := m.limit - m.moved.Load()
			if remaining <= 0 {
				m.reached.Store(true)
				return nil
			}
			maxBatch = int(min(remaining, 1<<20))
		}
		src, err := m.build(maxBatch)
		if err != nil {
			return err
		}
		inner, stopInner := context.WithCancelCause(ctx)
		err = src.Run(inner, func(c context.Context, batch []event.Event) error {
			if m.limit > 0 && int64(len(batch)) > m.limit-m.moved.Load() {
				stopInner(errBatchOverLimit) // cancel first: the connector then hands the batch back at once
				return errBatchOverLimit
			}
			if err := deliver(c, batch); err != nil {
				return err
			}
			m.lastActive.Store(time.Now().UnixNano())
			if n := m.moved.Add(int64(len(batch))); m.limit > 0 && n >= m.limit {
				stopInner(errLimit)
			}
			return nil
		})
		cause := context.Cause(inner)
		stopInner(nil)
		if errors.Is(cause, errBatchOverLimit) || errors.Is(cause, errLimit) {
			continue
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// stop ends Run (now and for any later call).
func (m *meteredSource) stop() { m.stopFn() }

// idle returns a channel closed once no Run is running (after stop).
func (m *meteredSource) idle() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		m.runMu.Lock()
		m.runMu.Unlock() //lint:ignore SA2001 an empty critical section: waiting for Run to return
		close(done)
	}()
	return done
}

// idleFor is how long ago the source last delivered.
func (m *meteredSource) idleFor() time.Duration {
	return time.Since(time.Unix(0, m.lastActive.Load()))
}

func (m *meteredSource) limitReached() bool {
	return m.reached.Load() || (m.limit > 0 && m.moved.Load() >= m.limit)
}
