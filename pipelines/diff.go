package pipelines

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// PlanDiff is what a reload from one validated config to another changes
// (issue 17, docs/reload.md): the plan `bridge reload --dry-run` prints.
// Names are sorted. A route is changed when anything that decides what it
// sends changed: its own block, its pipeline's settings (filter, transform,
// on_error, dead_letter, retry, rules, batch sizes), or the connection of
// its target. A pipeline whose `from` changed is removed and added again
// (its routes start over at `start` on the new topic), and a renamed route
// is a removed and an added route (checkpoints are kept by name).
type PlanDiff struct {
	PipelinesAdded   []string       `json:"pipelines_added,omitempty"`
	PipelinesRemoved []string       `json:"pipelines_removed,omitempty"`
	PipelinesChanged []PipelineDiff `json:"pipelines_changed,omitempty"`

	TopicsAdded []string `json:"topics_added,omitempty"`
	// TopicsRemoved are no longer declared; the log keeps their events.
	TopicsRemoved     []string          `json:"topics_removed,omitempty"`
	PartitionsChanged []PartitionChange `json:"partitions_changed,omitempty"`

	QueuesAdded      []string `json:"queues_added,omitempty"`
	QueuesRemoved    []string `json:"queues_removed,omitempty"`
	QueuesChanged    []string `json:"queues_changed,omitempty"`
	ExchangesAdded   []string `json:"exchanges_added,omitempty"`
	ExchangesRemoved []string `json:"exchanges_removed,omitempty"`
	ExchangesChanged []string `json:"exchanges_changed,omitempty"`

	ConnectionsAdded   []string `json:"connections_added,omitempty"`
	ConnectionsRemoved []string `json:"connections_removed,omitempty"`
	ConnectionsChanged []string `json:"connections_changed,omitempty"`
	SourcesAdded       []string `json:"sources_added,omitempty"`
	SourcesRemoved     []string `json:"sources_removed,omitempty"`
	SourcesChanged     []string `json:"sources_changed,omitempty"`

	// Restart lists changed settings a running process cannot take over
	// (listeners, data_dir, auth, telemetry, the backbone's own settings):
	// a reload that changes them is refused.
	Restart []string `json:"restart_required,omitempty"`
}

// PipelineDiff is the change of one pipeline present in both configs.
type PipelineDiff struct {
	Name string `json:"name"`
	// Settings is set when a pipeline-level setting changed: every route
	// of the pipeline is then in RoutesChanged.
	Settings      bool     `json:"settings_changed,omitempty"`
	RoutesAdded   []string `json:"routes_added,omitempty"`
	RoutesRemoved []string `json:"routes_removed,omitempty"`
	RoutesChanged []string `json:"routes_changed,omitempty"`
}

// PartitionChange is a topic whose partition count differs.
type PartitionChange struct {
	Topic string `json:"topic"`
	From  int    `json:"from"`
	To    int    `json:"to"`
}

// Empty reports whether the two configs run the same way.
func (d *PlanDiff) Empty() bool { return reflect.DeepEqual(*d, PlanDiff{}) }

// RouteChanges counts changed, added and removed routes over all
// pipelines, including those of added and removed pipelines.
func (d *PlanDiff) RouteChanges() int {
	n := len(d.PipelinesAdded) + len(d.PipelinesRemoved)
	for _, p := range d.PipelinesChanged {
		n += len(p.RoutesAdded) + len(p.RoutesRemoved) + len(p.RoutesChanged)
	}
	return n
}

// Pipeline returns the diff of a pipeline present in both configs.
func (d *PlanDiff) Pipeline(name string) (PipelineDiff, bool) {
	for _, p := range d.PipelinesChanged {
		if p.Name == name {
			return p, true
		}
	}
	return PipelineDiff{}, false
}

// String renders the diff one change per line, as --dry-run prints it.
func (d *PlanDiff) String() string {
	if d.Empty() {
		return "no changes\n"
	}
	var b strings.Builder
	list := func(sign, what string, names []string) {
		for _, n := range names {
			fmt.Fprintf(&b, "%s %s %s\n", sign, what, n)
		}
	}
	list("+", "pipeline", d.PipelinesAdded)
	list("-", "pipeline", d.PipelinesRemoved)
	for _, p := range d.PipelinesChanged {
		if p.Settings {
			fmt.Fprintf(&b, "~ pipeline %s (settings: every route swaps)\n", p.Name)
		}
		for _, r := range p.RoutesAdded {
			fmt.Fprintf(&b, "+ route %s/%s\n", p.Name, r)
		}
		for _, r := range p.RoutesRemoved {
			fmt.Fprintf(&b, "- route %s/%s\n", p.Name, r)
		}
		for _, r := range p.RoutesChanged {
			fmt.Fprintf(&b, "~ route %s/%s\n", p.Name, r)
		}
	}
	list("+", "topic", d.TopicsAdded)
	list("-", "topic", d.TopicsRemoved)
	for _, pc := range d.PartitionsChanged {
		fmt.Fprintf(&b, "~ topic %s partitions %d -> %d\n", pc.Topic, pc.From, pc.To)
	}
	list("+", "queue", d.QueuesAdded)
	list("-", "queue", d.QueuesRemoved)
	list("~", "queue", d.QueuesChanged)
	list("+", "exchange", d.ExchangesAdded)
	list("-", "exchange", d.ExchangesRemoved)
	list("~", "exchange", d.ExchangesChanged)
	list("+", "connection", d.ConnectionsAdded)
	list("-", "connection", d.ConnectionsRemoved)
	list("~", "connection", d.ConnectionsChanged)
	list("+", "source", d.SourcesAdded)
	list("-", "source", d.SourcesRemoved)
	list("~", "source", d.SourcesChanged)
	list("!", "restart required:", d.Restart)
	return b.String()
}

// Diff compares two validated plans (defaults applied, as Parse returns
// them).
func Diff(old, cur *Plan) *PlanDiff {
	d := &PlanDiff{}
	oc, nc := old.Config, cur.Config
	d.ConnectionsAdded, d.ConnectionsRemoved, d.ConnectionsChanged = diffMaps(oc.Connections, nc.Connections)
	d.QueuesAdded, d.QueuesRemoved, d.QueuesChanged = diffMaps(oc.Broker.Queues, nc.Broker.Queues)
	d.ExchangesAdded, d.ExchangesRemoved, d.ExchangesChanged = diffMaps(oc.Broker.Exchanges, nc.Broker.Exchanges)
	var topicsChanged []string
	d.TopicsAdded, d.TopicsRemoved, topicsChanged = diffMaps(oc.Backbone.Topics, nc.Backbone.Topics)
	for _, t := range topicsChanged {
		d.PartitionsChanged = append(d.PartitionsChanged, PartitionChange{Topic: t,
			From: oc.Backbone.Topics[t].Partitions, To: nc.Backbone.Topics[t].Partitions})
	}
	d.SourcesAdded, d.SourcesRemoved, d.SourcesChanged = diffMaps(sourcesByName(oc), sourcesByName(nc))
	d.Restart = restartSettings(oc, nc)
	changedConn := map[string]bool{}
	for _, c := range d.ConnectionsChanged {
		changedConn[c] = true
	}

	olds := pipelinesByName(old)
	news := pipelinesByName(cur)
	for name, np := range news {
		op, ok := olds[name]
		if !ok || op.cfg.From != np.cfg.From {
			d.PipelinesAdded = append(d.PipelinesAdded, name)
			if ok {
				d.PipelinesRemoved = append(d.PipelinesRemoved, name)
			}
			continue
		}
		pd := PipelineDiff{Name: name, Settings: !reflect.DeepEqual(pipelineSettings(op.cfg), pipelineSettings(np.cfg))}
		oldRoutes := map[string]*RouteConfig{}
		for j, r := range op.plan.Routes {
			oldRoutes[r.Name] = op.cfg.Routes[j]
		}
		seen := map[string]bool{}
		for j, r := range np.plan.Routes {
			seen[r.Name] = true
			orc, ok := oldRoutes[r.Name]
			switch {
			case !ok:
				pd.RoutesAdded = append(pd.RoutesAdded, r.Name)
			case pd.Settings || !reflect.DeepEqual(orc, np.cfg.Routes[j]) || changedConn[r.To.Connection]:
				pd.RoutesChanged = append(pd.RoutesChanged, r.Name)
			}
		}
		for _, r := range op.plan.Routes {
			if !seen[r.Name] {
				pd.RoutesRemoved = append(pd.RoutesRemoved, r.Name)
			}
		}
		if pd.Settings || len(pd.RoutesAdded)+len(pd.RoutesRemoved)+len(pd.RoutesChanged) > 0 {
			sort.Strings(pd.RoutesAdded)
			sort.Strings(pd.RoutesRemoved)
			sort.Strings(pd.RoutesChanged)
			d.PipelinesChanged = append(d.PipelinesChanged, pd)
		}
	}
	for name := range olds {
		if _, ok := news[name]; !ok {
			d.PipelinesRemoved = append(d.PipelinesRemoved, name)
		}
	}
	sort.Strings(d.PipelinesAdded)
	sort.Strings(d.PipelinesRemoved)
	sort.Slice(d.PipelinesChanged, func(i, j int) bool { return d.PipelinesChanged[i].Name < d.PipelinesChanged[j].Name })
	return d
}

type pipelinePair struct {
	plan *Pipeline
	cfg  *PipelineConfig
}

// pipelinesByName pairs each compiled pipeline with its config block (a
// valid plan has one Pipeline per config block, in order).
func pipelinesByName(p *Plan) map[string]pipelinePair {
	out := map[string]pipelinePair{}
	i := 0
	for _, pc := range p.Config.Pipelines {
		if pc == nil || i >= len(p.Pipelines) {
			continue
		}
		out[pc.Name] = pipelinePair{plan: p.Pipelines[i], cfg: pc}
		i++
	}
	return out
}

// pipelineSettings is a pipeline block without its routes.
func pipelineSettings(pc *PipelineConfig) PipelineConfig {
	c := *pc
	c.Routes = nil
	return c
}

func sourcesByName(c *Config) map[string]*Source {
	out := map[string]*Source{}
	for _, s := range c.Sources {
		if s != nil {
			out[s.Name] = s
		}
	}
	return out
}

// restartSettings names the top-level settings that differ and that only a
// restart applies.
func restartSettings(o, n *Config) []string {
	var out []string
	check := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	check("data_dir", o.DataDir, n.DataDir)
	check("http", o.HTTP, n.HTTP)
	check("sqs_api", o.SQSAPI, n.SQSAPI)
	check("amqp_api", o.AMQPAPI, n.AMQPAPI)
	check("kafka_api", o.KafkaAPI, n.KafkaAPI)
	check("auth", o.Auth, n.Auth)
	check("telemetry", o.Telemetry, n.Telemetry)
	check("console", o.Console, n.Console)
	check("shutdown_timeout", o.ShutdownTimeout, n.ShutdownTimeout)
	ob, nb := o.Backbone, n.Backbone
	ob.Topics, nb.Topics = nil, nil
	check("backbone", ob, nb)
	return out
}

// diffMaps compares two maps of config blocks by key and deep equality.
func diffMaps[V any](o, n map[string]V) (added, removed, changed []string) {
	for k, v := range n {
		ov, ok := o[k]
		switch {
		case !ok:
			added = append(added, k)
		case !reflect.DeepEqual(ov, v):
			changed = append(changed, k)
		}
	}
	for k := range o {
		if _, ok := n[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}
