package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
)

// HeaderRulesVersion names the config version whose rules produced an
// output (issue 17): every output of an engine built with a Version
// carries it.
const HeaderRulesVersion = "bridge-rules-version"

// Reload modes (docs/reload.md).
type ReloadMode int

const (
	// ReloadLive swaps changed routes to the new rules at a clean point,
	// starts added routes and pipelines and stops removed ones.
	ReloadLive ReloadMode = iota
	// ReloadShadow evaluates the new rules of changed routes beside the
	// live ones without sending, and counts where they differ (shadow.go).
	ReloadShadow
	// ReloadCanary sends the events whose key hash falls below
	// CanaryPercent through the new rules of changed routes (canary.go).
	ReloadCanary
)

// ReloadOptions say how Reload applies a plan.
type ReloadOptions struct {
	// Version labels the route versions this reload creates.
	Version int64
	Mode    ReloadMode
	// CanaryPercent is the share of key hashes (0..100) the new rules take
	// in ReloadCanary.
	CanaryPercent int
	// OnLate, when set, is called once (from another goroutine) with the
	// takeovers of the partitions that reached their clean point only after
	// Reload returned ErrReloadTimedOut.
	OnLate func([]Takeover)
}

// Takeover records where one route changed hands, per partition: for a
// changed or added route the first offset the new version handles, for a
// removed one the offset after the last event it handled, for a shadow or
// canary the first offset the experiment saw. -1: the partition's cursor
// had no position (it never ran).
type Takeover struct {
	Pipeline string          `json:"pipeline"`
	Route    string          `json:"route"`
	Action   string          `json:"action"` // changed | added | removed | shadow | canary
	Version  int64           `json:"version"`
	Offsets  map[int32]int64 `json:"offsets,omitempty"`
}

// ReloadResult is what Reload did.
type ReloadResult struct {
	Takeovers []Takeover `json:"takeovers"`
	// ResumeAfter is how long the slowest changed route took from the
	// request to its takeover point (every cursor at a clean point).
	ResumeAfter time.Duration `json:"-"`
}

// Errors of Reload.
var (
	ErrReloadShared   = errors.New("engine: routes on a shared (Kafka) backbone cannot be reloaded; restart the processes with the new config")
	ErrReloadTimedOut = errors.New("engine: a route did not reach a clean point in time")
)

// swapState is a cursor's side of a swap (guarded by cursor.mu).
type swapState struct {
	running, exited bool
	pending         *swapReq
	cancelFetch     context.CancelFunc
}

type swapReq struct {
	to   *route
	done chan int64
}

func (c *cursor) begin() {
	c.mu.Lock()
	c.swap.running = true
	c.mu.Unlock()
}

// exit marks the cursor stopped; a pending swap applies at its position.
func (c *cursor) exit() {
	c.mu.Lock()
	c.swap.exited = true
	if req := c.swap.pending; req != nil {
		c.swap.pending = nil
		c.r = req.to
		req.done <- c.acked.Load()
	}
	c.mu.Unlock()
	close(c.done)
}

// requestSwap asks the cursor to run route version to from its next clean
// point (the top of its loop: the last batch handled, nothing in flight)
// and reports the offset where to takes over. A cursor waiting in a long
// poll is woken at once.
func (c *cursor) requestSwap(to *route) <-chan int64 {
	ch := make(chan int64, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.swap.running || c.swap.exited {
		c.r = to // not running: begin() orders this before the cursor reads c.r
		ch <- c.acked.Load()
		return ch
	}
	if old := c.swap.pending; old != nil {
		old.done <- -1 // superseded before it took over
	}
	c.swap.pending = &swapReq{to: to, done: ch}
	if c.swap.cancelFetch != nil {
		c.swap.cancelFetch()
	}
	return ch
}

func (c *cursor) takeSwap() *swapReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := c.swap.pending
	c.swap.pending = nil
	return req
}

// fetching registers the cancel of the current long poll (nil after it).
func (c *cursor) fetching(cancel context.CancelFunc) {
	c.mu.Lock()
	c.swap.cancelFetch = cancel
	if cancel != nil && c.swap.pending != nil {
		cancel()
	}
	c.mu.Unlock()
}

// applySwap switches the cursor to the requested route version at next,
// writes the checkpoint there (so that a restart continues from the
// takeover point under the new version), and reports next.
func (c *cursor) applySwap(hard context.Context, next int64, req *swapReq) {
	c.r = req.to
	c.shadowEv = [2]*cursor{}
	if next >= 0 && c.committed.Load() != next {
		if err := c.backbone.Commit(hard, c.group, c.topic, c.partition, next); err != nil {
			c.log.Warn("checkpoint at the takeover point failed; the committer retries", "offset", next, "err", err)
		} else {
			c.committed.Store(next)
		}
	}
	req.done <- next
}

// setHeader replaces the header key in hs, or appends it.
func setHeader(hs []event.Header, key string, value []byte) []event.Header {
	for i := range hs {
		if hs[i].Key == key {
			hs[i].Value = value
			return hs
		}
	}
	return append(hs, event.Header{Key: key, Value: value})
}

// labelRoutes sets the version of new route versions.
func labelRoutes(routes []*route, version int64) {
	for _, r := range routes {
		r.version = version
		r.versionValue = nil
		if version > 0 {
			r.versionValue = []byte(strconv.FormatInt(version, 10))
		}
	}
}

// bare is r without an experiment attached: the live version alone.
func (r *route) bare() *route {
	if r.canary == nil && r.shadow == nil {
		return r
	}
	b := *r
	b.canary, b.canaryPct, b.shadow = nil, 0, nil
	return &b
}

// externalSink is a sink of an external system, shared by the route
// versions whose target and connection are the same.
type externalSink struct {
	sink event.Sink
}

// sinkKey fingerprints an external target with its connection: equal keys
// share one sink (and its connections) across route versions.
func sinkKey(t *pipelines.Target, conn *pipelines.Connection) string {
	b, err := json.Marshal(struct {
		Kind                        string
		Topic, Exchange, Queue, URL string
		Connection                  string
		Kafka                       *pipelines.KafkaTarget
		AMQP                        *pipelines.AMQPTarget
		Conn                        *pipelines.Connection
	}{t.Kind.String(), t.Topic, t.Exchange, t.Queue, t.QueueURL, t.Connection, t.Kafka, t.AMQP, conn})
	if err != nil {
		return fmt.Sprintf("unshared:%p", t)
	}
	return string(b)
}

// closeSinks closes the external sinks not in keep (nil: all) and forgets
// them.
func (e *Engine) closeSinks(ctx context.Context, keep map[event.Sink]bool) []error {
	e.mu.Lock()
	var closing []event.Sink
	for k, s := range e.sinks {
		if keep == nil || !keep[s.sink] {
			closing = append(closing, s.sink)
			delete(e.sinks, k)
		}
	}
	e.mu.Unlock()
	var errs []error
	for _, s := range closing {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// sinksInUse lists the sinks of every route version the engine runs.
func (e *Engine) sinksInUse() map[event.Sink]bool {
	in := map[event.Sink]bool{}
	add := func(r *route) {
		in[r.sink] = true
		if r.deadLetter != nil {
			in[r.deadLetter] = true
		}
	}
	for _, p := range e.pipelineList() {
		for _, r := range p.routeList() {
			add(r)
			if r.canary != nil {
				add(r.canary)
			}
		}
		for _, c := range p.snapshot() {
			c.mu.Lock()
			if c.swap.pending != nil {
				add(c.swap.pending.to)
			}
			c.mu.Unlock()
		}
	}
	return in
}

// retireSinks closes external sinks no route uses any more, unless a route
// replay (which keeps its own copy of a route) runs: then they are closed
// when Run ends.
func (e *Engine) retireSinks(ctx context.Context) {
	if e.replays.running() {
		return
	}
	for _, err := range e.closeSinks(ctx, e.sinksInUse()) {
		e.log.Warn("closing a sink no route uses failed", "err", err)
	}
}

// Plan is the plan the engine runs now (the last one Build or Reload was
// given).
func (e *Engine) Plan() *pipelines.Plan {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.plan
}

// Reload applies plan while the engine runs (issue 17, docs/reload.md).
// diff is pipelines.Diff from the running plan to plan; the caller has
// created the topics, queues and exchanges plan needs. Per changed route,
// every cursor reaches a clean point (its batch handled, its checkpoint
// written), records the offset where opts.Version takes over, and goes on
// from exactly there with the new rules; unchanged routes are not touched.
// Added routes and pipelines start at their configured start (or their
// checkpoint), removed ones stop after their batch and commit.
//
// In live mode, a route that runs a shadow or canary is swapped to plan's
// rules even if the diff does not name it (promote, abort). ctx bounds the
// wait for clean points: past it Reload returns ErrReloadTimedOut, and
// the swaps not yet applied still apply when their batches complete.
func (e *Engine) Reload(ctx context.Context, plan *pipelines.Plan, diff *pipelines.PlanDiff, opts ReloadOptions) (ReloadResult, error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	started := time.Now()
	e.mu.RLock()
	rs := e.run
	running := rs != nil && !rs.stopping
	e.mu.RUnlock()
	if !running {
		return ReloadResult{}, fmt.Errorf("%w: reload needs a running engine", ErrNotRunning)
	}
	if _, shared := e.backbone.(GroupBackbone); shared && (diff.RouteChanges() > 0 || opts.Mode != ReloadLive) {
		return ReloadResult{}, ErrReloadShared
	}
	if opts.Mode == ReloadCanary && (opts.CanaryPercent < 0 || opts.CanaryPercent > 100) {
		return ReloadResult{}, fmt.Errorf("engine: canary percent %d is not in 0..100", opts.CanaryPercent)
	}
	// Build every new route version first: a failure changes nothing.
	built := map[string][]*route{}
	var errs []error
	for _, p := range plan.Pipelines {
		routes, err := buildRoutes(plan, p, e.deps, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", p.Name, err))
			continue
		}
		labelRoutes(routes, opts.Version)
		e.prepareRoutes(routes)
		built[p.Name] = routes
	}
	if len(errs) > 0 {
		e.retireSinks(context.WithoutCancel(ctx))
		return ReloadResult{}, errors.Join(errs...)
	}

	type wait struct {
		idx  int // in res.Takeovers
		part int32
		ch   <-chan int64
	}
	var res ReloadResult
	var waits []wait
	record := func(t Takeover) { res.Takeovers = append(res.Takeovers, t) }

	if opts.Mode == ReloadLive {
		for _, name := range diff.PipelinesRemoved {
			if p, ok := e.lookup(name); ok {
				for _, r := range p.routeList() {
					record(Takeover{Pipeline: name, Route: r.name, Action: "removed", Version: r.version,
						Offsets: e.stopCursors(ctx, p, r.name)})
				}
				e.mu.Lock()
				e.pipelines = slices.DeleteFunc(e.pipelines, func(x *pipeline) bool { return x == p })
				delete(e.byName, name)
				e.mu.Unlock()
			}
		}
	}
	type swapPlan struct {
		p      *pipeline
		routes []*route
	}
	var swaps []swapPlan
	for _, np := range plan.Pipelines {
		p, ok := e.lookup(np.Name)
		if !ok {
			continue
		}
		pd, _ := diff.Pipeline(np.Name)
		changed := map[string]bool{}
		for _, r := range pd.RoutesChanged {
			changed[r] = true
		}
		added := map[string]bool{}
		for _, r := range pd.RoutesAdded {
			added[r] = true
		}
		oldRoutes := map[string]*route{}
		for _, r := range p.routeList() {
			oldRoutes[r.name] = r
		}
		var next []*route
		for _, nr := range built[np.Name] {
			old, had := oldRoutes[nr.name]
			switch {
			case !had:
				if opts.Mode != ReloadLive {
					continue // added routes start at promote
				}
				next = append(next, nr)
			case changed[nr.name] || (opts.Mode == ReloadLive && old != old.bare()):
				nr.stats = old.stats // counters survive the swap
				switch opts.Mode {
				case ReloadLive:
					next = append(next, nr)
				case ReloadShadow:
					sh := *old.bare()
					sh.shadow = newShadowRun(old.bare(), nr)
					next = append(next, &sh)
				case ReloadCanary:
					ca := *old.bare()
					ca.canary, ca.canaryPct = nr, opts.CanaryPercent
					next = append(next, &ca)
				}
			default:
				next = append(next, old)
			}
		}
		if opts.Mode != ReloadLive {
			// removed routes stay until promote
			for _, r := range p.routeList() {
				if !slices.ContainsFunc(next, func(x *route) bool { return x.name == r.name }) {
					next = append(next, r)
				}
			}
		}
		swaps = append(swaps, swapPlan{p: p, routes: next})
	}
	for _, sp := range swaps {
		p := sp.p
		newByName := map[string]*route{}
		for _, r := range sp.routes {
			newByName[r.name] = r
		}
		if opts.Mode == ReloadLive {
			for _, r := range p.routeList() {
				if _, keep := newByName[r.name]; !keep {
					record(Takeover{Pipeline: p.name, Route: r.name, Action: "removed", Version: r.version,
						Offsets: e.stopCursors(ctx, p, r.name)})
				}
			}
		}
		oldByName := map[string]*route{}
		for _, r := range p.routeList() {
			oldByName[r.name] = r
		}
		p.mu.Lock()
		p.routes = sp.routes
		p.mu.Unlock()
		for _, r := range sp.routes {
			old, had := oldByName[r.name]
			if had && old == r {
				continue // unchanged: its cursors are not touched
			}
			if !had {
				record(Takeover{Pipeline: p.name, Route: r.name, Action: "added", Version: r.version})
				e.mu.Lock()
				for part := range p.parts {
					c := newCursor(r, int32(part), e.backbone, e.log)
					p.addCursor(c)
					if !e.run.stopping {
						e.startCursorLocked(p, c)
					}
				}
				e.mu.Unlock()
				continue
			}
			action, version := "changed", r.version
			switch {
			case r.shadow != nil:
				action, version = "shadow", r.shadow.next.version
			case r.canary != nil:
				action, version = "canary", r.canary.version
			}
			record(Takeover{Pipeline: p.name, Route: r.name, Action: action, Version: version, Offsets: map[int32]int64{}})
			idx := len(res.Takeovers) - 1
			for _, c := range p.snapshot() {
				if c.name != r.name {
					continue
				}
				if action == "changed" && c.haltedByStop() {
					// on_error: stop halted this partition at a failing
					// event: the new rules resume it from there.
					res.Takeovers[idx].Offsets[c.partition] = e.restartCursor(ctx, p, c, r)
					continue
				}
				waits = append(waits, wait{idx: idx, part: c.partition, ch: c.requestSwap(r)})
			}
			p.resumeIfNoneStopped()
		}
	}
	if opts.Mode == ReloadLive {
		for _, name := range diff.PipelinesAdded {
			np := findPipeline(plan, name)
			if np == nil {
				continue
			}
			if err := e.addPipeline(np.Name, np.From, built[name]); err != nil {
				errs = append(errs, err)
				continue
			}
			p, _ := e.lookup(name)
			e.mu.Lock()
			if !e.run.stopping {
				e.startPipelineLocked(p)
			}
			e.mu.Unlock()
			for _, r := range built[name] {
				record(Takeover{Pipeline: name, Route: r.name, Action: "added", Version: r.version})
			}
		}
		e.mu.Lock()
		e.plan = plan
		e.mu.Unlock()
	}
	// Wait for the clean points.
	var timedOut []string
	var late []wait
	for _, w := range waits {
		t := &res.Takeovers[w.idx]
		select {
		case off := <-w.ch:
			t.Offsets[w.part] = off
			if d := time.Since(started); d > res.ResumeAfter {
				res.ResumeAfter = d
			}
		case <-ctx.Done():
			timedOut = append(timedOut, fmt.Sprintf("%s/%s partition %d", t.Pipeline, t.Route, w.part))
			late = append(late, w)
		}
	}
	if len(timedOut) == 0 {
		e.retireSinks(context.WithoutCancel(ctx))
		return res, errors.Join(errs...)
	}
	// The late swaps stay requested: they apply when their batches
	// complete, and their offsets are reported then.
	lateRes := make([]Takeover, 0, len(late))
	byIdx := map[int]int{}
	for _, w := range late {
		if _, ok := byIdx[w.idx]; !ok {
			t := res.Takeovers[w.idx]
			t.Offsets = map[int32]int64{}
			byIdx[w.idx] = len(lateRes)
			lateRes = append(lateRes, t)
		}
	}
	go func() {
		for _, w := range late {
			lateRes[byIdx[w.idx]].Offsets[w.part] = <-w.ch
		}
		if opts.OnLate != nil {
			opts.OnLate(lateRes)
		}
	}()
	errs = append(errs, fmt.Errorf("%w: %v (their swaps apply when their batches complete)", ErrReloadTimedOut, timedOut))
	return res, errors.Join(errs...)
}

// haltedByStop reports whether the cursor ended on on_error: stop.
func (c *cursor) haltedByStop() bool {
	c.mu.Lock()
	exited := c.swap.exited
	c.mu.Unlock()
	return exited && c.stopped.Load()
}

// restartCursor replaces a cursor halted by on_error: stop with a new one
// running route version r from the halted cursor's position (written as
// its checkpoint first), and returns that position.
func (e *Engine) restartCursor(ctx context.Context, p *pipeline, old *cursor, r *route) int64 {
	if err := e.commitCursor(context.WithoutCancel(ctx), old); err != nil {
		e.log.Warn("checkpoint of a stopped route failed", "pipeline", p.name, "route", old.name, "err", err)
	}
	at := old.committed.Load()
	nc := newCursor(r, old.partition, e.backbone, e.log)
	p.removeCursor(old)
	p.addCursor(nc)
	e.mu.Lock()
	if e.run != nil && !e.run.stopping {
		e.startCursorLocked(p, nc)
	}
	e.mu.Unlock()
	e.log.Info("route stopped by on_error: stop resumes under the reloaded rules", "pipeline", p.name, "route", r.name,
		"partition", old.partition, "offset", at, "version", r.version)
	return at
}

// resumeIfNoneStopped marks a pipeline running again once no cursor of it
// is halted by on_error: stop.
func (p *pipeline) resumeIfNoneStopped() {
	if p.state.Load() != "stopped" {
		return
	}
	for _, c := range p.snapshot() {
		if c.stopped.Load() {
			return
		}
	}
	p.state.Store("running")
}

// stopCursors stops the cursors of one route after their batches, commits
// their final checkpoints, forgets them, and returns where each stopped.
func (e *Engine) stopCursors(ctx context.Context, p *pipeline, routeName string) map[int32]int64 {
	out := map[int32]int64{}
	for _, c := range p.snapshot() {
		if c.name != routeName {
			continue
		}
		if c.stop != nil {
			c.stop()
			select {
			case <-c.done:
			case <-ctx.Done():
				e.log.Warn("removed route still finishing its batch", "pipeline", p.name, "route", routeName, "partition", c.partition)
			}
		}
		if err := e.commitCursor(context.WithoutCancel(ctx), c); err != nil {
			e.log.Warn("final checkpoint of a removed route failed", "pipeline", p.name, "route", routeName, "err", err)
		}
		out[c.partition] = c.acked.Load()
		p.removeCursor(c)
	}
	return out
}

func findPipeline(plan *pipelines.Plan, name string) *pipelines.Pipeline {
	for _, p := range plan.Pipelines {
		if p.Name == name {
			return p
		}
	}
	return nil
}
