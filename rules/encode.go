package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/bridgeio/bridge/internal/jsonstr"
)

// This file writes rule results as JSON. encoding/json would do, but it
// reflects on every value and escapes <, > and & for HTML; event payloads
// are not HTML, and a transform writes one document per event. The output
// is byte for byte what encoding/json's Encoder with SetEscapeHTML(false)
// writes, minus the trailing newline (FuzzAppendJSON holds it to that):
// map keys sorted, so equal values always give equal bytes (content-based
// deduplication and tests rely on it), invalid UTF-8 as U+FFFD, numbers as
// encoding/json formats them.

// appendValue writes the result of a value rule: a string as its text and
// bytes as they are (no quotes), nil as nothing (isNil), anything else as
// JSON.
func appendValue(dst []byte, v any) (out []byte, isNil bool, err error) {
	switch x := v.(type) {
	case nil:
		return dst, true, nil
	case string:
		return append(dst, x...), false, nil
	case []byte:
		return append(dst, x...), false, nil
	}
	out, err = appendJSON(dst, v)
	return out, false, err
}

// errNoJSON is a value that has no JSON form (NaN, a function).
var errNoJSON = errors.New("has no JSON form")

// appendJSON appends v's JSON text to dst.
func appendJSON(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return jsonstr.Append(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case float64:
		s, err := formatFloat(x)
		if err != nil {
			return dst, fmt.Errorf("number %w", errNoJSON)
		}
		return append(dst, s...), nil
	case map[string]any:
		return appendObject(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendJSON(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"'), nil
	case time.Time:
		dst = append(dst, '"')
		dst = x.AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"'), nil
	}
	return appendReflect(dst, v)
}

// appendObject writes a map with its keys sorted, as encoding/json does.
func appendObject(dst []byte, m map[string]any) ([]byte, error) {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstr.Append(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendJSON(dst, m[k]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendReflect writes the types rules rarely produce ([]int from a range,
// map[string]string from headers, ...) with encoding/json.
func appendReflect(dst []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, fmt.Errorf("%T %w", v, errNoJSON)
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}
