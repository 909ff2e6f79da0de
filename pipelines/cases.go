package pipelines

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
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
	// Now fixes the time now() returns, so cases over it are exact.
	Now *time.Time `yaml:"now"`
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
	// Outputs lists, per route, every event the route sends, in order.
	Outputs map[string][]outputExpect `yaml:"outputs"`
	// Parts is, per route, how many events the route sends.
	Parts map[string]int `yaml:"parts"`
}

// outputExpect is one expected output event. Unset fields are not checked.
type outputExpect struct {
	// Value: a YAML string is the exact text; a mapping, list, number or
	// boolean is compared as a JSON value (key order and number spelling
	// aside); null means no value.
	Value yaml.Node `yaml:"value"`
	Key   *string   `yaml:"key"` // the key the target receives
	// Headers are checked by name; a null value means "absent".
	Headers       map[string]*string `yaml:"headers"`
	RoutingKey    *string            `yaml:"routing_key"`
	GroupID       *string            `yaml:"group_id"`
	DedupID       *string            `yaml:"dedup_id"`
	messageExpect `yaml:",inline"`
}

type renderedExpect struct {
	Key           *string `yaml:"key"`
	RoutingKey    *string `yaml:"routing_key"`
	GroupID       *string `yaml:"group_id"`
	DedupID       *string `yaml:"dedup_id"`
	messageExpect `yaml:",inline"`
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
	for field, names := range map[string][]string{"rendered": sortedKeys(e.Rendered), "outputs": sortedKeys(e.Outputs),
		"parts": sortedKeys(e.Parts)} {
		for _, r := range names {
			if e.Routes == nil || !slices.Contains(*e.Routes, r) {
				v.failKey(joinKey(p+".expect."+field, r), ErrInvalid, "route %q is not in expect.routes", r)
			}
		}
	}
	for _, r := range sortedKeys(e.Outputs) {
		for j := range e.Outputs[r] {
			n := &e.Outputs[r][j].Value
			if n.Kind != 0 && n.Tag != "!!null" && n.Tag != "!!str" {
				if _, err := caseValue(n); err != nil {
					v.fail(joinKey(p+".expect.outputs", r)+"["+strconv.Itoa(j)+"].value", ErrInvalid, "%v", err)
				}
			}
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
	env.SetClock(time.Now)
	if c.Now != nil {
		now := *c.Now
		env.SetClock(func() time.Time { return now })
	}
	ev := c.Event.toEvent()
	var buf rules.Buffer
	passed, outs, err := Outputs(pl, env, ev, &buf)
	got := make([]string, 0, len(outs))
	byRoute := map[string]RouteOutput{}
	for _, o := range outs {
		got = append(got, o.Route.Name)
		byRoute[o.Route.Name] = o
	}
	var diff strings.Builder
	e := &c.Expect
	isDropped := err == nil && !passed
	gotText := outcomeNames(got)
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
		o := byRoute[name]
		for i := range max(len(o.Rendered), 1) {
			var have Rendered
			if i < len(o.Rendered) {
				have = o.Rendered[i]
			}
			diffRendered(&diff, outputName(name, i, len(o.Rendered)), rendered(e.Rendered[name]), have)
		}
	}
	for _, name := range sortedKeys(e.Parts) {
		if n := len(byRoute[name].Events); n != e.Parts[name] {
			fmt.Fprintf(&diff, "    parts of route %s:\n      expected: %d\n      got:      %d\n", name, e.Parts[name], n)
		}
	}
	for _, name := range sortedKeys(e.Outputs) {
		diffOutputs(&diff, name, e.Outputs[name], byRoute[name])
	}
	return diff.String()
}

func rendered(r renderedExpect) outputExpect {
	return outputExpect{Key: r.Key, RoutingKey: r.RoutingKey, GroupID: r.GroupID, DedupID: r.DedupID, messageExpect: r.messageExpect}
}

// outputName names output i of a route's n in messages: "route eu" when
// there is one, "route eu output 2" (1-based) otherwise.
func outputName(route string, i, n int) string {
	if n <= 1 {
		return "route " + route
	}
	return "route " + route + " output " + strconv.Itoa(i+1)
}

// diffRendered compares the key and the target's computed values.
func diffRendered(diff *strings.Builder, what string, want outputExpect, have Rendered) {
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
			fmt.Fprintf(diff, "    %s of %s:\n      expected: %q\n      got:      %s\n", f.field, what, *f.want, quoteOrUnset(f.got, f.has))
		}
	}
	diffMessage(diff, what, &want.messageExpect, &have.Message)
}

func quoteOrUnset(s string, has bool) string {
	if !has {
		return "(not set)"
	}
	return strconv.Quote(s)
}

// diffOutputs compares a route's output events with the expected ones.
func diffOutputs(diff *strings.Builder, route string, want []outputExpect, got RouteOutput) {
	if len(want) != len(got.Events) {
		fmt.Fprintf(diff, "    outputs of route %s:\n      expected: %d events\n      got:      %d events\n", route, len(want), len(got.Events))
	}
	for i := range min(len(want), len(got.Events)) {
		w, ev, what := &want[i], &got.Events[i], outputName(route, i, max(len(want), len(got.Events)))
		if msg := diffValue(&w.Value, ev.Value); msg != "" {
			fmt.Fprintf(diff, "    value of %s:\n%s", what, msg)
		}
		// The key a target receives: its key rule's when it has one, else
		// the event's (Outputs applied the rule to the event already).
		rd := got.Rendered[i]
		rd.Key, rd.HasKey = string(ev.Key), ev.Key != nil
		diffRendered(diff, what, outputExpect{Key: w.Key, RoutingKey: w.RoutingKey, GroupID: w.GroupID, DedupID: w.DedupID, messageExpect: w.messageExpect}, rd)
		for _, name := range sortedKeys(w.Headers) {
			h, has := ev.Header(name)
			switch want := w.Headers[name]; {
			case want == nil && has:
				fmt.Fprintf(diff, "    header %s of %s:\n      expected: (absent)\n      got:      %q\n", name, what, h)
			case want != nil && (!has || string(h) != *want):
				fmt.Fprintf(diff, "    header %s of %s:\n      expected: %q\n      got:      %s\n", name, what, *want, quoteOrUnset(string(h), has))
			}
		}
	}
}

// diffValue compares an output value with the expectation n (see
// outputExpect.Value); "" when they agree or n is not set.
func diffValue(n *yaml.Node, got []byte) string {
	switch {
	case n.Kind == 0:
		return ""
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		if len(got) == 0 {
			return ""
		}
		return fmt.Sprintf("      expected: (no value)\n      got:      %s\n", got)
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		if string(got) == n.Value {
			return ""
		}
		return fmt.Sprintf("      expected: %q\n      got:      %q\n", n.Value, got)
	}
	want, _ := caseValue(n) // checked in checkCase
	var w, g any
	_ = json.Unmarshal(want, &w)
	if json.Unmarshal(got, &g) == nil && reflect.DeepEqual(w, g) {
		return ""
	}
	return fmt.Sprintf("      expected: %s\n      got:      %s\n", want, got)
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
