package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/engine/reload"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/pipelines/versions"
)

// fakeConfig records reload requests and answers with err.
type fakeConfig struct {
	got []reload.Request
	err error
}

func (f *fakeConfig) Reload(_ context.Context, req reload.Request) (reload.Result, error) {
	f.got = append(f.got, req)
	d := &pipelines.PlanDiff{QueuesAdded: []string{"q"}}
	return reload.Result{Outcome: "applied", Version: 2, Live: 2, Diff: d, Plan: d.String()}, f.err
}

func (f *fakeConfig) Versions() ([]versions.Version, []versions.Record, error) {
	return []versions.Version{{Version: 1, Live: true}}, []versions.Record{{Version: 1, Action: "start", Live: 1}}, nil
}

func (f *fakeConfig) Config(v int64) ([]byte, error) {
	if v != 1 {
		return nil, versions.ErrNoVersion
	}
	return []byte("pipelines: []\n"), nil
}

func (f *fakeConfig) Shadows() []engine.ShadowReport { return nil }
func (f *fakeConfig) Live() int64                    { return 1 }

func configRequest(t *testing.T, s *Server, method, path, token, body string) (int, map[string]any, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	raw, _ := io.ReadAll(w.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return w.Code, out, string(raw)
}

func TestConfigAPI(t *testing.T) {
	fc := &fakeConfig{}
	s := New(Options{Config: fc, Tokens: map[string]Role{"adm": RoleAdmin, "con": RoleConsumer}})

	if code, _, _ := configRequest(t, s, "POST", "/v1/config", "con", "x: 1"); code != http.StatusForbidden {
		t.Fatalf("consumer reload: %d, want 403", code)
	}
	code, out, _ := configRequest(t, s, "POST", "/v1/config?dry_run=1&force=true&canary=25&file=new.yaml&source=cli", "adm", "pipelines: []\n")
	if code != 200 || out["outcome"] != "applied" {
		t.Fatalf("reload: %d %v", code, out)
	}
	got := fc.got[0]
	if string(got.YAML) != "pipelines: []\n" || !got.DryRun || !got.Force || got.Canary != 25 || got.Name != "new.yaml" || got.Source != "cli" || got.Shadow {
		t.Fatalf("request %+v", got)
	}
	// No body: the process re-reads its file; the source defaults to api.
	configRequest(t, s, "POST", "/v1/config", "adm", "")
	if got := fc.got[1]; got.YAML != nil || got.Source != "api" {
		t.Fatalf("empty body: %+v", got)
	}
	if code, _, _ := configRequest(t, s, "POST", "/v1/config?canary=0", "adm", "x"); code != 400 {
		t.Fatalf("canary=0: %d, want 400", code)
	}

	fc.err = &reload.InvalidError{Errors: []string{"a.yaml:1:1: x: bad", "a.yaml:2:3: y: bad"}}
	code, out, _ = configRequest(t, s, "POST", "/v1/config", "adm", "x")
	if errs, _ := out["errors"].([]any); code != 422 || len(errs) != 2 || errs[1] != "a.yaml:2:3: y: bad" {
		t.Fatalf("invalid: %d %v", code, out)
	}
	fc.err = &reload.RefusedError{Problems: []string{"queue jobs holds 3 messages"}, Diff: &pipelines.PlanDiff{QueuesRemoved: []string{"jobs"}}}
	code, out, _ = configRequest(t, s, "POST", "/v1/config", "adm", "x")
	if code != 409 || out["problems"] == nil || out["diff"] == nil {
		t.Fatalf("refused: %d %v", code, out)
	}
	fc.err = reload.ErrNoPending
	if code, _, _ := configRequest(t, s, "POST", "/v1/config/promote", "adm", ""); code != 409 || !fc.got[len(fc.got)-1].Promote {
		t.Fatalf("promote without pending: %d", code)
	}
	fc.err = nil
	if code, _, _ := configRequest(t, s, "POST", "/v1/config/rollback?dry_run=1", "adm", ""); code != 200 || !fc.got[len(fc.got)-1].Rollback || !fc.got[len(fc.got)-1].DryRun {
		t.Fatalf("rollback: %d", code)
	}

	if code, out, _ := configRequest(t, s, "GET", "/v1/config/versions", "con", ""); code != 200 || out["live"] != float64(1) {
		t.Fatalf("versions: %d %v", code, out)
	}
	if code, _, _ := configRequest(t, s, "GET", "/v1/config/versions/1", "con", ""); code != 403 {
		t.Fatalf("a consumer read a stored config (it may hold secrets): %d", code)
	}
	if code, _, body := configRequest(t, s, "GET", "/v1/config/versions/1", "adm", ""); code != 200 || body != "pipelines: []\n" {
		t.Fatalf("show 1: %d %q", code, body)
	}
	if code, _, _ := configRequest(t, s, "GET", "/v1/config/versions/7", "adm", ""); code != 404 {
		t.Fatalf("show 7: %d", code)
	}
	if code, out, _ := configRequest(t, s, "GET", "/v1/config/shadow", "con", ""); code != 200 || out["shadows"] == nil {
		t.Fatalf("shadow: %d %v", code, out)
	}
	if code, _, _ := configRequest(t, New(Options{}), "POST", "/v1/config", "", "x"); code != 404 {
		t.Fatalf("without a reloader: %d", code)
	}
}
