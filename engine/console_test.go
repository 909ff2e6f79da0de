package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

type memJournal struct {
	mu      sync.Mutex
	entries []JournalEntry
}

func (j *memJournal) Record(e JournalEntry) {
	j.mu.Lock()
	j.entries = append(j.entries, e)
	j.mu.Unlock()
}

func (j *memJournal) snapshot() []JournalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]JournalEntry(nil), j.entries...)
}

// TestJournalRecordsBatchesRetriesAndDeadLetters runs a route whose sink
// fails offset 4 twice (retried) and offset 7 for good (dead-lettered), and
// checks the journal names each of them and covers every offset once.
func TestJournalRecordsBatchesRetriesAndDeadLetters(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1, "dlq": 1})
	produce(t, b, "in", 10, func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) })
	sink := &recSink{fail: func(ev *event.Event, call int) error {
		switch {
		case ev.Offset == 4 && call <= 2:
			return errors.New("busy")
		case ev.Offset == 7:
			return event.Permanent(errors.New("rejected"))
		}
		return nil
	}}
	r := testRoute("r", sink)
	r.batchSize = 5
	r.filter = mustCompile(t, "body.n != 2", rules.Bool)
	r.deadLetter = &topicSink{backbone: b, topic: "dlq"}
	j := &memJournal{}
	e := newEngine(b, Options{CommitInterval: 5 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler), Journal: j})
	if err := e.addPipeline("p", "in", []*route{r}); err != nil {
		t.Fatal(err)
	}
	run := runEngine(t, e)
	waitFor(t, 5*time.Second, func() error {
		if st := e.Pipelines()[0].Routes[0]; st.Lag != 0 || st.Partitions[0].Position != 10 {
			return fmt.Errorf("lag %d", st.Lag)
		}
		return nil
	})
	if st := e.Pipelines()[0].Routes[0]; st.RetryableFailures != 2 || st.PermanentFailures != 1 {
		t.Fatalf("failures by class: %d retryable, %d permanent; want 2 and 1", st.RetryableFailures, st.PermanentFailures)
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	var batches, retries, deadLetters []JournalEntry
	for _, en := range j.snapshot() {
		switch en.Kind {
		case JournalBatch:
			batches = append(batches, en)
		case JournalRetry:
			retries = append(retries, en)
		case JournalDeadLetter:
			deadLetters = append(deadLetters, en)
		}
	}
	next := int64(0)
	matched := 0
	for _, en := range batches {
		if en.From != next || en.Pipeline != "p" || en.Route != "r" || en.Target != "rec" {
			t.Fatalf("batch %+v does not continue at %d", en, next)
		}
		next = en.To
		matched += en.Matched
	}
	if next != 10 || matched != 9 {
		t.Fatalf("batches cover [0,%d) with %d matched; want [0,10) and 9 (offset 2 filtered)", next, matched)
	}
	if len(retries) != 2 || retries[0].From != 4 || retries[0].To != 5 || retries[1].Attempt != 2 || retries[0].Error == "" ||
		fmt.Sprint(retries[0].Offsets) != "[4]" || !retries[0].Covers(4) || retries[0].Covers(3) {
		t.Fatalf("retries %+v; want two for offset 4", retries)
	}
	if len(deadLetters) != 1 || deadLetters[0].From != 7 || deadLetters[0].Target != "topic:dlq" || deadLetters[0].Error == "" {
		t.Fatalf("dead letters %+v; want offset 7 to topic:dlq", deadLetters)
	}
}

func TestExplain(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	big := testRoute("big", &recSink{})
	big.filter = mustCompile(t, `body.type == "order"`, rules.Bool)
	big.when = mustCompile(t, "body.amount > 100", rules.Bool)
	big.key = mustCompile(t, "body.id", rules.String)
	all := testRoute("all", &recSink{})
	all.filter = big.filter
	all.routingKey = mustCompile(t, `"order." + body.region`, rules.String)
	e := newTestEngine(t, b, big, all)
	for _, tc := range []struct {
		name     string
		value    string
		selected [2]bool
		key      string
		rk       string
		failure  string
	}{
		{"both", `{"type":"order","amount":500,"id":"o-1","region":"eu"}`, [2]bool{true, true}, "o-1", "order.eu", ""},
		{"small", `{"type":"order","amount":5,"id":"o-2","region":"us"}`, [2]bool{false, true}, "", "order.us", ""},
		{"filtered", `{"type":"refund"}`, [2]bool{false, false}, "", "", ""},
		{"rule error", `{"type":"order","amount":"many","region":"ap"}`, [2]bool{false, true}, "", "order.ap", OnErrorDeadLetter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := e.Explain("p", event.Event{Key: []byte("k"), Value: []byte(tc.value)})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 2 || ds[0].Selected != tc.selected[0] || ds[1].Selected != tc.selected[1] {
				t.Fatalf("decisions %+v, want selected %v", ds, tc.selected)
			}
			if tc.selected[0] && ds[0].Key != tc.key {
				t.Errorf("key %q, want %q", ds[0].Key, tc.key)
			}
			if tc.selected[1] && ds[1].Params.RoutingKey != tc.rk {
				t.Errorf("routing key %q, want %q", ds[1].Params.RoutingKey, tc.rk)
			}
			if ds[0].Failure != tc.failure {
				t.Errorf("failure %q, want %q (rules %+v)", ds[0].Failure, tc.failure, ds[0].Rules)
			}
			if n := len(ds[0].Rules); n == 0 || ds[0].Rules[0].Rule != "filter" || ds[0].Rules[0].Source != `body.type == "order"` {
				t.Errorf("rules %+v", ds[0].Rules)
			}
		})
	}
	if _, err := e.Explain("nope", event.Event{}); !errors.Is(err, ErrUnknownPipeline) {
		t.Fatalf("unknown pipeline: %v", err)
	}
	topo := e.Topology()
	if len(topo) != 1 || topo[0].Topic != "in" || len(topo[0].Routes) != 2 || topo[0].Routes[0].Target != "rec" {
		t.Fatalf("topology %+v", topo)
	}
}

func TestRedriveEventStripsProvenance(t *testing.T) {
	b := newMemBackbone(map[string]int{"in": 1})
	sink := &recSink{}
	r := testRoute("r", sink)
	r.filter = mustCompile(t, "false", rules.Bool) // not applied to a redrive
	r.key = mustCompile(t, "body.id", rules.String)
	e := newTestEngine(t, b, r)
	dl := event.Event{Value: []byte(`{"id":"o-7"}`), Headers: []event.Header{
		{Key: event.HeaderEventID, Value: []byte("in/0/7")}, {Key: event.HeaderError, Value: []byte("boom")},
		{Key: event.HeaderPipeline, Value: []byte("p")}, {Key: event.HeaderRoute, Value: []byte("r")}, {Key: "x", Value: []byte("y")}}}
	if err := e.RedriveEvent(context.Background(), "p", "r", dl); err != nil {
		t.Fatal(err)
	}
	got := sink.events()
	if len(got) != 1 || string(got[0].Key) != "o-7" {
		t.Fatalf("sent %+v", got)
	}
	if _, ok := got[0].Header(event.HeaderError); ok {
		t.Fatal("provenance header kept")
	}
	if id, _ := got[0].Header(event.HeaderEventID); string(id) != "in/0/7" {
		t.Fatalf("bridge-event-id %q", id)
	}
	if err := e.RedriveEvent(context.Background(), "p", "nope", dl); !errors.Is(err, ErrBadTarget) {
		t.Fatalf("unknown route: %v", err)
	}
}
