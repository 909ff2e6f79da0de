package pipelines

import (
	"bytes"
	"strings"
)

// envRef is a ${...} reference that could not be expanded, at its position
// in the file as written.
type envRef struct {
	line, col int // in the file as written
	outCol    int // where the placeholder starts in the interpolated text
	msg       string
}

// edit records one replacement on a line, in 1-based columns.
type edit struct {
	outCol, origCol int // where the replacement starts in the output / the input
	outLen, origLen int
}

// colMapper converts columns of the interpolated text back to the file as
// written, so a position after "${TOKEN}" on the same line is reported where
// the user sees it. Lines never move: a value containing a newline would
// shift later lines, and is documented as unsupported for positions.
type colMapper map[int][]edit

func (m colMapper) original(line, col int) int {
	shift := 0
	for _, e := range m[line] {
		if col < e.outCol {
			break
		}
		if col < e.outCol+e.outLen {
			return e.origCol // inside a substituted value: point at "${"
		}
		shift += e.origLen - e.outLen
	}
	return col + shift
}

// interpolate replaces ${VAR} and ${VAR:-default} (default used when VAR is
// unset or empty, as in POSIX shells) and turns $$ into $. A "$" followed by
// anything else is kept. Lines whose first non-blank character is "#" are
// comments and are left alone, so commenting out a line that names an unset
// variable does not break the file. It returns every unexpandable reference,
// not only the first.
func interpolate(data []byte, lookup func(string) (string, bool)) ([]byte, colMapper, []envRef) {
	var out bytes.Buffer
	out.Grow(len(data))
	cols := colMapper{}
	var refs []envRef
	for lineNo, line := range strings.SplitAfter(string(data), "\n") {
		lineNo++
		if strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") || !strings.Contains(line, "$") {
			out.WriteString(line)
			continue
		}
		lineStart := out.Len()
		for i := 0; i < len(line); {
			c := line[i]
			if c != '$' || i+1 >= len(line) || (line[i+1] != '$' && line[i+1] != '{') {
				out.WriteByte(c)
				i++
				continue
			}
			outCol := out.Len() - lineStart + 1
			if line[i+1] == '$' {
				out.WriteByte('$')
				cols[lineNo] = append(cols[lineNo], edit{outCol: outCol, origCol: i + 1, outLen: 1, origLen: 2})
				i += 2
				continue
			}
			end := strings.IndexByte(line[i:], '}')
			if end < 0 {
				refs = append(refs, envRef{lineNo, i + 1, outCol, `unterminated "${": add "}" or write "$$" for a literal dollar`})
				out.WriteString(line[i:])
				break
			}
			value, msg := expand(line[i+2:i+end], lookup)
			if msg != "" {
				refs = append(refs, envRef{lineNo, i + 1, outCol, msg})
			}
			out.WriteString(value)
			cols[lineNo] = append(cols[lineNo], edit{outCol: outCol, origCol: i + 1, outLen: len(value), origLen: end + 1})
			i += end + 1
		}
	}
	return out.Bytes(), cols, refs
}

// expand resolves the inside of one ${...}; msg is non-empty on failure.
func expand(ref string, lookup func(string) (string, bool)) (value, msg string) {
	name, def, hasDefault := strings.Cut(ref, ":-")
	if !validEnvName(name) {
		return "", "invalid environment variable name " + quote(name) + " in ${" + ref + "}"
	}
	v, ok := lookup(name)
	switch {
	case ok && (v != "" || !hasDefault):
		return v, ""
	case hasDefault:
		return def, ""
	}
	// The name stands in for the missing value so the text still parses
	// and the error can name the field; Parse stops before using it.
	return name, "environment variable " + name + " is not set (write ${" + name + ":-default} to give a default)"
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func quote(s string) string { return `"` + s + `"` }
