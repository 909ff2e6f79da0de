package rules

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
)

// The helpers rules may call beyond expr's builtins (documented in
// docs/transforms.md). Each is declared twice: helperDecls give the
// signatures to pass 1, so misuse is a load-time error with a position;
// helperImpls are what runs. now() and uuid() depend on the event, so the
// rewriter turns them into $now($env) and $uuid($env, site); their
// entries here exist so that the parser treats the names as functions
// (overriding expr's own now()) and are never called.
var helperDecls = []expr.Option{
	expr.Function("now", notRewritten, new(func() time.Time)),
	expr.Function("uuid", notRewritten, new(func() string)),
	expr.Function("sha256", fnSHA256, new(func(any) string)),
	expr.Function("base64Encode", fnBase64Encode, new(func(any) string)),
	expr.Function("base64Decode", fnBase64Decode, new(func(string) []byte)),
	expr.Function("bytes", fnBytes, new(func(any) []byte)),
	expr.Function("omit", fnOmit, new(func(any, ...string) map[string]any)),
	expr.Function("pick", fnPick, new(func(any, ...string) map[string]any)),
	expr.Function("merge", fnMerge, new(func(any, ...any) map[string]any)),
}

// helperNames are the helpers' names, for "did you mean" suggestions.
var helperNames = []string{"now", "uuid", "sha256", "base64Encode", "base64Decode", "bytes", "omit", "pick", "merge"}

func notRewritten(...any) (any, error) {
	return nil, errors.New("rules: internal: helper called without its environment")
}

// uuidNamespace is the RFC 9562 namespace of bridge's name-based UUIDs.
var uuidNamespace = [16]byte{0x6b, 0x1d, 0x3c, 0x52, 0x9a, 0x0e, 0x4f, 0x31, 0x8c, 0x27, 0x5e, 0x94, 0xa0, 0x7d, 0x11, 0xc3}

// nameUUID returns the version 5 UUID of name in uuidNamespace, as text.
func nameUUID(name []byte) string {
	h := sha1.New()
	h.Write(uuidNamespace[:])
	h.Write(name)
	var sum [sha1.Size]byte
	u := h.Sum(sum[:0])[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:16])
	return string(out[:])
}

// rawBytes is the byte content of a string or bytes argument; other values
// are rendered as EvalString renders them (numbers as JSON text, ...).
func rawBytes(fn string, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	case nil:
		return nil, fmt.Errorf("%s: argument is nil", fn)
	}
	s, err := render(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return []byte(s), nil
}

// fnSHA256 is sha256(x): the hex SHA-256 of a string's or bytes' content.
func fnSHA256(params ...any) (any, error) {
	b, err := rawBytes("sha256", params[0])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// fnBase64Encode is base64Encode(x): standard base64 with padding.
func fnBase64Encode(params ...any) (any, error) {
	b, err := rawBytes("base64Encode", params[0])
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// fnBase64Decode is base64Decode(s): bytes from standard or URL-safe
// base64, padded or not (producers disagree; the alphabets do not overlap
// except in the 62 shared characters, so accepting both is unambiguous).
func fnBase64Decode(params ...any) (any, error) {
	s, ok := params[0].(string)
	if !ok {
		return nil, fmt.Errorf("base64Decode: argument is %s, not a string", typeName(params[0]))
	}
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("base64Decode: %w", err)
	}
	return b, nil
}

// fnBytes is bytes(x): a string's content as bytes, so that a value rule
// writes it raw and JSON encodes it as base64.
func fnBytes(params ...any) (any, error) {
	switch x := params[0].(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	}
	return nil, fmt.Errorf("bytes: argument is %s, not a string", typeName(params[0]))
}

// asMap accepts the maps rules meet: decoded JSON objects and headers.
// what names the argument in the error ("omit: the first argument").
func asMap(what string, v any) (map[string]any, error) {
	switch m := v.(type) {
	case map[string]any:
		return m, nil
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, s := range m {
			out[k] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is %s, not a map", what, typeName(v))
}

// keyArgs returns the key arguments of omit and pick.
func keyArgs(fn string, params []any) ([]string, error) {
	keys := make([]string, len(params))
	for i, p := range params {
		s, ok := p.(string)
		if !ok {
			return nil, fmt.Errorf("%s: key %d is %s, not a string", fn, i+1, typeName(p))
		}
		keys[i] = s
	}
	return keys, nil
}

// fnOmit is omit(map, keys...): a copy of map without keys. The argument
// is never modified (a decoded body is shared by all rules of an event).
func fnOmit(params ...any) (any, error) {
	m, err := asMap("omit: the first argument", params[0])
	if err != nil {
		return nil, err
	}
	keys, err := keyArgs("omit", params[1:])
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m))
outer:
	for k, v := range m {
		for _, drop := range keys {
			if k == drop {
				continue outer
			}
		}
		out[k] = v
	}
	return out, nil
}

// fnPick is pick(map, keys...): a map of only those keys that map has.
func fnPick(params ...any) (any, error) {
	m, err := asMap("pick: the first argument", params[0])
	if err != nil {
		return nil, err
	}
	keys, err := keyArgs("pick", params[1:])
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// fnMerge is merge(a, b, ...): a new map with the keys of every argument,
// a later argument's value replacing an earlier one's (shallow, like
// JavaScript's Object.assign).
func fnMerge(params ...any) (any, error) {
	maps := make([]map[string]any, len(params))
	size := 0
	for i, p := range params {
		m, err := asMap("merge: argument "+strconv.Itoa(i+1), p)
		if err != nil {
			return nil, err
		}
		maps[i] = m
		size += len(m)
	}
	out := make(map[string]any, size)
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}

// typeName names a value's type for error messages in the words of the
// docs (JSON's names for decoded values).
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, float64:
		return "a number"
	case map[string]any, map[string]string:
		return "a map"
	case []any:
		return "an array"
	case []byte:
		return "bytes"
	}
	return fmt.Sprintf("%T", v)
}
