package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/rules"
)

// DeadLetters is what the API needs to browse and redrive dead letters
// (*engine.DeadLetters implements it).
type DeadLetters interface {
	List(pipeline string, filter *rules.Program, limit int) ([]engine.DeadLetter, error)
	Get(id string) (engine.DeadLetter, error)
	Redrive(ctx context.Context, req engine.RedriveRequest) (engine.RedriveResult, error)
}

// deadLetterOut is a dead letter as the API returns it: its provenance and
// the stored event (key, headers, value) as GET /v1/topics/.../events shows events.
type deadLetterOut struct {
	engine.DeadLetter
	Event outEvent `json:"event"`
}

func toDeadLetterOut(dl engine.DeadLetter) deadLetterOut {
	return deadLetterOut{DeadLetter: dl, Event: toOut(&dl.Event)}
}

// maxDeadLetterList bounds one listing.
const maxDeadLetterList = 10000

// compileFilter compiles an optional rules expression over dead letters.
func compileFilter(src string) (*rules.Program, error) {
	if src == "" {
		return nil, nil
	}
	return rules.Compile(src, rules.Bool)
}

// listDeadLetters: GET /v1/deadletters?pipeline=&filter=EXPR&limit=N (default 100).
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	if s.opts.DeadLetters == nil {
		writeJSON(w, http.StatusOK, map[string]any{"deadletters": []deadLetterOut{}})
		return
	}
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100)
	if err != nil || limit < 1 || limit > maxDeadLetterList {
		writeError(w, http.StatusBadRequest, "bad_limit", "limit must be 1.."+strconv.Itoa(maxDeadLetterList))
		return
	}
	filter, err := compileFilter(q.Get("filter"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	dls, err := s.opts.DeadLetters.List(q.Get("pipeline"), filter, int(limit))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read_failed", err.Error())
		return
	}
	out := make([]deadLetterOut, len(dls))
	for i, dl := range dls {
		out[i] = toDeadLetterOut(dl)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deadletters": out})
}

// getDeadLetter: GET /v1/deadletters/{id...} with id TOPIC/PARTITION/OFFSET.
func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.opts.DeadLetters == nil {
		writeError(w, http.StatusNotFound, "unknown_dead_letter", "no such dead letter: "+id)
		return
	}
	dl, err := s.opts.DeadLetters.Get(id)
	if err != nil {
		if errors.Is(err, engine.ErrUnknownDeadLetter) {
			writeError(w, http.StatusNotFound, "unknown_dead_letter", err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, "read_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, toDeadLetterOut(dl))
}

// deadLetterRedriveRequest is {"pipeline","filter","ids","to","rate","max"}, all optional.
type deadLetterRedriveRequest struct {
	Pipeline string   `json:"pipeline"`
	Filter   string   `json:"filter"`
	IDs      []string `json:"ids"`
	To       string   `json:"to"`
	Rate     int      `json:"rate"` // per second; default 100
	Max      int      `json:"max"`
}

// redriveDeadLetters: POST /v1/deadletters/redrive. It answers when the
// redrive is done (or the client went away: what was redriven is kept).
func (s *Server) redriveDeadLetters(w http.ResponseWriter, r *http.Request) {
	if s.opts.DeadLetters == nil {
		writeError(w, http.StatusNotFound, "no_dead_letters", "no pipeline has a dead-letter topic")
		return
	}
	var req deadLetterRedriveRequest
	if !readSmallJSON(w, r, &req, "redrive body", true) {
		return
	}
	if req.Rate < 0 || req.Max < 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "rate and max must not be negative")
		return
	}
	filter, err := compileFilter(req.Filter)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	res, err := s.opts.DeadLetters.Redrive(r.Context(), engine.RedriveRequest{Pipeline: req.Pipeline, Filter: filter,
		IDs: req.IDs, To: req.To, PerSecond: req.Rate, Max: req.Max})
	if err != nil {
		if errors.Is(err, engine.ErrBadTarget) {
			writeError(w, http.StatusBadRequest, "bad_target", err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, "redrive_failed", err.Error())
		return
	}
	s.log.Info("dead letters redriven", "pipeline", req.Pipeline, "to", req.To, "redriven", res.Redriven,
		"skipped", res.Skipped, "failed", res.Failed)
	writeJSON(w, http.StatusOK, res)
}
