package pipelines

import (
	"strconv"
	"strings"
	"testing"
)

func TestInterpolate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOST": "db.local", "EMPTY": "", "PORT": "5432", "DOLLAR": "$HOME"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, in, want string
		errs           []string // "line:col: substring"
	}{
		{"no dollar", "a: b\n", "a: b\n", nil},
		{"plain", "h: ${HOST}\n", "h: db.local\n", nil},
		{"two on a line", "u: ${HOST}:${PORT}", "u: db.local:5432", nil},
		{"default unused", "h: ${HOST:-x}", "h: db.local", nil},
		{"default for unset", "h: ${NOPE:-fallback}", "h: fallback", nil},
		{"default for empty", "h: ${EMPTY:-fallback}", "h: fallback", nil},
		{"empty default", "h: '${NOPE:-}'", "h: ''", nil},
		{"set but empty without default", "h: '${EMPTY}'", "h: ''", nil},
		{"default with colon and slash", "u: ${NOPE:-amqp://g:g@h:5672/}", "u: amqp://g:g@h:5672/", nil},
		{"escaped dollar", "p: $${HOST} $$5", "p: ${HOST} $5", nil},
		{"lone dollar kept", "p: cost $5 $", "p: cost $5 $", nil},
		{"value not re-expanded", "p: ${DOLLAR}", "p: $HOME", nil},
		{"comment line untouched", "  # ${NOPE}\na: 1", "  # ${NOPE}\na: 1", nil},
		{"unset", "a: 1\nb: x ${NOPE}", "", []string{"2:6: environment variable NOPE is not set"}},
		{"all unset reported", "a: ${A}\nb: ${B} ${C}", "", []string{"1:4: A is not set", "2:4: B is not set", "2:9: C is not set"}},
		{"bad name", "a: ${1X}", "", []string{`1:4: "${" must be followed by a variable name`}},
		{"unterminated default", "a: ${X:-abc", "", []string{"1:4: unterminated ${X:-"}},
		{"unterminated", "a: ${X", "", []string{`1:4: "${" must be followed`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _, refs := interpolate([]byte(tc.in), lookup)
			if len(refs) != len(tc.errs) {
				t.Fatalf("got %d errors %+v, want %v", len(refs), refs, tc.errs)
			}
			for i, r := range refs {
				got := strconv.Itoa(r.line) + ":" + strconv.Itoa(r.col) + ": " + r.msg
				prefix, sub, _ := strings.Cut(tc.errs[i], ": ")
				if !strings.HasPrefix(got, prefix+": ") || !strings.Contains(r.msg, sub) {
					t.Errorf("error %d = %q, want %q", i, got, tc.errs[i])
				}
			}
			if tc.errs == nil && string(out) != tc.want {
				t.Fatalf("interpolate(%q) = %q, want %q", tc.in, out, tc.want)
			}
		})
	}
}

// TestColumnMapping checks that positions after a substitution on the same
// line are reported in the file's own columns.
func TestColumnMapping(t *testing.T) {
	t.Parallel()
	lookup := func(k string) (string, bool) {
		return map[string]string{"LONG": "a-much-longer-value", "S": "x"}[k], true
	}
	in := "k: { a: ${LONG}, b: $$, c: ${S}, d: here }"
	out, cols, refs := interpolate([]byte(in), lookup)
	if len(refs) != 0 {
		t.Fatal(refs)
	}
	for _, word := range []string{"b:", "c:", "d:", "here"} {
		outCol := strings.Index(string(out), word) + 1
		inCol := strings.Index(in, word) + 1
		if got := cols.original(1, outCol); got != inCol {
			t.Errorf("%q: column %d in output maps to %d, want %d", word, outCol, got, inCol)
		}
	}
	// Inside a substituted value, the position is the reference itself.
	if got, want := cols.original(1, strings.Index(string(out), "longer")+1), strings.Index(in, "${LONG}")+1; got != want {
		t.Errorf("inside value: got column %d, want %d", got, want)
	}
	if got := cols.original(2, 7); got != 7 {
		t.Errorf("untouched line: got column %d, want 7", got)
	}
}
