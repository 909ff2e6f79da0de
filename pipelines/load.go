package pipelines

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path, expanding ${VAR} from the process
// environment, and returns the validated plan. See Parse.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse turns the config file data (named filename in messages) into a
// validated plan with every rule compiled. lookupEnv resolves ${VAR}; nil
// means no variable is set.
//
// On failure the error is errors.Join of *FieldError values sorted by
// position, one per problem, each rendering as
// "FILE:LINE:COL: path.to.field: message". Stages stop early only when a
// later stage could not run meaningfully: unexpandable variables, then YAML
// syntax, then the shape of the document (unknown keys, wrong types), then
// everything semantic (references, enums, rules) reported together.
func Parse(filename string, data []byte, lookupEnv func(string) (string, bool)) (*Plan, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	text, cols, refs := interpolate(data, lookupEnv)
	if len(refs) > 0 {
		return nil, envErrors(filename, text, refs)
	}
	var root yaml.Node
	if err := decodeStrict(text, &root); err != nil {
		return nil, joinSorted(yamlErrors(filename, nil, err))
	}
	ix := newIndex(filename, &root, text, cols)
	if ix.truncated {
		return nil, &FieldError{Pos: Pos{File: filename, Line: 1, Col: 1},
			Err: errf(ErrSyntax, "the document is nested deeper than %d levels or expands (through aliases) to more than %d nodes", maxIndexDepth, maxIndexNodes)}
	}
	var cfg Config
	if errs := checkSchema(ix, "", docRoot(&root), reflect.TypeFor[Config]()); len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	if err := decodeStrict(text, &cfg); err != nil {
		// checkSchema should have caught everything; this keeps the decoder
		// authoritative if the two ever disagree.
		return nil, joinSorted(yamlErrors(filename, ix, err))
	}
	applyDefaults(&cfg, ix.has)
	v := &validator{ix: ix, cfg: &cfg}
	plan := v.run()
	if err := joinSorted(v.errs); err != nil {
		return nil, err
	}
	return plan, nil
}

// decodeStrict decodes the single YAML document in text with unknown keys
// as errors. A second document is an error: silently ignoring it would
// ignore configuration.
func decodeStrict(text []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return &FieldError{Pos: Pos{Line: extra.Line, Col: extra.Column},
			Err: errf(ErrSyntax, "a second YAML document starts here; the config is one document")}
	}
	return nil
}

func docRoot(root *yaml.Node) *yaml.Node {
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		return root.Content[0]
	}
	return nil
}

var (
	yamlLine     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlNotFound = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// yamlErrors converts a yaml.v3 error into FieldErrors. yaml.v3 reports a
// line (never a column) for syntax errors, and one line per problem in a
// *yaml.TypeError; ix, when known, names the field on that line.
func yamlErrors(filename string, ix *index, err error) []*FieldError {
	var fe *FieldError
	if errors.As(err, &fe) {
		fe.Pos.File = filename
		return []*FieldError{fe}
	}
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	out := make([]*FieldError, 0, len(msgs))
	for _, m := range msgs {
		pos := Pos{File: filename}
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			pos.Line, _ = strconv.Atoi(sub[1])
			m = sub[2]
		}
		e := &FieldError{Pos: pos, Err: errf(ErrSyntax, "%s", strings.TrimPrefix(m, "yaml: "))}
		if te != nil {
			e.Err = errf(ErrType, "%s", m)
			if sub := yamlNotFound.FindStringSubmatch(m); sub != nil {
				e.Err = errf(ErrUnknownField, "unknown field %q", sub[1])
			}
			if ix != nil {
				e.Field, e.Pos = ix.fieldOnLine(pos.Line)
			}
		}
		out = append(out, e)
	}
	return out
}

// fieldOnLine is the first field written on line, for errors that only
// carry a line.
func (ix *index) fieldOnLine(line int) (string, Pos) {
	best, bestPos := "", Pos{File: ix.file, Line: line}
	for path, l := range ix.nodes {
		n := l.value
		if l.key != nil {
			n = l.key
		}
		if n == nil || n.Line != line {
			continue
		}
		if best == "" || n.Column < bestPos.Col || (n.Column == bestPos.Col && path < best) {
			best, bestPos = path, ix.nodePos(n)
		}
	}
	return best, bestPos
}

// envErrors reports unexpandable ${...} references. To name the field, it
// parses the interpolated text (where a missing variable's name stands in
// for its value) and looks for the scalar holding the reference; text that
// does not parse still gets positions, without field names.
func envErrors(filename string, text []byte, refs []envRef) error {
	var root yaml.Node
	var ix *index
	if yaml.Unmarshal(text, &root) == nil {
		ix = newIndex(filename, &root, text, nil)
	}
	errs := make([]*FieldError, 0, len(refs))
	for _, r := range refs {
		e := &FieldError{Pos: Pos{File: filename, Line: r.line, Col: r.col}, Err: errf(ErrEnv, "%s", r.msg)}
		if ix != nil {
			e.Field = ix.scalarAt(r.line, r.outCol)
		}
		errs = append(errs, e)
	}
	return joinSorted(errs)
}

// scalarAt is the path of the scalar value that starts on line at or before
// col, the closest one; "" when none.
func (ix *index) scalarAt(line, col int) string {
	best, bestCol := "", 0
	for path, l := range ix.nodes {
		n := l.value
		if n == nil || n.Kind != yaml.ScalarNode || n.Line != line || n.Column > col {
			continue
		}
		if n.Column > bestCol || (n.Column == bestCol && path < best) {
			best, bestCol = path, n.Column
		}
	}
	return best
}
