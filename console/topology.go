package console

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bridgeio/bridge/console/views"
)

// Topology layout: five columns (producers and sources, topics, routes,
// sinks, and the queues an embedded exchange sink routes to), one box per
// thing, edges as curves with the rate over the last tick (queue edges
// carry the queue's depth instead: the exchange's routing is not counted
// per binding). Only topics that something writes to through a source or that a
// pipeline reads are drawn, at most maxTopoTopics of them, so the graph
// stays readable and cheap with thousands of topics.
const (
	maxTopoTopics = 30
	topoNodeH     = 36
	topoGap       = 12
	topoTop       = 24
)

var topoCols = [5]struct{ x, w int }{{10, 170}, {220, 180}, {440, 210}, {700, 190}, {940, 170}}

type topoBuilder struct {
	t      views.Topology
	nodes  map[string]int  // key → index in t.Nodes
	drawnX map[string]bool // exchanges whose queues are drawn
	counts [5]int
	base   string
}

func (b *topoBuilder) node(col int, key, kind, label, href string) int {
	if i, ok := b.nodes[key]; ok {
		return i
	}
	y := topoTop + b.counts[col]*(topoNodeH+topoGap)
	b.counts[col]++
	b.t.Nodes = append(b.t.Nodes, views.TopoNode{Kind: kind, Label: shorten(label, 25), X: topoCols[col].x, Y: y,
		W: topoCols[col].w, H: topoNodeH, Href: href})
	b.nodes[key] = len(b.t.Nodes) - 1
	return len(b.t.Nodes) - 1
}

func (b *topoBuilder) edge(from, to int, rate float64, dashed bool) {
	f, t := b.t.Nodes[from], b.t.Nodes[to]
	x1, y1 := f.X+f.W, f.Y+f.H/2
	x2, y2 := t.X, t.Y+t.H/2
	mx := (x1 + x2) / 2
	b.t.Edges = append(b.t.Edges, views.TopoEdge{
		Path: fmt.Sprintf("M %d %d C %d %d, %d %d, %d %d", x1, y1, mx, y1, mx, y2, x2, y2),
		Rate: views.Rate(rate), LX: mx, LY: (y1+y2)/2 - 4, Active: rate > 0, Dashed: dashed,
		From: f.Label, To: t.Label})
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// targetHref links a sink to its console page when it has one.
func (s *Server) targetHref(target string) string {
	if q, ok := strings.CutPrefix(target, "queue:"); ok {
		return s.base + "/queues/" + q
	}
	if t, ok := strings.CutPrefix(target, "topic:"); ok {
		return s.base + "/topics/" + t
	}
	return s.base + "/pipelines"
}

// topology lays out the graph of a snapshot.
func (s *Server) topology(snap *Snapshot) views.Topology {
	b := &topoBuilder{nodes: map[string]int{}, base: s.base}
	b.t.Columns = []views.TopoLabel{{X: topoCols[0].x, Text: "producers"}, {X: topoCols[1].x, Text: "topics"},
		{X: topoCols[2].x, Text: "pipeline / route"}, {X: topoCols[3].x, Text: "sinks"}, {X: topoCols[4].x, Text: "queues"}}
	inRate := map[string]float64{}
	for _, t := range snap.Topics {
		inRate[t.Name] = t.InRate
	}
	// Which topics to draw: read by a pipeline or written by a source.
	wanted := map[string]bool{}
	for _, p := range snap.Topology {
		wanted[p.Topic] = true
	}
	for _, src := range snap.Sources {
		wanted[src.Topic] = true
	}
	topics := make([]string, 0, len(wanted))
	for t := range wanted {
		if !snap.DeadLetterTopics[t] || len(snap.Topology) == 0 {
			topics = append(topics, t)
		}
	}
	sort.Strings(topics)
	if len(topics) > maxTopoTopics {
		b.t.Hidden = fmt.Sprintf("%d more topics not drawn; see Topics.", len(topics)-maxTopoTopics)
		topics = topics[:maxTopoTopics]
	}
	drawn := map[string]bool{}
	fromSources := map[string]float64{}
	for _, src := range snap.Sources {
		if !containsString(topics, src.Topic) {
			continue
		}
		si := b.node(0, "source:"+src.Name, "source", src.Name, s.base+"/topics/"+src.Topic)
		ti := b.node(1, "topic:"+src.Topic, "topic", src.Topic, s.base+"/topics/"+src.Topic)
		drawn[src.Topic] = true
		r := snap.SourceRate[src.Name]
		fromSources[src.Topic] += r
		b.edge(si, ti, r, false)
	}
	for _, t := range topics {
		ti := b.node(1, "topic:"+t, "topic", t, s.base+"/topics/"+t)
		if rest := inRate[t] - fromSources[t]; rest > 0 || !drawn[t] {
			hi := b.node(0, "http", "http api", "HTTP API and clients", s.base+"/topics")
			b.edge(hi, ti, max(rest, 0), false)
		}
		drawn[t] = true
	}
	s.drawRoutes(b, snap, drawn)
	last := 3
	if b.counts[4] > 0 {
		last = 4
	} else {
		b.t.Columns = b.t.Columns[:4]
	}
	b.t.Width = topoCols[last].x + topoCols[last].w + 10
	rows := max(b.counts[0], b.counts[1], b.counts[2], b.counts[3], b.counts[4], 1)
	b.t.Height = topoTop + rows*(topoNodeH+topoGap)
	return b.t
}

// exchangeQueues draws the queues an embedded exchange sink routes to,
// each edge labelled with the queue's depth.
func (s *Server) exchangeQueues(b *topoBuilder, snap *Snapshot, target string, from int) {
	name, ok := strings.CutPrefix(target, "exchange:")
	if !ok || s.opts.Broker == nil {
		return
	}
	if b.drawnX == nil {
		b.drawnX = map[string]bool{}
	}
	if b.drawnX[name] {
		return // drawn for another route already
	}
	b.drawnX[name] = true
	depth := map[string]int{}
	for _, q := range snap.Queues {
		depth[q.Name] = q.Visible + q.InFlight + q.Delayed
	}
	for _, q := range snap.ExchangeQueues[name] {
		qi := b.node(4, "queue:"+q, "queue", q, s.base+"/queues/"+q)
		b.edge(from, qi, 0, false)
		e := &b.t.Edges[len(b.t.Edges)-1]
		e.Rate = views.Num(depth[q]) + " queued"
		e.Active = depth[q] > 0
	}
}

// drawRoutes draws each route of a drawn topic, its sink, its dead-letter
// target and, for an embedded exchange, the exchange's queues.
func (s *Server) drawRoutes(b *topoBuilder, snap *Snapshot, drawn map[string]bool) {
	for _, p := range snap.Topology {
		if !drawn[p.Topic] {
			continue
		}
		ti := b.nodes["topic:"+p.Topic]
		failed := false
		for _, st := range snap.Pipelines {
			if st.Name == p.Name && (st.State == "failed" || st.State == "stopped") {
				failed = true
			}
		}
		for _, r := range p.Routes {
			key := p.Name + "/" + r.Name
			ri := b.node(2, "route:"+key, "route", key, s.base+"/pipelines/"+p.Name)
			b.t.Nodes[ri].Failed = failed
			b.edge(ti, ri, snap.RouteRead[key], false)
			ki := b.node(3, "sink:"+r.Target, "sink", r.Target, s.targetHref(r.Target))
			b.edge(ri, ki, snap.RouteSent[key], false)
			s.exchangeQueues(b, snap, r.Target, ki)
			if r.DeadLetter != "" {
				di := b.node(3, "sink:"+r.DeadLetter, "dead letters", r.DeadLetter, s.targetHref(r.DeadLetter))
				b.edge(ri, di, snap.RouteDead[key], true)
			}
		}
	}
}
