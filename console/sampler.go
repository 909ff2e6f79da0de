package console

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bridgeio/bridge/console/views"
	"github.com/bridgeio/bridge/engine"
)

// Snapshot is one sample of everything the console shows live. Rates are
// per second over the last tick. It is immutable once stored.
type Snapshot struct {
	At         time.Time
	Topics     []views.TopicRow // sorted by name
	Queues     []views.QueueRow // sorted by name
	Pipelines  []engine.PipelineStatus
	Topology   []engine.TopologyPipeline
	Sources    []engine.SourceStatus
	SourceRate map[string]float64 // by source name
	// Per route, keyed "pipeline/route".
	RouteRead, RouteSent, RouteDead map[string]float64
	// LagSeconds is the age of the oldest unhandled event, per pipeline
	// (the worst route partition) and per "pipeline/route/partition".
	LagSeconds       map[string]float64
	CursorLagSeconds map[string]float64

	InRate, OutRate, ErrorRate float64
	Lag                        int64
	MaxLagSeconds              float64
	Errors                     int64
	DeadLetters                int64 // DLQ queue depths + dead-letter topic entries
	DeadLetterTopics           map[string]bool
	ExchangeQueues             map[string][]string // embedded exchange → the queues it is bound to
}

// counters are the cumulative values rates are computed from.
type counters struct {
	at                                      time.Time
	topicEnd                                map[string]int64
	source                                  map[string]int64
	routeRead, routeSent, routeDead, errors map[string]int64
}

// maxLagReads bounds the backbone reads one sample spends on lag in time.
const maxLagReads = 2000

// sample reads the engine, broker and backbone once. It runs on Run's
// goroutine (and once in Open, before any request).
func (s *Server) sample(now time.Time) *Snapshot {
	snap := &Snapshot{At: now, SourceRate: map[string]float64{}, RouteRead: map[string]float64{},
		RouteSent: map[string]float64{}, RouteDead: map[string]float64{}, LagSeconds: map[string]float64{},
		CursorLagSeconds: map[string]float64{}, DeadLetterTopics: map[string]bool{}}
	cur := &counters{at: now, topicEnd: map[string]int64{}, source: map[string]int64{}, routeRead: map[string]int64{},
		routeSent: map[string]int64{}, routeDead: map[string]int64{}, errors: map[string]int64{}}
	prev := s.prev
	dt := 0.0
	if prev != nil {
		dt = now.Sub(prev.at).Seconds()
	}
	rate := func(now, before int64, ok bool) float64 {
		if !ok || dt <= 0 || now < before {
			return 0
		}
		return float64(now-before) / dt
	}
	readers := map[string]int{}
	if e := s.opts.Engine; e != nil {
		snap.Topology = e.Topology()
		snap.Pipelines = e.Pipelines()
		snap.Sources = e.Sources()
		for _, p := range snap.Topology {
			readers[p.Topic]++
			for _, r := range p.Routes {
				if t, ok := strings.CutPrefix(r.DeadLetter, "topic:"); ok {
					snap.DeadLetterTopics[t] = true
				}
			}
		}
	}
	s.sampleTopics(snap, cur, prev, readers, rate)
	for _, src := range snap.Sources {
		cur.source[src.Name] = src.Events
		cur.errors["source/"+src.Name] = src.Errors
		var before int64
		ok := false
		if prev != nil {
			before, ok = prev.source[src.Name]
		}
		snap.SourceRate[src.Name] = rate(src.Events, before, ok)
	}
	s.samplePipelines(snap, cur, prev, rate, now)
	s.sampleQueues(snap)
	var errs, prevErrs int64
	for k, v := range cur.errors {
		errs += v
		if prev != nil {
			prevErrs += prev.errors[k]
		}
	}
	snap.Errors = errs
	snap.ErrorRate = rate(errs, prevErrs, prev != nil)
	s.prev = cur
	return snap
}

func (s *Server) sampleTopics(snap *Snapshot, cur, prev *counters, readers map[string]int, rate func(int64, int64, bool) float64) {
	b := s.opts.Backbone
	names := b.Topics()
	snap.Topics = make([]views.TopicRow, 0, len(names))
	for _, name := range names {
		parts, err := b.Partitions(name)
		if err != nil {
			continue // deleted meanwhile
		}
		row := views.TopicRow{Name: name, Partitions: parts, Readers: readers[name]}
		for p := range parts {
			start, end, err := b.Offsets(name, int32(p))
			if err != nil {
				continue
			}
			row.End += end
			row.Messages += end - start
		}
		cur.topicEnd[name] = row.End
		var before int64
		ok := false
		if prev != nil {
			before, ok = prev.topicEnd[name]
		}
		row.InRate = rate(row.End, before, ok)
		if !snap.DeadLetterTopics[name] {
			snap.InRate += row.InRate
		} else {
			snap.DeadLetters += row.Messages
		}
		snap.Topics = append(snap.Topics, row)
	}
}

func (s *Server) samplePipelines(snap *Snapshot, cur, prev *counters, rate func(int64, int64, bool) float64, now time.Time) {
	reads := 0
	for _, p := range snap.Pipelines {
		for _, r := range p.Routes {
			key := p.Name + "/" + r.Name
			cur.routeRead[key], cur.routeSent[key], cur.routeDead[key] = r.Read, r.Sent, r.DeadLettered
			cur.errors["route/"+key] = r.RuleErrors + r.SendErrors
			if prev != nil {
				rr, ok := prev.routeRead[key]
				snap.RouteRead[key] = rate(r.Read, rr, ok)
				snap.RouteSent[key] = rate(r.Sent, prev.routeSent[key], ok)
				snap.RouteDead[key] = rate(r.DeadLettered, prev.routeDead[key], ok)
			}
			snap.OutRate += snap.RouteSent[key]
			snap.Lag += r.Lag
			for _, ps := range r.Partitions {
				if ps.Lag <= 0 || ps.Position < 0 || reads >= maxLagReads {
					continue
				}
				reads++
				evs, err := s.opts.Backbone.Read(p.Topic, ps.Partition, ps.Position, 1, 1<<20)
				if err != nil || len(evs) == 0 || evs[0].Timestamp.IsZero() {
					continue
				}
				age := max(now.Sub(evs[0].Timestamp).Seconds(), 0)
				snap.CursorLagSeconds[key+"/"+strconv.Itoa(int(ps.Partition))] = age
				snap.LagSeconds[p.Name] = max(snap.LagSeconds[p.Name], age)
				snap.MaxLagSeconds = max(snap.MaxLagSeconds, age)
			}
		}
	}
}

func (s *Server) sampleQueues(snap *Snapshot) {
	if s.opts.Broker == nil {
		return
	}
	snap.ExchangeQueues = s.opts.Broker.ExchangeQueues()
	depths := s.opts.Broker.QueueDepths()
	dlqOf := map[string][]string{}
	for _, d := range depths {
		if d.DeadLetterQueue != "" {
			dlqOf[d.DeadLetterQueue] = append(dlqOf[d.DeadLetterQueue], d.Name)
		}
	}
	for _, p := range snap.Topology {
		for _, r := range p.Routes {
			if q, ok := strings.CutPrefix(r.DeadLetter, "queue:"); ok && !containsString(dlqOf[q], "pipeline "+p.Name) {
				dlqOf[q] = append(dlqOf[q], "pipeline "+p.Name)
			}
		}
	}
	snap.Queues = make([]views.QueueRow, 0, len(depths))
	now := snap.At
	for _, d := range depths {
		row := views.QueueRow{Name: d.Name, Visible: d.Visible, InFlight: d.InFlight, Delayed: d.Delayed, FIFO: d.FIFO,
			DeadLetterQueue: d.DeadLetterQueue, DeadLetterOf: dlqOf[d.Name]}
		if d.Visible+d.InFlight+d.Delayed > 0 {
			if q, err := s.opts.Broker.Queues.Get(d.Name); err == nil {
				if oldest := q.Oldest(); !oldest.IsZero() {
					row.Oldest = now.Sub(oldest)
				}
			}
		}
		if row.IsDLQ() {
			snap.DeadLetters += int64(d.Visible + d.InFlight + d.Delayed)
		}
		snap.Queues = append(snap.Queues, row)
	}
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// record adds a sample to the minute history and the live ring.
func (s *Server) record(snap *Snapshot) {
	vals := map[string]float64{"in": snap.InRate, "out": snap.OutRate, "errors": snap.ErrorRate,
		"dead_letters": float64(snap.DeadLetters), "lag": float64(snap.Lag), "lag_seconds": snap.MaxLagSeconds}
	for _, p := range snap.Pipelines {
		var lag int64
		var out float64
		for _, r := range p.Routes {
			lag += r.Lag
			out += snap.RouteSent[p.Name+"/"+r.Name]
		}
		vals["pipeline/"+p.Name+"/lag"] = float64(lag)
		vals["pipeline/"+p.Name+"/lag_seconds"] = snap.LagSeconds[p.Name]
		vals["pipeline/"+p.Name+"/out"] = out
	}
	s.history.Add(snap.At, vals)
	s.live.add(snap.At, snap.InRate, snap.OutRate, snap.ErrorRate)
}

// publish renders the overview's live fragments once for every open tab:
// the cost of a tab is a write per tick, whatever the event rate.
func (s *Server) publish(snap *Snapshot) {
	o := s.overviewData(snap, false)
	var buf bytes.Buffer
	p := views.Page{Base: s.base}
	if err := views.OverviewCards(o).Render(context.Background(), &buf); err == nil {
		s.hub.Publish("cards", buf.Bytes())
	}
	buf.Reset()
	if err := views.TopologyGraph(p, o.Topology).Render(context.Background(), &buf); err == nil {
		s.hub.Publish("topology", buf.Bytes())
	}
	point, _ := json.Marshal(map[string]any{"t": snap.At.Unix(), "values": []float64{round2(snap.InRate), round2(snap.OutRate), round2(snap.ErrorRate)}})
	s.hub.Publish("rates", point)
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// liveRing keeps the last n per-second rates for the overview chart.
type liveRing struct {
	mu     sync.Mutex
	n      int
	t      []int64
	series [3][]float64
}

func newLiveRing(n int) *liveRing { return &liveRing{n: n} }

func (l *liveRing) add(at time.Time, in, out, errs float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t = append(l.t, at.Unix())
	for i, v := range []float64{in, out, errs} {
		l.series[i] = append(l.series[i], round2(v))
	}
	if len(l.t) > l.n {
		l.t = append(l.t[:0], l.t[len(l.t)-l.n:]...)
		for i := range l.series {
			l.series[i] = append(l.series[i][:0], l.series[i][len(l.series[i])-l.n:]...)
		}
	}
}

// chartData is what console.js draws: {t: [...], series: [{name, values}]}.
type chartData struct {
	T      []int64       `json:"t"`
	Series []chartSeries `json:"series"`
}

type chartSeries struct {
	Name   string     `json:"name"`
	Values []*float64 `json:"values"` // null = gap
}

func (l *liveRing) chart() chartData {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := chartData{T: append([]int64{}, l.t...)}
	for i, name := range []string{"in/s", "out/s", "errors/s"} {
		vals := make([]*float64, len(l.series[i]))
		for j := range l.series[i] {
			v := l.series[i][j]
			vals[j] = &v
		}
		out.Series = append(out.Series, chartSeries{Name: name, Values: vals})
	}
	return out
}

// sortTopicsBy returns the n topics with the highest key, ties by name.
func topTopics(rows []views.TopicRow, n int) []views.TopicRow {
	out := append([]views.TopicRow(nil), rows...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].InRate != out[j].InRate {
			return out[i].InRate > out[j].InRate
		}
		return out[i].Messages > out[j].Messages
	})
	return out[:min(n, len(out))]
}

func topQueues(rows []views.QueueRow, n int) []views.QueueRow {
	out := append([]views.QueueRow(nil), rows...)
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Visible+out[i].InFlight+out[i].Delayed > out[j].Visible+out[j].InFlight+out[j].Delayed
	})
	return out[:min(n, len(out))]
}
