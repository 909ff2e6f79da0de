package pipelines

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleCases runs every examples/X.cases.yaml against examples/X.yaml:
// the shipped examples must pass, as `bridge test` would run them.
func TestExampleCases(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("examples/*.cases.yaml")
	if len(files) < 2 {
		t.Fatalf("found only %v", files)
	}
	for _, cases := range files {
		t.Run(filepath.Base(cases), func(t *testing.T) {
			t.Parallel()
			plan, err := Load(strings.TrimSuffix(cases, ".cases.yaml") + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			passed, failed, err := RunCases(plan, cases, &out)
			if err != nil || failed != 0 || passed == 0 {
				t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
			}
			if n := strings.Count(out.String(), "\nok   ") + 1; n != passed {
				t.Fatalf("printed %d ok lines for %d passes:\n%s", n, passed, out.String())
			}
		})
	}
}

// TestRunCasesGolden checks the exact output for failing cases (the diff a
// user reads) and the exact errors for unusable case files.
func TestRunCasesGolden(t *testing.T) {
	t.Parallel()
	runCasesGolden(t, "testdata/cases/config.yaml", []casesGolden{
		{"failing", 2, 6, false},
		{"coordinates", 3, 0, false},
		{"invalid", 0, 0, true},
		{"unknown-key", 0, 0, true},
	})
}

// TestTransformCasesGolden checks the diffs of output assertions (values,
// keys, headers, counts) and the errors of unusable ones.
func TestTransformCasesGolden(t *testing.T) {
	t.Parallel()
	runCasesGolden(t, "testdata/cases/transform-config.yaml", []casesGolden{
		{"transform", 1, 2, false},
		{"transform-invalid", 0, 0, true},
	})
}

// casesGolden is one cases file of testdata/cases, its expected counts,
// and whether it is unusable; its output is in FILE.out.
type casesGolden struct {
	file                 string
	wantPassed, wantFail int
	wantErr              bool
}

func runCasesGolden(t *testing.T, config string, tests []casesGolden) {
	t.Helper()
	plan, err := Load(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			passed, failed, err := RunCases(plan, "testdata/cases/"+tc.file+".cases.yaml", &out)
			if passed != tc.wantPassed || failed != tc.wantFail || (err != nil) != tc.wantErr {
				t.Fatalf("passed %d failed %d err %v; want %d %d err=%v\n%s", passed, failed, err,
					tc.wantPassed, tc.wantFail, tc.wantErr, out.String())
			}
			got := out.String()
			if err != nil {
				assertAllFieldErrors(t, err)
				got = err.Error() + "\n"
			}
			golden := "testdata/cases/" + tc.file + ".out"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s\n--- want\n%s--- got\n%s", golden, want, got)
			}
		})
	}
}
