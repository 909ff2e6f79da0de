package engine

import (
	"bytes"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/bridgeio/bridge/event"
)

// shadowSamples bounds the differing events a shadow keeps per route.
const shadowSamples = 10

// shadowRun is a new route version evaluated beside the live one without
// sending (`bridge reload --shadow`): per event, both versions' outputs are
// computed and compared. Its counters are shared by the route's cursors.
type shadowRun struct {
	live, next *route
	started    time.Time

	mu      sync.Mutex
	counts  ShadowCounts
	samples []ShadowSample
}

func newShadowRun(live, next *route) *shadowRun {
	return &shadowRun{live: live, next: next, started: time.Now().UTC()}
}

// ShadowCounts classifies the events a shadow saw: Same (both versions
// select nothing, or the same outputs to the same target), OnlyLive (the
// live version sends, the new one would not), OnlyNext (the reverse),
// Different (both send, different outputs or target). A rule error is an
// outcome of its own: it equals only the same error.
type ShadowCounts struct {
	Events    int64 `json:"events"`
	Same      int64 `json:"same"`
	OnlyLive  int64 `json:"only_live"`
	OnlyNext  int64 `json:"only_next"`
	Different int64 `json:"different"`
}

// ShadowOutput is one output of a sample.
type ShadowOutput struct {
	Target string `json:"target"`
	Key    string `json:"key,omitempty"`
	Value  string `json:"value"`
}

// ShadowSample is an event the versions decided differently.
type ShadowSample struct {
	Partition int32          `json:"partition"`
	Offset    int64          `json:"offset"`
	Key       string         `json:"key,omitempty"`
	Kind      string         `json:"kind"` // only_live | only_next | different
	Live      []ShadowOutput `json:"live"`
	Next      []ShadowOutput `json:"next"`
	LiveError string         `json:"live_error,omitempty"`
	NextError string         `json:"next_error,omitempty"`
}

// ShadowReport is a route's shadow: versions, counts and samples.
type ShadowReport struct {
	Pipeline    string         `json:"pipeline"`
	Route       string         `json:"route"`
	LiveVersion int64          `json:"live_version"`
	NextVersion int64          `json:"next_version"`
	Since       time.Time      `json:"since"`
	Counts      ShadowCounts   `json:"counts"`
	Samples     []ShadowSample `json:"samples"`
}

// Shadows reports every running shadow, by pipeline and route.
func (e *Engine) Shadows() []ShadowReport {
	var out []ShadowReport
	for _, p := range e.pipelineList() {
		for _, r := range p.routeList() {
			s := r.shadow
			if s == nil {
				continue
			}
			s.mu.Lock()
			out = append(out, ShadowReport{Pipeline: p.name, Route: r.name, LiveVersion: s.live.version,
				NextVersion: s.next.version, Since: s.started, Counts: s.counts, Samples: slices.Clone(s.samples)})
			s.mu.Unlock()
		}
	}
	return out
}

// compareShadow evaluates both versions over a handled batch with scratch
// cursors (their own rule environments and buffers; nothing is sent) and
// counts the decisions.
func (c *cursor) compareShadow(evs []event.Event) {
	s := c.r.shadow
	for i, r := range [2]*route{s.live, s.next} {
		if c.shadowEv[i] == nil || c.shadowEv[i].r != r {
			c.shadowEv[i] = newCursor(r, c.partition, c.backbone, slog.New(slog.DiscardHandler))
		}
		c.shadowEv[i].resetOutputs()
		c.shadowEv[i].resetArenas()
	}
	a, b := c.shadowEv[0], c.shadowEv[1]
	var counts ShadowCounts
	var samples []ShadowSample
	for i := range evs {
		na, nb := len(a.outbuf), len(b.outbuf)
		errA, errB := a.evaluate(&evs[i], i), b.evaluate(&evs[i], i)
		outA, outB := a.outbuf[na:], b.outbuf[nb:]
		kind := ""
		switch {
		case errA != nil || errB != nil:
			if errA == nil || errB == nil || errA.Error() != errB.Error() {
				kind = "different"
			}
		case len(outA) == 0 && len(outB) == 0:
		case len(outB) == 0:
			kind = "only_live"
		case len(outA) == 0:
			kind = "only_next"
		case !sameOutputs(a, b, outA, outB, na, nb):
			kind = "different"
		}
		counts.Events++
		switch kind {
		case "":
			counts.Same++
		case "only_live":
			counts.OnlyLive++
		case "only_next":
			counts.OnlyNext++
		default:
			counts.Different++
		}
		if kind != "" && len(samples) < shadowSamples {
			sm := ShadowSample{Partition: c.partition, Offset: evs[i].Offset, Key: string(evs[i].Key), Kind: kind,
				Live: summarize(a.r, outA), Next: summarize(b.r, outB)}
			if errA != nil {
				sm.LiveError = errA.Error()
			}
			if errB != nil {
				sm.NextError = errB.Error()
			}
			samples = append(samples, sm)
		}
	}
	s.mu.Lock()
	s.counts.Events += counts.Events
	s.counts.Same += counts.Same
	s.counts.OnlyLive += counts.OnlyLive
	s.counts.OnlyNext += counts.OnlyNext
	s.counts.Different += counts.Different
	for _, sm := range samples {
		if len(s.samples) < shadowSamples {
			s.samples = append(s.samples, sm)
		}
	}
	s.mu.Unlock()
	a.resetOutputs()
	b.resetOutputs()
}

// sameOutputs compares two versions' outputs of one event: target, key,
// value, headers (but bridge-rules-version) and message parameters.
func sameOutputs(a, b *cursor, outA, outB []event.Event, na, nb int) bool {
	if len(outA) != len(outB) || targetName(a.r.sink) != targetName(b.r.sink) {
		return false
	}
	for j := range outA {
		x, y := &outA[j], &outB[j]
		if !bytes.Equal(x.Key, y.Key) || !bytes.Equal(x.Value, y.Value) || !sameHeaders(x.Headers, y.Headers) {
			return false
		}
		var px, py event.Params
		if na+j < len(a.params) {
			px = a.params[na+j]
		}
		if nb+j < len(b.params) {
			py = b.params[nb+j]
		}
		if px != py {
			return false
		}
	}
	return true
}

func sameHeaders(x, y []event.Header) bool {
	strip := func(hs []event.Header) []event.Header {
		return slices.DeleteFunc(slices.Clone(hs), func(h event.Header) bool { return h.Key == HeaderRulesVersion })
	}
	x, y = strip(x), strip(y)
	return slices.EqualFunc(x, y, func(a, b event.Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) })
}

func summarize(r *route, outs []event.Event) []ShadowOutput {
	out := make([]ShadowOutput, 0, len(outs))
	for i := range outs {
		v := outs[i].Value
		if len(v) > 256 {
			v = v[:256]
		}
		out = append(out, ShadowOutput{Target: targetName(r.sink), Key: string(outs[i].Key), Value: string(v)})
	}
	return out
}
