package pipelines

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkSchema walks the YAML nodes alongside the Go types they will decode
// into and reports, with exact positions, what yaml.v3's decoder would
// report without columns or would stop at: unknown keys (with a suggestion),
// scalars of the wrong kind, and unreadable durations and sizes. The last
// point is why this walk exists at all: yaml.v3 aborts the whole decode on
// the first TextUnmarshaler error, without a line, so a bad "30x" would hide
// every other problem in the file. Decoding with KnownFields(true) still
// runs afterwards and stays authoritative; this walk only makes its
// failures precise and complete.
func checkSchema(ix *index, path string, n *yaml.Node, t reflect.Type) []*FieldError {
	n = resolveAlias(n)
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil // null decodes to the zero value of any type
	}
	switch t {
	case reflect.TypeFor[Duration]():
		return checkText(ix, path, n, new(Duration))
	case reflect.TypeFor[ByteSize]():
		return checkText(ix, path, n, new(ByteSize))
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkSchema(ix, path, n, t.Elem())
	case reflect.Struct:
		return checkStruct(ix, path, n, t)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return wrongKind(ix, path, n, "a mapping of names")
		}
		var errs []*FieldError
		seen := map[string]*yaml.Node{}
		eachPair(n, func(k, v *yaml.Node, merged bool) {
			p := joinKey(path, k.Value)
			if first := seen[k.Value]; first != nil && !merged {
				errs = append(errs, &FieldError{Pos: ix.nodePos(k), Field: p,
					Err: errf(ErrDuplicate, "%q is already defined at line %d", k.Value, first.Line)})
				return
			}
			seen[k.Value] = k
			errs = append(errs, checkSchema(ix, p, v, t.Elem())...)
		})
		return errs
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return wrongKind(ix, path, n, "a list")
		}
		var errs []*FieldError
		for i, item := range n.Content {
			errs = append(errs, checkSchema(ix, path+"["+strconv.Itoa(i)+"]", item, t.Elem())...)
		}
		return errs
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return wrongKind(ix, path, n, "a string")
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return wrongKind(ix, path, n, "a whole number")
		}
		if _, err := strconv.ParseInt(n.Value, 0, strconv.IntSize); err != nil {
			return wrongKind(ix, path, n, "a whole number")
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") {
			return wrongKind(ix, path, n, "a number")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return wrongKind(ix, path, n, "true or false")
		}
	}
	return nil
}

func checkStruct(ix *index, path string, n *yaml.Node, t reflect.Type) []*FieldError {
	if n.Kind != yaml.MappingNode {
		return wrongKind(ix, path, n, "a mapping")
	}
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []*FieldError
	seen := map[string]*yaml.Node{}
	eachPair(n, func(k, v *yaml.Node, merged bool) {
		p := joinKey(path, k.Value)
		ft, ok := fields[k.Value]
		switch {
		case !ok:
			errs = append(errs, &FieldError{Pos: ix.nodePos(k), Field: p,
				Err: errf(ErrUnknownField, "unknown field %q%s", k.Value, suggest(k.Value, names))})
			return
		case seen[k.Value] != nil && !merged:
			errs = append(errs, &FieldError{Pos: ix.nodePos(k), Field: p,
				Err: errf(ErrDuplicate, "%q is already set at line %d", k.Value, seen[k.Value].Line)})
			return
		}
		seen[k.Value] = k
		errs = append(errs, checkSchema(ix, p, v, ft)...)
	})
	return errs
}

// eachPair calls fn for every key/value of a mapping, with "<<" merges
// expanded the way the decoder applies them: a key written in the mapping
// itself overrides a merged one, and an earlier merge source wins over a
// later one. merged tells fn the pair came from a merge, so a duplicate
// check applies only to keys written side by side.
func eachPair(n *yaml.Node, fn func(k, v *yaml.Node, merged bool)) {
	direct := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Tag != "!!merge" {
			direct[k.Value] = true
		}
	}
	fromMerge := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			for _, m := range mergeSources(v) {
				if m.Kind != yaml.MappingNode {
					continue
				}
				eachPair(m, func(mk, mv *yaml.Node, _ bool) {
					if !direct[mk.Value] && !fromMerge[mk.Value] {
						fromMerge[mk.Value] = true
						fn(mk, mv, true)
					}
				})
			}
			continue
		}
		fn(k, v, false)
	}
}

func checkText(ix *index, path string, n *yaml.Node, u interface{ UnmarshalText([]byte) error }) []*FieldError {
	if n.Kind != yaml.ScalarNode {
		return wrongKind(ix, path, n, "a scalar")
	}
	if err := u.UnmarshalText([]byte(n.Value)); err != nil {
		return []*FieldError{{Pos: ix.nodePos(n), Field: path, Err: &problem{kind: ErrInvalid, msg: err.Error()}}}
	}
	if d, ok := u.(*Duration); ok && *d < 0 {
		return []*FieldError{{Pos: ix.nodePos(n), Field: path, Err: errf(ErrInvalid, "duration %s is negative", n.Value)}}
	}
	return nil
}

func wrongKind(ix *index, path string, n *yaml.Node, want string) []*FieldError {
	got := "a mapping"
	switch n.Kind {
	case yaml.SequenceNode:
		got = "a list"
	case yaml.ScalarNode:
		got = strconv.Quote(n.Value)
	}
	return []*FieldError{{Pos: ix.nodePos(n), Field: path, Err: errf(ErrType, "expected %s, got %s", want, got)}}
}
