package rules

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/bridgeio/bridge/internal/jsonstr"
)

// This file is a small validating JSON scanner. It exists because decoding a
// whole 200-byte event into map[string]any with encoding/json costs ~2.7 µs,
// while a rule usually reads two or three top-level fields. The scanner walks
// the document once, validates all of it (so "is it JSON?" has the same answer
// as encoding/json), and materialises only the values at the requested paths.
//
// Values are shaped as encoding/json shapes them when decoding into any:
// objects are map[string]any (last duplicate key wins), arrays []any,
// strings with invalid UTF-8 replaced by U+FFFD; numbers are int when the
// literal is an integer that fits int64, else float64 (the one difference,
// see the package doc). The fuzz test FuzzExtract holds the scanner to that.

// maxDepth matches encoding/json's nesting limit, so both reject the same
// documents.
const maxDepth = 10000

// pathSet is the set of body paths one program reads, as a trie over keys.
type pathSet struct {
	root  pnode
	paths [][]string // slot -> full path
}

type pnode struct {
	children []pchild
	slot     int   // result slot of the path ending here, or -1
	below    []int // slots of the paths strictly below this node
	subtree  []int // slot (if any) + below: cleared when a duplicate key restarts this subtree
}

type pchild struct {
	key  string
	node *pnode
}

// add registers path and returns its slot; the same path twice gets one slot.
func (ps *pathSet) add(path []string) int {
	n := &ps.root
	var trail []*pnode
	for _, k := range path {
		trail = append(trail, n)
		var next *pnode
		for _, c := range n.children {
			if c.key == k {
				next = c.node
				break
			}
		}
		if next == nil {
			next = &pnode{slot: -1}
			n.children = append(n.children, pchild{key: k, node: next})
		}
		n = next
	}
	if n.slot >= 0 {
		return n.slot
	}
	slot := len(ps.paths)
	n.slot = slot
	n.subtree = append(n.subtree, slot)
	ps.paths = append(ps.paths, append([]string(nil), path...))
	for _, a := range trail {
		a.below = append(a.below, slot)
		a.subtree = append(a.subtree, slot)
	}
	return slot
}

// walkPath follows path through nested objects; anything that is not an
// object on the way yields nil.
func walkPath(v any, path []string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

type jscan struct {
	data   []byte
	i      int
	depth  int
	intern *internTable // nil: no interning
}

// internTable reuses boxed strings across events. Rule inputs are mostly
// enumerations (types, regions, statuses), and a string read from the body
// costs two allocations (the bytes and the interface box) that a hit here
// saves. Strings are immutable, so sharing them across events is safe. The
// table is bounded: when full it starts over, so a stream of unique values
// (ids) costs a clear now and then and never grows memory.
type internTable struct{ m map[string]any }

const (
	internMaxEntries = 256
	internMaxLen     = 32
)

func (t *internTable) box(raw []byte) any {
	if v, ok := t.m[string(raw)]; ok { // no allocation for the lookup
		return v
	}
	if t.m == nil {
		t.m = make(map[string]any, internMaxEntries)
	} else if len(t.m) >= internMaxEntries {
		clear(t.m)
	}
	str := string(raw)
	v := any(str)
	t.m[str] = v
	return v
}

// internedString decodes the string at s.i, through the intern table when
// it is short and needs no decoding.
func (s *jscan) internedString() (any, bool) {
	raw, esc, high, ok := s.str()
	if !ok {
		return nil, false
	}
	if esc || high || len(raw) > internMaxLen {
		return jsonstr.Decode(raw, esc, high), true
	}
	return s.intern.box(raw), true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *jscan) ws() {
	for s.i < len(s.data) && isSpace(s.data[s.i]) {
		s.i++
	}
}

// extract fills out[slot] for every path of ps from the JSON document data and
// reports whether data is valid JSON. When it is not, every slot is nil.
func extract(data []byte, ps *pathSet, out []any, intern *internTable) bool {
	clear(out)
	s := jscan{data: data, intern: intern}
	s.ws()
	ok := false
	if s.i < len(data) && data[s.i] == '{' {
		ok = s.object(&ps.root, ps, out)
	} else {
		ok = s.skip()
	}
	if ok {
		s.ws()
		ok = s.i == len(data)
	}
	if !ok {
		clear(out)
	}
	return ok
}

// parseJSON decodes a whole document like json.Unmarshal into any.
func parseJSON(data []byte) (any, bool) {
	s := jscan{data: data}
	s.ws()
	v, ok := s.value()
	if !ok {
		return nil, false
	}
	s.ws()
	if s.i != len(data) {
		return nil, false
	}
	return v, true
}

// object scans the object at s.i (which is '{') for the children of n.
func (s *jscan) object(n *pnode, ps *pathSet, out []any) bool {
	s.depth++
	if s.depth > maxDepth {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return false
		}
		raw, esc, high, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		child := n.find(raw, esc, high)
		switch {
		case child == nil:
			if !s.skip() {
				return false
			}
		case child.slot >= 0:
			var v any
			var ok bool
			if s.intern != nil && s.i < len(s.data) && s.data[s.i] == '"' {
				v, ok = s.internedString()
			} else {
				v, ok = s.value()
			}
			if !ok {
				return false
			}
			out[child.slot] = v
			for _, d := range child.below {
				out[d] = walkPath(v, ps.paths[d][len(ps.paths[child.slot]):])
			}
		default:
			// A repeated key replaces the earlier value as a whole.
			for _, d := range child.subtree {
				out[d] = nil
			}
			if s.i < len(s.data) && s.data[s.i] == '{' {
				if !s.object(child, ps, out) {
					return false
				}
			} else if !s.skip() {
				return false
			}
		}
		s.ws()
		if s.i >= len(s.data) {
			return false
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// find returns the child whose key equals the decoded raw key.
func (n *pnode) find(raw []byte, esc, high bool) *pnode {
	if len(n.children) == 0 {
		return nil
	}
	if esc || (high && !utf8.Valid(raw)) {
		k := jsonstr.Unquote(raw)
		for _, c := range n.children {
			if c.key == k {
				return c.node
			}
		}
		return nil
	}
	for _, c := range n.children {
		if c.key == string(raw) { // no allocation: the conversion is only compared
			return c.node
		}
	}
	return nil
}

// str scans the string at s.i (which is '"') and returns its raw contents,
// whether it has escapes, and whether it has non-ASCII bytes.
func (s *jscan) str() (raw []byte, esc, high, ok bool) {
	raw, esc, high, s.i, ok = jsonstr.Scan(s.data, s.i)
	return raw, esc, high, ok
}

// skip validates and steps over one value.
func (s *jscan) skip() bool {
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; {
	case c == '{' || c == '[':
		s.depth++
		if s.depth > maxDepth {
			return false
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		s.ws()
		if s.i < len(s.data) && s.data[s.i] == end {
			s.i++
			s.depth--
			return true
		}
		for {
			if c == '{' {
				if s.i >= len(s.data) || s.data[s.i] != '"' {
					return false
				}
				if _, _, _, ok := s.str(); !ok {
					return false
				}
				s.ws()
				if s.i >= len(s.data) || s.data[s.i] != ':' {
					return false
				}
				s.i++
				s.ws()
			}
			if !s.skip() {
				return false
			}
			s.ws()
			if s.i >= len(s.data) {
				return false
			}
			switch s.data[s.i] {
			case ',':
				s.i++
				s.ws()
			case end:
				s.i++
				s.depth--
				return true
			default:
				return false
			}
		}
	case c == '"':
		_, _, _, ok := s.str()
		return ok
	case c == '-' || ('0' <= c && c <= '9'):
		b, ok := s.number()
		if !ok {
			return false
		}
		// encoding/json fails a document with a number beyond float64's
		// range even where it is not read. Only an exponent or more than
		// 300 digits can get there, so plain numbers skip the conversion.
		if len(b) > 300 || bytes.ContainsAny(b, "eE") {
			_, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
			return err == nil
		}
		return true
	default:
		return s.literal()
	}
}

func (s *jscan) literal() bool {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s.data)-s.i >= len(lit) && string(s.data[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return true
		}
	}
	return false
}

// number scans a number per the JSON grammar and returns its text.
func (s *jscan) number() ([]byte, bool) {
	start := s.i
	d := s.data
	if s.i < len(d) && d[s.i] == '-' {
		s.i++
	}
	if s.i >= len(d) {
		return nil, false
	}
	switch {
	case d[s.i] == '0':
		s.i++
	case '1' <= d[s.i] && d[s.i] <= '9':
		for s.i < len(d) && '0' <= d[s.i] && d[s.i] <= '9' {
			s.i++
		}
	default:
		return nil, false
	}
	if s.i < len(d) && d[s.i] == '.' {
		s.i++
		if s.i >= len(d) || d[s.i] < '0' || d[s.i] > '9' {
			return nil, false
		}
		for s.i < len(d) && '0' <= d[s.i] && d[s.i] <= '9' {
			s.i++
		}
	}
	if s.i < len(d) && (d[s.i] == 'e' || d[s.i] == 'E') {
		s.i++
		if s.i < len(d) && (d[s.i] == '+' || d[s.i] == '-') {
			s.i++
		}
		if s.i >= len(d) || d[s.i] < '0' || d[s.i] > '9' {
			return nil, false
		}
		for s.i < len(d) && '0' <= d[s.i] && d[s.i] <= '9' {
			s.i++
		}
	}
	return d[start:s.i], true
}

// value decodes one value.
func (s *jscan) value() (any, bool) {
	if s.i >= len(s.data) {
		return nil, false
	}
	switch c := s.data[s.i]; {
	case c == '{':
		s.depth++
		if s.depth > maxDepth {
			return nil, false
		}
		m := make(map[string]any)
		s.i++
		s.ws()
		if s.i < len(s.data) && s.data[s.i] == '}' {
			s.i++
			s.depth--
			return m, true
		}
		for {
			if s.i >= len(s.data) || s.data[s.i] != '"' {
				return nil, false
			}
			raw, esc, high, ok := s.str()
			if !ok {
				return nil, false
			}
			s.ws()
			if s.i >= len(s.data) || s.data[s.i] != ':' {
				return nil, false
			}
			s.i++
			s.ws()
			v, ok := s.value()
			if !ok {
				return nil, false
			}
			m[jsonstr.Decode(raw, esc, high)] = v
			s.ws()
			if s.i >= len(s.data) {
				return nil, false
			}
			switch s.data[s.i] {
			case ',':
				s.i++
				s.ws()
			case '}':
				s.i++
				s.depth--
				return m, true
			default:
				return nil, false
			}
		}
	case c == '[':
		s.depth++
		if s.depth > maxDepth {
			return nil, false
		}
		a := []any{}
		s.i++
		s.ws()
		if s.i < len(s.data) && s.data[s.i] == ']' {
			s.i++
			s.depth--
			return a, true
		}
		for {
			v, ok := s.value()
			if !ok {
				return nil, false
			}
			a = append(a, v)
			s.ws()
			if s.i >= len(s.data) {
				return nil, false
			}
			switch s.data[s.i] {
			case ',':
				s.i++
				s.ws()
			case ']':
				s.i++
				s.depth--
				return a, true
			default:
				return nil, false
			}
		}
	case c == '"':
		raw, esc, high, ok := s.str()
		if !ok {
			return nil, false
		}
		return jsonstr.Decode(raw, esc, high), true
	case c == '-' || ('0' <= c && c <= '9'):
		b, ok := s.number()
		if !ok {
			return nil, false
		}
		// The string only lives for the call; the parse errors (which
		// would keep it) are discarded.
		if isIntegerLiteral(b) {
			// An integer literal that fits int64 is an int, so that rules
			// can use integer operators (body.n % 2) and render ids
			// exactly; expr mixes int and float in comparisons and
			// arithmetic, so 1 == 1.0 still holds.
			if n, err := strconv.ParseInt(unsafe.String(&b[0], len(b)), 10, 64); err == nil {
				return int(n), true
			}
		}
		f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
		if err != nil {
			// Out of float64 range: encoding/json fails the whole document.
			return nil, false
		}
		return f, true
	case c == 't':
		if s.literal() {
			return true, true
		}
	case c == 'f':
		if s.literal() {
			return false, true
		}
	case c == 'n':
		if s.literal() {
			return nil, true
		}
	}
	return nil, false
}

// marshalJSON renders maps and arrays for EvalString.
var marshalJSON = json.Marshal

// isIntegerLiteral reports whether a JSON number has no fraction and no
// exponent.
func isIntegerLiteral(b []byte) bool {
	for _, c := range b {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}
