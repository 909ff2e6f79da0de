package pipelines

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Sentinels a FieldError wraps, so callers can branch with errors.Is. The
// rendered message is the specific one ("exchange \"order\" not found (did
// you mean \"orders\"?)"), not the sentinel's text.
var (
	ErrSyntax       = errors.New("pipelines: YAML syntax error")
	ErrEnv          = errors.New("pipelines: environment interpolation failed")
	ErrUnknownField = errors.New("pipelines: unknown field")
	ErrType         = errors.New("pipelines: wrong value type")
	ErrRequired     = errors.New("pipelines: required field missing")
	ErrInvalid      = errors.New("pipelines: invalid value")
	ErrNotFound     = errors.New("pipelines: reference to something that does not exist")
	ErrDuplicate    = errors.New("pipelines: duplicate name")
	ErrRule         = errors.New("pipelines: rule does not compile")
	ErrConflict     = errors.New("pipelines: conflicting fields")
)

// Pos is a position in a config file. Line and Col are 1-based; Col is 0
// when only the line is known (some yaml.v3 syntax errors), and Line is 0
// when the position is unknown.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// FieldError is one problem in a config file, rendered as
// "FILE:LINE:COL: path.to.field: message". Field is empty for problems that
// belong to no field (a YAML syntax error).
type FieldError struct {
	Pos   Pos
	Field string // "pipelines[0].routes[1].to.exchange"
	Err   error  // wraps one of the Err* sentinels
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", e.Pos, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Pos, e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// problem is a message that unwraps to a sentinel without repeating the
// sentinel's text.
type problem struct {
	kind error
	msg  string
}

func (p *problem) Error() string { return p.msg }
func (p *problem) Unwrap() error { return p.kind }

func errf(kind error, format string, args ...any) error {
	return &problem{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// joinSorted orders errs by position (then field, for a stable output) and
// joins them; nil when errs is empty.
func joinSorted(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *FieldError) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Field, b.Field))
	})
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// suggest returns ` (did you mean "X"?)` for the candidate closest to name,
// or "" when none is close enough to be a plausible typo.
func suggest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(name, c)
		if bestDist < 0 || d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	// A distance up to a third of the name (at least 1, at most 3) is a
	// typo; beyond that the "suggestion" is noise.
	limit := min(max(len(name)/3, 1), 3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance over bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
