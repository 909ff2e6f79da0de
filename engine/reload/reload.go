// Package reload applies a new config to a running bridge (issue 17,
// docs/reload.md): it validates it with the code `bridge validate` runs,
// computes the plan diff, refuses what cannot be done safely, creates what
// the new config adds (topics, queues, exchanges), has the engine swap the
// changed routes at recorded offsets, removes what it dropped, and records
// every version and swap in the version store. Shadow, canary, promote and
// rollback go through the same path.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/pipelines/versions"
)

// Options are what a Reloader works on.
type Options struct {
	Engine *engine.Engine
	// Broker is the embedded broker; nil when the process has none.
	Broker *engine.Broker
	// CreateTopic creates a backbone topic; nil refuses added topics.
	CreateTopic func(name string, partitions int) error
	Store       *versions.Store
	// File is the config file the process was started with: SIGHUP and a
	// request without a body re-read it.
	File      string
	LookupEnv func(string) (string, bool)
	// Timeout bounds the wait for clean points (default 30s).
	Timeout time.Duration
	// Added, when set, is told what a reload created on the broker (after
	// it exists, before any route sends to it), so that other front ends
	// (the AMQP listener) can show it.
	Added  func(cfg *pipelines.Config, diff *pipelines.PlanDiff)
	Logger *slog.Logger
}

// Request is one reload.
type Request struct {
	// YAML is the new config; nil re-reads Options.File.
	YAML []byte
	// Name is the file name errors are reported under (default the
	// started file's name).
	Name   string
	Source string // cli | sighup | api
	Force  bool
	DryRun bool
	Shadow bool
	// Canary is the share 1..100 of key hashes the new version takes; 0
	// is no canary.
	Canary   int
	Promote  bool
	Rollback bool
}

// Result is what a reload did.
type Result struct {
	// Outcome: applied | unchanged | dry_run | shadow | canary | promoted |
	// aborted | rolled_back.
	Outcome string `json:"outcome"`
	// Version is the version the request concerns (the new one, or the
	// one rolled back to); Live the live version afterwards.
	Version   int64               `json:"version"`
	Live      int64               `json:"live"`
	Diff      *pipelines.PlanDiff `json:"diff"`
	Plan      string              `json:"plan"`
	Takeovers []engine.Takeover   `json:"takeovers,omitempty"`
	// ResumeMS is how long the changed routes took to reach their clean
	// points, in milliseconds.
	ResumeMS float64 `json:"resume_ms"`
}

// InvalidError is a config that does not validate: every problem, one per
// line, FILE:LINE:COL: field: message. Nothing was changed.
type InvalidError struct{ Errors []string }

func (e *InvalidError) Error() string {
	return fmt.Sprintf("the config is invalid (%d problems); nothing changed:\n%s", len(e.Errors), strings.Join(e.Errors, "\n"))
}

// RefusedError is a valid config the running process will not apply (see
// Problems); nothing was changed. Diff is the plan it would have run.
type RefusedError struct {
	Problems []string
	Diff     *pipelines.PlanDiff
}

func (e *RefusedError) Error() string {
	return "reload refused; nothing changed: " + strings.Join(e.Problems, "; ")
}

// ErrNoPending is returned by promote without a shadow or canary.
var ErrNoPending = errors.New("reload: no shadow or canary to promote")

// Reloader applies configs to one running process. Its methods are safe
// for concurrent use; reloads run one at a time.
type Reloader struct {
	opts Options
	log  *slog.Logger

	mu          sync.Mutex
	live        *pipelines.Plan
	liveVersion int64
	// previous is the live version before the current one (rollback).
	previous int64
	pending  *pending
}

// pending is a shadow or canary version beside the live one.
type pending struct {
	plan    *pipelines.Plan
	version int64
	mode    string // shadow | canary
	percent int
}

// New makes a Reloader for a process running plan as version live.
func New(opts Options, plan *pipelines.Plan, live int64) *Reloader {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	r := &Reloader{opts: opts, log: opts.Logger, live: plan, liveVersion: live}
	r.previous = previousLive(opts.Store.Journal(), live)
	return r
}

// previousLive is the live version before live in the journal.
func previousLive(journal []versions.Record, live int64) int64 {
	for i := len(journal) - 1; i >= 0; i-- {
		rec := journal[i]
		if rec.Live != live && rec.Live > 0 && rec.Action != versions.ActionTakeover {
			return rec.Live
		}
	}
	return 0
}

// Start records the version a process starts with: the file's bytes are
// stored as a new version unless they equal the newest stored one.
func Start(store *versions.Store, data []byte, source string) (int64, error) {
	v, _, err := store.Save(data)
	if err != nil {
		return 0, fmt.Errorf("store config version: %w", err)
	}
	if err := store.Append(versions.Record{Version: v, Action: versions.ActionStart, Hash: versions.Hash(data),
		Source: source, Live: v}); err != nil {
		return 0, fmt.Errorf("config journal: %w", err)
	}
	return v, nil
}

// Live is the live version.
func (r *Reloader) Live() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.liveVersion
}

// Versions lists the stored versions.
func (r *Reloader) Versions() ([]versions.Version, []versions.Record, error) {
	vs, err := r.opts.Store.Versions()
	return vs, r.opts.Store.Journal(), err
}

// Config returns stored version v's YAML.
func (r *Reloader) Config(v int64) ([]byte, error) { return r.opts.Store.Config(v) }

// Shadows reports the running shadows.
func (r *Reloader) Shadows() []engine.ShadowReport { return r.opts.Engine.Shadows() }

// Reload runs one request.
func (r *Reloader) Reload(ctx context.Context, req Request) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Source == "" {
		req.Source = "api"
	}
	switch {
	case req.Promote:
		return r.promote(ctx, req)
	case req.Rollback:
		return r.rollback(ctx, req)
	}
	data, name := req.YAML, req.Name
	if data == nil {
		var err error
		if data, err = os.ReadFile(r.opts.File); err != nil {
			return Result{}, fmt.Errorf("re-read %s: %w", r.opts.File, err)
		}
		if name == "" {
			name = r.opts.File
		}
	}
	if name == "" {
		name = r.opts.File
	}
	plan, err := pipelines.Parse(name, data, r.opts.LookupEnv)
	if err != nil {
		return Result{}, invalid(err)
	}
	diff := pipelines.Diff(r.live, plan)
	res := Result{Diff: diff, Plan: diff.String(), Live: r.liveVersion, Version: r.liveVersion}
	if err := r.check(r.live, plan, diff, req.Force); err != nil {
		return res, err
	}
	if req.Shadow && req.Canary > 0 {
		return res, &RefusedError{Problems: []string{"--shadow and --canary exclude each other"}, Diff: diff}
	}
	if req.Canary < 0 || req.Canary > 100 {
		return res, &RefusedError{Problems: []string{fmt.Sprintf("--canary %d: give a percentage 1..100", req.Canary)}, Diff: diff}
	}
	if req.DryRun {
		res.Outcome = "dry_run"
		return res, nil
	}
	if diff.Empty() {
		res.Outcome = "unchanged"
		return res, nil
	}
	if r.pending != nil {
		return res, &RefusedError{Problems: []string{fmt.Sprintf("version %d runs as a %s: promote it or roll back first", r.pending.version, r.pending.mode)}, Diff: diff}
	}
	v, _, err := r.opts.Store.Save(data)
	if err != nil {
		return res, fmt.Errorf("store config version: %w", err)
	}
	res.Version = v
	mode, action := engine.ReloadLive, versions.ActionApply
	switch {
	case req.Shadow:
		mode, action = engine.ReloadShadow, versions.ActionShadow
	case req.Canary > 0:
		mode, action = engine.ReloadCanary, versions.ActionCanary
	}
	if mode != engine.ReloadLive && (len(diff.PipelinesChanged) == 0 || onlyAddsRemoves(diff)) {
		return res, &RefusedError{Problems: []string{"a shadow or canary compares changed routes, and this config changes none (apply it without --shadow/--canary)"}, Diff: diff}
	}
	er, err := r.apply(ctx, plan, diff, engine.ReloadOptions{Version: v, Mode: mode, CanaryPercent: req.Canary}, mode == engine.ReloadLive)
	res.Takeovers, res.ResumeMS = er.Takeovers, float64(er.ResumeAfter.Microseconds())/1000
	rec := versions.Record{Version: v, Action: action, Hash: versions.Hash(data), Source: req.Source,
		From: r.liveVersion, Live: r.liveVersion, CanaryPercent: req.Canary, Takeovers: storeTakeovers(er.Takeovers)}
	if err != nil && !errors.Is(err, engine.ErrReloadTimedOut) {
		rec.Note = "failed: " + err.Error()
		r.journal(rec)
		return res, err
	}
	switch mode {
	case engine.ReloadLive:
		r.previous, r.liveVersion, r.live = r.liveVersion, v, plan
		res.Outcome = "applied"
	case engine.ReloadShadow:
		r.pending = &pending{plan: plan, version: v, mode: "shadow"}
		res.Outcome = "shadow"
	default:
		r.pending = &pending{plan: plan, version: v, mode: "canary", percent: req.Canary}
		res.Outcome = "canary"
	}
	rec.Live = r.liveVersion
	res.Live = r.liveVersion
	r.journal(rec)
	r.log.Info("config reloaded", "outcome", res.Outcome, "version", v, "live", r.liveVersion, "source", req.Source,
		"routes", diff.RouteChanges(), "resume_ms", res.ResumeMS)
	return res, err
}

func onlyAddsRemoves(d *pipelines.PlanDiff) bool {
	for _, p := range d.PipelinesChanged {
		if len(p.RoutesChanged) > 0 {
			return false
		}
	}
	return true
}

// promote makes the shadow or canary version live.
func (r *Reloader) promote(ctx context.Context, req Request) (Result, error) {
	p := r.pending
	if p == nil {
		return Result{Live: r.liveVersion}, ErrNoPending
	}
	diff := pipelines.Diff(r.live, p.plan)
	res := Result{Diff: diff, Plan: diff.String(), Version: p.version}
	if err := r.check(r.live, p.plan, diff, req.Force); err != nil {
		return res, err
	}
	er, err := r.apply(ctx, p.plan, diff, engine.ReloadOptions{Version: p.version}, true)
	res.Takeovers, res.ResumeMS = er.Takeovers, float64(er.ResumeAfter.Microseconds())/1000
	if err != nil && !errors.Is(err, engine.ErrReloadTimedOut) {
		return res, err
	}
	r.previous, r.liveVersion, r.live, r.pending = r.liveVersion, p.version, p.plan, nil
	res.Outcome, res.Live = "promoted", r.liveVersion
	r.journal(versions.Record{Version: p.version, Action: versions.ActionPromote, Source: req.Source, From: r.previous,
		Live: r.liveVersion, Takeovers: storeTakeovers(er.Takeovers)})
	return res, err
}

// rollback drops a shadow or canary, or else goes back to the previous
// live version, as a recorded swap.
func (r *Reloader) rollback(ctx context.Context, req Request) (Result, error) {
	if p := r.pending; p != nil {
		empty := &pipelines.PlanDiff{}
		er, err := r.opts.Engine.Reload(r.timeout(ctx), r.live, empty, engine.ReloadOptions{Version: r.liveVersion})
		res := Result{Outcome: "aborted", Version: r.liveVersion, Live: r.liveVersion, Diff: empty, Plan: empty.String(),
			Takeovers: er.Takeovers, ResumeMS: float64(er.ResumeAfter.Microseconds()) / 1000}
		if err != nil && !errors.Is(err, engine.ErrReloadTimedOut) {
			return res, err
		}
		r.pending = nil
		r.journal(versions.Record{Version: p.version, Action: versions.ActionAbort, Source: req.Source, From: r.liveVersion,
			Live: r.liveVersion, Takeovers: storeTakeovers(er.Takeovers)})
		return res, err
	}
	if r.previous == 0 {
		return Result{Live: r.liveVersion}, &RefusedError{Problems: []string{"no earlier live version to roll back to"}}
	}
	target := r.previous
	data, err := r.opts.Store.Config(target)
	if err != nil {
		return Result{Live: r.liveVersion}, err
	}
	plan, err := pipelines.Parse(fmt.Sprintf("version %d", target), data, r.opts.LookupEnv)
	if err != nil {
		return Result{Live: r.liveVersion}, invalid(err)
	}
	diff := pipelines.Diff(r.live, plan)
	res := Result{Diff: diff, Plan: diff.String(), Version: target, Live: r.liveVersion}
	if err := r.check(r.live, plan, diff, req.Force); err != nil {
		return res, err
	}
	if req.DryRun {
		res.Outcome = "dry_run"
		return res, nil
	}
	er, err := r.apply(ctx, plan, diff, engine.ReloadOptions{Version: target}, true)
	res.Takeovers, res.ResumeMS = er.Takeovers, float64(er.ResumeAfter.Microseconds())/1000
	if err != nil && !errors.Is(err, engine.ErrReloadTimedOut) {
		return res, err
	}
	from := r.liveVersion
	r.previous, r.liveVersion, r.live = r.liveVersion, target, plan
	res.Outcome, res.Live = "rolled_back", target
	r.journal(versions.Record{Version: target, Action: versions.ActionRollback, Source: req.Source, From: from,
		Live: target, Hash: versions.Hash(data), Takeovers: storeTakeovers(er.Takeovers)})
	return res, err
}

// check refuses what a running process cannot apply.
func (r *Reloader) check(old, plan *pipelines.Plan, diff *pipelines.PlanDiff, force bool) error {
	var problems []string
	for _, s := range diff.Restart {
		problems = append(problems, s+" changed: that needs a restart")
	}
	for _, pc := range diff.PartitionsChanged {
		if pc.To < pc.From {
			problems = append(problems, fmt.Sprintf("topic %s: partitions %d -> %d: a log never shrinks (events would be lost); not even --force does it", pc.Topic, pc.From, pc.To))
		} else {
			problems = append(problems, fmt.Sprintf("topic %s: partitions %d -> %d: the embedded log cannot add partitions to a topic yet", pc.Topic, pc.From, pc.To))
		}
	}
	if len(diff.SourcesAdded)+len(diff.SourcesRemoved)+len(diff.SourcesChanged) > 0 {
		problems = append(problems, "sources changed: sources are not reloaded yet; restart to apply them")
	}
	for _, c := range diff.ConnectionsChanged {
		for _, s := range plan.Config.Sources {
			if s != nil && s.Connection == c {
				problems = append(problems, fmt.Sprintf("connection %s changed and source %s uses it: restart to apply it", c, s.Name))
			}
		}
		if plan.Config.Backbone.Connection == c && plan.Config.Backbone.Type == "kafka" {
			problems = append(problems, fmt.Sprintf("connection %s is the backbone's: restart to apply it", c))
		}
	}
	if len(diff.TopicsAdded) > 0 && r.opts.CreateTopic == nil {
		problems = append(problems, "topics added: this backbone cannot create topics on reload")
	}
	if r.opts.Broker != nil {
		if err := r.opts.Broker.CheckBrokerChange(old.Config, plan.Config, diff, force); err != nil {
			for _, e := range unjoin(err) {
				problems = append(problems, e.Error())
			}
		}
	} else if len(diff.QueuesAdded)+len(diff.ExchangesAdded) > 0 {
		problems = append(problems, "queues or exchanges added, but this process runs no embedded broker")
	}
	if len(problems) > 0 {
		return &RefusedError{Problems: problems, Diff: diff}
	}
	return nil
}

// apply creates what plan adds, reloads the engine, and (live) removes
// what it drops.
func (r *Reloader) apply(ctx context.Context, plan *pipelines.Plan, diff *pipelines.PlanDiff, opts engine.ReloadOptions, live bool) (engine.ReloadResult, error) {
	for _, t := range diff.TopicsAdded {
		if err := r.opts.CreateTopic(t, plan.Config.Backbone.Topics[t].Partitions); err != nil {
			return engine.ReloadResult{}, fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	if r.opts.Broker != nil {
		if err := r.opts.Broker.ApplyAdditions(r.live.Config, plan.Config, diff); err != nil {
			return engine.ReloadResult{}, err
		}
		if r.opts.Added != nil && (len(diff.ExchangesAdded) > 0 || len(diff.QueuesAdded) > 0) {
			r.opts.Added(plan.Config, diff)
		}
	}
	opts.OnLate = func(ts []engine.Takeover) {
		r.journal(versions.Record{Version: opts.Version, Action: versions.ActionTakeover, Live: opts.Version,
			Takeovers: storeTakeovers(ts), Note: "clean points reached after the reload answered"})
	}
	er, err := r.opts.Engine.Reload(r.timeout(ctx), plan, diff, opts)
	if err != nil && !errors.Is(err, engine.ErrReloadTimedOut) {
		return er, err
	}
	if live && r.opts.Broker != nil {
		if rerr := r.opts.Broker.ApplyRemovals(diff); rerr != nil {
			return er, errors.Join(err, rerr)
		}
	}
	return er, err
}

func (r *Reloader) timeout(ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	context.AfterFunc(ctx, cancel)
	return ctx
}

func (r *Reloader) journal(rec versions.Record) {
	if err := r.opts.Store.Append(rec); err != nil {
		r.log.Error("config journal write failed", "err", err)
	}
}

func storeTakeovers(ts []engine.Takeover) []versions.Takeover {
	out := make([]versions.Takeover, 0, len(ts))
	for _, t := range ts {
		out = append(out, versions.Takeover{Pipeline: t.Pipeline, Route: t.Route, Action: t.Action, Version: t.Version, Offsets: t.Offsets})
	}
	return out
}

func invalid(err error) *InvalidError {
	var out []string
	for _, e := range unjoin(err) {
		out = append(out, e.Error())
	}
	return &InvalidError{Errors: out}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
