package pipelines

import (
	"bytes"
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/rules"
)

func addSeedFiles(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(p)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

// FuzzParse feeds arbitrary bytes to Parse. Invariants: no panic; a failure
// is a non-empty, position-sorted join of *FieldError naming the file; a
// success is a plan whose pipelines all have uniquely named, typed routes;
// and Parse is deterministic.
func FuzzParse(f *testing.F) {
	addSeedFiles(f, "testdata/valid/*.yaml", "testdata/invalid/*.yaml", "examples/*.yaml")
	f.Add([]byte(""))
	f.Add([]byte("pipelines: [ { name: p, from: t, routes: [ { to: { topic: t } } ] } ]\nbackbone: { topics: { t: {} } }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, err := Parse("f.yaml", data, testEnv)
		_, err2 := Parse("f.yaml", data, testEnv)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Parse is not deterministic:\n%v\n---\n%v", err, err2)
		}
		if err != nil {
			checkErrorJoin(t, err)
			return
		}
		if plan == nil || plan.Config == nil {
			t.Fatal("nil plan without error")
		}
		for _, p := range plan.Pipelines {
			if p.Name == "" || len(p.Routes) == 0 {
				t.Fatalf("pipeline %+v accepted without a name or routes", p)
			}
			seen := map[string]bool{}
			for _, r := range p.Routes {
				if r.Name == "" || seen[r.Name] || r.To.Kind < TargetTopic || r.To.Kind > TargetSQS {
					t.Fatalf("pipeline %s: bad route %+v", p.Name, r)
				}
				seen[r.Name] = true
			}
		}
	})
}

func checkErrorJoin(t *testing.T, err error) {
	t.Helper()
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	if len(list) == 0 {
		t.Fatal("empty error join")
	}
	var prev *FieldError
	for _, e := range list {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%T %q is not a *FieldError", e, e)
		}
		if fe.Pos.File != "f.yaml" || fe.Pos.Line < 0 || fe.Pos.Col < 0 || fe.Err == nil || fe.Error() == "" {
			t.Fatalf("malformed FieldError %+v", fe)
		}
		if prev != nil && cmp.Or(cmp.Compare(prev.Pos.Line, fe.Pos.Line), cmp.Compare(prev.Pos.Col, fe.Pos.Col)) > 0 {
			t.Fatalf("errors out of order: %v before %v", prev, fe)
		}
		prev = fe
	}
}

// FuzzInterpolate checks the interpolator: text without "$" is unchanged,
// and the column map of every line is monotonic and lands inside the line
// as written.
func FuzzInterpolate(f *testing.F) {
	addSeedFiles(f, "testdata/invalid/*env*.yaml", "testdata/valid/spec.yaml")
	f.Add([]byte("a: ${DEFINED}:${EMPTY:-d} $$ $x ${"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, cols, refs := interpolate(data, testEnv)
		if !bytes.Contains(data, []byte("$")) {
			if !bytes.Equal(out, data) || len(refs) != 0 || len(cols) != 0 {
				t.Fatalf("text without $ changed: %q -> %q (%d refs)", data, out, len(refs))
			}
			return
		}
		inLines := strings.SplitAfter(string(data), "\n")
		outLines := strings.SplitAfter(string(out), "\n")
		for _, r := range refs {
			if r.line < 1 || r.line > len(inLines) || r.col < 1 || r.col > len(inLines[r.line-1]) {
				t.Fatalf("reference position %d:%d outside the input", r.line, r.col)
			}
		}
		if len(refs) > 0 || len(inLines) != len(outLines) {
			return // values with newlines may shift lines: documented
		}
		for i, ol := range outLines {
			prev := 0
			for c := 1; c <= len(ol)+1; c++ {
				o := cols.original(i+1, c)
				if o < prev || o < 1 || o > len(inLines[i])+1 {
					t.Fatalf("line %d: column %d maps to %d (previous %d, line length %d)", i+1, c, o, prev, len(inLines[i]))
				}
				prev = o
			}
		}
	})
}

// FuzzCases feeds arbitrary case files to the `bridge test` reader.
// Invariants: no panic; an unusable file is a join of *FieldError; a usable
// one runs every case exactly once (passed + failed = cases) with the same
// output on a second run.
func FuzzCases(f *testing.F) {
	var plans []*Plan
	for _, cfg := range []string{"testdata/cases/config.yaml", "testdata/cases/transform-config.yaml", "examples/order-tasks.yaml"} {
		plan, err := Load(cfg)
		if err != nil {
			f.Fatal(err)
		}
		plans = append(plans, plan)
	}
	addSeedFiles(f, "testdata/cases/*.cases.yaml", "examples/order-tasks.cases.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, plan := range plans {
			cases, _, err := parseCases(plan, "f.yaml", data)
			if err != nil {
				checkErrorJoin(t, err)
				continue
			}
			var first, second strings.Builder
			env := rules.NewEnv()
			fixed := time.Unix(1_700_000_000, 0)
			for i := range cases {
				if cases[i].Now == nil {
					cases[i].Now = &fixed // now() would differ between the runs
				}
				first.WriteString(runCase(plan, env, &cases[i]))
				second.WriteString(runCase(plan, env, &cases[i]))
			}
			if first.String() != second.String() {
				t.Fatalf("runs differ:\n%s\n---\n%s", first.String(), second.String())
			}
		}
	})
}
