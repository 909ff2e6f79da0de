package engine

import (
	"context"
	"slices"
	"sync"
	"time"
)

// GroupBackbone is a Backbone shared by several bridge processes (Kafka as
// the backbone): the partitions of a route are split among the processes
// of its consumer group, and the engine runs cursors only for the partitions
// assigned to it here.
type GroupBackbone interface {
	Backbone
	// Join makes this process a member of group for topic until ctx is done
	// or the membership fails for good. assigned is called with partitions
	// this process now owns; revoked with partitions it must give up, and
	// the rebalance waits for revoked to return, so that the final
	// checkpoints are committed before another process takes over.
	// Callbacks are not called concurrently with each other. When ctx is
	// done, Join calls revoked with every partition still owned before it
	// leaves the group, so the last checkpoints are committed as a member.
	Join(ctx context.Context, group, topic string, assigned func([]int32), revoked func([]int32)) error
}

// runningCursor is a cursor started for an assignment.
type runningCursor struct {
	c      *cursor
	cancel context.CancelFunc
	done   chan struct{}
}

// runShared runs one route on a shared backbone: it joins the route's group
// and starts and stops cursors as partitions are assigned and revoked. On
// revoke, a cursor finishes its batch and its checkpoint is committed before
// the partition is released, so the next owner continues where it stopped.
func (e *Engine) runShared(ctx, hard context.Context, gb GroupBackbone, p *pipeline, r *route, report func(*cursor, error)) {
	var mu sync.Mutex // guards running
	running := map[int32]*runningCursor{}
	stop := func(parts []int32) {
		mu.Lock()
		var stopping []*runningCursor
		for _, part := range parts {
			if rc, ok := running[part]; ok {
				rc.cancel()
				stopping = append(stopping, rc)
				delete(running, part)
			}
		}
		mu.Unlock()
		for _, rc := range stopping {
			<-rc.done
			commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := e.commitCursor(commitCtx, rc.c); err != nil {
				e.log.Warn("final commit on revoke failed; the next owner may redeliver", "pipeline", p.name,
					"route", r.name, "partition", rc.c.partition, "err", err)
			}
			cancel()
			p.removeCursor(rc.c)
		}
	}
	assigned := func(parts []int32) {
		mu.Lock()
		defer mu.Unlock()
		for _, part := range parts {
			if _, ok := running[part]; ok {
				continue
			}
			c := newCursor(r, part, e.backbone, e.log)
			cctx, cancel := context.WithCancel(ctx)
			rc := &runningCursor{c: c, cancel: cancel, done: make(chan struct{})}
			running[part] = rc
			p.addCursor(c)
			go func() {
				defer close(rc.done)
				report(c, c.run(cctx, hard))
			}()
		}
		e.log.Info("partitions assigned", "pipeline", p.name, "route", r.name, "partitions", parts)
	}
	revoked := func(parts []int32) {
		e.log.Info("partitions revoked", "pipeline", p.name, "route", r.name, "partitions", parts)
		stop(parts)
	}
	backoff := RetryPolicy{InitialBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second}
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := gb.Join(ctx, r.group(), r.topic, assigned, revoked)
		if ctx.Err() != nil {
			break
		}
		e.log.Warn("group membership ended; rejoining", "pipeline", p.name, "route", r.name, "err", err)
		if !sleep(ctx, backoff.backoff(min(attempt, 8))) {
			break
		}
	}
	mu.Lock()
	var all []int32
	for part := range running {
		all = append(all, part)
	}
	mu.Unlock()
	stop(all)
}

func (p *pipeline) addCursor(c *cursor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cursors = append(p.cursors, c)
	slices.SortFunc(p.cursors, func(a, b *cursor) int { return int(a.partition - b.partition) })
}

func (p *pipeline) removeCursor(c *cursor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cursors = slices.DeleteFunc(p.cursors, func(x *cursor) bool { return x == c })
}
