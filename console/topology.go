package console

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bridgeio/bridge/console/views"
)

// Topology layout: four columns (producers and sources, topics, routes,
// sinks), one box per thing, edges as curves with the rate over the last
// tick. Only topics that something writes to through a source or that a
// pipeline reads are drawn, at most maxTopoTopics of them, so the graph
// stays readable and cheap with thousands of topics.
const (
	maxTopoTopics = 30
	topoNodeH     = 36
	topoGap       = 12
	topoTop       = 24
)

var topoCols = [4]struct{ x, w int }{{10, 190}, {250, 200}, {510, 220}, {790, 230}}

type topoBuilder struct {
	t      views.Topology
	nodes  map[string]int // key → index in t.Nodes
	counts [4]int
	base   string
}

func (b *topoBuilder) node(col int, key, kind, label, href string) int {
	if i, ok := b.nodes[key]; ok {
		return i
	}
	y := topoTop + b.counts[col]*(topoNodeH+topoGap)
	b.counts[col]++
	b.t.Nodes = append(b.t.Nodes, views.TopoNode{Kind: kind, Label: shorten(label, 28), X: topoCols[col].x, Y: y,
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
		{X: topoCols[2].x, Text: "pipeline / route"}, {X: topoCols[3].x, Text: "sinks"}}
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
			if r.DeadLetter != "" {
				di := b.node(3, "sink:"+r.DeadLetter, "dead letters", r.DeadLetter, s.targetHref(r.DeadLetter))
				b.edge(ri, di, snap.RouteDead[key], true)
			}
		}
	}
	b.t.Width = topoCols[3].x + topoCols[3].w + 10
	rows := max(b.counts[0], b.counts[1], b.counts[2], b.counts[3], 1)
	b.t.Height = topoTop + rows*(topoNodeH+topoGap)
	return b.t
}
