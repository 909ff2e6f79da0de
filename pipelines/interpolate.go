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
			value, n, msg := expand(line[i:], lookup)
			if msg != "" {
				refs = append(refs, envRef{lineNo, i + 1, outCol, msg})
			}
			out.WriteString(value)
			cols[lineNo] = append(cols[lineNo], edit{outCol: outCol, origCol: i + 1, outLen: len(value), origLen: n})
			i += n
		}
	}
	return out.Bytes(), cols, refs
}

// expand resolves the reference at the start of s ("${NAME}" or
// "${NAME:-default}"; the default runs to the first "}"). It returns the
// replacement, how many bytes of s it consumed, and a message on failure.
// On failure the replacement is a placeholder that keeps the text parseable
// (the variable's name, or "_"), so the error can still name its field;
// Parse stops before using it.
func expand(s string, lookup func(string) (string, bool)) (value string, n int, msg string) {
	nameEnd := 2
	for nameEnd < len(s) && isEnvNameByte(s[nameEnd], nameEnd == 2) {
		nameEnd++
	}
	name := s[2:nameEnd]
	rest := s[nameEnd:]
	var def string
	hasDefault := strings.HasPrefix(rest, ":-")
	switch {
	case name == "" || (!strings.HasPrefix(rest, "}") && !hasDefault):
		return "_", 2, `"${" must be followed by a variable name and "}" (write "$$" for a literal dollar)`
	case hasDefault:
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return "_", 2, "unterminated ${" + name + `:-...: add "}"`
		}
		def, n = rest[2:end], nameEnd+end+1
	default:
		n = nameEnd + 1
	}
	v, ok := lookup(name)
	switch {
	case ok && (v != "" || !hasDefault):
		return v, n, ""
	case hasDefault:
		return def, n, ""
	}
	return name, n, "environment variable " + name + " is not set (write ${" + name + ":-default} to give a default)"
}

func isEnvNameByte(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}
