package console

import (
	"context"
	"fmt"
	"net/http"

	"github.com/bridgeio/bridge/console/views"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/rules"
)

// Pipeline dead letters: entries of dead-letter topics, browsed, grouped
// by (pipeline, route, class, reason) and redriven through engine's
// DeadLetters (each to its own route, paced, recorded in its ledger).

func dlSource(dl engine.DeadLetter) string { return "pipeline " + dl.Pipeline + " / " + dl.Route }

func dlReason(dl engine.DeadLetter) string {
	return dl.ErrorClass + ": " + normalizeReason(dl.Error)
}

func (s *Server) pipelineNames() []string {
	var out []string
	for _, p := range s.snapshot().Topology {
		out = append(out, p.Name)
	}
	return out
}

// listDeadLetters returns up to groupScan dead letters matching the form.
func (s *Server) listDeadLetters(pipeline, filterSrc string) ([]engine.DeadLetter, bool, error) {
	if s.opts.DeadLetters == nil {
		return nil, false, nil
	}
	var filter *rules.Program
	if filterSrc != "" {
		var err error
		if filter, err = rules.Compile(filterSrc, rules.Bool); err != nil {
			return nil, false, fmt.Errorf("filter: %v", err)
		}
	}
	dls, err := s.opts.DeadLetters.List(pipeline, filter, groupScan+1)
	if err != nil {
		return nil, false, err
	}
	partial := len(dls) > groupScan
	if partial {
		dls = dls[:groupScan]
	}
	return dls, partial, nil
}

func groupDeadLetters(dls []engine.DeadLetter) []views.ReasonGroup {
	byKey := map[string]*views.ReasonGroup{}
	for _, dl := range dls {
		if dl.Redriven {
			continue // in the ledger: a redrive would skip it
		}
		source, reason := dlSource(dl), dlReason(dl)
		k := groupKey(source, reason)
		g := byKey[k]
		if g == nil {
			g = &views.ReasonGroup{Key: k, Source: source, Reason: reason, Oldest: dl.Event.Timestamp, Sample: dl.ID}
			byKey[k] = g
		}
		g.Count++
		if dl.Event.Timestamp.After(g.Newest) {
			g.Newest = dl.Event.Timestamp
		}
		if dl.Event.Timestamp.Before(g.Oldest) {
			g.Oldest = dl.Event.Timestamp
		}
	}
	return sortGroups(byKey)
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := views.DeadLettersView{Pipelines: s.pipelineNames(), Pipeline: q.Get("pipeline"), Filter: q.Get("filter"),
		MaxRate: s.opts.Config.MaxRedriveRate}
	dls, partial, err := s.listDeadLetters(d.Pipeline, d.Filter)
	if err != nil {
		d.Error = err.Error()
	}
	d.Groups, d.Scanned, d.Partial = groupDeadLetters(dls), len(dls), partial
	for i := len(dls) - 1; i >= 0 && len(d.Rows) < 50; i-- {
		dl := dls[i]
		ev := dl.Event
		d.Rows = append(d.Rows, views.DeadLetterRow{ID: dl.ID, Pipeline: dl.Pipeline, Route: dl.Route, EventID: dl.EventID,
			Error: dl.Error, Class: dl.ErrorClass, TraceID: dl.TraceID, Attempts: dl.Attempts, Redriven: dl.Redriven,
			Event: s.eventRow(&ev)})
	}
	s.render(w, r, http.StatusOK, views.DeadLettersPage(s.page(r, "Dead letters", "queues"), d))
}

// selectedDeadLetters lists the ids of the dead letters in the chosen groups.
func (s *Server) selectedDeadLetters(r *http.Request, keys map[string]bool) ([]string, []views.ReasonGroup, error) {
	dls, _, err := s.listDeadLetters(r.PostFormValue("pipeline"), r.PostFormValue("filter"))
	if err != nil {
		return nil, nil, err
	}
	var ids []string
	var chosen []engine.DeadLetter
	for _, dl := range dls {
		if !dl.Redriven && keys[groupKey(dlSource(dl), dlReason(dl))] {
			ids = append(ids, dl.ID)
			chosen = append(chosen, dl)
		}
	}
	return ids, groupDeadLetters(chosen), nil
}

func (s *Server) deadLetterRedrivePreview(w http.ResponseWriter, r *http.Request) {
	p := s.page(r, "Dead letters", "queues")
	keys, rate, err := s.redriveForm(r)
	var ids []string
	var groups []views.ReasonGroup
	if err == nil {
		ids, groups, err = s.selectedDeadLetters(r, keys)
	}
	if err == nil && len(ids) == 0 {
		err = fmt.Errorf("the selected groups hold no dead letters that were not redriven already")
	}
	if err != nil {
		s.render(w, r, http.StatusBadRequest, views.RedrivePreviewFragment(p, views.RedrivePreview{Error: err.Error()}))
		return
	}
	pv := views.RedrivePreview{Kind: "deadletters", Title: "Redrive pipeline dead letters", Action: s.base + "/deadletters/redrive",
		Groups: groups, Total: len(ids), Rate: rate, ETA: eta(len(ids), rate), Destination: "each dead letter's own route",
		Confirm: "redrive", Pipeline: r.PostFormValue("pipeline"), Filter: r.PostFormValue("filter")}
	for k := range keys {
		pv.Keys = append(pv.Keys, k)
	}
	s.render(w, r, http.StatusOK, views.RedrivePreviewFragment(p, pv))
}

func (s *Server) deadLetterRedrive(w http.ResponseWriter, r *http.Request) {
	keys, rate, err := s.redriveForm(r)
	if err == nil && r.PostFormValue("confirm") != "redrive" {
		err = fmt.Errorf(`type "redrive" to confirm`)
	}
	var ids []string
	if err == nil {
		ids, _, err = s.selectedDeadLetters(r, keys)
	}
	if err != nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusBadRequest, err.Error())
		return
	}
	target := "pipeline " + r.PostFormValue("pipeline")
	if r.PostFormValue("pipeline") == "" {
		target = "all pipelines"
	}
	dl := s.opts.DeadLetters
	j, err := s.startJob("redrive.deadletters", target, who(r), len(ids), rate, func(ctx context.Context, j *job) error {
		_, err := dl.Redrive(ctx, engine.RedriveRequest{IDs: ids, PerSecond: rate,
			Picked:   func(n int) { j.progress(n, 0, 0, 0) },
			Progress: func(res engine.RedriveResult) { j.progress(-1, res.Redriven, res.Failed, res.Skipped) }})
		return err
	})
	if err != nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusConflict, err.Error())
		return
	}
	redirect(w, r, s.base+"/jobs/"+j.id)
}
