package httpapi

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/engine"
)

// fakeReplays records the replays it is asked for.
type fakeReplays struct {
	mu   sync.Mutex
	reqs []engine.RouteReplay
}

func (f *fakeReplays) StartRouteReplay(pipeline string, req engine.RouteReplay) (engine.ReplayStatus, error) {
	switch {
	case pipeline != "p":
		return engine.ReplayStatus{}, fmt.Errorf("%w: %s", engine.ErrUnknownPipeline, pipeline)
	case req.Route != "queue:jobs":
		return engine.ReplayStatus{}, fmt.Errorf("%w: %s", engine.ErrUnknownRoute, req.Route)
	case req.DeadLetterQueue == "missing":
		return engine.ReplayStatus{}, fmt.Errorf("%w: missing", engine.ErrUnknownQueue)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return engine.ReplayStatus{ID: fmt.Sprint("replay-", len(f.reqs)), Pipeline: pipeline, Route: req.Route, State: "running"}, nil
}

func (f *fakeReplays) RouteReplays() []engine.ReplayStatus {
	return []engine.ReplayStatus{{ID: "replay-1", State: "done"}}
}

func (f *fakeReplays) RouteReplayStatus(id string) (engine.ReplayStatus, error) {
	if id != "replay-1" {
		return engine.ReplayStatus{}, fmt.Errorf("%w: %s", engine.ErrUnknownReplay, id)
	}
	return engine.ReplayStatus{ID: id, State: "running", Read: 5}, nil
}

func (f *fakeReplays) CancelRouteReplay(id string) (engine.ReplayStatus, error) {
	st, err := f.RouteReplayStatus(id)
	st.State = "cancelled"
	return st, err
}

func TestRouteReplayEndpoints(t *testing.T) {
	replays := &fakeReplays{}
	tokens := map[string]Role{"adm": RoleAdmin, "con": RoleConsumer, "pro": RoleProducer}
	srv := httptest.NewServer(New(Options{Replays: replays, Tokens: tokens, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	ts := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, method, path, token, body string
		code                            int
		contains                        string
		want                            *engine.RouteReplay // the request the engine got
	}{
		{"from earliest, default pace", "POST", "/v1/pipelines/p/replays", "adm", `{"route":"queue:jobs","from":"earliest"}`, 202, `"id":"replay-1"`,
			&engine.RouteReplay{Route: "queue:jobs", From: engine.ReplayFrom{Earliest: true}, PerSecond: DefaultReplayRate}},
		{"offsets to offsets, unpaced", "POST", "/v1/pipelines/p/replays", "adm",
			`{"route":"queue:jobs","offset":{"0":5},"to":{"offset":{"0":9}},"per_second":0}`, 202, `"state":"running"`,
			&engine.RouteReplay{Route: "queue:jobs", From: engine.ReplayFrom{Offsets: map[int32]int64{0: 5}},
				To: &engine.ReplayFrom{Offsets: map[int32]int64{0: 9}}}},
		{"times", "POST", "/v1/pipelines/p/replays", "adm",
			`{"route":"queue:jobs","timestamp":"2026-05-01T12:00:00Z","to":{"timestamp":"2026-05-01T13:00:00Z"},"per_second":50}`, 202, `"id"`,
			&engine.RouteReplay{Route: "queue:jobs", From: engine.ReplayFrom{Time: ts}, To: &engine.ReplayFrom{Time: ts.Add(time.Hour)}, PerSecond: 50}},
		{"dead letters", "POST", "/v1/pipelines/p/replays", "adm", `{"route":"queue:jobs","dead_letter_queue":"dlq"}`, 202, `"id"`,
			&engine.RouteReplay{Route: "queue:jobs", DeadLetterQueue: "dlq", PerSecond: DefaultReplayRate}},
		{"dead letters and a range", "POST", "/v1/pipelines/p/replays", "adm", `{"route":"queue:jobs","from":"earliest","dead_letter_queue":"dlq"}`, 400, "not both", nil},
		{"no route", "POST", "/v1/pipelines/p/replays", "adm", `{"from":"earliest"}`, 400, "is required", nil},
		{"to latest", "POST", "/v1/pipelines/p/replays", "adm", `{"route":"queue:jobs","from":"earliest","to":{"from":"latest"}}`, 400, "omit it", nil},
		{"unknown field", "POST", "/v1/pipelines/p/replays", "adm", `{"route":"queue:jobs","form":"earliest"}`, 400, "bad_request", nil},
		{"unknown pipeline", "POST", "/v1/pipelines/x/replays", "adm", `{"route":"queue:jobs","from":"earliest"}`, 404, "unknown_pipeline", nil},
		{"unknown route", "POST", "/v1/pipelines/p/replays", "adm", `{"route":"queue:nope","from":"earliest"}`, 404, "unknown_route", nil},
		{"unknown queue", "POST", "/v1/pipelines/p/replays", "adm", `{"route":"queue:jobs","dead_letter_queue":"missing"}`, 404, "unknown_queue", nil},
		{"producer may not replay", "POST", "/v1/pipelines/p/replays", "pro", `{"route":"queue:jobs","from":"earliest"}`, 403, "forbidden", nil},
		{"list", "GET", "/v1/replays", "con", "", 200, `{"replays":[{"id":"replay-1"`, nil},
		{"status", "GET", "/v1/replays/replay-1", "con", "", 200, `"read":5`, nil},
		{"unknown status", "GET", "/v1/replays/replay-9", "con", "", 404, "unknown_replay", nil},
		{"consumer may not cancel", "DELETE", "/v1/replays/replay-1", "con", "", 403, "forbidden", nil},
		{"cancel", "DELETE", "/v1/replays/replay-1", "adm", "", 200, `"state":"cancelled"`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			replays.mu.Lock()
			before := len(replays.reqs)
			replays.mu.Unlock()
			code, body := call(t, tc.method, srv.URL+tc.path, tc.token, tc.body)
			if code != tc.code || !strings.Contains(body, tc.contains) {
				t.Fatalf("%s %s = %d %s; want %d containing %q", tc.method, tc.path, code, body, tc.code, tc.contains)
			}
			replays.mu.Lock()
			defer replays.mu.Unlock()
			if tc.want == nil {
				if len(replays.reqs) != before {
					t.Fatalf("the engine was asked: %+v", replays.reqs[before:])
				}
				return
			}
			if got := replays.reqs[len(replays.reqs)-1]; !reflect.DeepEqual(got, *tc.want) {
				t.Fatalf("engine got %+v (to %+v)\nwant %+v (to %+v)", got, got.To, *tc.want, tc.want.To)
			}
		})
	}
}
