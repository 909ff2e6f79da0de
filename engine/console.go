package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// What the web console (package console) reads of the engine beyond the
// HTTP API's status: a journal of handled batches (the message journey),
// the topology, and a dry run of a pipeline's rules (the rule playground).
// All of it is additive: with Options.Journal nil the cursors do nothing
// more than before.

// JournalKind says what a JournalEntry records.
type JournalKind uint8

const (
	// JournalBatch: every event in [From, To) of the partition was handled
	// (acknowledged by the sink, handed to on_error, or not selected);
	// Matched of them were selected for the route.
	JournalBatch JournalKind = iota + 1
	// JournalRetry: a send failed and the events in [From, To) that failed
	// (Matched of them) wait for attempt Attempt+1.
	JournalRetry
	// JournalDeadLetter, JournalDropped, JournalStopped: the event at From
	// went to on_error after Attempt attempts (0: a rule failed).
	JournalDeadLetter
	JournalDropped
	JournalStopped
)

func (k JournalKind) String() string {
	switch k {
	case JournalBatch:
		return "batch"
	case JournalRetry:
		return "retry"
	case JournalDeadLetter:
		return "dead_letter"
	case JournalDropped:
		return "dropped"
	case JournalStopped:
		return "stopped"
	}
	return fmt.Sprintf("JournalKind(%d)", uint8(k))
}

// JournalEntry is one thing that happened on a route's partition.
type JournalEntry struct {
	Kind      JournalKind
	Pipeline  string
	Route     string
	Partition int32
	From, To  int64 // offsets [From, To)
	// Offsets lists the failed events' offsets of a retry when there are
	// at most maxJournalOffsets of them (nil otherwise: [From, To) bounds them).
	Offsets []int64
	Matched int
	Attempt int
	Error   string
	Target  string // the sink (batch, retry) or the dead-letter target
	At      time.Time
}

// Journal receives entries from the cursors. Record is called on the
// cursor's goroutine once per batch and once per failure, so it must be
// cheap and must not block.
type Journal interface {
	Record(JournalEntry)
}

// journalBatch records a handled batch.
func (c *cursor) journalBatch(evs []event.Event, matched int) {
	j := c.r.journal
	if j == nil || len(evs) == 0 {
		return
	}
	j.Record(JournalEntry{Kind: JournalBatch, Pipeline: c.r.pipeline, Route: c.r.name, Partition: c.partition,
		From: evs[0].Offset, To: evs[len(evs)-1].Offset + 1, Matched: matched, Target: targetName(c.r.sink), At: time.Now()})
}

// journalRetry records a failed send that will be retried.
func (c *cursor) journalRetry(evs []event.Event, indexes []int, attempt int, err error) {
	j := c.r.journal
	if j == nil || len(indexes) == 0 {
		return
	}
	var offsets []int64
	if len(indexes) <= maxJournalOffsets {
		offsets = make([]int64, 0, len(indexes))
		for _, i := range indexes {
			if n := len(offsets); n == 0 || offsets[n-1] != evs[i].Offset { // a split event's outputs share it
				offsets = append(offsets, evs[i].Offset)
			}
		}
	}
	j.Record(JournalEntry{Kind: JournalRetry, Pipeline: c.r.pipeline, Route: c.r.name, Partition: c.partition,
		From: evs[indexes[0]].Offset, To: evs[indexes[len(indexes)-1]].Offset + 1, Offsets: offsets, Matched: len(indexes),
		Attempt: attempt, Error: err.Error(), Target: targetName(c.r.sink), At: time.Now()})
}

// maxJournalOffsets bounds the offsets a retry entry lists one by one.
const maxJournalOffsets = 32

// Covers reports whether the entry concerns the event at offset.
func (e JournalEntry) Covers(offset int64) bool {
	if offset < e.From || offset >= e.To {
		return false
	}
	if e.Offsets == nil {
		return true
	}
	for _, o := range e.Offsets {
		if o == offset {
			return true
		}
	}
	return false
}

// journalFailure records an event handed to on_error.
func (c *cursor) journalFailure(kind JournalKind, ev *event.Event, attempts int, cause error) {
	j := c.r.journal
	if j == nil {
		return
	}
	target := ""
	if kind == JournalDeadLetter && c.r.deadLetter != nil {
		target = targetName(c.r.deadLetter)
	}
	j.Record(JournalEntry{Kind: kind, Pipeline: c.r.pipeline, Route: c.r.name, Partition: c.partition,
		From: ev.Offset, To: ev.Offset + 1, Attempt: attempts, Error: cause.Error(), Target: target, At: time.Now()})
}

// TopologyRoute is one route as the console draws it.
type TopologyRoute struct {
	Name       string
	Target     string // the sink, e.g. "exchange:orders", "queue:q", "kafka:main/big"
	DeadLetter string // the dead-letter target, "" when none
	OnError    string
}

// TopologyPipeline is a pipeline with its topic and routes.
type TopologyPipeline struct {
	Name   string
	Topic  string
	Routes []TopologyRoute
}

// Topology returns the pipelines and routes in plan order.
func (e *Engine) Topology() []TopologyPipeline {
	out := make([]TopologyPipeline, 0, len(e.pipelines))
	for _, p := range e.pipelineList() {
		tp := TopologyPipeline{Name: p.name, Topic: p.topic}
		for _, r := range p.routeList() {
			tr := TopologyRoute{Name: r.name, Target: targetName(r.sink), OnError: r.onError}
			if r.deadLetter != nil {
				tr.DeadLetter = targetName(r.deadLetter)
			}
			tp.Routes = append(tp.Routes, tr)
		}
		out = append(out, tp)
	}
	return out
}

// RuleOutcome is what one rule of a route decided for an event.
type RuleOutcome struct {
	Rule   string // "filter", "when", "key", "routing_key", "group_id", "dedup_id"
	Source string // the expression
	Result string // "true", "false", the string produced, or "" on error
	Error  string
}

// RouteDecision is what a route would do with an event.
type RouteDecision struct {
	Route    string
	Target   string
	Selected bool // at least one output would be sent
	// Rules shows the filter and the route's condition on the event as it
	// arrived (before any transform), then what failed, if anything.
	Rules []RuleOutcome
	// Failure says what on_error would do when a rule or transform failed
	// ("" when none failed): dead_letter, drop or stop.
	Failure string
	// Outputs are the events the sink would get (a transform may split one
	// event into several), with their keys and parameters. Key and Params
	// are the first output's.
	Outputs []event.Event
	Key     string
	Params  event.Params
	Each    []event.Params // per output, when the route has parameter rules
}

// Explain runs a pipeline's rules and transforms on ev without sending
// anything: for each route, whether it selects the event, the filter's and
// condition's results, and what the sink would get. It evaluates exactly as
// the route's cursor does. ev's Topic, Partition and Offset may be zero for
// an event that is not in the log.
func (e *Engine) Explain(pipeline string, ev event.Event) ([]RouteDecision, error) {
	p, ok := e.lookup(pipeline)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPipeline, pipeline)
	}
	if ev.Topic == "" {
		ev.Topic = p.topic
	}
	env := rules.NewEnv()
	out := make([]RouteDecision, 0, 4)
	for _, r := range p.routeList() {
		out = append(out, e.explainRoute(r, env, ev))
	}
	return out, nil
}

func (e *Engine) explainRoute(r *route, env *rules.Env, ev event.Event) RouteDecision {
	d := RouteDecision{Route: r.name, Target: targetName(r.sink)}
	env.Reset(&ev)
	for _, b := range []struct {
		name string
		p    *rules.Program
	}{{"filter", r.filter}, {"when", r.when}} {
		if b.p == nil {
			continue
		}
		ok, err := b.p.EvalBool(env)
		o := RuleOutcome{Rule: b.name, Source: b.p.Source(), Result: fmt.Sprint(ok)}
		if err != nil {
			o.Result, o.Error = "", err.Error()
		}
		if b.name == "when" && r.transform != nil {
			o.Rule = "when (before the transform)"
		}
		d.Rules = append(d.Rules, o)
		if err != nil || (!ok && (b.name == "filter" || r.transform == nil)) {
			break
		}
	}
	c := newCursor(r, ev.Partition, e.backbone, e.log)
	if err := c.evaluate(&ev, 0); err != nil {
		d.Failure = r.onError
		d.Rules = append(d.Rules, RuleOutcome{Rule: "evaluation", Error: err.Error()})
		return d
	}
	d.Outputs = c.outbuf
	d.Each = c.params
	d.Selected = len(c.outbuf) > 0
	if d.Selected {
		d.Key = string(c.outbuf[0].Key)
		if len(c.params) > 0 {
			d.Params = c.params[0]
		}
	}
	return d
}

// RedriveEvent sends a dead letter stored outside a dead-letter topic (for
// instance a queue message a pipeline's dead_letter: {queue: …} wrote) back
// through the route that failed it: the provenance headers are stripped, the
// route's key and parameter rules apply, its filter does not (the event was
// selected once), as DeadLetters.Redrive does for dead-letter topics.
func (e *Engine) RedriveEvent(ctx context.Context, pipeline, route string, dl event.Event) error {
	p, ok := e.lookup(pipeline)
	if !ok {
		return fmt.Errorf("%w: no pipeline %q in the running config", ErrBadTarget, pipeline)
	}
	for _, r := range p.routeList() {
		if r.name == route {
			return sendThroughRoute(ctx, r, e, original(&dl))
		}
	}
	return fmt.Errorf("%w: no route %s/%s in the running config", ErrBadTarget, pipeline, route)
}

// ExchangeQueues lists, per exchange, the queues its bindings route to
// (sorted, each once), for the console's topology.
func (b *Broker) ExchangeQueues() map[string][]string {
	xs := b.exchangeList()
	out := make(map[string][]string, len(xs))
	for name, x := range xs {
		seen := map[string]bool{}
		var qs []string
		for _, bd := range x.x.Bindings() {
			if !seen[bd.Queue] {
				seen[bd.Queue] = true
				qs = append(qs, bd.Queue)
			}
		}
		sort.Strings(qs)
		out[name] = qs
	}
	return out
}
