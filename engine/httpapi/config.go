package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/engine/reload"
	"github.com/bridgeio/bridge/pipelines/versions"
)

// Config is what the API needs to reload the config (issue 17,
// docs/reload.md): reload.Reloader.
type Config interface {
	Reload(ctx context.Context, req reload.Request) (reload.Result, error)
	Versions() ([]versions.Version, []versions.Record, error)
	Config(v int64) ([]byte, error)
	Shadows() []engine.ShadowReport
	Live() int64
}

func (s *Server) registerConfig() {
	s.handle("POST /v1/config", RoleAdmin, s.postConfig)
	s.handle("POST /v1/config/promote", RoleAdmin, s.promoteConfig)
	s.handle("POST /v1/config/rollback", RoleAdmin, s.rollbackConfig)
	s.handle("GET /v1/config/versions", RoleConsumer, s.configVersions)
	// A stored config may hold connection secrets: admin only.
	s.handle("GET /v1/config/versions/{version}", RoleAdmin, s.configVersion)
	s.handle("GET /v1/config/shadow", RoleConsumer, s.configShadow)
}

// postConfig takes a config YAML body (empty: re-read the file the
// process started with) and the query flags dry_run, force, shadow,
// canary=PCT, file=NAME (the name errors carry) and source.
func (s *Server) postConfig(w http.ResponseWriter, r *http.Request) {
	if s.opts.Config == nil {
		writeError(w, http.StatusNotFound, "not_found", "config reload is not available in this process")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestSize))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "read body: "+err.Error())
		return
	}
	q := r.URL.Query()
	req := reload.Request{Name: q.Get("file"), Source: q.Get("source"), Force: flagSet(q.Get("force")),
		DryRun: flagSet(q.Get("dry_run")), Shadow: flagSet(q.Get("shadow"))}
	if len(body) > 0 {
		req.YAML = body
	}
	if c := q.Get("canary"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "bad_request", "canary: give a percentage 1..100, not "+strconv.Quote(c))
			return
		}
		req.Canary = n
	}
	s.runReload(w, r, req)
}

func (s *Server) promoteConfig(w http.ResponseWriter, r *http.Request) {
	s.runReload(w, r, reload.Request{Promote: true, Source: r.URL.Query().Get("source"), Force: flagSet(r.URL.Query().Get("force"))})
}

func (s *Server) rollbackConfig(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.runReload(w, r, reload.Request{Rollback: true, Source: q.Get("source"), Force: flagSet(q.Get("force")), DryRun: flagSet(q.Get("dry_run"))})
}

func (s *Server) runReload(w http.ResponseWriter, r *http.Request, req reload.Request) {
	if s.opts.Config == nil {
		writeError(w, http.StatusNotFound, "not_found", "config reload is not available in this process")
		return
	}
	if req.Source == "" {
		req.Source = "api"
	}
	res, err := s.opts.Config.Reload(r.Context(), req)
	var inv *reload.InvalidError
	var ref *reload.RefusedError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.As(err, &inv):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": inv.Errors})
	case errors.As(err, &ref):
		writeJSON(w, http.StatusConflict, map[string]any{"error": map[string]string{"code": "refused", "message": err.Error()},
			"problems": ref.Problems, "diff": ref.Diff})
	case errors.Is(err, reload.ErrNoPending):
		writeError(w, http.StatusConflict, "no_pending", err.Error())
	case errors.Is(err, engine.ErrReloadTimedOut):
		// Applied, but some swaps wait for their batches: the result with
		// the error beside it.
		writeJSON(w, http.StatusAccepted, struct {
			reload.Result
			Error map[string]string `json:"error"`
		}{res, map[string]string{"code": "pending", "message": err.Error()}})
	case errors.Is(err, engine.ErrNotRunning):
		writeError(w, http.StatusServiceUnavailable, "not_running", err.Error())
	case errors.Is(err, engine.ErrReloadShared):
		writeError(w, http.StatusConflict, "refused", err.Error())
	default:
		s.log.Error("reload failed", "err", err)
		writeError(w, http.StatusInternalServerError, "reload_failed", err.Error())
	}
}

func (s *Server) configVersions(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Config == nil {
		writeError(w, http.StatusNotFound, "not_found", "config versions are not available in this process")
		return
	}
	vs, journal, err := s.opts.Config.Versions()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "versions", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"live": s.opts.Config.Live(), "versions": vs, "journal": journal})
}

func (s *Server) configVersion(w http.ResponseWriter, r *http.Request) {
	if s.opts.Config == nil {
		writeError(w, http.StatusNotFound, "not_found", "config versions are not available in this process")
		return
	}
	v, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
	if err != nil || v <= 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "version: a positive number")
		return
	}
	data, err := s.opts.Config.Config(v)
	if errors.Is(err, versions.ErrNoVersion) {
		writeError(w, http.StatusNotFound, "unknown_version", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "versions", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(data)
}

func (s *Server) configShadow(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Config == nil {
		writeError(w, http.StatusNotFound, "not_found", "config reload is not available in this process")
		return
	}
	sh := s.opts.Config.Shadows()
	if sh == nil {
		sh = []engine.ShadowReport{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"live": s.opts.Config.Live(), "shadows": sh})
}

func flagSet(v string) bool { return v == "1" || v == "true" || v == "yes" }
