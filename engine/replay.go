package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
)

// Route replays (docs/queues.md, "Replay into a queue"): a task re-sends a
// range of a pipeline's log through one route's rules and transforms into
// the route's target, each output marked bridge-replayed: true, so that a
// purged or lost work queue can be rebuilt from the log. A task runs beside
// the live cursors and never touches the route's checkpoint: it has cursors
// of its own (same evaluation, same on_error) whose positions are never
// committed. It is paced (PerSecond) and reports its progress.
//
// A task either reads the offsets [From, To) of every partition in order,
// one partition after the other, or, given a DeadLetterQueue, reads the
// events the queue's messages name in their bridge-event-id attribute (the
// log position every dead letter records): such a message is deleted once
// its event went through the route again, and left in the queue when its
// event is no longer in the log (retention) or belongs to another topic.
//
// Tasks belong to Run: they start while it runs and are cancelled and
// waited for when it stops. A cancelled or interrupted task is not resumed;
// its status says where each partition stopped, so a new task can go on
// from there. Finished tasks are kept (the last maxReplayHistory) for their
// status.

// HeaderReplayed marks an output a replay sent (value "true").
const HeaderReplayed = "bridge-replayed"

// Errors of route replays; the HTTP API maps them to statuses.
var (
	ErrUnknownRoute  = errors.New("engine: unknown route")
	ErrUnknownReplay = errors.New("engine: unknown replay")
	ErrBadReplay     = errors.New("engine: invalid replay")
	ErrNotRunning    = errors.New("engine: not running")
)

// maxReplayHistory bounds the finished tasks kept for their status.
const maxReplayHistory = 100

// RouteReplay asks for a replay of one route.
type RouteReplay struct {
	Route string
	// From is where each partition starts (Earliest, Offsets or Time).
	// Partitions missing from Offsets are not replayed.
	From ReplayFrom
	// To is where each partition stops, exclusive (Offsets or Time); nil
	// is the end of the log when the task starts.
	To *ReplayFrom
	// PerSecond bounds the events read per second; 0 is unlimited.
	PerSecond int
	// DeadLetterQueue, when set, replays the events its messages name
	// instead of a range: From and To must then be empty.
	DeadLetterQueue string
}

// ReplayStatus is a task's progress.
type ReplayStatus struct {
	ID              string            `json:"id"`
	Pipeline        string            `json:"pipeline"`
	Route           string            `json:"route"`
	State           string            `json:"state"` // running | done | failed | cancelled
	Error           string            `json:"error,omitempty"`
	PerSecond       int               `json:"per_second"`
	DeadLetterQueue string            `json:"dead_letter_queue,omitempty"`
	StartedAt       time.Time         `json:"started_at"`
	FinishedAt      *time.Time        `json:"finished_at,omitempty"`
	Partitions      []ReplayPartition `json:"partitions,omitempty"`
	// Total is the number of offsets to read (range tasks); Read how many
	// were read so far. Sent counts outputs the target acknowledged,
	// DeadLettered and Dropped the events on_error handled, Skipped the
	// dead letters whose event was not found.
	Total        int64 `json:"total"`
	Read         int64 `json:"read"`
	Sent         int64 `json:"sent"`
	DeadLettered int64 `json:"dead_lettered"`
	Dropped      int64 `json:"dropped"`
	RuleErrors   int64 `json:"rule_errors"`
	Skipped      int64 `json:"skipped"`
}

// ReplayPartition is one partition's range and position (Next: the next
// offset to read).
type ReplayPartition struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from"`
	To        int64 `json:"to"`
	Next      int64 `json:"next"`
}

// replayTasks is the engine's registry of route replays. mu guards every
// field; a task's counters are atomics read without it.
type replayTasks struct {
	mu     sync.Mutex
	ctx    context.Context // Run's; nil before Run and after it stopped
	cancel context.CancelFunc
	wg     sync.WaitGroup
	next   int
	tasks  []*replayTask // oldest first
	queues *queue.Manager
}

// begin lets tasks start; Run calls it with a context cancelled at its end.
func (rt *replayTasks) begin(parent context.Context) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.ctx, rt.cancel = context.WithCancel(parent)
}

// stop cancels every task and waits for them; no task starts afterwards.
func (rt *replayTasks) stop() {
	rt.mu.Lock()
	if rt.cancel != nil {
		rt.cancel()
	}
	rt.ctx = nil
	rt.mu.Unlock()
	rt.wg.Wait()
}

type replayTask struct {
	status ReplayStatus // identity fields, fixed once started; the rest below
	cancel context.CancelFunc
	route  *route // the replay's own copy (forReplay)

	mu       sync.Mutex // guards state, err, finished, parts
	state    string
	err      string
	finished time.Time
	parts    []ReplayPartition
	read     atomic.Int64
	skipped  atomic.Int64
}

func (t *replayTask) snapshot() ReplayStatus {
	st := t.status
	t.mu.Lock()
	st.State, st.Error, st.Partitions = t.state, t.err, slices.Clone(t.parts)
	if !t.finished.IsZero() {
		f := t.finished
		st.FinishedAt = &f
	}
	t.mu.Unlock()
	st.Read, st.Skipped = t.read.Load(), t.skipped.Load()
	s := t.route.stats
	st.Sent, st.DeadLettered, st.Dropped, st.RuleErrors = s.sent.Load(), s.deadLettered.Load(), s.dropped.Load(), s.ruleErrors.Load()
	return st
}

// StartRouteReplay starts a replay task of one route of a pipeline and
// returns its first status. It does not wait for the task.
func (e *Engine) StartRouteReplay(pipelineName string, req RouteReplay) (ReplayStatus, error) {
	p, ok := e.lookup(pipelineName)
	if !ok {
		return ReplayStatus{}, fmt.Errorf("%w: %s", ErrUnknownPipeline, pipelineName)
	}
	routes := p.routeList()
	idx := slices.IndexFunc(routes, func(r *route) bool { return r.name == req.Route })
	if idx < 0 {
		return ReplayStatus{}, fmt.Errorf("%w: %s has no route %q", ErrUnknownRoute, pipelineName, req.Route)
	}
	if req.PerSecond < 0 {
		return ReplayStatus{}, fmt.Errorf("%w: per_second %d is negative", ErrBadReplay, req.PerSecond)
	}
	task := &replayTask{state: "running", route: routes[idx].forReplay()}
	var parts []ReplayPartition
	if req.DeadLetterQueue != "" {
		if err := e.checkDLQReplay(req); err != nil {
			return ReplayStatus{}, err
		}
	} else {
		var err error
		if parts, err = e.replayRange(p, req.From, req.To); err != nil {
			return ReplayStatus{}, err
		}
	}
	task.parts = parts
	rt := &e.replays
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.ctx == nil {
		return ReplayStatus{}, fmt.Errorf("%w: replays run while the engine runs", ErrNotRunning)
	}
	rt.next++
	task.status = ReplayStatus{ID: "replay-" + strconv.Itoa(rt.next), Pipeline: p.name, Route: req.Route,
		PerSecond: req.PerSecond, DeadLetterQueue: req.DeadLetterQueue, StartedAt: time.Now().UTC()}
	for _, part := range parts {
		task.status.Total += part.To - part.From
	}
	ctx, cancel := context.WithCancel(rt.ctx)
	task.cancel = cancel
	rt.tasks = append(rt.tasks, task)
	rt.trimLocked()
	rt.wg.Go(func() {
		defer cancel()
		var err error
		if req.DeadLetterQueue != "" {
			err = e.replayDeadLetters(ctx, p, task, req.DeadLetterQueue, req.PerSecond)
		} else {
			err = e.replayPartitions(ctx, p, task, req.PerSecond)
		}
		task.finish(ctx, err, e)
	})
	return task.snapshot(), nil
}

// finish records how the task ended.
func (t *replayTask) finish(ctx context.Context, err error, e *Engine) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finished = time.Now().UTC()
	switch {
	case err == nil:
		t.state = "done"
	case ctx.Err() != nil:
		t.state = "cancelled"
	default:
		t.state, t.err = "failed", err.Error()
	}
	e.log.Info("route replay ended", "replay", t.status.ID, "pipeline", t.status.Pipeline, "route", t.status.Route,
		"state", t.state, "read", t.read.Load(), "sent", t.route.stats.sent.Load(), "err", t.err)
}

// trimLocked forgets the oldest finished tasks past maxReplayHistory.
func (rt *replayTasks) trimLocked() {
	for len(rt.tasks) > maxReplayHistory {
		i := slices.IndexFunc(rt.tasks, func(t *replayTask) bool {
			t.mu.Lock()
			defer t.mu.Unlock()
			return t.state != "running"
		})
		if i < 0 {
			return
		}
		rt.tasks = slices.Delete(rt.tasks, i, i+1)
	}
}

// RouteReplays lists the replay tasks, oldest first.
func (e *Engine) RouteReplays() []ReplayStatus {
	e.replays.mu.Lock()
	tasks := slices.Clone(e.replays.tasks)
	e.replays.mu.Unlock()
	out := make([]ReplayStatus, len(tasks))
	for i, t := range tasks {
		out[i] = t.snapshot()
	}
	return out
}

// RouteReplayStatus returns one task's status.
func (e *Engine) RouteReplayStatus(id string) (ReplayStatus, error) {
	t, err := e.replayTask(id)
	if err != nil {
		return ReplayStatus{}, err
	}
	return t.snapshot(), nil
}

// CancelRouteReplay stops a task after its current batch and returns its
// status (cancelled once it has stopped; a finished task is unchanged).
func (e *Engine) CancelRouteReplay(id string) (ReplayStatus, error) {
	t, err := e.replayTask(id)
	if err != nil {
		return ReplayStatus{}, err
	}
	t.cancel()
	return t.snapshot(), nil
}

func (e *Engine) replayTask(id string) (*replayTask, error) {
	e.replays.mu.Lock()
	defer e.replays.mu.Unlock()
	for _, t := range e.replays.tasks {
		if t.status.ID == id {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownReplay, id)
}

// forReplay is a copy of r for a replay task: the same rules, target and
// policies, its own counters, no telemetry, and a sink that marks every
// output bridge-replayed.
func (r *route) forReplay() *route {
	return &route{
		pipeline: r.pipeline, name: r.name, topic: r.topic, start: r.start,
		filter: r.filter, transform: r.transform, when: r.when, routeTransform: r.routeTransform,
		key: r.key, routingKey: r.routingKey, groupID: r.groupID, dedupID: r.dedupID, message: r.message,
		sink: replaySink(r.sink), deadLetter: r.deadLetter, onError: r.onError, retry: r.retry,
		retryIf: r.retryIf, deadLetterIf: r.deadLetterIf, batchSize: r.batchSize, maxBytes: r.maxBytes,
		stats: &routeStats{}, version: r.version, versionValue: r.versionValue,
	}
}

// replayRange resolves a task's offsets per partition.
func (e *Engine) replayRange(p *pipeline, from ReplayFrom, to *ReplayFrom) ([]ReplayPartition, error) {
	if from.Latest {
		return nil, fmt.Errorf("%w: a replay from latest reads nothing", ErrBadReplay)
	}
	if !from.Earliest && from.Offsets == nil && from.Time.IsZero() {
		return nil, fmt.Errorf("%w: give where to start (earliest, offsets or a time)", ErrBadReplay)
	}
	if to != nil && (to.Earliest || to.Latest) {
		return nil, fmt.Errorf("%w: the end of a replay is offsets or a time (omit it for the end of the log)", ErrBadReplay)
	}
	var out []ReplayPartition
	for part := range p.parts {
		partition := int32(part)
		start, end, err := e.backbone.Offsets(p.topic, partition)
		if err != nil {
			return nil, err
		}
		first, ok, err := e.replayBound(p.topic, partition, from, start, end)
		if err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		last := end
		if to != nil {
			if last, ok, err = e.replayBound(p.topic, partition, *to, start, end); err != nil {
				return nil, err
			} else if !ok {
				last = end
			}
		}
		if last > first {
			out = append(out, ReplayPartition{Partition: partition, From: first, To: last, Next: first})
		}
	}
	return out, nil
}

// replayBound resolves one bound of a replay in one partition, clamped to
// the log; ok is false for a partition an Offsets bound does not name.
func (e *Engine) replayBound(topic string, partition int32, b ReplayFrom, start, end int64) (int64, bool, error) {
	switch {
	case b.Earliest:
		return start, true, nil
	case b.Offsets != nil:
		o, ok := b.Offsets[partition]
		return min(max(o, start), end), ok, nil
	default:
		o, err := e.backbone.OffsetForTime(topic, partition, b.Time)
		return o, true, err
	}
}

// replayPartitions reads each partition's range through the task's route,
// paced to perSecond events a second.
func (e *Engine) replayPartitions(ctx context.Context, p *pipeline, t *replayTask, perSecond int) error {
	pace := newPacer(perSecond)
	t.mu.Lock()
	parts := slices.Clone(t.parts)
	t.mu.Unlock()
	for i, part := range parts {
		c := newCursor(t.route, part.Partition, e.backbone, e.log.With("replay", t.status.ID))
		for next := part.From; next < part.To; {
			if err := pace.wait(ctx, t.read.Load()); err != nil {
				return err
			}
			limit := min(t.route.batchSize, int(part.To-next), pace.batch())
			evs, err := e.backbone.Read(p.topic, part.Partition, next, limit, t.route.maxBytes)
			if err != nil {
				if earliest, _, ok := e.backbone.OutOfRange(err); ok && next < earliest {
					next = earliest // retention removed the start meanwhile
					continue
				}
				return fmt.Errorf("read %s/%d at %d: %w", p.topic, part.Partition, next, err)
			}
			if len(evs) == 0 {
				break // the end of the log (it was truncated)
			}
			if n := slices.IndexFunc(evs, func(ev event.Event) bool { return ev.Offset >= part.To }); n >= 0 {
				evs = evs[:n]
			}
			if len(evs) == 0 {
				break
			}
			if err := c.handle(ctx, ctx, evs); err != nil {
				return err
			}
			next = evs[len(evs)-1].Offset + 1
			t.read.Add(int64(len(evs)))
			t.mu.Lock()
			t.parts[i].Next = next
			t.mu.Unlock()
		}
	}
	return nil
}

// pacer spaces reads so that at most perSecond events are read a second.
type pacer struct {
	perSecond int
	start     time.Time
}

func newPacer(perSecond int) *pacer { return &pacer{perSecond: perSecond, start: time.Now()} }

// batch bounds one read: a tenth of a second's worth, so the pace is
// smooth rather than a burst each second.
func (pc *pacer) batch() int {
	if pc.perSecond == 0 {
		return 1 << 30
	}
	return max(1, pc.perSecond/10)
}

// wait sleeps until event number done may be read (event k at k/perSecond).
func (pc *pacer) wait(ctx context.Context, done int64) error {
	if pc.perSecond == 0 {
		return ctx.Err()
	}
	at := pc.start.Add(time.Duration(done) * time.Second / time.Duration(pc.perSecond))
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// running reports whether any replay task runs.
func (rt *replayTasks) running() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, t := range rt.tasks {
		t.mu.Lock()
		st := t.state
		t.mu.Unlock()
		if st == "running" {
			return true
		}
	}
	return false
}
