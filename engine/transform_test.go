package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// mustTransform compiles a transform: split (may be ""), value and key.
func mustTransform(t *testing.T, step, split, value, key string) *rules.Transform {
	t.Helper()
	tr := &rules.Transform{Step: step}
	scope := rules.EventScope
	compile := func(src string, kind rules.Kind) *rules.Program {
		if src == "" {
			return nil
		}
		p, err := rules.CompileIn(src, kind, scope)
		if err != nil {
			t.Fatalf("compile %q: %v", src, err)
		}
		return p
	}
	if split != "" {
		tr.Split = compile(split, rules.List)
		scope = rules.SplitScope
	}
	tr.Value = compile(value, rules.Value)
	tr.Key = compile(key, rules.String)
	return tr
}

// orderWithItems is event i: an order with i%4 items (0 to 3), numbered.
func orderWithItems(i int) string {
	items := make([]string, i%4)
	for j := range items {
		items[j] = fmt.Sprintf(`{"n":%d,"wh":%q}`, j, []string{"eu", "us"}[(i+j)%2])
	}
	return fmt.Sprintf(`{"order":%d,"items":[%s]}`, i, strings.Join(items, ","))
}

type part struct {
	Order int    `json:"order"`
	N     int    `json:"n"`
	WH    string `json:"wh"`
}

func decodePart(t *testing.T, ev event.Event) part {
	t.Helper()
	var p part
	if err := json.Unmarshal(ev.Value, &p); err != nil {
		t.Fatalf("part %q: %v", ev.Value, err)
	}
	return p
}

// checkParts asserts that parts arrive per partition in order: source
// offsets ascending, and the parts of one source event consecutive with
// their split indexes 0, 1, ... (gaps where when or drop_if removed some
// are allowed: want says which indexes a source must have).
func checkParts(t *testing.T, got []event.Event, want func(order int) []int) {
	t.Helper()
	byOrder := map[int][]int{}
	lastOffset := map[int32]int64{}
	lastOrder := -1
	for _, ev := range got {
		p := decodePart(t, ev)
		id, _ := ev.Header(event.HeaderEventID)
		idx, ok := ev.Header(rules.HeaderSplitIndex)
		if !ok || string(id) != ev.ID() {
			t.Fatalf("part %s: event id %q, split index present %v", ev.Value, id, ok)
		}
		if n, _ := strconv.Atoi(string(idx)); n != p.N {
			t.Fatalf("part %s has split index %s", ev.Value, idx)
		}
		if prev, seen := lastOffset[ev.Partition]; seen && ev.Offset < prev {
			t.Fatalf("partition %d: offset %d after %d", ev.Partition, ev.Offset, prev)
		}
		if p.Order != lastOrder && len(byOrder[p.Order]) > 0 {
			t.Fatalf("parts of order %d are not consecutive", p.Order)
		}
		lastOffset[ev.Partition], lastOrder = ev.Offset, p.Order
		byOrder[p.Order] = append(byOrder[p.Order], p.N)
	}
	for order := range 200 {
		if w, g := fmt.Sprint(want(order)), fmt.Sprint(byOrder[order]); w != g && !(len(want(order)) == 0 && byOrder[order] == nil) {
			t.Fatalf("order %d: parts %s, want %s", order, g, w)
		}
	}
}

// TestSplitRoutesPartsInOrder: a pipeline split, a route when per part and
// a route transform; every part arrives once, in order, and the checkpoint
// reaches the end.
func TestSplitRoutesPartsInOrder(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 3})
	produce(t, b, "in", 200, orderWithItems)
	eu, all := &recSink{}, &recSink{}
	split := mustTransform(t, "pipeline", "body.items", `merge(item, {"order": body.order})`, "")
	rEU := testRoute("eu", eu)
	rEU.transform, rEU.when = split, mustCompile(t, `body.wh == "eu"`, rules.Bool)
	rEU.routeTransform = mustTransform(t, "route eu", "", "", `string(body.order) + "/" + string(body.n)`)
	rAll := testRoute("all", all)
	rAll.transform = split
	rAll.batchSize = 2 // outputs are sent in chunks: the parts of one event stay together
	e := newTestEngine(t, b, rEU, rAll)
	run := runEngine(t, e)
	total, totalEU := 0, 0
	for i := range 200 {
		total += i % 4
		for j := range i % 4 {
			if (i+j)%2 == 0 {
				totalEU++
			}
		}
	}
	waitFor(t, 10*time.Second, func() error {
		if n, m := len(all.events()), len(eu.events()); n != total || m != totalEU {
			return fmt.Errorf("%d of %d parts, %d of %d eu parts", n, total, m, totalEU)
		}
		return nil
	})
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	checkParts(t, all.events(), func(order int) []int {
		var idx []int
		for j := range order % 4 {
			idx = append(idx, j)
		}
		return idx
	})
	checkParts(t, eu.events(), func(order int) []int {
		var idx []int
		for j := range order % 4 {
			if (order+j)%2 == 0 {
				idx = append(idx, j)
			}
		}
		return idx
	})
	for _, ev := range eu.events() {
		p := decodePart(t, ev)
		if string(ev.Key) != fmt.Sprintf("%d/%d", p.Order, p.N) {
			t.Fatalf("route transform key %q for %+v", ev.Key, p)
		}
	}
	for _, r := range []*route{rEU, rAll} {
		for p := range int32(3) {
			_, end, _ := b.Offsets("in", p)
			if next, _ := b.committed(r.group(), "in", p); next != end {
				t.Fatalf("route %s partition %d: checkpoint %d, want %d", r.name, p, next, end)
			}
		}
	}
}

// TestTransformErrorDeadLettersTheOriginal: a transform failing at run time
// follows on_error, and the dead letter is the untransformed event with the
// reason in bridge-error; no part of it is sent.
func TestTransformErrorDeadLettersTheOriginal(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 40, func(i int) string {
		if i%10 == 3 {
			return fmt.Sprintf(`{"order":%d,"items":[{"n":0,"wh":"eu"},{"n":1,"wh":5}]}`, i) // wh 5: upper() fails
		}
		return orderWithItems(i)
	})
	sink, dl := &recSink{}, &recSink{}
	r := testRoute("r", sink)
	r.transform = mustTransform(t, "pipeline", "body.items", `{"order": body.order, "n": item.n, "wh": upper(item.wh)}`, "")
	r.deadLetter = dl
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if len(dl.events()) != 4 {
			return fmt.Errorf("%d dead letters", len(dl.events()))
		}
		return nil
	})
	_ = run.stop(t)
	for _, d := range dl.events() {
		var orig struct{ Order int }
		_ = json.Unmarshal(d.Value, &orig)
		if orig.Order%10 != 3 || !strings.Contains(string(d.Value), `"wh":5`) {
			t.Fatalf("dead letter %s is not an original failing event", d.Value)
		}
		if msg, _ := d.Header(event.HeaderError); !strings.Contains(string(msg), "rule: transform: split item 1: value:") {
			t.Fatalf("bridge-error %q", msg)
		}
	}
	for _, ev := range sink.events() {
		if decodePart(t, ev).Order%10 == 3 {
			t.Fatalf("a part of a failed event was sent: %s", ev.Value)
		}
	}
	if next, _ := b.committed(r.group(), "in", 0); next != 40 {
		t.Fatalf("checkpoint %d, want 40", next)
	}
}

// TestSplitPartFailures: BatchError indexes name outputs, and are mapped
// back to their source events. A retryable failure resends only that part;
// a permanent one dead-letters the original event once, even when several
// of its parts fail, and its other parts are not retried.
func TestSplitPartFailures(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 30, orderWithItems)
	failedOnce := map[string]bool{}
	sink := &recSink{fail: func(ev *event.Event, _ int) error {
		idx, _ := ev.Header(rules.HeaderSplitIndex)
		id := ev.ID() + "#" + string(idx)
		switch {
		case ev.Offset == 7 && !failedOnce[id]: // parts 0..2 of order 7 fail once each
			failedOnce[id] = true
			return errors.New("broker busy")
		case ev.Offset == 11: // every part of order 11 fails for good
			return event.Permanent(errors.New("rejected"))
		}
		return nil
	}}
	dl := &recSink{}
	r := testRoute("r", sink)
	r.transform = mustTransform(t, "pipeline", "body.items", `merge(item, {"order": body.order})`, "")
	r.deadLetter = dl
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if next, _ := b.committed(r.group(), "in", 0); next != 30 {
			return fmt.Errorf("checkpoint %d", next)
		}
		return nil
	})
	_ = run.stop(t)
	if len(dl.events()) != 1 || string(dl.events()[0].Value) != orderWithItems(11) {
		t.Fatalf("dead letters %v, want the original order 11 once", dl.events())
	}
	if msg, _ := dl.events()[0].Header(event.HeaderError); !strings.HasPrefix(string(msg), "split part 0: ") {
		t.Fatalf("bridge-error %q", msg)
	}
	count := map[string]int{}
	for _, ev := range sink.events() {
		p := decodePart(t, ev)
		count[fmt.Sprintf("%d/%d", p.Order, p.N)]++
	}
	for order := range 30 {
		for j := range order % 4 {
			want := 1
			if order == 11 {
				want = 0
			}
			if n := count[fmt.Sprintf("%d/%d", order, j)]; n != want {
				t.Fatalf("part %d/%d delivered %d times, want %d", order, j, n, want)
			}
		}
	}
	if st := e.Pipelines()[0].Routes[0]; st.DeadLettered != 1 || st.Retries == 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestSplitDedupIDsDiffer: without a dedup_id rule the parts of one event
// get distinct deduplication ids (a FIFO queue would otherwise keep only
// the first part).
func TestSplitDedupIDsDiffer(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	produce(t, b, "in", 4, orderWithItems)
	sink := &paramSink{}
	r := testRoute("r", sink)
	r.transform = mustTransform(t, "pipeline", "body.items", "", "")
	r.groupID = mustCompile(t, `"g"`, rules.String)
	e := newTestEngine(t, b, r)
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if n := sink.count(); n != 6 {
			return fmt.Errorf("%d sent", n)
		}
		return nil
	})
	_ = run.stop(t)
	seen := map[string]bool{}
	for _, p := range sink.allParams() {
		if seen[p.DedupID] || !strings.HasPrefix(p.DedupID, "in/0/") || !strings.Contains(p.DedupID, "#") {
			t.Fatalf("dedup ids %v", sink.allParams())
		}
		seen[p.DedupID] = true
	}
}

// paramSink records the params of what it acknowledges.
type paramSink struct {
	recSink
	params []event.Params
}

func (s *paramSink) SendParams(ctx context.Context, batch []event.Event, params []event.Params) error {
	if err := s.Send(ctx, batch); err != nil {
		return err
	}
	s.mu.Lock()
	s.params = append(s.params, params...)
	s.mu.Unlock()
	return nil
}

func (s *paramSink) count() int { return len(s.events()) }

func (s *paramSink) allParams() []event.Params {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Params(nil), s.params...)
}

// TestRedriveRunsTheTransforms: a dead letter holds the original event, so
// redriving it sends it through the route's transforms again: every part,
// with the route's when applied to the parts.
func TestRedriveRunsTheTransforms(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1, "dlq": 1})
	us := &recSink{}
	r := testRoute("us", us)
	r.transform = mustTransform(t, "pipeline", "body.items", `merge(item, {"order": body.order})`, "")
	r.when = mustCompile(t, `body.wh == "us"`, rules.Bool)
	r.deadLetter = &topicSink{backbone: b, topic: "dlq"}
	e := newEngine(b, Options{Logger: slog.New(slog.DiscardHandler)})
	if err := e.addPipeline("p", "in", []*route{r}); err != nil {
		t.Fatal(err)
	}
	orig := event.Event{Topic: "in", Offset: 3, Value: []byte(orderWithItems(3))} // 3 items: us, eu, us
	dl := deadLetterEvent(&orig, r, event.Permanent(errors.New("split part 1: rejected")), 1)
	if _, err := b.Append(context.Background(), "dlq", []event.Event{dl}); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDeadLetters(e, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := d.Redrive(context.Background(), RedriveRequest{PerSecond: 1000})
	if err != nil || res.Redriven != 1 {
		t.Fatalf("redrive %+v, %v", res, err)
	}
	got := us.events()
	if len(got) != 2 {
		t.Fatalf("redrive sent %d parts, want the 2 us parts", len(got))
	}
	for i, want := range []string{"0", "2"} {
		idx, _ := got[i].Header(rules.HeaderSplitIndex)
		id, _ := got[i].Header(event.HeaderEventID)
		if string(idx) != want || string(id) != "in/0/3" || decodePart(t, got[i]).Order != 3 {
			t.Fatalf("part %d: %s index %s id %s", i, got[i].Value, idx, id)
		}
	}
}
