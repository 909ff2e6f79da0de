package pipelines

import (
	"strconv"
	"strings"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// reservedHeaders are set by bridge on every output; a transform may not
// set or remove them (bridge-event-id names the source event for
// deduplication, bridge-split-index is the part's place in it).
var reservedHeaders = []string{event.HeaderEventID, rules.HeaderSplitIndex}

// transform checks and compiles a transform block; step names it in
// uuid() derivations ("pipeline", "route NAME"). nil when tc is nil or
// something failed (the failure is recorded).
func (v *validator) transform(p string, tc *TransformConfig, step string) *rules.Transform {
	if tc == nil {
		return nil
	}
	h := tc.Headers
	if tc.Split == "" && tc.DropIf == "" && tc.Value == "" && tc.Key == "" && len(h.Set) == 0 && len(h.Remove) == 0 {
		v.fail(p, ErrRequired, "an empty transform: set value, key, headers, split or drop_if")
		return nil
	}
	errs := len(v.errs)
	t := &rules.Transform{Step: step}
	scope := rules.EventScope
	if tc.Split != "" {
		t.Split = v.compileIn(p+".split", tc.Split, rules.List, rules.EventScope)
		scope = rules.SplitScope
	}
	t.DropIf = v.compileIn(p+".drop_if", tc.DropIf, rules.Bool, scope)
	t.Value = v.compileIn(p+".value", tc.Value, rules.Value, scope)
	t.Key = v.compileIn(p+".key", tc.Key, rules.String, scope)
	for _, name := range sortedKeys(h.Set) {
		hp := joinKey(p+".headers.set", name)
		if !v.headerName(hp, name, true) {
			continue
		}
		if h.Set[name] == "" {
			v.fail(hp, ErrRequired, "required: an expression (a literal text is written '\"text\"')")
			continue
		}
		t.Set = append(t.Set, rules.HeaderRule{Name: name, Rule: v.compileIn(hp, h.Set[name], rules.String, scope)})
	}
	for i, name := range h.Remove {
		rp := p + ".headers.remove[" + strconv.Itoa(i) + "]"
		if !v.headerName(rp, name, false) {
			continue
		}
		if _, set := h.Set[name]; set {
			v.fail(rp, ErrConflict, "header %q is both set and removed (set replaces it already)", name)
			continue
		}
		t.Remove = append(t.Remove, name)
	}
	if len(v.errs) > errs {
		return nil
	}
	return t
}

// headerName checks a header a transform sets or removes; isKey says the
// name is a mapping key (the position is the key's).
func (v *validator) headerName(p, name string, isKey bool) bool {
	fail := v.fail
	if isKey {
		fail = v.failKey
	}
	switch {
	case strings.TrimSpace(name) == "":
		fail(p, ErrRequired, "a header name is required")
		return false
	case isReserved(name):
		fail(p, ErrInvalid, "header %q is set by bridge on every output and cannot be changed", name)
		return false
	}
	return true
}

func isReserved(name string) bool {
	for _, r := range reservedHeaders {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}
