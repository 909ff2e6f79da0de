package console

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/bridgeio/bridge/console/views"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// keySearchDepth is how many of the newest events of each partition a
// search by key examines.
const keySearchDepth = 10000

// journeyPage: GET /console/journey?id=TOPIC/P/O, or ?topic=T&key=K to
// find the event first.
func (s *Server) journeyPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	j := views.JourneyView{ID: strings.TrimSpace(q.Get("id")), Topic: q.Get("topic"), Key: q.Get("key")}
	for _, t := range s.snapshot().Topics {
		j.Topics = append(j.Topics, t.Name)
	}
	switch {
	case j.ID != "":
		s.trace(&j)
	case j.Topic != "" && q.Has("key"):
		j.Searched = true
		matches, err := s.findByKey(j.Topic, []byte(j.Key))
		if err != nil {
			j.Error = err.Error()
		}
		j.Matches = matches
	}
	s.render(w, r, http.StatusOK, views.JourneyPage(s.page(r, "Journey", "journey"), j))
}

// parseEventID splits TOPIC/PARTITION/OFFSET (a topic may contain '/').
func parseEventID(id string) (string, int32, int64, error) {
	i := strings.LastIndexByte(id, '/')
	if i <= 0 {
		return "", 0, 0, fmt.Errorf("%q is not TOPIC/PARTITION/OFFSET", id)
	}
	j := strings.LastIndexByte(id[:i], '/')
	if j <= 0 {
		return "", 0, 0, fmt.Errorf("%q is not TOPIC/PARTITION/OFFSET", id)
	}
	p, err1 := strconv.ParseInt(id[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(id[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return "", 0, 0, fmt.Errorf("%q is not TOPIC/PARTITION/OFFSET", id)
	}
	return id[:j], int32(p), o, nil
}

func (s *Server) findByKey(topic string, key []byte) ([]views.EventRow, error) {
	parts, err := s.opts.Backbone.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("no such topic: %s", topic)
	}
	var out []views.EventRow
	for p := range int32(parts) {
		start, end, err := s.opts.Backbone.Offsets(topic, p)
		if err != nil {
			return nil, err
		}
		for next := max(start, end-keySearchDepth); next < end; {
			evs, err := s.opts.Backbone.Read(topic, p, next, readChunk, readBytes)
			if err != nil || len(evs) == 0 {
				break
			}
			for i := range evs {
				next = evs[i].Offset + 1
				if bytes.Equal(evs[i].Key, key) {
					out = append(out, s.eventRow(&evs[i]))
				}
			}
		}
	}
	// Newest first across partitions.
	for i, k := 0, len(out)-1; i < k; i, k = i+1, k-1 {
		out[i], out[k] = out[k], out[i]
	}
	return out[:min(len(out), 50)], nil
}

// trace fills a journey for one event id.
func (s *Server) trace(j *views.JourneyView) {
	topic, part, off, err := parseEventID(j.ID)
	if err != nil {
		j.Error = err.Error()
		return
	}
	evs, err := s.opts.Backbone.Read(topic, part, off, 1, readBytes)
	if err != nil || len(evs) == 0 || evs[0].Offset != off {
		j.Error = fmt.Sprintf("no event %s in the backbone (unknown topic, or deleted by retention)", j.ID)
		return
	}
	ev := evs[0]
	j.Found, j.Event, j.Topic = true, s.eventRow(&ev), topic
	j.Source = ev.Source
	if j.Source == "" {
		j.Source = "–"
	}
	j.TraceID = traceID(&ev)
	if j.TraceID != "" && s.opts.Config.TraceURL != "" {
		j.TraceURL = strings.ReplaceAll(s.opts.Config.TraceURL, "{trace_id}", j.TraceID)
	}
	if s.opts.Engine == nil {
		return
	}
	for _, tp := range s.snapshot().Topology {
		if tp.Topic != topic {
			continue
		}
		jp := views.JourneyPipeline{Name: tp.Name}
		decisions, _ := s.opts.Engine.Explain(tp.Name, ev)
		st, _ := s.opts.Engine.Pipeline(tp.Name)
		for i, tr := range tp.Routes {
			var d engine.RouteDecision
			if i < len(decisions) {
				d = decisions[i]
			}
			jp.Routes = append(jp.Routes, s.journeyRoute(tp.Name, tr, d, st, part, off))
		}
		j.Pipelines = append(j.Pipelines, jp)
	}
	j.DeadLetters = s.deadLettersOf(j.ID, &ev)
}

// traceID reads the W3C trace id of an event (traceparent), or the one
// a dead letter carries.
func traceID(ev *event.Event) string {
	if tp, ok := ev.Header(event.HeaderTraceParent); ok {
		parts := strings.Split(string(tp), "-")
		if len(parts) == 4 && len(parts[1]) == 32 {
			return parts[1]
		}
	}
	if id, ok := ev.Header("bridge-trace-id"); ok {
		return string(id)
	}
	return ""
}

func (s *Server) journeyRoute(pipeline string, tr engine.TopologyRoute, d engine.RouteDecision, st engine.PipelineStatus, part int32, off int64) views.JourneyRoute {
	jr := views.JourneyRoute{Name: tr.Name, Target: tr.Target, Position: -1,
		Decision: views.Decision{Route: d.Route, Target: d.Target, Failure: d.Failure, Selected: d.Selected, Key: d.Key}}
	for _, ru := range d.Rules {
		jr.Decision.Rules = append(jr.Decision.Rules, views.RuleResult{Rule: ru.Rule, Source: ru.Source, Result: ru.Result, Error: ru.Error})
	}
	stopped := false
	for _, rs := range st.Routes {
		if rs.Name != tr.Name {
			continue
		}
		for _, c := range rs.Partitions {
			if c.Partition == part {
				jr.Position, stopped = c.Position, c.Stopped
			}
		}
	}
	outcome := ""
	if s.opts.Journey != nil {
		found := s.opts.Journey.Find(pipeline, tr.Name, part, off)
		for _, e := range found.Entries {
			switch e.Kind {
			case engine.JournalBatch:
				text := fmt.Sprintf("handled in batch [%d, %d)", e.From, e.To)
				if d.Selected && outcome == "" {
					text = fmt.Sprintf("acknowledged by %s (batch [%d, %d), %d selected)", e.Target, e.From, e.To, e.Matched)
				}
				jr.Steps = append(jr.Steps, views.JourneyStep{At: e.At, Text: text, Level: "ok"})
			case engine.JournalRetry:
				jr.Steps = append(jr.Steps, views.JourneyStep{At: e.At, Level: "warn",
					Text: fmt.Sprintf("send attempt %d to %s failed (%d events of the batch): %s", e.Attempt, e.Target, e.Matched, e.Error)})
			case engine.JournalDeadLetter, engine.JournalDropped, engine.JournalStopped:
				outcome = e.Kind.String()
				text := fmt.Sprintf("%s after %d attempts: %s", strings.ReplaceAll(outcome, "_", "-")+"ed", e.Attempt, e.Error)
				switch e.Kind {
				case engine.JournalDeadLetter:
					text = fmt.Sprintf("dead-lettered to %s after %d attempts: %s", e.Target, e.Attempt, e.Error)
				case engine.JournalDropped:
					text = fmt.Sprintf("dropped (on_error: drop) after %d attempts: %s", e.Attempt, e.Error)
				case engine.JournalStopped:
					text = fmt.Sprintf("stopped the route (on_error: stop) after %d attempts: %s", e.Attempt, e.Error)
				}
				jr.Steps = append(jr.Steps, views.JourneyStep{At: e.At, Text: text, Level: "bad"})
			}
		}
		jr.JournalGap = len(found.Entries) == 0 && jr.Position > off && (found.OldestKept < 0 || off < found.OldestKept)
	}
	jr.Status, jr.Level = routeStatus(d, outcome, jr.Position, off, stopped)
	return jr
}

// routeStatus sums up a route's handling of the event at off.
func routeStatus(d engine.RouteDecision, outcome string, position, off int64, stopped bool) (string, string) {
	switch {
	case outcome == "dead_letter":
		return "dead-lettered", "bad"
	case outcome == "dropped":
		return "dropped", "bad"
	case outcome == "stopped" || (stopped && position == off):
		return "stopped the route", "bad"
	case position < 0:
		return "not started", "warn"
	case position <= off:
		return fmt.Sprintf("pending (%d events before it)", off-position), "warn"
	case d.Failure != "":
		return "rule failed → " + d.Failure, "bad"
	case d.Selected:
		return "delivered", "ok"
	}
	return "not selected", ""
}

// deadLettersOf finds the dead letters of an event in the dead-letter
// topics (by the bridge-event-id they keep).
func (s *Server) deadLettersOf(id string, ev *event.Event) []views.DeadLetterRow {
	if s.opts.DeadLetters == nil {
		return nil
	}
	if orig, ok := ev.Header(event.HeaderEventID); ok {
		id = string(orig)
	}
	filter, err := rules.Compile(`headers["`+event.HeaderEventID+`"] == `+strconv.Quote(id), rules.Bool)
	if err != nil {
		return nil
	}
	dls, err := s.opts.DeadLetters.List("", filter, 20)
	if err != nil {
		return nil
	}
	var out []views.DeadLetterRow
	for _, dl := range dls {
		out = append(out, views.DeadLetterRow{ID: dl.ID, Pipeline: dl.Pipeline, Route: dl.Route, EventID: dl.EventID,
			Error: dl.Error, Class: dl.ErrorClass, Attempts: dl.Attempts, Redriven: dl.Redriven, TraceID: dl.TraceID})
	}
	return out
}

// historyPage shows the minute history charts.
func (s *Server) historyPage(w http.ResponseWriter, r *http.Request) {
	charts := []views.HistoryChart{
		{Title: "Throughput (events/s)", Series: "in,out"},
		{Title: "Errors (per second)", Series: "errors"},
		{Title: "Lag (events)", Series: "lag"},
		{Title: "Lag (seconds)", Series: "lag_seconds"},
		{Title: "Dead letters", Series: "dead_letters"},
	}
	for _, p := range s.snapshot().Pipelines {
		charts = append(charts, views.HistoryChart{Title: "Pipeline " + p.Name + ": out/s and lag", Series: "pipeline/" + p.Name + "/out,pipeline/" + p.Name + "/lag"})
	}
	window := fmt.Sprintf("last %d h", s.history.Window()/60)
	s.render(w, r, http.StatusOK, views.HistoryPage(s.page(r, "History", "history"), charts, window))
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	_, total := s.audit.List(0, 0)
	page, from, _ := pageOf(r, total, listPageSize)
	entries, _ := s.audit.List(from, listPageSize)
	pg := views.Pager{Page: page, PageSize: listPageSize, Total: total, Path: "/audit"}
	s.render(w, r, http.StatusOK, views.AuditPage(s.page(r, "Audit", "audit"), entries, pg))
}
