package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/rules"
)

// preview is `bridge tail --transform FILE`: each event read from the
// topic goes through a pipeline of FILE (filter, transforms, when, target
// rules: pipelines.Outputs, the chain `bridge test` runs), and what each
// route would send is printed. Nothing is sent anywhere.
type preview struct {
	p   *pipelines.Pipeline
	env *rules.Env
	buf rules.Buffer
}

// newPreview picks the pipeline of plan named name, or, when name is "",
// the one pipeline that reads topic.
func newPreview(plan *pipelines.Plan, name, topic string) (*preview, error) {
	var found []*pipelines.Pipeline
	var names []string
	for _, p := range plan.Pipelines {
		names = append(names, p.Name)
		if (name != "" && p.Name == name) || (name == "" && p.From == topic) {
			found = append(found, p)
		}
	}
	switch {
	case len(found) == 1:
		return &preview{p: found[0], env: rules.NewEnv()}, nil
	case name != "":
		return nil, fmt.Errorf("--pipeline %s: not in the config (pipelines: %s)", name, strings.Join(names, ", "))
	case len(found) == 0:
		return nil, fmt.Errorf("no pipeline of the config reads topic %s; name one with --pipeline", topic)
	}
	return nil, fmt.Errorf("several pipelines read topic %s; name one with --pipeline", topic)
}

// previewOutput is one output in -o json.
type previewOutput struct {
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Route       string            `json:"route,omitempty"`
	Key         *string           `json:"key,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueText   *string           `json:"value_text,omitempty"`
	ValueBase64 string            `json:"value_base64,omitempty"`
	RoutingKey  string            `json:"routing_key,omitempty"`
	GroupID     string            `json:"group_id,omitempty"`
	DedupID     string            `json:"dedup_id,omitempty"`
	Dropped     string            `json:"dropped,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// show prints what the pipeline makes of one event read from topic; it
// returns how many outputs it printed.
func (pv *preview) show(w io.Writer, topic string, we wireEvent, output string) int {
	ev := wireToEvent(topic, we)
	pv.buf.Reset() // the previous event's outputs are printed
	passed, outs, err := pipelines.Outputs(pv.p, pv.env, &ev, &pv.buf)
	base := previewOutput{Partition: we.Partition, Offset: we.Offset}
	switch {
	case err != nil:
		base.Error = err.Error()
		printPreview(w, base, output)
		return 0
	case !passed:
		return 0
	case len(outs) == 0:
		base.Dropped = "no route takes it"
		printPreview(w, base, output)
		return 0
	}
	n := 0
	for _, o := range outs {
		for i, out := range o.Events {
			po := base
			po.Route = o.Route.Name
			if out.Key != nil {
				k := string(out.Key)
				po.Key = &k
			}
			po.Headers = map[string]string{}
			for _, h := range out.Headers {
				po.Headers[h.Key] = string(h.Value)
			}
			switch {
			case json.Valid(out.Value):
				po.Value = json.RawMessage(out.Value)
			case utf8.Valid(out.Value):
				s := string(out.Value)
				po.ValueText = &s
			default:
				po.ValueBase64 = base64.StdEncoding.EncodeToString(out.Value)
			}
			rd := o.Rendered[i]
			po.RoutingKey, po.GroupID, po.DedupID = rd.RoutingKey, rd.GroupID, rd.DedupID
			printPreview(w, po, output)
			n++
		}
	}
	return n
}

func printPreview(w io.Writer, po previewOutput, output string) {
	if output == "json" {
		b, _ := json.Marshal(po)
		fmt.Fprintln(w, string(b))
		return
	}
	at := fmt.Sprintf("%d/%d", po.Partition, po.Offset)
	switch {
	case po.Error != "":
		fmt.Fprintf(w, "%s\terror: %s\n", at, strings.ReplaceAll(po.Error, "\n", " "))
		return
	case po.Dropped != "":
		fmt.Fprintf(w, "%s\t%s\n", at, po.Dropped)
		return
	}
	key := "-"
	if po.Key != nil {
		key = *po.Key
	}
	value := string(po.Value)
	switch {
	case po.ValueText != nil:
		value = *po.ValueText
	case po.ValueBase64 != "":
		value = "base64:" + po.ValueBase64
	}
	extra := ""
	for _, kv := range [][2]string{{"routing_key", po.RoutingKey}, {"group_id", po.GroupID}, {"dedup_id", po.DedupID},
		{"part", po.Headers[rules.HeaderSplitIndex]}} {
		if kv[1] != "" {
			extra += "\t" + kv[0] + "=" + kv[1]
		}
	}
	fmt.Fprintf(w, "%s\t-> %s\tkey=%s%s\t%s\n", at, po.Route, key, extra, value)
}
