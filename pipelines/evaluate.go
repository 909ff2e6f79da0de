package pipelines

import (
	"errors"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// RuleError is a rule that failed at run time on one event (for example
// arithmetic on a string). The pipeline's on_error decides what happens to
// the event; the message names the rule so a dead letter's bridge-error
// header says which one failed.
type RuleError struct {
	Pipeline string
	Route    string // "" for the filter
	Rule     string // "filter", "when", "key", "routing_key", "group_id", "dedup_id"
	Err      error
}

func (e *RuleError) Error() string {
	s := "pipeline " + e.Pipeline + ": "
	if e.Route != "" {
		s += "route " + e.Route + ": "
	}
	return s + e.Rule + ": " + e.Err.Error()
}

func (e *RuleError) Unwrap() error { return e.Err }

// Evaluate decides which routes of p take ev: none when the filter rejects
// it, otherwise every route whose when holds (or that has none), in file
// order. It is the one decision function shared by the engine and `bridge
// test`, so the two cannot disagree.
//
// Evaluate resets env to ev. The returned slice must be treated as
// read-only: when every route matches it is p.Routes itself, which keeps the
// common case (routes without when) free of allocations. A rule failure
// returns a *RuleError and no routes.
func Evaluate(p *Pipeline, env *rules.Env, ev *event.Event) ([]*Route, error) {
	env.Reset(ev)
	if p.Filter != nil {
		pass, err := p.Filter.EvalBool(env)
		if err != nil {
			return nil, &RuleError{Pipeline: p.Name, Rule: "filter", Err: err}
		}
		if !pass {
			return nil, nil
		}
	}
	var out []*Route // allocated only once a route is skipped
	for i, r := range p.Routes {
		take := true
		if r.When != nil {
			var err error
			if take, err = r.When.EvalBool(env); err != nil {
				return nil, &RuleError{Pipeline: p.Name, Route: r.Name, Rule: "when", Err: err}
			}
		}
		switch {
		case !take && out == nil:
			out = make([]*Route, i, len(p.Routes))
			copy(out, p.Routes[:i])
		case take && out != nil:
			out = append(out, r)
		}
	}
	if out == nil {
		return p.Routes, nil
	}
	return out, nil
}

// Rendered holds the per-event values a target's rules computed. A rule
// that is not configured, or whose result is nil (a missing body field),
// leaves its value empty and its Has flag false; the sink then applies its
// default (the event's own key, the event id as dedup id).
type Rendered struct {
	Key, RoutingKey, GroupID, DedupID             string
	HasKey, HasRoutingKey, HasGroupID, HasDedupID bool
	// Queue and exchange targets: the message values (queuefields.go).
	Message MessageValues
}

// Render evaluates t's key rules against env, which must already be reset
// to the event (Evaluate does that). route names the route in errors.
func (t *Target) Render(env *rules.Env, pipeline, route string) (Rendered, error) {
	var r Rendered
	for _, f := range []struct {
		rule string
		prog *rules.Program
		out  *string
		has  *bool
	}{
		{"key", t.Key, &r.Key, &r.HasKey},
		{"routing_key", t.RoutingKey, &r.RoutingKey, &r.HasRoutingKey},
		{"group_id", t.GroupID, &r.GroupID, &r.HasGroupID},
		{"dedup_id", t.DedupID, &r.DedupID, &r.HasDedupID},
	} {
		if f.prog == nil {
			continue
		}
		s, ok, err := f.prog.EvalString(env)
		if err != nil {
			return Rendered{}, &RuleError{Pipeline: pipeline, Route: route, Rule: f.rule, Err: err}
		}
		*f.out, *f.has = s, ok
	}
	var err error
	if r.Message, err = t.RenderMessage(env); err != nil {
		var re *RuleError
		if errors.As(err, &re) {
			re.Pipeline, re.Route = pipeline, route
		}
		return Rendered{}, err
	}
	return r, nil
}

// RouteOutput is what one route sends for one source event: the events
// after every transform, each with the values its target's rules computed.
type RouteOutput struct {
	Route    *Route
	Events   []event.Event
	Rendered []Rendered // Rendered[i] belongs to Events[i]
}

// Outputs runs the whole chain of p for ev, as the engine does for each
// route: the filter on ev; the pipeline's transform; per part, the route's
// when and transform; per output, the target's rules. passed is false when
// the filter rejects ev. A route that sends nothing is left out. Output
// values live in buf until the next use of buf. A rule failure returns a
// *RuleError and no outputs: the engine dead-letters the original event.
func Outputs(p *Pipeline, env *rules.Env, ev *event.Event, buf *rules.Buffer) (passed bool, outs []RouteOutput, err error) {
	env.Reset(ev)
	if p.Filter != nil {
		pass, err := p.Filter.EvalBool(env)
		if err != nil {
			return false, nil, &RuleError{Pipeline: p.Name, Rule: "filter", Err: err}
		}
		if !pass {
			return false, nil, nil
		}
	}
	parts := []event.Event{*ev}
	if p.Transform != nil {
		if parts, err = p.Transform.Apply(env, ev, nil, buf); err != nil {
			return true, nil, &RuleError{Pipeline: p.Name, Rule: "transform", Err: err}
		}
	}
	for _, r := range p.Routes {
		out := RouteOutput{Route: r}
		for i := range parts {
			if err := routeOutputs(p, r, env, &parts[i], buf, &out); err != nil {
				return true, nil, err
			}
		}
		if len(out.Events) > 0 {
			outs = append(outs, out)
		}
	}
	return true, outs, nil
}

// routeOutputs adds what route r makes of one part to out.
func routeOutputs(p *Pipeline, r *Route, env *rules.Env, part *event.Event, buf *rules.Buffer, out *RouteOutput) error {
	env.View(part)
	if r.When != nil {
		take, err := r.When.EvalBool(env)
		if err != nil {
			return &RuleError{Pipeline: p.Name, Route: r.Name, Rule: "when", Err: err}
		}
		if !take {
			return nil
		}
	}
	finals := []event.Event{*part}
	if r.Transform != nil {
		var err error
		if finals, err = r.Transform.Apply(env, part, nil, buf); err != nil {
			return &RuleError{Pipeline: p.Name, Route: r.Name, Rule: "transform", Err: err}
		}
	}
	for i := range finals {
		// As the engine does: every output names its source event.
		if _, ok := finals[i].Header(event.HeaderEventID); !ok {
			hs := make([]event.Header, len(finals[i].Headers), len(finals[i].Headers)+1)
			copy(hs, finals[i].Headers)
			finals[i].Headers = append(hs, event.Header{Key: event.HeaderEventID, Value: []byte(finals[i].ID())})
		}
		env.View(&finals[i])
		rd, err := r.To.Render(env, p.Name, r.Name)
		if err != nil {
			return err
		}
		if r.To.Key != nil {
			finals[i].Key = nil
			if rd.HasKey {
				finals[i].Key = []byte(rd.Key)
			}
		}
		out.Events = append(out.Events, finals[i])
		out.Rendered = append(out.Rendered, rd)
	}
	return nil
}
