package httpapi

import (
	"errors"
	"net/http"

	"github.com/bridgeio/bridge/engine"
)

// RouteReplays is what the API needs to run route replays (engine.Engine):
// re-send a range of the log, or the events a dead-letter queue names,
// through one route (docs/queues.md).
type RouteReplays interface {
	StartRouteReplay(pipeline string, req engine.RouteReplay) (engine.ReplayStatus, error)
	RouteReplays() []engine.ReplayStatus
	RouteReplayStatus(id string) (engine.ReplayStatus, error)
	CancelRouteReplay(id string) (engine.ReplayStatus, error)
}

// DefaultReplayRate is a replay's pace when the request gives none: a
// rebuilt queue fills at a rate its consumers and the disk can take beside
// the live traffic. "per_second": 0 asks for no limit.
const DefaultReplayRate = 1000

// routeReplayRequest is the body of POST /v1/pipelines/{name}/replays:
// the route, where to start (from | offset | timestamp, as the checkpoint
// replay takes them), optionally where to stop (to: {offset} | {timestamp},
// exclusive; default the end of the log at the start), the pace, or instead
// of a range a dead-letter queue whose messages name their events.
type routeReplayRequest struct {
	Route string `json:"route"`
	replayRequest
	To              *replayRequest `json:"to"`
	PerSecond       *int           `json:"per_second"`
	DeadLetterQueue string         `json:"dead_letter_queue"`
}

func (s *Server) registerRouteReplays() {
	s.handle("POST /v1/pipelines/{name}/replays", RoleAdmin, s.startRouteReplay)
	s.handle("GET /v1/replays", RoleConsumer, s.listRouteReplays)
	s.handle("GET /v1/replays/{id}", RoleConsumer, s.getRouteReplay)
	s.handle("DELETE /v1/replays/{id}", RoleAdmin, s.cancelRouteReplay)
}

func (s *Server) startRouteReplay(w http.ResponseWriter, r *http.Request) {
	if s.opts.Replays == nil {
		writeError(w, http.StatusNotFound, "unknown_pipeline", "no such pipeline: "+r.PathValue("name"))
		return
	}
	var req routeReplayRequest
	if !readSmallJSON(w, r, &req, "replay body", false) {
		return
	}
	rr, err := req.parse()
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	st, err := s.opts.Replays.StartRouteReplay(r.PathValue("name"), rr)
	if err != nil {
		writeReplayError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/replays/"+st.ID)
	writeJSON(w, http.StatusAccepted, st)
}

func (req *routeReplayRequest) parse() (engine.RouteReplay, error) {
	rr := engine.RouteReplay{Route: req.Route, PerSecond: DefaultReplayRate, DeadLetterQueue: req.DeadLetterQueue}
	if req.Route == "" {
		return rr, errors.New(`"route" is required: the route to replay through`)
	}
	if req.PerSecond != nil {
		rr.PerSecond = *req.PerSecond
	}
	rangeGiven := req.From != "" || req.Offset != nil || req.Timestamp != "" || req.To != nil
	if req.DeadLetterQueue != "" {
		if rangeGiven {
			return rr, errors.New(`give "dead_letter_queue" or a range, not both`)
		}
		return rr, nil
	}
	var err error
	if rr.From, err = req.replayRequest.parse(); err != nil {
		return rr, err
	}
	if req.To != nil {
		if req.To.From != "" {
			return rr, errors.New(`"to" is {"offset": ...} or {"timestamp": ...}; omit it for the end of the log`)
		}
		to, err := req.To.parse()
		if err != nil {
			return rr, errors.New("to: " + err.Error())
		}
		rr.To = &to
	}
	return rr, nil
}

func (s *Server) listRouteReplays(w http.ResponseWriter, _ *http.Request) {
	out := []engine.ReplayStatus{}
	if s.opts.Replays != nil {
		out = append(out, s.opts.Replays.RouteReplays()...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"replays": out})
}

func (s *Server) getRouteReplay(w http.ResponseWriter, r *http.Request) {
	s.replayByID(w, r, func(id string) (engine.ReplayStatus, error) { return s.opts.Replays.RouteReplayStatus(id) })
}

func (s *Server) cancelRouteReplay(w http.ResponseWriter, r *http.Request) {
	s.replayByID(w, r, func(id string) (engine.ReplayStatus, error) { return s.opts.Replays.CancelRouteReplay(id) })
}

func (s *Server) replayByID(w http.ResponseWriter, r *http.Request, f func(string) (engine.ReplayStatus, error)) {
	if s.opts.Replays == nil {
		writeError(w, http.StatusNotFound, "unknown_replay", "no such replay: "+r.PathValue("id"))
		return
	}
	st, err := f(r.PathValue("id"))
	if err != nil {
		writeReplayError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// writeReplayError maps the engine's replay errors to statuses.
func writeReplayError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, engine.ErrUnknownPipeline):
		writeError(w, http.StatusNotFound, "unknown_pipeline", err.Error())
	case errors.Is(err, engine.ErrUnknownRoute):
		writeError(w, http.StatusNotFound, "unknown_route", err.Error())
	case errors.Is(err, engine.ErrUnknownReplay):
		writeError(w, http.StatusNotFound, "unknown_replay", err.Error())
	case errors.Is(err, engine.ErrUnknownQueue):
		writeError(w, http.StatusNotFound, "unknown_queue", err.Error())
	case errors.Is(err, engine.ErrBadReplay):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, engine.ErrNotRunning):
		writeError(w, http.StatusServiceUnavailable, "not_running", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "replay_failed", err.Error())
	}
}
