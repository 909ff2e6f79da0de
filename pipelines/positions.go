package pipelines

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// index maps a field path ("pipelines[0].routes[1].to.exchange") to the YAML
// nodes it was written with, so validation can report FILE:LINE:COL without
// storing positions in the config types. It is built from a yaml.Node parse
// of the same (interpolated) bytes the typed decode reads.
type index struct {
	// budget bounds the walk: aliases can make a small file expand to an
	// exponential tree ("billion laughs") or a cycle, and yaml.v3 applies its
	// own alias limits only when decoding into Go values, not into a Node.
	budget int
	// truncated is set when the budget ran out; Parse rejects such a file.
	truncated bool

	file  string
	nodes map[string]located
	lines []string  // interpolated text, for block-scalar indentation
	cols  colMapper // interpolated column -> column in the file as written
}

type located struct {
	key   *yaml.Node // nil for sequence items and the root
	value *yaml.Node
}

func newIndex(file string, root *yaml.Node, text []byte, cols colMapper) *index {
	ix := &index{file: file, nodes: map[string]located{}, lines: strings.Split(string(text), "\n"), cols: cols,
		budget: maxIndexNodes}
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		ix.add("", nil, root.Content[0], 0)
	}
	return ix
}

// Limits of the index walk; a real config is far below both.
const (
	maxIndexNodes = 100_000
	maxIndexDepth = 100
)

func (ix *index) add(path string, key, value *yaml.Node, depth int) {
	value = resolveAlias(value)
	if ix.budget--; ix.budget < 0 || depth > maxIndexDepth {
		ix.truncated = true
		return
	}
	ix.nodes[path] = located{key: key, value: value}
	switch value.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(value.Content); i += 2 {
			k, v := value.Content[i], value.Content[i+1]
			if k.Value == "<<" && k.Tag == "!!merge" {
				// Merged keys belong to this mapping; index them at this
				// level, the way the decoder applies them.
				for _, m := range mergeSources(v) {
					ix.add(path, key, m, depth+1)
				}
				ix.nodes[path] = located{key: key, value: value}
				continue
			}
			ix.add(joinKey(path, k.Value), k, v, depth+1)
		}
	case yaml.SequenceNode:
		for i, item := range value.Content {
			ix.add(path+"["+strconv.Itoa(i)+"]", nil, item, depth+1)
		}
	}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// mergeSources lists the mappings a "<<" key merges in.
func mergeSources(v *yaml.Node) []*yaml.Node {
	v = resolveAlias(v)
	if v.Kind == yaml.SequenceNode {
		out := make([]*yaml.Node, 0, len(v.Content))
		for _, m := range v.Content {
			out = append(out, resolveAlias(m))
		}
		return out
	}
	return []*yaml.Node{v}
}

// joinKey appends a mapping key to a path. Names with characters that would
// make the path ambiguous (queue "invoices.fifo") are quoted in brackets.
func joinKey(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

// has reports whether path was written in the file (even as null).
func (ix *index) has(path string) bool {
	_, ok := ix.nodes[path]
	return ok
}

// pos is where path's value was written or, for a missing field, where its
// nearest written ancestor starts: "required" points at the block that
// lacks the field.
func (ix *index) pos(path string) Pos {
	for {
		if l, ok := ix.nodes[path]; ok {
			return ix.nodePos(l.value)
		}
		parent := parentPath(path)
		if parent == path {
			return Pos{File: ix.file}
		}
		path = parent
	}
}

// keyPos is where path's key was written (its value for sequence items).
func (ix *index) keyPos(path string) Pos {
	if l, ok := ix.nodes[path]; ok && l.key != nil {
		return ix.nodePos(l.key)
	}
	return ix.pos(path)
}

func (ix *index) node(path string) *yaml.Node {
	return ix.nodes[path].value
}

func (ix *index) nodePos(n *yaml.Node) Pos {
	if n == nil || n.Line == 0 {
		return Pos{File: ix.file}
	}
	return ix.at(n.Line, n.Column)
}

// at converts a position in the interpolated text to one in the file.
func (ix *index) at(line, col int) Pos {
	return Pos{File: ix.file, Line: line, Col: ix.cols.original(line, col)}
}

// parentPath strips the last ".key", "[i]" or `["key"]` element.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			// A quoted key may itself contain "[": find the opening bracket
			// of the quoted form when there is one.
			if j := strings.LastIndex(path, `["`); j >= 0 && strings.HasSuffix(path, `"]`) {
				i = j
			}
			return path[:i]
		}
	}
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}

// exprPos is where column col (1-based) of line line (1-based) of the
// expression stored at path sits in the file. Quoted and plain one-line
// scalars and literal blocks (|) get an exact column; folded blocks (>)
// join lines, so only their start is known.
func (ix *index) exprPos(path string, line, col int) Pos {
	n := ix.node(path)
	if n == nil || line < 1 || col < 1 {
		return ix.pos(path)
	}
	switch n.Style {
	case yaml.LiteralStyle:
		// The rule's line k is file line n.Line+k, shifted right by the
		// block's indentation: that of its first non-blank line.
		for l := n.Line + 1; l <= len(ix.lines); l++ {
			if text := ix.lines[l-1]; strings.TrimSpace(text) != "" {
				indent := len(text) - len(strings.TrimLeft(text, " "))
				return ix.at(n.Line+line, indent+col)
			}
		}
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		if line == 1 {
			return ix.at(n.Line, n.Column+1+col-1)
		}
	case 0:
		if line == 1 {
			return ix.at(n.Line, n.Column+col-1)
		}
	}
	return ix.nodePos(n)
}
