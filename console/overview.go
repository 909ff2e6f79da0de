package console

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/bridgeio/bridge/console/views"
)

// overviewData builds the overview from a snapshot. withTrends reads the
// minute history for the pipelines' lag sparklines (the page does; the
// per-tick fragments do not need them).
func (s *Server) overviewData(snap *Snapshot, withTrends bool) views.Overview {
	o := views.Overview{Sampled: snap.At, Topology: s.topology(snap)}
	level := func(bad bool, warn bool) string {
		switch {
		case bad:
			return "bad"
		case warn:
			return "warn"
		}
		return ""
	}
	o.Cards = []views.Stat{
		{ID: "card-in", Label: "In", Value: views.Rate(snap.InRate), Sub: "events appended to topics"},
		{ID: "card-out", Label: "Out", Value: views.Rate(snap.OutRate), Sub: "events acknowledged by sinks"},
		{ID: "card-lag", Label: "Lag", Value: views.Num(snap.Lag), Sub: "events; oldest " + views.Age(seconds(snap.MaxLagSeconds)),
			Level: level(false, snap.MaxLagSeconds > 60)},
		{ID: "card-errors", Label: "Errors", Value: views.Rate(snap.ErrorRate), Sub: views.Num(snap.Errors) + " since start",
			Level: level(snap.ErrorRate > 0, snap.Errors > 0)},
		{ID: "card-dlq", Label: "Dead letters", Value: views.Num(snap.DeadLetters), Sub: "in DLQs and dead-letter topics",
			Level: level(false, snap.DeadLetters > 0)},
		{ID: "card-size", Label: "Objects", Value: views.Num(len(snap.Topics)) + " / " + views.Num(len(snap.Queues)),
			Sub: "topics / queues; " + views.Num(len(snap.Pipelines)) + " pipelines"},
	}
	o.TopTopics = topTopics(snap.Topics, 10)
	o.TopQueues = topQueues(snap.Queues, 10)
	o.Pipelines = s.pipelineRows(snap, withTrends)
	return o
}

func seconds(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }

// pipelineRows summarises every pipeline of a snapshot.
func (s *Server) pipelineRows(snap *Snapshot, withTrends bool) []views.PipelineRow {
	rows := make([]views.PipelineRow, 0, len(snap.Pipelines))
	since := snap.At.Add(-time.Hour)
	for _, p := range snap.Pipelines {
		row := views.PipelineRow{Name: p.Name, Topic: p.Topic, State: p.State, Error: p.Error, Routes: len(p.Routes),
			LagSeconds: snap.LagSeconds[p.Name]}
		for _, r := range p.Routes {
			row.Lag += r.Lag
			row.Errors += r.RuleErrors + r.SendErrors
			row.DeadLettered += r.DeadLettered
			row.OutRate += snap.RouteSent[p.Name+"/"+r.Name]
		}
		if withTrends {
			if pts, err := s.history.Series("pipeline/"+p.Name+"/lag", since); err == nil {
				for _, pt := range pts {
					row.Trend = append(row.Trend, pt.Value)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, views.OverviewPage(s.page(r, "Overview", "overview"), s.overviewData(s.freshSnapshot(), true)))
}

// overviewStream is the overview's SSE stream: "cards", "topology" and
// "rates" once per tick, rendered once for all tabs (Run, publish).
func (s *Server) overviewStream(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.streamContext(r)
	defer cancel()
	if err := s.hub.ServeContext(ctx, w, r, s.opts.Keepalive); err != nil && ctx.Err() == nil {
		s.log.Debug("overview stream ended", "err", err)
	}
}

func (s *Server) liveJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.live.chart())
}

// historyJSON: GET /console/api/history.json?series=in,out&hours=24 gives
// the minute points of each series (null for gaps).
func (s *Server) historyJSON(w http.ResponseWriter, r *http.Request) {
	hours := 24
	if v := r.URL.Query().Get("hours"); v != "" {
		if n, err := parsePositive(v, 24); err == nil {
			hours = n
		}
	}
	since := s.opts.Now().Add(-time.Duration(hours) * time.Hour)
	var out chartData
	for i, name := range strings.Split(r.URL.Query().Get("series"), ",") {
		if name == "" || i >= 8 {
			continue
		}
		pts, err := s.history.Series(name, since)
		if err != nil {
			pts = nil
		}
		if out.T == nil {
			out.T = make([]int64, len(pts))
			for j, p := range pts {
				out.T[j] = p.Minute.Unix()
			}
		}
		vals := make([]*float64, len(out.T))
		for j := range vals {
			if j < len(pts) && !math.IsNaN(pts[j].Value) {
				v := round2(pts[j].Value)
				vals[j] = &v
			}
		}
		out.Series = append(out.Series, chartSeries{Name: name, Values: vals})
	}
	if out.T == nil {
		out.T = []int64{}
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
