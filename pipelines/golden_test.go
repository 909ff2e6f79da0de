package pipelines

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.err from the current output")

// testEnv is the only environment the golden files see, so their output
// does not depend on the machine.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{"DEFINED": "value", "EMPTY": ""}[name]
	return v, ok
}

// TestInvalidGolden checks that every file under testdata/invalid fails
// with exactly the messages in its .err file (pebble's datadriven style:
// the expected output is data, reviewed in diffs). Run with -update to
// regenerate after an intended change, then read the diff.
func TestInvalidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Parse(file, data, testEnv)
			if err == nil {
				t.Fatalf("Parse succeeded (plan with %d pipelines); want errors", len(plan.Pipelines))
			}
			assertAllFieldErrors(t, err)
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s\n--- want\n%s--- got\n%s", golden, want, got)
			}
		})
	}
}

// assertAllFieldErrors checks the error contract: a join of *FieldError,
// each with a file position.
func assertAllFieldErrors(t *testing.T, err error) {
	t.Helper()
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Errorf("error %q (%T) is not a *FieldError", e, e)
			continue
		}
		if fe.Pos.File == "" || fe.Pos.Line == 0 {
			t.Errorf("error %q has no line", fe)
		}
	}
}

// TestValidLoad checks that every file under testdata/valid and every
// example config loads.
func TestValidLoad(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	examples, _ := filepath.Glob("examples/*.yaml")
	for _, f := range examples {
		if !strings.HasSuffix(f, ".cases.yaml") {
			files = append(files, f)
		}
	}
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Parse(file, data, testEnv)
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			if len(plan.Pipelines) == 0 {
				t.Fatalf("no pipelines in %s", file)
			}
		})
	}
}
