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
	keys []string // omit, pick
	// merge: the arguments merged in, in order. A map literal with
	// constant keys is kept as its fields (no map is built at run time);
	// any other argument is a program yielding a map.
	args []mergeArg
}

type mergeArg struct {
	fields []mergeField // a map literal with constant keys
	prog   *Program     // otherwise: yields a map (its keys are merged sorted)
}

type mergeField struct {
	key  string
	prog *Program
}

type patchPlan struct{ ops []patchOp }

// srcMember is a top-level member of the source object, as offsets into
// it (no pointers: the scan writes one per member of every event, and
// pointer-free structs cost no GC write barriers).
type srcMember struct {
	keyStart, keyEnd, valStart, valEnd int32
	dead                               bool
	repl                               int32 // 1 + index in patchState.vals of a value replacing it; 0 = none
}

// addMember is a member a merge added.
type addMember struct {
	key  string
	val  any
	dead bool
}

// patchState is per-Env scratch, reused across events.
type patchState struct {
	data []byte // the source being patched
	src  []srcMember
	add  []addMember
	vals []any
	keys []string
}

func (ps *patchState) key(m *srcMember) []byte { return ps.data[m.keyStart:m.keyEnd] }

func inKeys(k []byte, keys []string) bool {
	for _, x := range keys {
		if string(k) == x {
			return true
		}
	}
	return false
}

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
	// Sub-programs are compiled in the order the whole rule's walk meets
	// their uuid() sites (inner calls first, arguments and map pairs left
	// to right), so both paths number the sites alike.
	compileSub := func(n ast.Node) (*Program, error) {
		sub := &Program{src: src, kind: Value, uuidBase: next}
		if err := sub.compileTree(&parser.Tree{Node: n, Source: tree.Source}, extra, nil); err != nil {
			return nil, err
		}
		next += sub.uuidSites
		return sub, nil
	}
	for _, s := range shape {
		op := patchOp{kind: s.kind, keys: s.keys}
		for _, arg := range s.args {
			var ma mergeArg
			if keys := literalKeys(arg); keys != nil {
				for i, pair := range arg.(*ast.MapNode).Pairs {
					prog, err := compileSub(pair.(*ast.PairNode).Value)
					if err != nil {
						return nil, err
					}
					ma.fields = append(ma.fields, mergeField{key: keys[i], prog: prog})
				}
			} else {
				prog, err := compileSub(arg)
				if err != nil {
					return nil, err
				}
				ma.prog = prog
			}
			op.args = append(op.args, ma)
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
	ps := &env.patch
	ps.data = env.ev.Value
	clear(ps.add)
	clear(ps.vals)
	ps.add, ps.vals = ps.add[:0], ps.vals[:0]
	if ps.src, ok = scanMembers(ps.data, ps.src[:0]); !ok {
		return dst, false, nil
	}
	for _, op := range pp.ops {
		switch op.kind {
		case opOmit, opPick:
			drop := op.kind == opOmit
			for i := range ps.src {
				m := &ps.src[i]
				if !m.dead && inKeys(ps.key(m), op.keys) == drop {
					m.dead = true
				}
			}
			for i := range ps.add {
				m := &ps.add[i]
				if !m.dead && slices.Contains(op.keys, m.key) == drop {
					m.dead = true
				}
			}
		case opMerge:
			if !pp.merge(env, op) {
				return dst, false, nil
			}
		}
	}
	out = append(dst, '{')
	for i := range ps.src {
		m := &ps.src[i]
		if m.dead {
			continue
		}
		if len(out) > len(dst)+1 {
			out = append(out, ',')
		}
		out = append(out, ps.data[m.keyStart-1:m.keyEnd+1]...) // with its quotes
		out = append(out, ':')
		if m.repl == 0 {
			out = append(out, ps.data[m.valStart:m.valEnd]...)
		} else if out, err = appendJSON(out, ps.vals[m.repl-1]); err != nil {
			return dst, false, nil
		}
	}
	for i := range ps.add {
		m := &ps.add[i]
		if m.dead {
			continue
		}
		if len(out) > len(dst)+1 {
			out = append(out, ',')
		}
		out = jsonstr.Append(out, m.key)
		out = append(out, ':')
		if out, err = appendJSON(out, m.val); err != nil {
			return dst, false, nil
		}
	}
	return append(out, '}'), true, nil
}

// merge evaluates op's arguments and sets their keys.
func (pp *patchPlan) merge(env *Env, op patchOp) bool {
	ps := &env.patch
	for _, arg := range op.args {
		if arg.prog == nil {
			for _, f := range arg.fields {
				v, ok := runPrefilled(env, f.prog)
				if !ok || !ps.set(f.key, v) {
					return false
				}
			}
			continue
		}
		v, ok := runPrefilled(env, arg.prog)
		if !ok {
			return false
		}
		m, err := asMap("", v)
		if err != nil {
			return false
		}
		sorted := ps.keys[:0]
		for k := range m {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		ps.keys = sorted
		for _, k := range sorted {
			if !ps.set(k, m[k]) {
				return false
			}
		}
	}
	return true
}

// set replaces the live member k's value in place, or adds k.
func (ps *patchState) set(k string, v any) bool {
	for i := range ps.src {
		m := &ps.src[i]
		if !m.dead && string(ps.key(m)) == k {
			ps.vals = append(ps.vals, v)
			m.repl = int32(len(ps.vals))
			return true
		}
	}
	for i := range ps.add {
		if m := &ps.add[i]; !m.dead && m.key == k {
			m.val = v
			return true
		}
	}
	if len(ps.src)+len(ps.add) >= maxPatchMembers {
		return false
	}
	ps.add = append(ps.add, addMember{key: k, val: v})
	return true
}

// runPrefilled runs a merge argument. Its body paths are read from the
// members already scanned (the source's, which the merge arguments see as
// body), so the body is not scanned a second time.
func runPrefilled(env *Env, p *Program) (any, bool) {
	if len(p.paths.paths) > 0 && !p.fullBody && env.bodyGen != env.gen {
		if vals, filled := env.pathValues(p); !filled {
			for i, path := range p.paths.paths {
				vals[i] = env.patch.path(path, &env.intern)
			}
		}
	}
	v, err := p.run(env)
	return v, err == nil
}

// path decodes the value at path from the scanned source members (dead
// ones included: the arguments read the body as it came in).
func (ps *patchState) path(path []string, intern *internTable) any {
	for i := range ps.src {
		m := &ps.src[i]
		if string(ps.key(m)) != path[0] {
			continue
		}
		raw := ps.data[m.valStart:m.valEnd]
		s := jscan{data: raw, intern: intern}
		var v any
		if len(path) == 1 && raw[0] == '"' {
			v, _ = s.internedString()
		} else {
			v, _ = s.value()
		}
		return walkPath(v, path[1:])
	}
	return nil
}

// scanMembers validates data as one JSON object and lists its top-level
// members. ok is false when data is not a JSON object (or not valid JSON),
// has more than maxPatchMembers members, or a key that is escaped,
// invalid UTF-8, or repeated: the general path handles those.
func scanMembers(data []byte, ms []srcMember) ([]srcMember, bool) {
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
		s.ws()
		return ms, s.i == len(data)
	}
	for {
		keyStart := s.i + 1
		raw, esc, high, end, ok := jsonstr.Scan(data, s.i)
		if !ok || esc || (high && !utf8.Valid(raw)) || len(ms) >= maxPatchMembers {
			return ms, false
		}
		for j := range ms {
			if string(data[ms[j].keyStart:ms[j].keyEnd]) == string(raw) {
				return ms, false
			}
		}
		s.i = end
		s.ws()
		if s.i >= len(data) || data[s.i] != ':' {
			return ms, false
		}
		s.i++
		s.ws()
		valStart := s.i
		if !s.skip() {
			return ms, false
		}
		ms = append(ms, srcMember{keyStart: int32(keyStart), keyEnd: int32(end - 1), valStart: int32(valStart), valEnd: int32(s.i)})
		s.ws()
		if s.i >= len(data) {
			return ms, false
		}
		if data[s.i] == '}' {
			s.i++
			s.ws()
			return ms, s.i == len(data)
		}
		if data[s.i] != ',' {
			return ms, false
		}
		s.i++
		s.ws()
	}
}
