package migrate

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

// fakeQueue is a source system whose messages are numbered; a batch is
// acknowledged (removed) only when deliver returns nil, as the connectors
// do, and a refused batch stays at the head.
type fakeQueue struct {
	mu    sync.Mutex
	next  int // first unacknowledged message
	total int
	batch int // the connector's batch size when not capped
}

func (q *fakeQueue) source(maxBatch int) (event.Source, error) {
	size := q.batch
	if maxBatch > 0 {
		size = min(size, maxBatch)
	}
	return fakeSource{q: q, size: size}, nil
}

type fakeSource struct {
	q    *fakeQueue
	size int
}

func (s fakeSource) Run(ctx context.Context, deliver event.DeliverFunc) error {
	for ctx.Err() == nil {
		s.q.mu.Lock()
		from, to := s.q.next, min(s.q.next+s.size, s.q.total)
		s.q.mu.Unlock()
		if from == to {
			select {
			case <-ctx.Done():
			case <-time.After(time.Millisecond):
			}
			continue
		}
		batch := make([]event.Event, to-from)
		for i := range batch {
			batch[i].Offset = int64(from + i)
		}
		if err := deliver(ctx, batch); err != nil {
			continue // not acknowledged: delivered again
		}
		s.q.mu.Lock()
		s.q.next = to
		s.q.mu.Unlock()
	}
	return nil
}

// TestMeteredSourceLimit: --limit moves exactly N messages whatever the
// connector's batch size, and leaves the rest unacknowledged.
func TestMeteredSourceLimit(t *testing.T) {
	t.Parallel()
	cases := []struct{ batch, limit, total int }{{7, 20, 100}, {10, 10, 100}, {500, 1, 100}, {3, 50, 40}}
	for _, tc := range cases {
		q := &fakeQueue{total: tc.total, batch: tc.batch}
		m := newMeteredSource(q.source, int64(tc.limit))
		var got []int64
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		done := make(chan error, 1)
		go func() {
			done <- m.Run(ctx, func(_ context.Context, b []event.Event) error {
				for _, e := range b {
					got = append(got, e.Offset)
				}
				return nil
			})
		}()
		want := min(tc.limit, tc.total)
		deadline := time.Now().Add(5 * time.Second)
		for !m.limitReached() && time.Now().Before(deadline) && int(m.moved.Load()) < want {
			time.Sleep(time.Millisecond)
		}
		if tc.limit > tc.total {
			m.stop() // the source ran dry before the limit
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		cancel()
		if len(got) != want || q.next != want {
			t.Fatalf("batch %d limit %d: delivered %d, acknowledged %d, want %d", tc.batch, tc.limit, len(got), q.next, want)
		}
		for i, o := range got {
			if o != int64(i) {
				t.Fatalf("batch %d limit %d: message %d delivered as %d", tc.batch, tc.limit, i, o)
			}
		}
	}
}
