package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

type fakeDeadLetters struct {
	mu       sync.Mutex
	lastList struct {
		pipeline string
		filtered bool
		limit    int
	}
	redrives []engine.RedriveRequest
}

func (f *fakeDeadLetters) List(pipeline string, filter *rules.Program, limit int) ([]engine.DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastList.pipeline, f.lastList.filtered, f.lastList.limit = pipeline, filter != nil, limit
	return []engine.DeadLetter{{ID: "dlq/0/0", Pipeline: "p", Route: "r", ErrorClass: "permanent",
		Event: event.Event{Value: []byte(`{"n":1}`), Headers: []event.Header{{Key: "bridge-route", Value: []byte("r")}}}}}, nil
}

func (f *fakeDeadLetters) Get(id string) (engine.DeadLetter, error) {
	if id != "dlq/0/0" {
		return engine.DeadLetter{}, fmt.Errorf("%w: %s", engine.ErrUnknownDeadLetter, id)
	}
	return engine.DeadLetter{ID: id, Pipeline: "p"}, nil
}

func (f *fakeDeadLetters) Redrive(_ context.Context, req engine.RedriveRequest) (engine.RedriveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.To == "bogus" {
		return engine.RedriveResult{}, engine.ErrBadTarget
	}
	f.redrives = append(f.redrives, req)
	return engine.RedriveResult{Redriven: 1}, nil
}

func TestDeadLetterEndpoints(t *testing.T) {
	l := openLog(t, commitlog.FsyncNever)
	dls := &fakeDeadLetters{}
	srv := httptest.NewServer(New(Options{Backbone: engine.Embedded(l), DeadLetters: dls, Logger: slog.New(slog.DiscardHandler),
		Tokens: map[string]Role{"admin": RoleAdmin, "reader": RoleConsumer}}))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
		contains                        string
	}{
		{"list", "GET", "/v1/deadletters?pipeline=p&filter=" + `headers%5B%22bridge-route%22%5D%20%3D%3D%20%22r%22` + "&limit=5", "reader", "", 200, `"value":{"n":1}`},
		{"list bad filter", "GET", "/v1/deadletters?filter=%28%28", "reader", "", 400, "bad_filter"},
		{"list bad limit", "GET", "/v1/deadletters?limit=0", "reader", "", 400, "bad_limit"},
		{"show", "GET", "/v1/deadletters/dlq/0/0", "reader", "", 200, `"id":"dlq/0/0"`},
		{"show unknown", "GET", "/v1/deadletters/dlq/0/9", "reader", "", 404, "unknown_dead_letter"},
		{"redrive needs admin", "POST", "/v1/deadletters/redrive", "reader", `{}`, 403, "forbidden"},
		{"redrive", "POST", "/v1/deadletters/redrive", "admin", `{"pipeline":"p","filter":"body.n == 1","to":"topic:x","rate":5,"max":2}`, 200, `"redriven":1`},
		{"redrive bad target", "POST", "/v1/deadletters/redrive", "admin", `{"to":"bogus"}`, 400, "bad_target"},
		{"redrive unknown field", "POST", "/v1/deadletters/redrive", "admin", `{"too":"x"}`, 400, "bad_request"},
		{"redrive negative rate", "POST", "/v1/deadletters/redrive", "admin", `{"rate":-1}`, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, srv.URL+tc.path, tc.token, tc.body)
			if code != tc.want || !strings.Contains(body, tc.contains) {
				t.Fatalf("%s %s = %d %s; want %d containing %s", tc.method, tc.path, code, body, tc.want, tc.contains)
			}
		})
	}
	if dls.lastList.pipeline != "p" || !dls.lastList.filtered || dls.lastList.limit != 5 {
		t.Fatalf("list got %+v", dls.lastList)
	}
	if len(dls.redrives) != 1 {
		t.Fatalf("%d redrives reached the engine, want 1", len(dls.redrives))
	}
	r := dls.redrives[0]
	if r.Pipeline != "p" || r.Filter == nil || r.To != "topic:x" || r.PerSecond != 5 || r.Max != 2 {
		t.Fatalf("redrive request %+v", r)
	}
	var dl map[string]any
	_, body := call(t, "GET", srv.URL+"/v1/deadletters/dlq/0/0", "reader", "")
	if err := json.Unmarshal([]byte(body), &dl); err != nil || dl["pipeline"] != "p" {
		t.Fatalf("show body %s: %v", body, err)
	}
}
