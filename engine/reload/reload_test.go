package reload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/pipelines/versions"
)

// env is a running engine over an embedded log and broker with a
// Reloader, as `bridge run` wires them.
type env struct {
	t      *testing.T
	log    *commitlog.Log
	bb     engine.Backbone
	qm     *queue.Manager
	eng    *engine.Engine
	r      *Reloader
	store  *versions.Store
	file   string
	cancel context.CancelFunc
	done   chan error
}

const baseConfig = `
backbone: { topics: { in: { partitions: 2 }, out: { partitions: 1 } } }
broker:
  queues:
    jobs: {}
pipelines:
  - name: p
    from: in
    routes:
      - name: even
        when: 'body.n %% 2 == 0'
        to: { topic: out }
      - name: jobs
        when: '%s'
        to: { queue: jobs }
`

func config(jobsWhen string) string { return fmt.Sprintf(baseConfig, jobsWhen) }

func newEnv(t *testing.T, yaml string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, file: filepath.Join(dir, "bridge.yaml")}
	if err := os.WriteFile(e.file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := pipelines.Parse(e.file, []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.log, err = commitlog.Open(commitlog.Options{Dir: filepath.Join(dir, "log"), Fsync: commitlog.FsyncNever}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range plan.Config.Backbone.Topics {
		if err := e.log.CreateTopic(name, tc.Partitions); err != nil {
			t.Fatal(err)
		}
	}
	if e.qm, err = queue.Open(queue.Options{Dir: filepath.Join(dir, "queues"), Fsync: "never"}); err != nil {
		t.Fatal(err)
	}
	broker, err := engine.DeclareBroker(plan.Config, e.qm)
	if err != nil {
		t.Fatal(err)
	}
	if e.store, err = versions.Open(filepath.Join(dir, "config")); err != nil {
		t.Fatal(err)
	}
	v, err := Start(e.store, []byte(yaml), "start")
	if err != nil {
		t.Fatal(err)
	}
	e.bb = engine.Embedded(e.log)
	e.eng, err = engine.Build(plan, engine.Deps{Backbone: e.bb, Broker: broker, Options: engine.Options{Version: v,
		CommitInterval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	e.r = New(Options{Engine: e.eng, Broker: broker, CreateTopic: e.log.CreateTopic, Store: e.store, File: e.file,
		LookupEnv: func(string) (string, bool) { return "", false }, Timeout: 10 * time.Second}, plan, v)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.eng.Run(ctx) }()
	t.Cleanup(e.close)
	// Reload needs Run to have started its cursors.
	waitUntil(t, func() bool { return e.eng.Ready() })
	return e
}

func (e *env) close() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	if err := <-e.done; err != nil {
		e.t.Error(err)
	}
	e.qm.Close()
	e.log.Close()
	e.store.Close()
}

func waitUntil(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// produce appends events {"n":i} for i in [from, to), keyed "k<i>".
func (e *env) produce(from, to int) {
	e.t.Helper()
	var evs []event.Event
	for i := from; i < to; i++ {
		evs = append(evs, event.Event{Key: []byte("k" + strconv.Itoa(i)), Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if _, err := e.bb.Append(context.Background(), "in", evs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) jobs() int {
	q, err := e.qm.Get("jobs")
	if err != nil {
		return -1
	}
	st := q.Stats()
	return st.Visible + st.InFlight + st.Delayed
}

// drained waits until every route handled every event.
func (e *env) drained() {
	e.t.Helper()
	waitUntil(e.t, func() bool {
		for _, p := range e.eng.Pipelines() {
			for _, r := range p.Routes {
				if r.Lag != 0 {
					return false
				}
			}
		}
		return true
	})
}

func TestInvalidConfigChangesNothingAndListsEveryError(t *testing.T) {
	e := newEnv(t, config("body.n > 0"))
	bad := strings.Replace(config("body.n >"), "to: { topic: out }", "to: { topic: nowhere }", 1)
	bad = strings.Replace(bad, "from: in", "from: inn", 1)
	_, err := e.r.Reload(context.Background(), Request{YAML: []byte(bad), Name: "new.yaml", Source: "api"})
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("err %v, want an InvalidError", err)
	}
	if len(inv.Errors) != 3 {
		t.Fatalf("errors %q, want the three problems", inv.Errors)
	}
	for i, want := range []string{"pipelines[0].from", "routes[0].to.topic", "routes[1].when"} {
		if !strings.HasPrefix(inv.Errors[i], "new.yaml:") || !strings.Contains(inv.Errors[i], want) {
			t.Errorf("error %d %q: want new.yaml:LINE:COL and %s", i, inv.Errors[i], want)
		}
		parts := strings.SplitN(inv.Errors[i], ":", 4)
		if _, err := strconv.Atoi(parts[1]); err != nil {
			t.Errorf("error %q has no line", inv.Errors[i])
		}
		if _, err := strconv.Atoi(parts[2]); err != nil {
			t.Errorf("error %q has no column", inv.Errors[i])
		}
	}
	if vs, _ := e.store.Versions(); len(vs) != 1 || e.r.Live() != 1 {
		t.Fatalf("versions %+v live %d: an invalid config was stored or applied", vs, e.r.Live())
	}
	e.produce(0, 10)
	e.drained()
	if n := e.jobs(); n != 9 {
		t.Fatalf("jobs queue holds %d, want 9 under the unchanged rule n > 0", n)
	}
}

func TestPlanDiffAndDryRun(t *testing.T) {
	e := newEnv(t, config("body.n > 0"))
	next := strings.Replace(config("body.n > 5"), "queues:\n    jobs: {}", "queues:\n    jobs: {}\n    audit: {}", 1)
	next = strings.Replace(next, "out: { partitions: 1 } }", "out: { partitions: 1 }, extra: { partitions: 1 } }", 1)
	next += `      - name: audit
        to: { queue: audit }
  - name: q
    from: extra
    routes:
      - to: { topic: out }
`
	res, err := e.r.Reload(context.Background(), Request{YAML: []byte(next), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Diff
	if res.Outcome != "dry_run" || len(d.PipelinesAdded) != 1 || d.PipelinesAdded[0] != "q" ||
		len(d.PipelinesChanged) != 1 || fmt.Sprint(d.PipelinesChanged[0].RoutesChanged) != "[jobs]" ||
		fmt.Sprint(d.PipelinesChanged[0].RoutesAdded) != "[audit]" || fmt.Sprint(d.QueuesAdded) != "[audit]" ||
		fmt.Sprint(d.TopicsAdded) != "[extra]" {
		t.Fatalf("diff %+v", d)
	}
	for _, line := range []string{"+ pipeline q", "~ route p/jobs", "+ route p/audit", "+ queue audit", "+ topic extra"} {
		if !strings.Contains(res.Plan, line) {
			t.Errorf("plan %q lacks %q", res.Plan, line)
		}
	}
	if _, err := e.qm.Get("audit"); err == nil || e.r.Live() != 1 {
		t.Fatal("a dry run changed something")
	}
	// Applied: the queue, topic and pipeline exist and run.
	res, err = e.r.Reload(context.Background(), Request{YAML: []byte(next), Source: "cli"})
	if err != nil || res.Outcome != "applied" || res.Live != 2 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	e.produce(0, 10)
	if _, err := e.bb.Append(context.Background(), "extra", []event.Event{{Value: []byte(`{"n":100}`)}}); err != nil {
		t.Fatal(err)
	}
	e.drained()
	audit, err := e.qm.Get("audit")
	if err != nil || audit.Stats().Visible != 10 || e.jobs() != 4 {
		t.Fatalf("audit %v, jobs %d: want 10 and 4", err, e.jobs())
	}
	// Partition changes are refused, shrinking even with force.
	shrink := strings.Replace(next, "in: { partitions: 2 }", "in: { partitions: 1 }", 1)
	_, err = e.r.Reload(context.Background(), Request{YAML: []byte(shrink), Force: true})
	var ref *RefusedError
	if !errors.As(err, &ref) || !strings.Contains(err.Error(), "never shrinks") {
		t.Fatalf("shrink: %v", err)
	}
	// A listener change needs a restart.
	_, err = e.r.Reload(context.Background(), Request{YAML: []byte("http: { listen: 127.0.0.1:1 }\n" + next)})
	if !errors.As(err, &ref) || !strings.Contains(err.Error(), "http changed") {
		t.Fatalf("http change: %v", err)
	}
}

func TestRemovingAQueueWithMessagesNeedsForce(t *testing.T) {
	e := newEnv(t, config("body.n > 0"))
	e.produce(0, 5)
	e.drained()
	noJobs := strings.Replace(config("true"), "queues:\n    jobs: {}", "queues: {}", 1)
	noJobs = noJobs[:strings.Index(noJobs, "      - name: jobs")]
	_, err := e.r.Reload(context.Background(), Request{YAML: []byte(noJobs)})
	var ref *RefusedError
	if !errors.As(err, &ref) || !strings.Contains(err.Error(), "jobs") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err %v, want a refusal naming the queue and --force", err)
	}
	if e.jobs() != 4 {
		t.Fatalf("the queue lost messages on a refused reload: %d", e.jobs())
	}
	res, err := e.r.Reload(context.Background(), Request{YAML: []byte(noJobs), Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.jobs() != -1 {
		t.Fatal("queue jobs still exists after a forced reload")
	}
	var removed bool
	for _, to := range res.Takeovers {
		if to.Route == "jobs" && to.Action == "removed" && to.Offsets[0]+to.Offsets[1] == 5 {
			removed = true
		}
	}
	if !removed {
		t.Fatalf("takeovers %+v: want route jobs removed after all 5 events", res.Takeovers)
	}
}

func TestShadowCountsAndPromote(t *testing.T) {
	e := newEnv(t, config("body.n < 50"))
	res, err := e.r.Reload(context.Background(), Request{YAML: []byte(config("body.n >= 25 && body.n < 75")), Shadow: true})
	if err != nil || res.Outcome != "shadow" || res.Live != 1 || res.Version != 2 {
		t.Fatalf("shadow: %+v %v", res, err)
	}
	e.produce(0, 100)
	e.drained()
	if n := e.jobs(); n != 50 {
		t.Fatalf("jobs %d: the shadow must not send (live rule n < 50 sends 50)", n)
	}
	var sh engine.ShadowReport
	waitUntil(t, func() bool {
		shs := e.r.Shadows()
		if len(shs) == 1 {
			sh = shs[0]
		}
		return len(shs) == 1 && sh.Counts.Events == 100
	})
	// 0..24 only live, 25..49 same (both send the same event), 50..74 only
	// the shadow, 75..99 same (neither sends).
	c := sh.Counts
	if sh.Route != "jobs" || sh.LiveVersion != 1 || sh.NextVersion != 2 || c.Same != 50 || c.OnlyLive != 25 || c.OnlyNext != 25 || c.Different != 0 {
		t.Fatalf("shadow report %+v", sh)
	}
	if len(sh.Samples) == 0 || len(sh.Samples) > 10 {
		t.Fatalf("%d samples", len(sh.Samples))
	}
	for _, s := range sh.Samples {
		var body struct{ N int }
		if err := json.Unmarshal([]byte(firstValue(s)), &body); err != nil {
			t.Fatal(err)
		}
		if (s.Kind == "only_live") != (body.N < 25) {
			t.Fatalf("sample %+v", s)
		}
	}
	// Another reload waits for the shadow to be promoted or dropped.
	if _, err := e.r.Reload(context.Background(), Request{YAML: []byte(config("true"))}); err == nil {
		t.Fatal("a reload during a shadow was accepted")
	}
	res, err = e.r.Reload(context.Background(), Request{Promote: true, Source: "cli"})
	if err != nil || res.Outcome != "promoted" || res.Live != 2 {
		t.Fatalf("promote: %+v %v", res, err)
	}
	if len(e.r.Shadows()) != 0 {
		t.Fatal("the shadow still runs after promote")
	}
	e.produce(100, 110) // none matches n in [25, 75)
	e.produce(60, 62)   // both do
	e.drained()
	if n := e.jobs(); n != 52 {
		t.Fatalf("jobs %d after promote, want 52", n)
	}
	j := e.store.Journal()
	if last := j[len(j)-1]; last.Action != versions.ActionPromote || last.Live != 2 || len(last.Takeovers) != 1 {
		t.Fatalf("journal %+v", last)
	}
}

func firstValue(s engine.ShadowSample) string {
	if len(s.Live) > 0 {
		return s.Live[0].Value
	}
	return s.Next[0].Value
}

func TestCanarySlicesByKeyAndRollback(t *testing.T) {
	e := newEnv(t, config("body.n >= 0"))
	// The canary version sends nothing to jobs: what reaches jobs during
	// the canary is exactly the live slice.
	res, err := e.r.Reload(context.Background(), Request{YAML: []byte(config("false")), Canary: 30})
	if err != nil || res.Outcome != "canary" {
		t.Fatalf("canary: %+v %v", res, err)
	}
	e.produce(0, 400)
	e.drained()
	want := 0
	for i := range 400 {
		if engine.CanarySlice([]byte("k"+strconv.Itoa(i))) >= 30 {
			want++
		}
	}
	if n := e.jobs(); n != want || want == 400 || want == 0 {
		t.Fatalf("jobs %d, want the %d events whose key slice is >= 30", n, want)
	}
	// Each delivered message's key is in the live slice.
	q, _ := e.qm.Get("jobs")
	msgs, err := q.Receive(context.Background(), 10, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		var body struct{ N int }
		if err := json.Unmarshal(m.Body, &body); err != nil {
			t.Fatal(err)
		}
		if engine.CanarySlice([]byte("k"+strconv.Itoa(body.N))) < 30 {
			t.Fatalf("event %d of the canary slice reached the live target", body.N)
		}
	}
	// Rollback drops the canary at a recorded offset: all keys live again.
	res, err = e.r.Reload(context.Background(), Request{Rollback: true})
	if err != nil || res.Outcome != "aborted" || res.Live != 1 || len(res.Takeovers) != 1 {
		t.Fatalf("abort canary: %+v %v", res, err)
	}
	before := e.jobs()
	e.produce(400, 500)
	e.drained()
	if got := e.jobs() - before; got != 100 {
		t.Fatalf("%d of 100 events after the canary was dropped", got)
	}
	// Apply the canary's config live (the same bytes: stored version 2,
	// nothing to jobs), then roll back to 1.
	if res, err = e.r.Reload(context.Background(), Request{YAML: []byte(config("false"))}); err != nil || res.Live != 2 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	before = e.jobs()
	e.produce(500, 520)
	e.drained()
	if e.jobs() != before {
		t.Fatal("version 2 sent to jobs")
	}
	res, err = e.r.Reload(context.Background(), Request{Rollback: true, Source: "cli"})
	if err != nil || res.Outcome != "rolled_back" || res.Live != 1 || res.Version != 1 {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	var at map[int32]int64
	for _, to := range res.Takeovers {
		if to.Route == "jobs" {
			at = to.Offsets
		}
	}
	end0, end1 := endOffset(t, e, 0), endOffset(t, e, 1)
	if at[0] != end0 || at[1] != end1 {
		t.Fatalf("rollback took over at %v, want the ends %d,%d (all handled before)", at, end0, end1)
	}
	e.produce(520, 530)
	e.drained()
	if got := e.jobs() - before; got != 10 {
		t.Fatalf("%d of 10 events after the rollback to version 1", got)
	}
	st, _ := e.eng.Pipeline("p")
	for _, r := range st.Routes {
		if r.Name == "jobs" && r.Version != 1 {
			t.Fatalf("route jobs runs version %d after rollback", r.Version)
		}
	}
	if j := e.store.Journal(); j[len(j)-1].Action != versions.ActionRollback || j[len(j)-1].From != 2 {
		t.Fatalf("journal %+v", j[len(j)-1])
	}
}

func endOffset(t *testing.T, e *env, part int32) int64 {
	_, end, err := e.bb.Offsets("in", part)
	if err != nil {
		t.Fatal(err)
	}
	return end
}
