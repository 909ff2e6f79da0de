package pipelines

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// casesFile is the `bridge test` input; see the package doc for the format.
type casesFile struct {
	Cases []testCase `yaml:"cases"`
}

type testCase struct {
	Name     string     `yaml:"name"`
	Pipeline string     `yaml:"pipeline"`
	Event    caseEvent  `yaml:"event"`
	Expect   caseExpect `yaml:"expect"`
}

type caseEvent struct {
	Key       *string           `yaml:"key"` // absent: no key (Kafka's null key)
	Headers   map[string]string `yaml:"headers"`
	Value     yaml.Node         `yaml:"value"` // a string is raw text; anything else is encoded as JSON
	Topic     string            `yaml:"topic"` // default: the pipeline's from
	Partition int32             `yaml:"partition"`
	Offset    int64             `yaml:"offset"`
	Timestamp time.Time         `yaml:"timestamp"`
	Source    string            `yaml:"source"` // default: "http"
}

type caseExpect struct {
	Routes   *[]string                 `yaml:"routes"`
	Dropped  bool                      `yaml:"dropped"`
	Error    bool                      `yaml:"error"`
	Rendered map[string]renderedExpect `yaml:"rendered"`
}

type renderedExpect struct {
	Key        *string `yaml:"key"`
	RoutingKey *string `yaml:"routing_key"`
	GroupID    *string `yaml:"group_id"`
	DedupID    *string `yaml:"dedup_id"`
}

// RunCases runs the rule test cases in casesFile against plan, writing one
// line per passing case and a readable expected/got diff per failing one to
// w. No broker is involved: each case's event goes through Evaluate (the
// engine's own decision function) and the chosen routes' key rules.
//
// err is non-nil when the cases file cannot be used at all (unreadable, not
// YAML, unknown keys, a case naming a pipeline or route that does not
// exist); it is then a join of *FieldError like Parse's, and no case runs.
func RunCases(plan *Plan, casesFile string, w io.Writer) (passed, failed int, err error) {
	data, err := os.ReadFile(casesFile)
	if err != nil {
		return 0, 0, err
	}
	cases, ix, err := parseCases(plan, casesFile, data)
	if err != nil {
		return 0, 0, err
	}
	env := rules.NewEnv()
	for i := range cases {
		c := &cases[i]
		p := ix.pos("cases[" + strconv.Itoa(i) + "]")
		if diff := runCase(plan, env, c); diff == "" {
			passed++
			fmt.Fprintf(w, "ok   %s: %s\n", p, c.Name)
		} else {
			failed++
			fmt.Fprintf(w, "FAIL %s: %s (pipeline %s)\n%s", p, c.Name, c.Pipeline, diff)
		}
	}
	return passed, failed, nil
}

func parseCases(plan *Plan, filename string, data []byte) ([]testCase, *index, error) {
	var root yaml.Node
	if err := decodeStrict(data, &root); err != nil {
		return nil, nil, joinSorted(yamlErrors(filename, nil, err))
	}
	ix := newIndex(filename, &root, data, nil)
	var f casesFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, nil, joinSorted(yamlErrors(filename, ix, err))
	}
	v := &validator{ix: ix}
	if len(f.Cases) == 0 {
		v.fail("cases", ErrRequired, "required: at least one case")
	}
	for i := range f.Cases {
		checkCase(v, plan, "cases["+strconv.Itoa(i)+"]", &f.Cases[i])
	}
	if err := joinSorted(v.errs); err != nil {
		return nil, nil, err
	}
	return f.Cases, ix, nil
}

func checkCase(v *validator, plan *Plan, p string, c *testCase) {
	if c.Name == "" {
		c.Name = p
	}
	var pl *Pipeline
	var names []string
	for _, x := range plan.Pipelines {
		names = append(names, x.Name)
		if x.Name == c.Pipeline {
			pl = x
		}
	}
	if v.ref(p+".pipeline", "pipeline", c.Pipeline, names) && c.Event.Topic == "" {
		c.Event.Topic = pl.From
	}
	if _, err := caseValue(&c.Event.Value); err != nil {
		v.fail(p+".event.value", ErrInvalid, "%v", err)
	}
	e := &c.Expect
	set := 0
	for _, b := range []bool{e.Routes != nil, e.Dropped, e.Error} {
		if b {
			set++
		}
	}
	if set != 1 {
		v.fail(p+".expect", ErrConflict, "set exactly one of routes, dropped: true, error: true")
	}
	if pl == nil {
		return
	}
	var routeNames []string
	for _, r := range pl.Routes {
		routeNames = append(routeNames, r.Name)
	}
	if e.Routes != nil {
		for j, r := range *e.Routes {
			v.ref(p+".expect.routes["+strconv.Itoa(j)+"]", "route", r, routeNames)
		}
	}
	for _, r := range sortedKeys(e.Rendered) {
		if e.Routes == nil || !slices.Contains(*e.Routes, r) {
			v.failKey(joinKey(p+".expect.rendered", r), ErrInvalid, "route %q is not in expect.routes", r)
		}
	}
}

// caseValue turns a case's value into event bytes: a YAML string is taken
// as the raw value (so '{"a":1}' and 'not json' both work), anything else
// (a mapping, list, number) is encoded as JSON.
func caseValue(n *yaml.Node) ([]byte, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		return []byte(n.Value), nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("value cannot be written as JSON: %w", err)
	}
	return out, nil
}

// runCase returns "" when c passes, else the indented diff to print.
func runCase(plan *Plan, env *rules.Env, c *testCase) string {
	var pl *Pipeline
	for _, x := range plan.Pipelines {
		if x.Name == c.Pipeline {
			pl = x
		}
	}
	ev := c.Event.toEvent()
	routes, err := Evaluate(pl, env, ev)
	got := make([]string, 0, len(routes))
	rendered := map[string]Rendered{}
	for _, r := range routes {
		got = append(got, r.Name)
		if err == nil {
			var rd Rendered
			if rd, err = r.To.Render(env, pl.Name, r.Name); err == nil {
				rendered[r.Name] = rd
			}
		}
	}
	var diff strings.Builder
	e := &c.Expect
	isDropped := err == nil && len(routes) == 0 && dropped(pl, env, ev)
	gotText := outcome(routes)
	if isDropped {
		gotText = "dropped by the filter"
	}
	switch {
	case err != nil && !e.Error:
		fmt.Fprintf(&diff, "    expected: %s\n    got:      rule error: %s\n", expected(e),
			strings.ReplaceAll(err.Error(), "\n", "\n      "))
		return diff.String()
	case err == nil && e.Error:
		fmt.Fprintf(&diff, "    expected: a rule error\n    got:      %s\n", gotText)
	case e.Dropped && !isDropped:
		fmt.Fprintf(&diff, "    expected: dropped by the filter\n    got:      %s\n", gotText)
	case e.Routes != nil && (isDropped || !slices.Equal(*e.Routes, got)):
		fmt.Fprintf(&diff, "    expected: %s\n    got:      %s\n", outcomeNames(*e.Routes), gotText)
	}
	for _, name := range sortedKeys(e.Rendered) {
		want, have := e.Rendered[name], rendered[name]
		for _, f := range []struct {
			field string
			want  *string
			got   string
			has   bool
		}{
			{"key", want.Key, have.Key, have.HasKey},
			{"routing_key", want.RoutingKey, have.RoutingKey, have.HasRoutingKey},
			{"group_id", want.GroupID, have.GroupID, have.HasGroupID},
			{"dedup_id", want.DedupID, have.DedupID, have.HasDedupID},
		} {
			if f.want != nil && (!f.has || *f.want != f.got) {
				gotText := "(not set)"
				if f.has {
					gotText = strconv.Quote(f.got)
				}
				fmt.Fprintf(&diff, "    %s of route %s:\n      expected: %q\n      got:      %s\n", f.field, name, *f.want, gotText)
			}
		}
	}
	return diff.String()
}

// dropped tells "the filter rejected the event" apart from "it passed but
// no route's when held", which Evaluate reports the same way (no routes).
func dropped(p *Pipeline, env *rules.Env, ev *event.Event) bool {
	if p.Filter == nil {
		return false
	}
	env.Reset(ev)
	pass, err := p.Filter.EvalBool(env)
	return err == nil && !pass
}

func expected(e *caseExpect) string {
	switch {
	case e.Dropped:
		return "dropped by the filter"
	case e.Routes != nil:
		return outcomeNames(*e.Routes)
	}
	return "a rule error"
}

func outcome(routes []*Route) string {
	names := make([]string, len(routes))
	for i, r := range routes {
		names[i] = r.Name
	}
	return outcomeNames(names)
}

func outcomeNames(names []string) string { return "routes [" + strings.Join(names, ", ") + "]" }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (c *caseEvent) toEvent() *event.Event {
	value, _ := caseValue(&c.Value) // checked in checkCase
	ev := &event.Event{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset, Value: value,
		Timestamp: c.Timestamp, Source: c.Source}
	if ev.Source == "" {
		ev.Source = "http"
	}
	if c.Key != nil {
		ev.Key = []byte(*c.Key)
	}
	for _, k := range sortedKeys(c.Headers) {
		ev.Headers = append(ev.Headers, event.Header{Key: k, Value: []byte(c.Headers[k])})
	}
	return ev
}
