package console

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/console/audit"
	"github.com/bridgeio/bridge/console/views"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
)

func (s *Server) pipelinesPage(w http.ResponseWriter, r *http.Request) {
	v := views.PipelinesView{Rows: s.pipelineRows(s.freshSnapshot(), true)}
	s.render(w, r, http.StatusOK, views.PipelinesPage(s.page(r, "Pipelines", "pipelines"), v))
}

// pipelineDetail gathers one pipeline's page data; ok is false when the
// pipeline does not exist.
func (s *Server) pipelineDetail(name string) (views.PipelineDetail, engine.TopologyPipeline, bool) {
	snap := s.freshSnapshot()
	var d views.PipelineDetail
	var topo engine.TopologyPipeline
	found := false
	for _, t := range snap.Topology {
		if t.Name == name {
			topo, found = t, true
		}
	}
	if !found || s.opts.Engine == nil {
		return d, topo, false
	}
	st, ok := s.opts.Engine.Pipeline(name)
	if !ok {
		return d, topo, false
	}
	for _, row := range s.pipelineRows(&Snapshot{At: snap.At, Pipelines: []engine.PipelineStatus{st}, RouteSent: snap.RouteSent,
		LagSeconds: snap.LagSeconds}, false) {
		d.Row = row
	}
	d.Partitions, _ = s.opts.Backbone.Partitions(st.Topic)
	for i, rs := range st.Routes {
		rv := views.RouteView{Name: rs.Name, Target: rs.Target, Read: rs.Read, Matched: rs.Matched, Sent: rs.Sent,
			DeadLettered: rs.DeadLettered, Dropped: rs.Dropped, RuleErrors: rs.RuleErrors, SendErrors: rs.SendErrors,
			Retries: rs.Retries, Lag: rs.Lag, OutRate: snap.RouteSent[name+"/"+rs.Name],
			Permanent: rs.PermanentFailures, Retryable: rs.RetryableFailures}
		if i < len(topo.Routes) {
			rv.DeadLetter, rv.OnError = topo.Routes[i].DeadLetter, topo.Routes[i].OnError
		}
		for _, c := range rs.Partitions {
			rv.Cursors = append(rv.Cursors, views.CursorView{Partition: c.Partition, Checkpoint: c.Checkpoint, Position: c.Position,
				End: c.End, Lag: c.Lag, LagSeconds: snap.CursorLagSeconds[name+"/"+rs.Name+"/"+strconv.Itoa(int(c.Partition))],
				Stopped: c.Stopped, Error: c.Error})
		}
		d.Routes = append(d.Routes, rv)
	}
	d.Playground = views.Playground{Topic: st.Topic, Value: `{"type":"order.created","amount":150}`}
	return d, topo, true
}

func (s *Server) pipelinePage(w http.ResponseWriter, r *http.Request) {
	d, _, ok := s.pipelineDetail(r.PathValue("name"))
	if !ok {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusNotFound, "no such pipeline: "+r.PathValue("name"))
		return
	}
	s.render(w, r, http.StatusOK, views.PipelinePage(s.page(r, d.Row.Name, "pipelines"), d))
}

// playground runs a pipeline's rules on an event from the log (partition
// and offset) or on one written in the form. Read-only: consumers may use it.
func (s *Server) playground(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p := s.page(r, name, "pipelines")
	d, _, ok := s.pipelineDetail(name)
	if !ok {
		s.render(w, r, http.StatusNotFound, views.ErrorFragment("no such pipeline: "+name))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	pg := views.Playground{Topic: d.Playground.Topic, Partition: r.PostFormValue("partition"), Offset: r.PostFormValue("offset"),
		Key: r.PostFormValue("key"), Headers: r.PostFormValue("headers"), Value: r.PostFormValue("value"), Ran: true}
	ev, err := s.playgroundEvent(pg)
	if err == nil {
		var ds []engine.RouteDecision
		ds, err = s.opts.Engine.Explain(name, ev)
		for _, dc := range ds {
			out := views.Decision{Route: dc.Route, Target: dc.Target, Failure: dc.Failure, Selected: dc.Selected, Key: dc.Key,
				RoutingKey: dc.Params.RoutingKey, GroupID: dc.Params.GroupID, DedupID: dc.Params.DedupID}
			for _, ru := range dc.Rules {
				out.Rules = append(out.Rules, views.RuleResult{Rule: ru.Rule, Source: ru.Source, Result: ru.Result, Error: ru.Error})
			}
			for i := range dc.Outputs {
				o := views.Output{Key: string(dc.Outputs[i].Key)}
				if i < len(dc.Each) {
					o.RoutingKey, o.GroupID, o.DedupID = dc.Each[i].RoutingKey, dc.Each[i].GroupID, dc.Each[i].DedupID
				}
				o.Value, _ = s.showValue(dc.Outputs[i].Value)
				out.Outputs = append(out.Outputs, o)
			}
			pg.Decisions = append(pg.Decisions, out)
		}
		pg.Event = s.eventRow(&ev)
	}
	if err != nil {
		pg.Error = err.Error()
	}
	s.render(w, r, http.StatusOK, views.PlaygroundResult(p, pg))
}

// playgroundEvent reads the chosen event, or builds one from the form.
func (s *Server) playgroundEvent(pg views.Playground) (event.Event, error) {
	if strings.TrimSpace(pg.Offset) != "" {
		part, err := strconv.Atoi(strings.TrimSpace(pg.Partition))
		if strings.TrimSpace(pg.Partition) == "" {
			part, err = 0, nil
		}
		off, err2 := strconv.ParseInt(strings.TrimSpace(pg.Offset), 10, 64)
		if err != nil || err2 != nil || part < 0 || off < 0 {
			return event.Event{}, fmt.Errorf("partition and offset must be numbers ≥ 0")
		}
		evs, err := s.opts.Backbone.Read(pg.Topic, int32(part), off, 1, readBytes)
		if err != nil || len(evs) == 0 || evs[0].Offset != off {
			return event.Event{}, fmt.Errorf("no event at %s/%d/%d", pg.Topic, part, off)
		}
		return evs[0], nil
	}
	ev := event.Event{Topic: pg.Topic, Value: []byte(pg.Value), Timestamp: s.opts.Now().UTC(), Source: "console", Offset: -1}
	if pg.Key != "" {
		ev.Key = []byte(pg.Key)
	}
	for i, line := range strings.Split(pg.Headers, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return event.Event{}, fmt.Errorf("headers line %d: want name: value", i+1)
		}
		ev.Headers = append(ev.Headers, event.Header{Key: strings.TrimSpace(k), Value: []byte(strings.TrimSpace(v))})
	}
	return ev, nil
}

// replayTargets computes where a replay would put each partition and how
// many events that is, without changing anything.
func (s *Server) replayTargets(r *http.Request, name string) (views.ReplayPreview, engine.ReplayFrom, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	rp := views.ReplayPreview{Pipeline: name, From: r.PostFormValue("from"), Offset: r.PostFormValue("offset"), Time: r.PostFormValue("time")}
	var from engine.ReplayFrom
	st, ok := s.opts.Engine.Pipeline(name)
	if !ok {
		return rp, from, fmt.Errorf("no such pipeline: %s", name)
	}
	var at time.Time
	var offset int64
	switch rp.From {
	case "earliest":
		from.Earliest = true
	case "latest":
		from.Latest = true
	case "time":
		t, err := parseTime(rp.Time)
		if err != nil {
			return rp, from, err
		}
		at, from.Time = t, t
	case "offset":
		o, err := strconv.ParseInt(strings.TrimSpace(rp.Offset), 10, 64)
		if err != nil || o < 0 {
			return rp, from, fmt.Errorf("offset must be a number ≥ 0")
		}
		offset = o
		from.Offsets = map[int32]int64{}
	default:
		return rp, from, fmt.Errorf("from must be earliest, latest, time or offset")
	}
	current := map[int32]int64{}
	for _, rs := range st.Routes {
		for _, c := range rs.Partitions {
			if cur, seen := current[c.Partition]; !seen || c.Position < cur {
				current[c.Partition] = c.Position // the slowest route
			}
		}
	}
	parts, _ := s.opts.Backbone.Partitions(st.Topic)
	for p := range int32(parts) {
		start, end, err := s.opts.Backbone.Offsets(st.Topic, p)
		if err != nil {
			return rp, from, err
		}
		var target int64
		switch {
		case from.Earliest:
			target = start
		case from.Latest:
			target = end
		case from.Offsets != nil:
			target = min(max(offset, start), end)
			from.Offsets[p] = offset
		default:
			if target, err = s.opts.Backbone.OffsetForTime(st.Topic, p, at); err != nil {
				return rp, from, err
			}
		}
		cur := max(current[p], 0)
		rp.Rows = append(rp.Rows, views.ReplayRow{Partition: p, Current: cur, Target: target, Events: cur - target})
		rp.Total += cur - target
	}
	sort.Slice(rp.Rows, func(i, j int) bool { return rp.Rows[i].Partition < rp.Rows[j].Partition })
	return rp, from, nil
}

func (s *Server) replayPreview(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rp, _, err := s.replayTargets(r, name)
	if err != nil {
		rp.Error = err.Error()
	}
	s.render(w, r, http.StatusOK, views.ReplayPreviewFragment(s.page(r, name, "pipelines"), rp))
}

// replay rewinds a pipeline after confirmation and records it.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rp, from, err := s.replayTargets(r, name)
	if err == nil && r.PostFormValue("confirm") != name {
		err = fmt.Errorf("type the pipeline name %q to confirm", name)
	}
	if err != nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusBadRequest, err.Error())
		return
	}
	detail := "from " + rp.From
	switch rp.From {
	case "time":
		detail += " " + rp.Time
	case "offset":
		detail += " " + rp.Offset
	}
	// Audit first: an action that cannot be recorded is not done.
	if err := s.audit.Append(audit.Entry{Who: who(r), Action: "replay", Target: name, Count: int(rp.Total), Detail: detail, Result: "started"}); err != nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusInternalServerError, "audit log: "+err.Error()+"; nothing was replayed")
		return
	}
	_, err = s.opts.Engine.Replay(r.Context(), name, from)
	result := "done"
	if err != nil {
		result = "failed: " + err.Error()
	}
	if aerr := s.audit.Append(audit.Entry{Who: who(r), Action: "replay", Target: name, Count: int(rp.Total), Detail: detail, Result: result}); aerr != nil {
		s.log.Error("console audit entry not written", "err", aerr)
	}
	if err != nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusInternalServerError, "replay: "+err.Error())
		return
	}
	redirect(w, r, s.base+"/pipelines/"+name)
}
