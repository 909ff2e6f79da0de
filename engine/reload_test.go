package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
)

// reloadConfig is a config with two rule sets: set 0 and set 1 route
// differently (r1: even / odd n; r2: n%3 / n%5), and a pipeline "q" whose
// route never changes.
func reloadConfig(set int) string {
	when := [2][2]string{{"body.n % 2 == 0", "body.n % 3 == 0"}, {"body.n % 2 == 1", "body.n % 5 == 0"}}[set]
	return fmt.Sprintf(`
backbone: { topics: { in: { partitions: 3 }, out1: { partitions: 1 }, out2: { partitions: 1 }, out3: { partitions: 1 } } }
pipelines:
  - name: p
    from: in
    routes:
      - name: r1
        when: '%s'
        to: { topic: out1 }
      - name: r2
        when: '%s'
        to: { topic: out2 }
  - name: q
    from: in
    routes:
      - name: steady
        when: 'body.n %% 7 == 0'
        to: { topic: out3 }
`, when[0], when[1])
}

func parsePlan(t testing.TB, src string) *pipelines.Plan {
	t.Helper()
	plan, err := pipelines.Parse("test.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func buildVersioned(t testing.TB, plan *pipelines.Plan, b Backbone) *Engine {
	t.Helper()
	e, err := Build(plan, Deps{Backbone: b, Options: Options{Version: 1, CommitInterval: 5 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// selects is what rule set set's route selects (reloadConfig's rules).
func selects(set int, route string, n int) bool {
	switch route {
	case "r1":
		return n%2 == set
	case "r2":
		if set == 0 {
			return n%3 == 0
		}
		return n%5 == 0
	}
	return n%7 == 0
}

// output is one delivered output, decoded.
type output struct {
	partition int32
	offset    int64
	version   int64
	n         int
}

func decodeOutputs(t *testing.T, b *memBackbone, topic string) []output {
	t.Helper()
	var out []output
	for _, ev := range b.events(topic) {
		id, _ := ev.Header(event.HeaderEventID)
		parts := strings.Split(string(id), "/")
		if len(parts) != 3 {
			t.Fatalf("%s: bridge-event-id %q", topic, id)
		}
		p, _ := strconv.Atoi(parts[1])
		o, _ := strconv.ParseInt(parts[2], 10, 64)
		v, ok := ev.Header(HeaderRulesVersion)
		if !ok {
			t.Fatalf("%s: output %s has no %s", topic, id, HeaderRulesVersion)
		}
		ver, _ := strconv.ParseInt(string(v), 10, 64)
		var body struct{ N int }
		if err := json.Unmarshal(ev.Value, &body); err != nil {
			t.Fatal(err)
		}
		out = append(out, output{partition: int32(p), offset: o, version: ver, n: body.N})
	}
	return out
}

// versionAt finds which version handles offset o of partition p, from the
// takeovers recorded for one route (version 1 from the start).
type takeoverPoint struct {
	offset  int64
	version int64
}

// TestReload50TimesDuringStream is issue 17's headline test: a stream at
// a steady rate through three routes, reloaded 50 times between two rule
// sets that route differently. Per route and partition, every input event
// the version at its offset selects is delivered exactly once (the clean
// point gives no duplicates), nothing else is, in offset order, and each
// output's bridge-rules-version is the version the recorded takeover
// offsets give. The route of pipeline q never changes and keeps version 1.
func TestReload50TimesDuringStream(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 3, "out1": 1, "out2": 1, "out3": 1})
	plans := [2]*pipelines.Plan{parsePlan(t, reloadConfig(0)), parsePlan(t, reloadConfig(1))}
	e := buildVersioned(t, plans[0], b)
	run := runEngine(t, e)

	// The producer: batches of 9 events every millisecond, keys spread
	// over the partitions.
	var produced atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		n := 0
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var evs []event.Event
			for range 9 {
				evs = append(evs, event.Event{Key: []byte("k" + strconv.Itoa(n%31)), Value: fmt.Appendf(nil, `{"n":%d}`, n)})
				n++
			}
			if _, err := b.Append(context.Background(), "in", evs); err != nil {
				t.Error(err)
				return
			}
			produced.Add(int64(len(evs)))
		}
	})

	points := map[string]map[int32][]takeoverPoint{"r1": {}, "r2": {}}
	var resume []time.Duration
	cur := 0
	for v := int64(2); v <= 51; v++ {
		time.Sleep(8 * time.Millisecond)
		next := 1 - cur
		diff := pipelines.Diff(plans[cur], plans[next])
		if pd, ok := diff.Pipeline("p"); !ok || len(pd.RoutesChanged) != 2 || len(diff.PipelinesChanged) != 1 {
			t.Fatalf("diff: %+v", diff)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := e.Reload(ctx, plans[next], diff, ReloadOptions{Version: v})
		cancel()
		if err != nil {
			t.Fatalf("reload to version %d: %v", v, err)
		}
		resume = append(resume, res.ResumeAfter)
		if len(res.Takeovers) != 2 {
			t.Fatalf("version %d: takeovers %+v", v, res.Takeovers)
		}
		for _, to := range res.Takeovers {
			if to.Action != "changed" || to.Version != v || len(to.Offsets) != 3 {
				t.Fatalf("version %d: takeover %+v", v, to)
			}
			for part, off := range to.Offsets {
				points[to.Route][part] = append(points[to.Route][part], takeoverPoint{off, v})
			}
		}
		cur = next
	}
	close(stop)
	wg.Wait()
	total := produced.Load()
	if total < 1000 {
		t.Fatalf("only %d events produced", total)
	}
	waitFor(t, 20*time.Second, func() error {
		for _, p := range e.Pipelines() {
			for _, r := range p.Routes {
				if r.Lag != 0 || r.Read != total {
					return fmt.Errorf("%s/%s: lag %d, read %d of %d", p.Name, r.Name, r.Lag, r.Read, total)
				}
			}
		}
		return nil
	})
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}

	// The input, by partition and offset.
	inputs := map[int32][]int{}
	for part := range int32(3) {
		for _, ev := range b.topics["in"][part] {
			var body struct{ N int }
			if err := json.Unmarshal(ev.Value, &body); err != nil {
				t.Fatal(err)
			}
			inputs[part] = append(inputs[part], body.N)
		}
	}
	versionAt := func(route string, part int32, off int64) int64 {
		v := int64(1)
		for _, p := range points[route][part] {
			if off >= p.offset {
				v = p.version
			}
		}
		return v
	}
	for route, topic := range map[string]string{"r1": "out1", "r2": "out2", "steady": "out3"} {
		outs := decodeOutputs(t, b, topic)
		seen := map[[2]int64]int{}
		last := map[int32]int64{}
		dups := 0
		for _, o := range outs {
			k := [2]int64{int64(o.partition), o.offset}
			seen[k]++
			if seen[k] > 1 {
				dups++
				continue
			}
			if prev, ok := last[o.partition]; ok && o.offset <= prev {
				t.Errorf("%s partition %d: offset %d after %d", route, o.partition, o.offset, prev)
			}
			last[o.partition] = o.offset
			want := versionAt(route, o.partition, o.offset)
			if route == "steady" {
				want = 1
			}
			if o.version != want {
				t.Errorf("%s %d/%d: bridge-rules-version %d, the takeovers say %d", route, o.partition, o.offset, o.version, want)
			}
		}
		if dups != 0 {
			t.Errorf("%s: %d duplicates", route, dups)
		}
		missing, extra := 0, 0
		expected := 0
		for part, ns := range inputs {
			for off, n := range ns {
				v := versionAt(route, part, int64(off))
				set := int((v - 1) % 2) // version 1 runs set 0, 2 set 1, 3 set 0, ...
				want := selects(set, route, n)
				if route == "steady" {
					want = selects(0, route, n)
				}
				got := seen[[2]int64{int64(part), int64(off)}] > 0
				if want {
					expected++
				}
				switch {
				case want && !got:
					missing++
				case got && !want:
					extra++
				}
			}
		}
		if missing != 0 || extra != 0 {
			t.Errorf("%s: %d events missing, %d sent that the version at their offset does not select (of %d expected)", route, missing, extra, expected)
		}
		t.Logf("%s: %d outputs, %d expected, %d duplicates", route, len(outs), expected, dups)
	}
	sort.Slice(resume, func(i, j int) bool { return resume[i] < resume[j] })
	t.Logf("%d events; reload to takeover: median %v, max %v", total, resume[len(resume)/2], resume[len(resume)-1])
}

// TestReloadWaitsForTheBatchAndReportsLateTakeovers: a route whose sink
// fails holds its batch (retrying); a reload cannot swap it before the
// batch is handled, so Reload times out, nothing of the batch is lost or
// sent under the wrong version, and once the sink recovers the swap
// applies right after the batch and OnLate reports where.
func TestReloadWaitsForTheBatchAndReportsLateTakeovers(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	var down atomic.Bool
	down.Store(true)
	sink := &recSink{fail: func(*event.Event, int) error {
		if down.Load() {
			return fmt.Errorf("target down")
		}
		return nil
	}}
	cfg := func(rule string) string {
		return fmt.Sprintf(`
connections: { m: { type: kafka, brokers: ["unused:9092"] } }
backbone: { topics: { in: { partitions: 1 } } }
pipelines:
  - name: p
    from: in
    retry: { initial_backoff: 1ms, max_backoff: 5ms }
    routes:
      - name: r
        when: '%s'
        to: { kafka: { connection: m, topic: t } }
`, rule)
	}
	plan1, plan2 := parsePlan(t, cfg("true")), parsePlan(t, cfg("body.n >= 0"))
	e, err := Build(plan1, Deps{Backbone: b, Options: Options{Version: 1, CommitInterval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
		External: func(*pipelines.Target, *pipelines.Connection) (event.Sink, error) { return sink, nil }})
	if err != nil {
		t.Fatal(err)
	}
	runEngine(t, e)
	produce(t, b, "in", 5, func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) })
	waitFor(t, 5*time.Second, func() error {
		if st, _ := e.Pipeline("p"); st.Routes[0].Retries == 0 {
			return fmt.Errorf("not retrying yet")
		}
		return nil
	})
	late := make(chan []Takeover, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = e.Reload(ctx, plan2, pipelines.Diff(plan1, plan2), ReloadOptions{Version: 2, OnLate: func(ts []Takeover) { late <- ts }})
	cancel()
	if !errors.Is(err, ErrReloadTimedOut) {
		t.Fatalf("err %v, want ErrReloadTimedOut", err)
	}
	down.Store(false)
	select {
	case ts := <-late:
		if len(ts) != 1 || ts[0].Route != "r" || ts[0].Version != 2 || ts[0].Offsets[0] != 5 {
			t.Fatalf("late takeovers %+v, want r at offset 5", ts)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no late takeover reported")
	}
	produce(t, b, "in", 2, func(i int) string { return fmt.Sprintf(`{"n":%d}`, 10+i) })
	waitFor(t, 5*time.Second, func() error {
		if n := len(sink.events()); n != 7 {
			return fmt.Errorf("%d of 7 sent", n)
		}
		return nil
	})
	for i, ev := range sink.events() {
		v, _ := ev.Header(HeaderRulesVersion)
		want := "1"
		if i >= 5 {
			want = "2"
		}
		if string(v) != want {
			t.Fatalf("output %d (offset %d): version %s, want %s", i, ev.Offset, v, want)
		}
	}
}

// TestUnchangedRoutesAreNotTouched: a reload that changes one route leaves
// the other routes' versions and cursors as they were (same route version
// object, no swap requested), and a shared backbone refuses route changes.
func TestUnchangedRoutesAreNotTouched(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 3, "out1": 1, "out2": 1, "out3": 1})
	plans := [2]*pipelines.Plan{parsePlan(t, reloadConfig(0)), parsePlan(t, reloadConfig(1))}
	e := buildVersioned(t, plans[0], b)
	runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if !e.Ready() {
			return fmt.Errorf("not running")
		}
		return nil
	})
	q, _ := e.lookup("q")
	before := q.routeList()[0]
	cursors := q.snapshot()
	if _, err := e.Reload(context.Background(), plans[1], pipelines.Diff(plans[0], plans[1]), ReloadOptions{Version: 2}); err != nil {
		t.Fatal(err)
	}
	if after := q.routeList()[0]; after != before || after.version != 1 {
		t.Fatal("the unchanged route got a new version")
	}
	for i, c := range q.snapshot() {
		c.mu.Lock()
		pending := c.swap.pending
		c.mu.Unlock()
		if c != cursors[i] || pending != nil {
			t.Fatal("a cursor of the unchanged route was replaced or asked to swap")
		}
	}
	p, _ := e.lookup("p")
	for _, r := range p.routeList() {
		if r.version != 2 {
			t.Fatalf("route %s runs version %d, want 2", r.name, r.version)
		}
	}

	shared := newSharedBackbone(newMemBackbone(map[string]int{"in": 3, "out1": 1, "out2": 1, "out3": 1}))
	es := buildVersioned(t, plans[0], shared)
	runEngine(t, es)
	waitFor(t, 5*time.Second, func() error {
		if !es.Ready() {
			return fmt.Errorf("not running")
		}
		return nil
	})
	if _, err := es.Reload(context.Background(), plans[1], pipelines.Diff(plans[0], plans[1]), ReloadOptions{Version: 2}); !errors.Is(err, ErrReloadShared) {
		t.Fatalf("shared backbone: err %v, want ErrReloadShared", err)
	}
}

// TestReloadResumesARouteStoppedByOnError: on_error: stop halts a route at
// an event its target refuses; a reload whose rules skip that event resumes
// the route from exactly there under the new version.
func TestReloadResumesARouteStoppedByOnError(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	sink := &recSink{fail: func(ev *event.Event, _ int) error {
		if strings.Contains(string(ev.Value), `"n":3}`) {
			return event.Permanent(fmt.Errorf("refused"))
		}
		return nil
	}}
	cfg := func(rule string) string {
		return fmt.Sprintf(`
connections: { m: { type: kafka, brokers: ["unused:9092"] } }
backbone: { topics: { in: { partitions: 1 } } }
pipelines:
  - name: p
    from: in
    on_error: stop
    batch_size: 1
    max_in_flight: 1
    routes:
      - name: r
        when: '%s'
        to: { kafka: { connection: m, topic: t } }
`, rule)
	}
	plan1, plan2 := parsePlan(t, cfg("true")), parsePlan(t, cfg("body.n != 3"))
	e, err := Build(plan1, Deps{Backbone: b, Options: Options{Version: 1, CommitInterval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
		External: func(*pipelines.Target, *pipelines.Connection) (event.Sink, error) { return sink, nil }})
	if err != nil {
		t.Fatal(err)
	}
	runEngine(t, e)
	produce(t, b, "in", 6, func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) })
	waitFor(t, 5*time.Second, func() error {
		if st, _ := e.Pipeline("p"); st.State != "stopped" {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
	res, err := e.Reload(context.Background(), plan2, pipelines.Diff(plan1, plan2), ReloadOptions{Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Takeovers) != 1 || res.Takeovers[0].Offsets[0] != 3 {
		t.Fatalf("takeovers %+v, want r at offset 3", res.Takeovers)
	}
	waitFor(t, 5*time.Second, func() error {
		if n := len(sink.events()); n != 5 {
			return fmt.Errorf("%d of 5 sent", n)
		}
		return nil
	})
	for i, ev := range sink.events() {
		v, _ := ev.Header(HeaderRulesVersion)
		if want := map[bool]string{true: "1", false: "2"}[i < 3]; string(v) != want {
			t.Fatalf("output %d: version %s, want %s", i, v, want)
		}
	}
	if st, _ := e.Pipeline("p"); st.State != "running" || !e.Ready() {
		t.Fatalf("state %s after the reload", st.State)
	}
}
