// Package engine runs validated plans: it reads pipelines from the backbone,
// evaluates their rules, sends selected events to sinks in order, and
// checkpoints each route's contiguous acknowledged prefix.
//
// Guarantees: a route's checkpoint never passes an event its sink has not
// acknowledged or that was not dead-lettered or dropped by policy
// (at-least-once); events of one partition reach a sink in offset order; a
// failing event holds its partition (retry with backoff) until it is
// delivered or handed to on_error. Not guaranteed: exactly-once (a crash
// between a sink's ack and the next checkpoint redelivers; consumers
// deduplicate on bridge-event-id), and order across partitions.
//
// See DESIGN.md beside this file for the data path and the invariants.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
)

// Options tune the runtime. Zero values take the defaults.
type Options struct {
	// CommitInterval is how often checkpoints are written. Default 100ms.
	CommitInterval time.Duration
	// ShutdownTimeout bounds the soft stop (finish in-flight sends, commit)
	// before sends are abandoned. Default 10s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// Telemetry records spans and metrics (engine/telemetry); nil = off.
	Telemetry *telemetry.Telemetry
	// Journal receives one record per handled batch and per failure
	// (console.go); nil = off.
	Journal Journal
	// Version is the config version of the plan Build is given: every
	// output carries it in the header bridge-rules-version (reload.go).
	// 0 adds no header.
	Version int64
}

// Engine runs pipelines. New builds, Run runs, and the status and replay
// methods may be called concurrently with Run.
type Engine struct {
	backbone  Backbone
	opts      Options
	log       *slog.Logger
	pipelines []*pipeline
	sources   []*sourceRT
	byName    map[string]*pipeline
	started   atomic.Bool
	replays   replayTasks // route replays (replay.go)

	// mu guards pipelines, byName and the run state: a reload adds and
	// removes pipelines while Run runs (reload.go).
	mu  sync.RWMutex
	run *runState
	// deps and sinks: what Build was given, and the external sinks by
	// their fingerprint, shared by route versions and closed when no route
	// uses them any more or at the end of Run (reload.go).
	deps  Deps
	plan  *pipelines.Plan // the plan the engine runs now; set by Build and Reload
	sinks map[string]*externalSink
	// reloadMu serializes reloads.
	reloadMu sync.Mutex
}

// runState is what Run started cursors with, so that a reload can start
// more cursors the same way; stopping is set once Run waits for them.
type runState struct {
	ctx, hard context.Context
	wg        *sync.WaitGroup
	report    func(p *pipeline, c *cursor, err error)
	stopping  bool
}

// pipeline is the runtime of one configured pipeline.
type pipeline struct {
	name   string
	topic  string
	routes []*route
	parts  int
	// cursors are the cursors this process runs. With an embedded backbone
	// that is every (route, partition), fixed at build time; with a shared
	// backbone (GroupBackbone) they come and go with partition assignments.
	mu      sync.Mutex
	cursors []*cursor
	state   atomic.Value // string: "starting" | "running" | "stopped" | "failed"
	failure atomic.Pointer[string]
}

func newEngine(b Backbone, opts Options) *Engine {
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = 100 * time.Millisecond
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{backbone: b, opts: opts, log: opts.Logger, byName: map[string]*pipeline{}, sinks: map[string]*externalSink{}}
}

// addPipeline registers a pipeline of routes over topic.
func (e *Engine) addPipeline(name, topic string, routes []*route) error {
	parts, err := e.backbone.Partitions(topic)
	if err != nil {
		return fmt.Errorf("pipeline %s: topic %s: %w", name, topic, err)
	}
	e.prepareRoutes(routes)
	p := &pipeline{name: name, topic: topic, routes: routes, parts: parts}
	p.state.Store("starting")
	if _, shared := e.backbone.(GroupBackbone); !shared {
		for _, r := range routes {
			for part := range parts {
				p.cursors = append(p.cursors, newCursor(r, int32(part), e.backbone, e.log))
			}
		}
	}
	e.mu.Lock()
	e.pipelines = append(e.pipelines, p)
	e.byName[name] = p
	e.mu.Unlock()
	return nil
}

// prepareRoutes attaches telemetry and the journal to new route versions.
func (e *Engine) prepareRoutes(routes []*route) {
	e.instrumentRoutes(routes) // telemetry: spans and metrics per route (route.go)
	for _, r := range routes {
		r.journal = e.opts.Journal // the console's message journey (console.go)
		if r.stats == nil {
			r.stats = &routeStats{}
		}
	}
}

// pipelineList is the pipelines the engine runs now.
func (e *Engine) pipelineList() []*pipeline {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.pipelines)
}

// lookup finds a pipeline by name.
func (e *Engine) lookup(name string) (*pipeline, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	p, ok := e.byName[name]
	return p, ok
}

// routeList is the pipeline's current route versions, in config order.
func (p *pipeline) routeList() []*route {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.routes)
}

// Run runs every pipeline until ctx is cancelled, then stops in two phases:
// intake stops and in-flight batches finish (bounded by ShutdownTimeout),
// final checkpoints are written, and sinks are closed. It returns nil on a
// clean stop. A route stopped by on_error: stop does not stop the others.
func (e *Engine) Run(ctx context.Context) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("engine: Run called twice")
	}
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	e.replays.begin(hard)

	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for _, s := range e.sources {
		wg.Go(func() { e.runSource(ctx, s) })
	}
	report := func(p *pipeline, c *cursor, err error) {
		if err == nil || errors.Is(err, context.Canceled) {
			return
		}
		if errors.Is(err, errStopped) {
			p.state.Store("stopped")
			return
		}
		msg := err.Error()
		p.failure.Store(&msg)
		p.state.Store("failed")
		e.log.Error("route failed", "pipeline", p.name, "route", c.name, "partition", c.partition, "err", err)
		errMu.Lock()
		errs = append(errs, fmt.Errorf("pipeline %s route %s partition %d: %w", p.name, c.name, c.partition, err))
		errMu.Unlock()
	}
	e.mu.Lock()
	e.run = &runState{ctx: ctx, hard: hard, wg: &wg, report: report}
	for _, p := range e.pipelines {
		e.startPipelineLocked(p)
	}
	e.mu.Unlock()
	committerDone := make(chan struct{})
	wg.Go(func() { e.commitLoop(ctx, committerDone) })

	<-ctx.Done()
	// Soft stop: cursors see ctx done, finish their batch and return. If they
	// take longer than the shutdown timeout, cancel their sends. Route
	// replays are cancelled (they are not resumed; see replay.go).
	stopTimer := time.AfterFunc(e.opts.ShutdownTimeout, cancelHard)
	e.replays.stop()
	e.mu.Lock()
	e.run.stopping = true // no reload starts cursors from here on
	e.mu.Unlock()
	wg.Wait()
	stopTimer.Stop()
	<-committerDone
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := e.commitAll(commitCtx); err != nil {
		errs = append(errs, err)
	}
	for _, p := range e.pipelineList() {
		if p.state.Load() == "running" {
			p.state.Store("stopped")
		}
	}
	errs = append(errs, e.closeSinks(commitCtx, nil)...)
	return errors.Join(errs...)
}

// startPipelineLocked starts a pipeline's cursors (or, on a shared
// backbone, its group members) under Run's contexts. e.mu is held.
func (e *Engine) startPipelineLocked(p *pipeline) {
	rs := e.run
	p.state.Store("running")
	e.log.Info("pipeline started", "pipeline", p.name, "topic", p.topic, "routes", len(p.routes), "partitions", p.parts)
	if gb, shared := e.backbone.(GroupBackbone); shared {
		for _, r := range p.routes {
			rs.wg.Go(func() { e.runShared(rs.ctx, rs.hard, gb, p, r, func(c *cursor, err error) { rs.report(p, c, err) }) })
		}
		return
	}
	for _, c := range p.snapshot() {
		e.startCursorLocked(p, c)
	}
}

// startCursorLocked runs one cursor with a stop of its own (a removed route
// stops alone). e.mu is held.
func (e *Engine) startCursorLocked(p *pipeline, c *cursor) {
	rs := e.run
	cctx, stop := context.WithCancel(rs.ctx)
	c.stop = stop
	rs.wg.Go(func() {
		defer stop()
		rs.report(p, c, c.run(cctx, rs.hard))
	})
}

// commitLoop writes checkpoints every CommitInterval until ctx is done.
func (e *Engine) commitLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(e.opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.commitAll(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("checkpoint commit failed; will retry", "err", err)
			}
		}
	}
}

// commitAll writes the checkpoint of every cursor that moved.
func (e *Engine) commitAll(ctx context.Context) error {
	var errs []error
	for _, p := range e.pipelineList() {
		for _, c := range p.snapshot() {
			if err := e.commitCursor(ctx, c); err != nil {
				errs = append(errs, fmt.Errorf("commit %s/%s/%d: %w", p.name, c.name, c.partition, err))
			}
		}
	}
	return errors.Join(errs...)
}

// commitCursor writes a cursor's checkpoint if it moved.
func (e *Engine) commitCursor(ctx context.Context, c *cursor) error {
	next := c.acked.Load()
	if next < 0 || next == c.committed.Load() {
		return nil
	}
	if err := e.backbone.Commit(ctx, c.group, c.topic, c.partition, next); err != nil {
		return err
	}
	c.committed.Store(next)
	return nil
}

// snapshot returns the pipeline's current cursors.
func (p *pipeline) snapshot() []*cursor {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*cursor(nil), p.cursors...)
}

// Ready reports whether every pipeline runs (none stopped or failed).
func (e *Engine) Ready() bool {
	if !e.started.Load() {
		return false
	}
	for _, p := range e.pipelineList() {
		if p.state.Load() != "running" {
			return false
		}
	}
	return true
}

// PipelineStatus is a pipeline's state for the HTTP API and the CLI.
type PipelineStatus struct {
	Name   string        `json:"name"`
	Topic  string        `json:"topic"`
	State  string        `json:"state"`
	Error  string        `json:"error,omitempty"`
	Routes []RouteStatus `json:"routes"`
}

// RouteStatus holds a route's counters and per-partition progress.
type RouteStatus struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	// Version is the config version whose rules the route runs (the
	// bridge-rules-version of its outputs); 0 when versions are off.
	Version      int64 `json:"rules_version,omitempty"`
	Read         int64 `json:"read"`
	Matched      int64 `json:"matched"`
	Sent         int64 `json:"sent"`
	DeadLettered int64 `json:"dead_lettered"`
	Dropped      int64 `json:"dropped"`
	RuleErrors   int64 `json:"rule_errors"`
	SendErrors   int64 `json:"send_errors"`
	// PermanentFailures and RetryableFailures count the events of failed
	// sends by class.
	PermanentFailures int64             `json:"permanent_failures"`
	RetryableFailures int64             `json:"retryable_failures"`
	Retries           int64             `json:"retries"`
	Lag               int64             `json:"lag"`
	Partitions        []PartitionStatus `json:"partitions"`
}

// PartitionStatus is one cursor: Checkpoint is the committed next offset,
// Position the next offset the cursor will handle, Lag end minus position.
type PartitionStatus struct {
	Partition  int32  `json:"partition"`
	Checkpoint int64  `json:"checkpoint"`
	Position   int64  `json:"position"`
	End        int64  `json:"end_offset"`
	Lag        int64  `json:"lag"`
	Stopped    bool   `json:"stopped,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Pipelines returns every pipeline's status, sorted by name.
func (e *Engine) Pipelines() []PipelineStatus {
	ps := e.pipelineList()
	out := make([]PipelineStatus, 0, len(ps))
	for _, p := range ps {
		out = append(out, e.status(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Pipeline returns one pipeline's status.
func (e *Engine) Pipeline(name string) (PipelineStatus, bool) {
	p, ok := e.lookup(name)
	if !ok {
		return PipelineStatus{}, false
	}
	return e.status(p), true
}

func (e *Engine) status(p *pipeline) PipelineStatus {
	st := PipelineStatus{Name: p.name, Topic: p.topic, State: p.state.Load().(string)}
	if f := p.failure.Load(); f != nil {
		st.Error = *f
	}
	cursors := p.snapshot()
	for _, r := range p.routeList() {
		rs := RouteStatus{Name: r.name, Target: targetName(r.sink), Version: r.version,
			Read: r.stats.read.Load(), Matched: r.stats.matched.Load(), Sent: r.stats.sent.Load(),
			DeadLettered: r.stats.deadLettered.Load(), Dropped: r.stats.dropped.Load(),
			RuleErrors: r.stats.ruleErrors.Load(), SendErrors: r.stats.sendErrors.Load(), Retries: r.stats.retries.Load(),
			PermanentFailures: r.stats.permanentFailures.Load(), RetryableFailures: r.stats.retryableFailures.Load()}
		for _, c := range cursors {
			if c.name != r.name {
				continue
			}
			_, end, _ := e.backbone.Offsets(p.topic, c.partition)
			ps := PartitionStatus{Partition: c.partition, Checkpoint: c.committed.Load(), Position: c.acked.Load(), End: end, Stopped: c.stopped.Load()}
			if ps.Position >= 0 {
				ps.Lag = max(end-ps.Position, 0)
			}
			if m := c.lastErr.Load(); m != nil {
				ps.Error = *m
			}
			rs.Lag += ps.Lag
			rs.Partitions = append(rs.Partitions, ps)
		}
		st.Routes = append(st.Routes, rs)
	}
	return st
}

// targetName describes a sink for status output.
func targetName(s event.Sink) string {
	if n, ok := s.(interface{ Name() string }); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T", s)
}

// ErrUnknownPipeline is returned for a pipeline name not in the plan.
var ErrUnknownPipeline = errors.New("engine: unknown pipeline")

// ReplayFrom says where a replay rewinds to: Earliest, a per-partition
// Offsets map, or a Time (the first event at or after it).
type ReplayFrom struct {
	Earliest bool
	Latest   bool
	Offsets  map[int32]int64
	Time     time.Time
}

// Replay rewinds every route of a pipeline. Cursors apply it after their
// current batch, and the new position is checkpointed at once so that it
// also holds across a restart.
func (e *Engine) Replay(ctx context.Context, name string, from ReplayFrom) (map[int32]int64, error) {
	p, ok := e.lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPipeline, name)
	}
	targets := make(map[int32]int64, p.parts)
	for part := range p.parts {
		partition := int32(part)
		start, end, err := e.backbone.Offsets(p.topic, partition)
		if err != nil {
			return nil, err
		}
		switch {
		case from.Earliest:
			targets[partition] = start
		case from.Latest:
			targets[partition] = end
		case from.Offsets != nil:
			o, ok := from.Offsets[partition]
			if !ok {
				continue
			}
			targets[partition] = min(max(o, start), end)
		default:
			o, err := e.backbone.OffsetForTime(p.topic, partition, from.Time)
			if err != nil {
				return nil, err
			}
			targets[partition] = o
		}
	}
	for _, c := range p.snapshot() {
		o, ok := targets[c.partition]
		if !ok {
			continue
		}
		if err := e.backbone.Commit(ctx, c.group, p.topic, c.partition, o); err != nil {
			return nil, err
		}
		c.committed.Store(o)
		c.requestSeek(o)
	}
	return targets, nil
}
