package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
)

const replayConfig = `
backbone: { topics: { in: { partitions: 2 } } }
broker:
  queues:
    jobs: {}
    dead: {}
pipelines:
  - name: p
    from: in
    filter: 'body.n != 7'
    on_error: dead_letter
    dead_letter: { queue: dead }
    routes:
      - to: { queue: jobs }
`

// replayEnv runs an engine over replayConfig with n events in "in" (body
// {"n":i}, keyed i, so spread over both partitions), waits until the live
// route delivered them all, and returns it with the jobs queue purged and
// where each event is.
func replayEnv(t *testing.T, n int) (*Engine, *memBackbone, *queue.Manager, []event.Position) {
	t.Helper()
	e, b, qm := buildFromYAML(t, replayConfig)
	var positions []event.Position
	for i := range n {
		ev := event.Event{Key: []byte(fmt.Sprint(i)), Value: fmt.Appendf(nil, `{"n":%d}`, i)}
		pos, err := b.Append(context.Background(), "in", []event.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, pos[0])
	}
	runEngine(t, e)
	jobs, _ := qm.Get("jobs")
	want := n
	if n > 7 {
		want-- // the filter drops n == 7
	}
	waitFor(t, 10*time.Second, func() error {
		if st := jobs.Stats(); st.Visible != want {
			return fmt.Errorf("live route delivered %d of %d", st.Visible, want)
		}
		return nil
	})
	waitFor(t, 10*time.Second, func() error { // the route checkpointed everything
		for part := range int32(2) {
			_, end, _ := b.Offsets("in", part)
			if got, _ := b.committed("pipeline.p.route.queue:jobs", "in", part); got != end {
				return fmt.Errorf("partition %d checkpointed at %d of %d", part, got, end)
			}
		}
		return nil
	})
	if err := jobs.Purge(context.Background()); err != nil { // the work queue is lost
		t.Fatal(err)
	}
	return e, b, qm, positions
}

// bodiesAt returns the bodies of the events in partition p at offsets
// [from, to), sorted.
func bodiesAt(positions []event.Position, p int32, from, to int64) []string {
	var out []string
	for i, pos := range positions {
		if pos.Partition == p && pos.Offset >= from && pos.Offset < to && i != 7 {
			out = append(out, fmt.Sprintf(`{"n":%d}`, i))
		}
	}
	slices.Sort(out)
	return out
}

func waitReplay(t *testing.T, e *Engine, id string) ReplayStatus {
	t.Helper()
	var st ReplayStatus
	waitFor(t, 20*time.Second, func() error {
		var err error
		if st, err = e.RouteReplayStatus(id); err != nil {
			return err
		}
		if st.State == "running" {
			return fmt.Errorf("still running: %+v", st)
		}
		return nil
	})
	return st
}

// TestRouteReplayRebuildsQueue: a purged queue is rebuilt from the log by a
// replay of its route: every event the route selects comes back, marked
// bridge-replayed, through the route's rules; the route's checkpoint and
// counters do not move.
func TestRouteReplayRebuildsQueue(t *testing.T) {
	e, b, qm, _ := replayEnv(t, 40)
	before, _ := e.Pipeline("p")
	checkpoints := map[int32]int64{}
	for _, part := range []int32{0, 1} {
		checkpoints[part], _ = b.committed("pipeline.p.route.queue:jobs", "in", part)
	}
	st, err := e.StartRouteReplay("p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Earliest: true}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 40 || len(st.Partitions) != 2 || st.Partitions[0].To+st.Partitions[1].To != 40 {
		t.Fatalf("started = %+v", st)
	}
	st = waitReplay(t, e, st.ID)
	if st.State != "done" || st.Read != 40 || st.Sent != 39 || st.FinishedAt == nil {
		t.Fatalf("replay = %+v", st)
	}
	msgs := receiveAll(t, qm, "jobs")
	var ns []string
	for _, m := range msgs {
		if attrOf(m, HeaderReplayed) != "true" || attrOf(m, event.HeaderEventID) == "" {
			t.Fatalf("replayed message attributes: %+v", m.Attributes)
		}
		ns = append(ns, string(m.Body))
	}
	if len(ns) != 39 || slices.Contains(ns, `{"n":7}`) {
		t.Fatalf("rebuilt queue holds %d messages: %v", len(ns), ns)
	}
	after, _ := e.Pipeline("p")
	if after.Routes[0].Sent != before.Routes[0].Sent {
		t.Fatalf("the live route's counters moved: %d -> %d", before.Routes[0].Sent, after.Routes[0].Sent)
	}
	for _, part := range []int32{0, 1} {
		if got, _ := b.committed("pipeline.p.route.queue:jobs", "in", part); got != checkpoints[part] {
			t.Fatalf("checkpoint of partition %d moved: %d -> %d", part, checkpoints[part], got)
		}
	}
}

// TestRouteReplayRange: offsets and times bound a replay, per partition.
func TestRouteReplayRange(t *testing.T) {
	e, _, qm, positions := replayEnv(t, 40)
	st, err := e.StartRouteReplay("p", RouteReplay{Route: "queue:jobs",
		From: ReplayFrom{Offsets: map[int32]int64{0: 5}}, To: &ReplayFrom{Offsets: map[int32]int64{0: 8}}})
	if err != nil {
		t.Fatal(err)
	}
	if st = waitReplay(t, e, st.ID); st.State != "done" || st.Read != 3 || len(st.Partitions) != 1 || st.Partitions[0].Next != 8 {
		t.Fatalf("replay = %+v", st)
	}
	var got []string
	for _, m := range receiveAll(t, qm, "jobs") {
		got = append(got, string(m.Body))
	}
	slices.Sort(got)
	if want := bodiesAt(positions, 0, 5, 8); !slices.Equal(got, want) || len(want) < 2 {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	// A time range: everything is older than now, nothing is newer.
	st, err = e.StartRouteReplay("p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Time: time.Now().Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if st = waitReplay(t, e, st.ID); st.Read != 0 {
		t.Fatalf("replay from the future read %d", st.Read)
	}
}

// TestRouteReplayPacedAndCancelled: per_second paces the reads; a cancel
// stops the task, which reports where each partition stopped.
func TestRouteReplayPacedAndCancelled(t *testing.T) {
	e, _, _, _ := replayEnv(t, 40)
	start := time.Now()
	st, err := e.StartRouteReplay("p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Earliest: true}, PerSecond: 50})
	if err != nil {
		t.Fatal(err)
	}
	// Event k is read at k/50 s, in batches of a tenth of a second.
	if st = waitReplay(t, e, st.ID); st.Read != 40 || time.Since(start) < 650*time.Millisecond {
		t.Fatalf("40 events at 50/s took %v: %+v", time.Since(start), st)
	}
	st, err = e.StartRouteReplay("p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Earliest: true}, PerSecond: 5})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := e.CancelRouteReplay(st.ID); err != nil {
		t.Fatal(err)
	}
	if st = waitReplay(t, e, st.ID); st.State != "cancelled" || st.Read >= 40 || st.Partitions[1].Next >= st.Partitions[1].To {
		t.Fatalf("cancelled replay = %+v", st)
	}
	if all := e.RouteReplays(); len(all) != 2 || all[1].ID != st.ID {
		t.Fatalf("replays = %+v", all)
	}
}

// TestRouteReplayDeadLetters: the events a dead-letter queue's messages
// name (bridge-event-id) go through the route again; a message whose event
// is gone, or of another topic, stays.
func TestRouteReplayDeadLetters(t *testing.T) {
	e, _, qm, positions := replayEnv(t, 10)
	dead, _ := qm.Get("dead")
	in := []queue.SendInput{}
	id := func(n int) string { return fmt.Sprintf("in/%d/%d", positions[n].Partition, positions[n].Offset) }
	for _, id := range []string{id(3), id(4), "other/0/1", "in/0/999"} {
		in = append(in, queue.SendInput{Body: []byte("stale copy " + id),
			Attributes: []queue.Attribute{{Name: event.HeaderEventID, DataType: "String", Value: []byte(id)}}})
	}
	if _, err := dead.Send(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	st, err := e.StartRouteReplay("p", RouteReplay{Route: "queue:jobs", DeadLetterQueue: "dead"})
	if err != nil {
		t.Fatal(err)
	}
	if st = waitReplay(t, e, st.ID); st.State != "done" || st.Read != 2 || st.Skipped != 1 || st.Sent != 2 {
		t.Fatalf("replay = %+v", st)
	}
	var got []string
	for _, m := range receiveAll(t, qm, "jobs") {
		got = append(got, string(m.Body)+" "+attrOf(m, HeaderReplayed))
	}
	slices.Sort(got)
	// The log's events, not the dead letters' stale bodies.
	if want := []string{`{"n":3} true`, `{"n":4} true`}; !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	var left []string
	for _, m := range receiveAll(t, qm, "dead") {
		left = append(left, attrOf(m, event.HeaderEventID))
	}
	slices.Sort(left)
	if want := []string{"in/0/999", "other/0/1"}; !slices.Equal(left, want) {
		t.Fatalf("left in the dead-letter queue: %v, want %v", left, want)
	}
}

func TestRouteReplayErrors(t *testing.T) {
	e, _, _, _ := replayEnv(t, 2)
	for _, tc := range []struct {
		name     string
		pipeline string
		req      RouteReplay
		want     error
	}{
		{"unknown pipeline", "nope", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Earliest: true}}, ErrUnknownPipeline},
		{"unknown route", "p", RouteReplay{Route: "queue:nope", From: ReplayFrom{Earliest: true}}, ErrUnknownRoute},
		{"no start", "p", RouteReplay{Route: "queue:jobs"}, ErrBadReplay},
		{"from latest", "p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Latest: true}}, ErrBadReplay},
		{"to earliest", "p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Earliest: true}, To: &ReplayFrom{Earliest: true}}, ErrBadReplay},
		{"negative rate", "p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Earliest: true}, PerSecond: -1}, ErrBadReplay},
		{"dead letters and a range", "p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Earliest: true}, DeadLetterQueue: "dead"}, ErrBadReplay},
		{"unknown dead-letter queue", "p", RouteReplay{Route: "queue:jobs", DeadLetterQueue: "nope"}, ErrUnknownQueue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.StartRouteReplay(tc.pipeline, tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("= %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.RouteReplayStatus("replay-99"); !errors.Is(err, ErrUnknownReplay) {
		t.Fatalf("status of an unknown task: %v", err)
	}
	idle, _, _ := buildFromYAML(t, replayConfig) // built, never run
	if _, err := idle.StartRouteReplay("p", RouteReplay{Route: "queue:jobs", From: ReplayFrom{Earliest: true}}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("replay before Run: %v", err)
	}
}

// FuzzEventPosition: parsing a dead letter's bridge-event-id never panics
// and yields only non-negative positions whose id names the same topic.
func FuzzEventPosition(f *testing.F) {
	for _, s := range []string{"in/0/5", "in/1/123456789", "other/0/1", "in/-1/5", "in/0/-5", "in//5", "/0/0", "in/0/", "a/b/in/0/1", "in/99999999999/1"} {
		f.Add(s, "in")
	}
	f.Fuzz(func(t *testing.T, id, topic string) {
		p, o, ok := eventPosition([]queue.Attribute{{Name: event.HeaderEventID, DataType: "String", Value: []byte(id)}}, topic)
		if !ok {
			return
		}
		if p < 0 || o < 0 || !strings.HasPrefix(id, topic+"/") {
			t.Fatalf("eventPosition(%q, %q) = %d, %d", id, topic, p, o)
		}
		if again, err := strconv.ParseInt(id[strings.LastIndexByte(id, '/')+1:], 10, 64); err != nil || again != o {
			t.Fatalf("offset %d of %q", o, id)
		}
	})
}
