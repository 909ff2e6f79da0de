package rules

import (
	"slices"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/bridgeio/bridge/internal/jsonstr"
)

// The patch path. The most common transform keeps an event's JSON object
// and drops, keeps or adds a few top-level fields:
//
//	value: 'merge(omit(body, "card", "email"), {"masked": true})'
//
// Done literally, that decodes the whole body into maps, copies them twice
// and encodes the result with sorted keys: about 3 µs for a 200-byte order,
// most of it building and then serialising values nobody looks at. A value
// rule whose outer shape is a chain of omit, pick and merge calls rooted at
// body instead scans the body once (validating all of it, as the decoder
// would), keeps the raw bytes of the top-level members that stay, and
// encodes only what the merge arguments add. Fields the transform does not
// touch are copied byte for byte, in the source's order; added fields
// follow in the order of a map literal's keys (sorted when the map is not
// a literal with constant keys), and a merged key that already exists
// keeps its place.
//
// Anything unusual falls back to the general path, which gives the rule's
// exact result or error: a body that is not a JSON object, a repeated or
// escaped key, more than maxPatchMembers members, a merge argument that is
// not a map. The two paths agree on the JSON value; only key order and the
// spelling of untouched members can differ (FuzzPatch checks this).

const maxPatchMembers = 64

const (
	opOmit = iota
	opPick
	opMerge
)

type patchOp struct {
	kind int
	keys []string   // omit, pick
	args []*Program // merge: the maps merged in, in order
	// order[i] is the key order of args[i] when it is a map literal with
	// constant keys; nil means sorted.
	order [][]string
}

type patchPlan struct{ ops []patchOp }

// member is one top-level member of the patched object: a source member
// (raw key and value bytes) or one a merge added or replaced.
type member struct {
	key   []byte // source: raw key between the quotes
	added string // key of an added member
	raw   []byte // source value bytes; nil once replaced
	val   any    // added or replacing value
	isNew bool   // key is in added
	dead  bool
}

func (m *member) is(k string) bool {
	if m.isNew {
		return m.added == k
	}
	return string(m.key) == k
}

func (m *member) in(keys []string) bool {
	for _, k := range keys {
		if m.is(k) {
			return true
		}
	}
	return false
}

// liveIndex is the index of the live member named k, or -1.
func liveIndex(ms []member, k string) int {
	for j := range ms {
		if !ms[j].dead && ms[j].is(k) {
			return j
		}
	}
	return -1
}

// patchState is per-Env scratch, reused across events.
type patchState struct{ members []member }

// planPatch recognises a patchable value rule and compiles its merge
// arguments; nil when src does not have the shape.
func planPatch(src string, extra names, uuidBase int) (*patchPlan, error) {
	tree, err := parser.ParseWithConfig(src, runtimeConfig())
	if err != nil {
		// Not patchable; the general compile reports the parse error.
		return nil, nil
	}
	shape, ok := patchShape(tree.Node)
	if !ok || len(shape) == 0 {
		return nil, nil
	}
	plan := &patchPlan{}
	extra.noPatch = true
	next := uuidBase
	for _, s := range shape {
		op := patchOp{kind: s.kind, keys: s.keys}
		for _, arg := range s.args {
			sub := &Program{src: src, kind: Value, uuidBase: next}
			if err := sub.compileTree(&parser.Tree{Node: arg, Source: tree.Source}, extra, nil); err != nil {
				return nil, err
			}
			next += sub.uuidSites
			op.args = append(op.args, sub)
			op.order = append(op.order, literalKeys(arg))
		}
		plan.ops = append(plan.ops, op)
	}
	return plan, nil
}

type shapeOp struct {
	kind int
	keys []string
	args []ast.Node
}

// patchShape returns the ops of a chain of omit/pick/merge calls rooted at
// body, innermost first; ok is false for any other expression.
func patchShape(n ast.Node) ([]shapeOp, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return nil, x.Value == "body"
	case *ast.CallNode:
		callee, ok := x.Callee.(*ast.IdentifierNode)
		if !ok || len(x.Arguments) == 0 {
			return nil, false
		}
		var op shapeOp
		switch callee.Value {
		case "omit", "pick":
			op.kind = opOmit
			if callee.Value == "pick" {
				op.kind = opPick
			}
			for _, a := range x.Arguments[1:] {
				s, ok := a.(*ast.StringNode)
				if !ok {
					return nil, false
				}
				op.keys = append(op.keys, s.Value)
			}
		case "merge":
			op.kind = opMerge
			op.args = x.Arguments[1:]
		default:
			return nil, false
		}
		inner, ok := patchShape(x.Arguments[0])
		if !ok {
			return nil, false
		}
		return append(inner, op), true
	}
	return nil, false
}

// literalKeys returns the keys of a map literal whose keys are all
// constant strings, in the order written; nil otherwise.
func literalKeys(n ast.Node) []string {
	m, ok := n.(*ast.MapNode)
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(m.Pairs))
	for _, p := range m.Pairs {
		pair, ok := p.(*ast.PairNode)
		if !ok {
			return nil
		}
		k, ok := pair.Key.(*ast.StringNode)
		if !ok || slices.Contains(keys, k.Value) {
			return nil
		}
		keys = append(keys, k.Value)
	}
	return keys
}

// apply appends the patched object to dst. ok is false when the input or a
// merge argument is unusual: the caller then runs the general path, which
// also produces the right error. err is only set with ok.
func (pp *patchPlan) apply(env *Env, dst []byte) (out []byte, ok bool, err error) {
	ms, ok := scanMembers(env.ev.Value, env.patch.members[:0])
	env.patch.members = ms
	if !ok {
		return dst, false, nil
	}
	for _, op := range pp.ops {
		switch op.kind {
		case opOmit:
			for i := range ms {
				if !ms[i].dead && slices.ContainsFunc(op.keys, ms[i].is) {
					ms[i].dead = true
				}
			}
		case opPick:
			for i := range ms {
				if !ms[i].dead && !slices.ContainsFunc(op.keys, ms[i].is) {
					ms[i].dead = true
				}
			}
		case opMerge:
			if ms, ok = pp.merge(env, op, ms); !ok {
				env.patch.members = ms
				return dst, false, nil
			}
		}
	}
	env.patch.members = ms
	out = append(dst, '{')
	first := true
	for i := range ms {
		m := &ms[i]
		if m.dead {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		if m.isNew {
			out = appendString(out, m.added)
		} else {
			out = append(out, '"')
			out = append(out, m.key...)
			out = append(out, '"')
		}
		out = append(out, ':')
		if m.raw != nil {
			out = append(out, m.raw...)
		} else if out, err = appendJSON(out, m.val); err != nil {
			return dst, false, nil
		}
	}
	return append(out, '}'), true, nil
}

// merge evaluates op's maps and sets their keys on ms.
func (pp *patchPlan) merge(env *Env, op patchOp, ms []member) ([]member, bool) {
	var sorted []string
	for i, arg := range op.args {
		v, err := arg.run(env)
		if err != nil {
			return ms, false
		}
		m, err := asMap("", v)
		if err != nil {
			return ms, false
		}
		keys := op.order[i]
		if keys == nil {
			sorted = sorted[:0]
			for k := range m {
				sorted = append(sorted, k)
			}
			slices.Sort(sorted)
			keys = sorted
		}
		for _, k := range keys {
			val := m[k]
			if j := liveIndex(ms, k); j >= 0 {
				ms[j].raw, ms[j].val = nil, val
				continue
			}
			if len(ms) >= maxPatchMembers {
				return ms, false
			}
			ms = append(ms, member{added: k, isNew: true, val: val})
		}
	}
	return ms, true
}

// scanMembers validates data as one JSON object and lists its top-level
// members. ok is false when data is not a JSON object (or not valid JSON),
// has more than maxPatchMembers members, or a key that is escaped,
// invalid UTF-8, or repeated: the general path handles those.
func scanMembers(data []byte, ms []member) ([]member, bool) {
	s := jscan{data: data}
	s.ws()
	if s.i >= len(data) || data[s.i] != '{' {
		return ms, false
	}
	s.i++
	s.depth = 1
	s.ws()
	if s.i < len(data) && data[s.i] == '}' {
		s.i++
	} else {
		for {
			raw, esc, high, end, ok := jsonstr.Scan(data, s.i)
			if !ok || esc || (high && !utf8.Valid(raw)) || len(ms) >= maxPatchMembers {
				return ms, false
			}
			s.i = end
			s.ws()
			if s.i >= len(data) || data[s.i] != ':' {
				return ms, false
			}
			s.i++
			s.ws()
			start := s.i
			if !s.skip() {
				return ms, false
			}
			for j := range ms {
				if string(ms[j].key) == string(raw) {
					return ms, false
				}
			}
			ms = append(ms, member{key: raw, raw: data[start:s.i]})
			s.ws()
			if s.i >= len(data) {
				return ms, false
			}
			if data[s.i] == '}' {
				s.i++
				break
			}
			if data[s.i] != ',' {
				return ms, false
			}
			s.i++
			s.ws()
		}
	}
	s.ws()
	return ms, s.i == len(data)
}
