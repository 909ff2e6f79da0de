package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// dlqFixture is an engine with pipeline p (routes "a" and "b", dead letters
// to topic dlq) whose dead-letter topic holds n entries: even i from route
// a, odd from route b, as deadLetterEvent writes them.
func dlqFixture(t *testing.T, n int) (*Engine, *memBackbone, map[string]*recSink) {
	t.Helper()
	b := newMemBackbone(map[string]int{"in": 1, "dlq": 2, "other": 1})
	sinks := map[string]*recSink{"a": {}, "b": {}}
	var routes []*route
	for _, name := range []string{"a", "b"} {
		r := testRoute(name, sinks[name])
		r.deadLetter = &topicSink{backbone: b, topic: "dlq"}
		routes = append(routes, r)
	}
	e := newEngine(b, Options{Logger: slog.New(slog.DiscardHandler)})
	if err := e.addPipeline("p", "in", routes); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		orig := event.Event{Topic: "in", Offset: int64(i), Key: []byte("k" + strconv.Itoa(i)),
			Value:   []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Headers: []event.Header{{Key: event.HeaderTraceParent, Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}}
		dl := deadLetterEvent(&orig, routes[i%2], event.Permanent(errors.New("rejected")), 1)
		dl.Headers = append(dl.Headers, event.Header{Key: telemetry.HeaderTraceID, Value: []byte("0af7651916cd43dd8448eb211c80319c")})
		if _, err := b.Append(context.Background(), "dlq", []event.Event{dl}); err != nil {
			t.Fatal(err)
		}
	}
	return e, b, sinks
}

func compileBool(t *testing.T, src string) *rules.Program {
	t.Helper()
	return mustCompile(t, src, rules.Bool)
}

func TestDeadLettersList(t *testing.T) {
	e, _, _ := dlqFixture(t, 10)
	d, err := OpenDeadLetters(e, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, tc := range []struct {
		name     string
		pipeline string
		filter   string
		limit    int
		want     int
	}{
		{"all", "", "", 0, 10},
		{"by pipeline", "p", "", 0, 10},
		{"other pipeline", "nope", "", 0, 0},
		{"filter on provenance", "", `headers["bridge-route"] == "a"`, 0, 5},
		{"filter on body", "", `body.n >= 7`, 0, 3},
		{"limit", "", "", 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var filter *rules.Program
			if tc.filter != "" {
				filter = compileBool(t, tc.filter)
			}
			got, err := d.List(tc.pipeline, filter, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("%d dead letters, want %d", len(got), tc.want)
			}
			for _, dl := range got {
				if dl.Pipeline != "p" || dl.ErrorClass != "permanent" || dl.Attempts != 1 || dl.EventID == "" ||
					dl.TraceID != "0af7651916cd43dd8448eb211c80319c" || dl.Error != "rejected" {
					t.Fatalf("dead letter %+v lacks provenance", dl)
				}
			}
		})
	}
	all, _ := d.List("", nil, 0)
	one, err := d.Get(all[3].ID)
	if err != nil || one.EventID != all[3].EventID || string(one.Event.Value) != string(all[3].Event.Value) {
		t.Fatalf("Get(%s) = %+v, %v", all[3].ID, one, err)
	}
	for _, bad := range []string{"in/0/0", "dlq/0/999", "dlq", "dlq/x/1", ""} {
		if _, err := d.Get(bad); !errors.Is(err, ErrUnknownDeadLetter) {
			t.Errorf("Get(%q) = %v, want ErrUnknownDeadLetter", bad, err)
		}
	}
}

// TestDeadLettersRedriveOnce: a redrive sends each selected dead letter to
// its own route's target without provenance headers and with its original
// event id; a second redrive, also after reopening the ledger, sends
// nothing.
func TestDeadLettersRedriveOnce(t *testing.T) {
	e, b, sinks := dlqFixture(t, 6)
	dir := t.TempDir()
	d, err := OpenDeadLetters(e, dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Redrive(context.Background(), RedriveRequest{Filter: compileBool(t, `headers["bridge-route"] == "a"`), PerSecond: 1000})
	if err != nil || res.Redriven != 3 || res.Failed != 0 {
		t.Fatalf("redrive = %+v, %v; want 3 redriven", res, err)
	}
	if got := sinks["a"].events(); len(got) != 3 || len(sinks["b"].events()) != 0 {
		t.Fatalf("route a got %d, route b %d; want 3 and 0", len(got), len(sinks["b"].events()))
	}
	for _, ev := range sinks["a"].events() {
		for _, h := range []string{event.HeaderError, event.HeaderErrorClass, event.HeaderRoute, event.HeaderPipeline, telemetry.HeaderTraceID} {
			if _, ok := ev.Header(h); ok {
				t.Fatalf("redriven event keeps provenance header %s", h)
			}
		}
		if id, _ := ev.Header(event.HeaderEventID); string(id) != "in/0/"+string(ev.Key[1:]) {
			t.Fatalf("redriven event id %q, want the original in/0/%s", id, ev.Key[1:])
		}
		if _, ok := ev.Header(event.HeaderTraceParent); !ok {
			t.Fatal("redriven event lost its trace context")
		}
	}
	again, err := d.Redrive(context.Background(), RedriveRequest{PerSecond: 1000})
	if err != nil || again.Redriven != 3 || again.Skipped != 3 {
		t.Fatalf("second redrive = %+v, %v; want 3 new (route b) and 3 skipped", again, err)
	}
	d.Close()
	d2, err := OpenDeadLetters(e, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	third, err := d2.Redrive(context.Background(), RedriveRequest{To: "topic:other", PerSecond: 1000})
	if err != nil || third.Redriven != 0 || third.Skipped != 6 {
		t.Fatalf("redrive after reopen = %+v, %v; want all 6 skipped", third, err)
	}
	if n := len(b.events("other")); n != 0 {
		t.Fatalf("%d events reached topic other", n)
	}
	list, _ := d2.List("", nil, 0)
	for _, dl := range list {
		if !dl.Redriven {
			t.Fatalf("%s not marked redriven", dl.ID)
		}
	}
}

func TestDeadLettersRedriveTargets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		to      string
		wantErr error
		check   func(t *testing.T, b *memBackbone, sinks map[string]*recSink)
	}{
		{"topic", "topic:other", nil, func(t *testing.T, b *memBackbone, _ map[string]*recSink) {
			if n := len(b.events("other")); n != 4 {
				t.Fatalf("topic other has %d events, want 4", n)
			}
		}},
		{"another route", "route:p/b", nil, func(t *testing.T, _ *memBackbone, sinks map[string]*recSink) {
			if len(sinks["b"].events()) != 4 || len(sinks["a"].events()) != 0 {
				t.Fatal("not every dead letter went to route b")
			}
		}},
		{"unknown topic", "topic:nope", ErrBadTarget, nil},
		{"unknown route", "route:p/zzz", ErrBadTarget, nil},
		{"bad syntax", "queue:x", ErrBadTarget, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, b, sinks := dlqFixture(t, 4)
			d, err := OpenDeadLetters(e, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			res, err := d.Redrive(context.Background(), RedriveRequest{To: tc.to, PerSecond: 1000})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || res.Redriven != 4 {
				t.Fatalf("redrive = %+v, %v", res, err)
			}
			tc.check(t, b, sinks)
		})
	}
}

// TestDeadLettersRedriveRate: 10 dead letters at 5/s take at least 1.8s
// (the first goes at once), and Max bounds the count.
func TestDeadLettersRedriveRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _, _ := dlqFixture(t, 12)
		d, err := OpenDeadLetters(e, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		start := time.Now()
		res, err := d.Redrive(context.Background(), RedriveRequest{PerSecond: 5, Max: 10})
		if err != nil || res.Redriven != 10 {
			t.Fatalf("redrive = %+v, %v", res, err)
		}
		if took := time.Since(start); took < 1800*time.Millisecond || took > 2200*time.Millisecond {
			t.Fatalf("10 at 5/s took %v, want about 1.8s", took)
		}
	})
}
