package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/internal/atomicfile"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/rules"
)

// Config is one `bridge migrate` invocation. Zero fields take defaults.
type Config struct {
	From, To string // endpoint URLs (ParseURL)
	// StateDir holds the local log (the ledger), its checkpoints and the
	// migration's state. Default .bridge-migrate/<hash of from and to>.
	StateDir string
	Filter   string // expr (Bool) selecting the events to move; "" = all
	Key      string // expr (String) computing the key at the source; "" keeps the source's
	// Follow keeps moving until ctx is cancelled; otherwise the migration
	// drains: it stops once the source has been empty for Idle and the
	// target has everything the ledger holds.
	Follow bool
	// Limit stops the source after this many messages (0: no limit).
	Limit int64
	// Partitions of the local log, fixed when the state dir is created.
	// Default 1, which keeps a queue's total order end to end.
	Partitions int
	// Fsync is the local log's policy: always (default), interval, never.
	Fsync string
	Idle  time.Duration // default 2s
	// Verify compares the ledger with the target after moving.
	Verify bool
	// PositionsFile receives the position map (JSON lines) when verifying.
	// Default <StateDir>/positions.jsonl.
	PositionsFile string
	// Progress, when set, is called every ProgressInterval (default 1s)
	// from one goroutine.
	Progress         func(Progress)
	ProgressInterval time.Duration
	Logger           *slog.Logger
}

// Progress is a snapshot of a running migration.
type Progress struct {
	Moved    int64   // messages taken from the source this run (durable in the ledger)
	Sent     int64   // events the target acknowledged this run
	Filtered int64   // events the filter left out this run
	Backlog  int64   // ledger events the route has not handled yet
	Depth    int64   // the source's backlog; -1 when it cannot tell
	Rate     float64 // messages moved per second, over the last interval
	Elapsed  time.Duration
}

// Summary is what a finished run did.
type Summary struct {
	StateDir string
	From, To string // redacted
	Moved    int64
	Sent     int64
	Filtered int64
	Ledger   int64  // events in the ledger, all runs
	Stopped  string // drained | limit | interrupted
	Elapsed  time.Duration
	// Busy is the time until the target had everything that was moved:
	// Elapsed without the idle period that confirmed the source empty.
	Busy time.Duration
	// VerifyTime is how long the verification took.
	VerifyTime time.Duration
	// Report is the verification, nil without Verify (or when the run
	// was interrupted).
	Report *Report
}

// topicName is the local log topic every migration uses.
const topicName = "migrate"

// ErrStateMismatch is returned when a state dir belongs to another
// migration or was created with other options.
var ErrStateMismatch = errors.New("migrate: the state dir belongs to a different migration")

// state is state.json in the state dir: what the migration is, so that a
// rerun continues the same one, and where the target was at its start.
type state struct {
	From        string          `json:"from"`
	To          string          `json:"to"`
	Filter      string          `json:"filter,omitempty"`
	Key         string          `json:"key,omitempty"`
	Partitions  int             `json:"partitions"`
	Created     time.Time       `json:"created"`
	TargetStart map[int32]int64 `json:"target_start,omitempty"`
}

func (c *Config) defaults() {
	if c.Fsync == "" {
		c.Fsync = "always"
	}
	if c.Idle <= 0 {
		c.Idle = 2 * time.Second
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// migrationID is a short, stable hash of the two endpoints (passwords
// excluded), naming the default state dir and the Kafka consumer group.
func migrationID(from, to *Endpoint) string {
	sum := sha256.Sum256([]byte(from.String() + "\x00" + to.String()))
	return hex.EncodeToString(sum[:6])
}

// Run moves messages from cfg.From to cfg.To and, with cfg.Verify,
// verifies the result. It blocks until the migration drained (or reached
// its limit), or until ctx is cancelled (SIGINT): then it stops the
// source, lets the route finish what is in flight, writes checkpoints and
// returns the summary with Stopped "interrupted" and a nil error. A rerun
// with the same state dir continues where the previous run stopped.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg.defaults()
	from, err := ParseURL(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	to, err := ParseURL(cfg.To)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if from.String() == to.String() {
		return nil, errors.New("--from and --to are the same endpoint")
	}
	if from.Kind == KindAMQP && from.Queue == "" {
		return nil, errors.New("--from: an AMQP source needs ?queue=NAME")
	}
	id := migrationID(from, to)
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(".bridge-migrate", id)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, err
	}
	st, fresh, err := openState(cfg, from, to)
	if err != nil {
		return nil, err
	}
	plan, err := buildPlan(st, to)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	lg, err := commitlog.Open(commitlog.Options{Dir: filepath.Join(cfg.StateDir, "log"), Fsync: commitlog.FsyncPolicy(cfg.Fsync),
		Logger: log.With("component", "commitlog")})
	if err != nil {
		return nil, fmt.Errorf("open the ledger in %s: %w", cfg.StateDir, err)
	}
	defer lg.Close()
	if err := lg.CreateTopic(topicName, st.Partitions); err != nil {
		return nil, err
	}
	for _, tr := range lg.Truncations() {
		log.Warn("ledger recovery cut a torn tail (never acknowledged to the source)", "truncation", fmt.Sprintf("%+v", tr))
	}
	name := "bridge-migrate-" + id
	src, err := newSystem(from, name, cfg.StateDir, log.With("side", "source"))
	if err != nil {
		return nil, err
	}
	defer src.close()
	dst, err := newSystem(to, name, cfg.StateDir, log.With("side", "target"))
	if err != nil {
		return nil, err
	}
	defer dst.close()
	if err := src.checkSource(ctx); err != nil {
		return nil, err
	}
	if err := dst.prepareTarget(ctx, st.Partitions); err != nil {
		return nil, err
	}
	if fresh {
		if st.TargetStart, err = dst.mark(ctx); err != nil {
			return nil, fmt.Errorf("target position before the migration: %w", err)
		}
		if err := saveState(cfg.StateDir, st); err != nil {
			return nil, err
		}
	}
	m := &mover{cfg: cfg, log: log, lg: lg, plan: plan, src: src, dst: dst, partitions: st.Partitions}
	sum, err := m.run(ctx)
	if err != nil {
		return nil, err
	}
	sum.StateDir, sum.From, sum.To = cfg.StateDir, from.String(), to.String()
	if !cfg.Verify || sum.Stopped == "interrupted" {
		return sum, nil
	}
	positions := cfg.PositionsFile
	if positions == "" {
		positions = filepath.Join(cfg.StateDir, "positions.jsonl")
	}
	verifyStart := time.Now()
	rep, err := verify(ctx, verifyInput{lg: lg, partitions: st.Partitions, pipeline: plan.Pipelines[0], from: from, to: to,
		target: dst, targetStart: st.TargetStart, positionsFile: positions})
	if err != nil {
		return sum, fmt.Errorf("verify: %w", err)
	}
	sum.Report, sum.VerifyTime = rep, time.Since(verifyStart)
	return sum, nil
}

// openState reads state.json, or creates it for a fresh state dir. A
// rerun must name the same endpoints, filter and key: the ledger and its
// checkpoints only make sense for the migration that wrote them.
func openState(cfg Config, from, to *Endpoint) (*state, bool, error) {
	path := filepath.Join(cfg.StateDir, "state.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		parts := cfg.Partitions
		if parts <= 0 {
			parts = 1
		}
		return &state{From: from.String(), To: to.String(), Filter: cfg.Filter, Key: cfg.Key, Partitions: parts,
			Created: time.Now().UTC()}, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	var diffs []string
	check := func(what, had, now string) {
		if had != now {
			diffs = append(diffs, fmt.Sprintf("%s was %q, now %q", what, had, now))
		}
	}
	check("--from", st.From, from.String())
	check("--to", st.To, to.String())
	check("--filter", st.Filter, cfg.Filter)
	check("--key", st.Key, cfg.Key)
	if cfg.Partitions > 0 && cfg.Partitions != st.Partitions {
		diffs = append(diffs, fmt.Sprintf("--partitions was %d, now %d", st.Partitions, cfg.Partitions))
	}
	if len(diffs) > 0 {
		return nil, false, fmt.Errorf("%w (%s): %v; rerun with the same options or use another --state", ErrStateMismatch, cfg.StateDir, diffs)
	}
	return &st, false, nil
}

func saveState(dir string, st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "state.json"), data, 0o644)
}

// buildPlan is the pipeline a migration runs, built in memory: one source
// appending to the local topic, one pipeline from it with the filter and
// one route to the target. Rules compile as in a config file (same
// environment, same checks).
func buildPlan(st *state, to *Endpoint) (*pipelines.Plan, error) {
	var filter, key *rules.Program
	var err error
	if st.Filter != "" {
		if filter, err = rules.Compile(st.Filter, rules.Bool); err != nil {
			return nil, fmt.Errorf("--filter: %w", err)
		}
	}
	if st.Key != "" {
		if key, err = rules.Compile(st.Key, rules.String); err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
	}
	// The target kind only labels the route: the sink comes from the
	// migration's own factory. A bridge:// target has no kind of its own
	// among the configured targets; it is an external sink like Kafka's.
	kind := map[Kind]pipelines.TargetKind{KindAMQP: pipelines.TargetAMQP, KindKafka: pipelines.TargetKafka,
		KindSQS: pipelines.TargetSQS, KindBridge: pipelines.TargetKafka}[to.Kind]
	cfg := &pipelines.Config{ShutdownTimeout: pipelines.Duration(30 * time.Second)}
	return &pipelines.Plan{
		Config: cfg,
		Sources: []*pipelines.SourcePlan{{Config: &pipelines.Source{Name: "source", Type: "migrate", Connection: "from",
			Topic: topicName}, Key: key}},
		Pipelines: []*pipelines.Pipeline{{
			Name: "migrate", From: topicName, Start: "earliest", Filter: filter,
			Routes:  []*pipelines.Route{{Name: "target", To: pipelines.Target{Kind: kind, Connection: "to", Topic: to.Topic}}},
			OnError: engine.OnErrorStop,
			Retry:   pipelines.Retry{MaxAttempts: 0, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second},
			// Larger than a pipeline's default: a migration is a bulk copy.
			BatchSize: 1000, MaxInFlight: 4000,
		}},
	}, nil
}

// mover runs the engine over the plan and decides when the migration is
// done.
type mover struct {
	cfg        Config
	log        *slog.Logger
	lg         *commitlog.Log
	plan       *pipelines.Plan
	src, dst   system
	partitions int
	meter      *meteredSource
}

func (m *mover) run(ctx context.Context) (*Summary, error) {
	m.meter = newMeteredSource(m.src.source, m.cfg.Limit)
	eng, err := engine.Build(m.plan, engine.Deps{
		Backbone: engine.Embedded(m.lg),
		External: func(*pipelines.Target, *pipelines.Connection) (event.Sink, error) { return m.dst.sink() },
		Source:   func(*pipelines.Source, *pipelines.Connection) (event.Source, error) { return m.meter, nil },
		// Checkpoints every 20ms (a pipeline's default is 100ms): after a
		// kill, a rerun re-sends what was acknowledged by the target since
		// the last checkpoint, and a bulk copy moves fast.
		Options: engine.Options{Logger: m.log.With("component", "engine"), ShutdownTimeout: 30 * time.Second,
			CommitInterval: 20 * time.Millisecond},
	})
	if err != nil {
		return nil, err
	}
	engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(engCtx) }()

	started := time.Now()
	stopped, caughtUp, watchErr := m.watch(ctx, eng, engDone, started)
	// Stop intake first and wait for the source to return, so that no
	// deliver is in flight; then the route finishes its batch and writes
	// its checkpoint (the engine's soft stop).
	m.meter.stop()
	select {
	case <-m.meter.idle():
	case <-time.After(30 * time.Second):
		m.log.Warn("the source did not stop within 30s; stopping the engine anyway")
	}
	stopEngine()
	engErr := <-engDone
	if watchErr != nil {
		return nil, watchErr
	}
	if engErr != nil {
		return nil, engErr
	}
	st, _ := eng.Pipeline("migrate")
	sum := &Summary{Moved: m.meter.moved.Load(), Stopped: stopped, Elapsed: time.Since(started), Busy: caughtUp.Sub(started)}
	if caughtUp.IsZero() {
		sum.Busy = sum.Elapsed
	}
	if len(st.Routes) > 0 {
		sum.Sent, sum.Filtered = st.Routes[0].Sent, st.Routes[0].Read-st.Routes[0].Matched
	}
	for p := range m.partitions {
		start, end, _ := m.lg.Offsets(topicName, int32(p))
		sum.Ledger += end - start
	}
	return sum, nil
}

// watch polls the engine and the source until the migration is done (it
// returns why, and when the target last caught up with the source) or
// fails.
func (m *mover) watch(ctx context.Context, eng *engine.Engine, engDone chan error, started time.Time) (string, time.Time, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var (
		depth         int64 = -1
		depthAt       time.Time
		lastProgress  = started
		lastMoved     int64
		drainedChecks int
		caughtUp      time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return "interrupted", caughtUp, nil
		case err := <-engDone:
			engDone <- err // run reads it again
			if err == nil {
				err = errors.New("the engine stopped")
			}
			return "", caughtUp, err
		case <-tick.C:
		}
		st, _ := eng.Pipeline("migrate")
		backlog, failure := m.backlog(st)
		if failure != "" {
			return "", caughtUp, fmt.Errorf("the route to the target stopped: %s (the events from there on stay in the ledger; fix the cause and rerun)", failure)
		}
		if time.Since(depthAt) >= time.Second {
			depthAt = time.Now()
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			n, ok, err := m.src.depth(dctx)
			cancel()
			switch {
			case err != nil:
				m.log.Debug("source depth unavailable", "err", err)
				depth = -1
			case ok:
				depth = n
			default:
				depth = -1
			}
		}
		if m.cfg.Progress != nil && time.Since(lastProgress) >= m.cfg.ProgressInterval {
			moved := m.meter.moved.Load()
			p := Progress{Moved: moved, Backlog: backlog, Depth: depth, Elapsed: time.Since(started),
				Rate: float64(moved-lastMoved) / time.Since(lastProgress).Seconds()}
			if len(st.Routes) > 0 {
				p.Sent, p.Filtered = st.Routes[0].Sent, st.Routes[0].Read-st.Routes[0].Matched
			}
			m.cfg.Progress(p)
			lastProgress, lastMoved = time.Now(), moved
		}
		if backlog != 0 {
			drainedChecks = 0
			caughtUp = time.Time{}
			continue
		}
		if caughtUp.IsZero() || m.meter.idleFor() < time.Since(caughtUp) {
			caughtUp = time.Now() // a delivery came after the last catch-up
		}
		if m.meter.limitReached() {
			return "limit", caughtUp, nil
		}
		if m.cfg.Follow || m.meter.idleFor() < m.cfg.Idle || depth != 0 {
			drainedChecks = 0
			continue
		}
		// Two checks in a row, so that a depth read just before a batch
		// was appended cannot end the run early.
		if drainedChecks++; drainedChecks >= 2 {
			return "drained", caughtUp, nil
		}
	}
}

// backlog is how many ledger events the route has not handled, -1 while
// a cursor has not started; failure describes a stopped route.
func (m *mover) backlog(st engine.PipelineStatus) (int64, string) {
	if len(st.Routes) == 0 {
		return -1, ""
	}
	r := st.Routes[0]
	if len(r.Partitions) < m.partitions {
		return -1, ""
	}
	var n int64
	for _, p := range r.Partitions {
		if p.Stopped {
			msg := p.Error
			if msg == "" {
				msg = st.Error
			}
			return 0, "partition " + strconv.Itoa(int(p.Partition)) + ": " + msg
		}
		if p.Position < 0 {
			return -1, ""
		}
		n += max(p.End-p.Position, 0)
	}
	if st.State == "failed" {
		return 0, st.Error
	}
	return n, ""
}
