// Package sqsattr maps an event's key and headers to SQS message attributes
// and back (SPEC §8, SQS column). It is shared by the SQS connector and the
// embedded queues, so that a message looks the same whichever of the two
// carried it.
//
// Mapping: each header becomes a String attribute of the same name; the key
// becomes the attribute bridge-key (FIFO queues also use it as the default
// MessageGroupId). SQS allows 10 attributes per message and restricts
// names and values, so headers that do not fit (the 11th and later, a
// repeated name, a name SQS rejects, an empty value, a value with bytes SQS
// does not accept in a String) travel together in one attribute
// bridge-headers, a JSON array of [name, value] pairs, which FromAttributes
// unpacks. A value that is not valid UTF-8 (binary) is carried base64
// encoded as [name, value, "base64"], so no byte is lost. The
// headers bridge-event-id, bridge-key, traceparent and tracestate are
// placed first so that they stay individually visible to SQS consumers.
package sqsattr

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bridgeio/bridge/event"
)

// MaxAttributes is SQS's limit of message attributes per message.
const MaxAttributes = 10

// Attribute is one SQS message attribute with a String data type.
type Attribute struct {
	Name  string
	Value string
}

// priority headers are kept as their own attributes before any other.
var priority = []string{event.HeaderEventID, event.HeaderKey, event.HeaderTraceParent, event.HeaderTraceState}

// ToAttributes returns the attributes for an event with the given key and
// headers. The result has at most MaxAttributes entries.
func ToAttributes(key []byte, headers []event.Header) []Attribute {
	type pair = [2]string
	all := make([]pair, 0, len(headers)+1)
	if key != nil {
		all = append(all, pair{event.HeaderKey, string(key)})
	}
	for _, h := range headers {
		if h.Key == event.HeaderOverflow {
			continue // never nest an overflow attribute in another
		}
		all = append(all, pair{h.Key, string(h.Value)})
	}
	// Stable order: priority names first, then the rest as they came.
	ordered := make([]pair, 0, len(all))
	for _, name := range priority {
		for _, p := range all {
			if p[0] == name {
				ordered = append(ordered, p)
			}
		}
	}
	for _, p := range all {
		if !isPriority(p[0]) {
			ordered = append(ordered, p)
		}
	}
	attrs := make([]Attribute, 0, min(len(ordered), MaxAttributes))
	used := map[string]bool{}
	var overflow []pair
	for i, p := range ordered {
		room := MaxAttributes - len(attrs)
		// Keep one slot for the overflow attribute if anything is left after this one.
		if room == 1 && (i < len(ordered)-1 || len(overflow) > 0) {
			overflow = append(overflow, ordered[i:]...)
			break
		}
		// Once a name spilled, its later values spill too: the values of one
		// name keep their order (attributes come back before the overflow).
		if used[p[0]] || !ValidName(p[0]) || !ValidValue(p[1]) || room == 0 {
			used[p[0]] = true
			overflow = append(overflow, p)
			continue
		}
		used[p[0]] = true
		attrs = append(attrs, Attribute{p[0], p[1]})
	}
	if len(overflow) > 0 {
		enc := make([][]string, len(overflow))
		for i, p := range overflow {
			if utf8.ValidString(p[1]) {
				enc[i] = []string{p[0], p[1]}
			} else {
				enc[i] = []string{p[0], base64.StdEncoding.EncodeToString([]byte(p[1])), "base64"}
			}
		}
		b, _ := json.Marshal(enc) // valid UTF-8 strings only: cannot fail
		attrs = append(attrs, Attribute{event.HeaderOverflow, string(b)})
	}
	return attrs
}

// ValidValue reports whether SQS accepts s as a String attribute value:
// not empty, and only the characters SQS allows (#x9, #xA, #xD, #x20 to
// #xD7FF, #xE000 to #xFFFD, #x10000 to #x10FFFF) in valid UTF-8.
func ValidValue(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		// RuneError: invalid UTF-8, or a literal U+FFFD (then carried in
		// the overflow: harmless).
		if r == utf8.RuneError || !sqsChar(r) {
			return false
		}
	}
	return true
}

// ValidBody reports whether SQS accepts b as a message body: non-empty,
// valid UTF-8, of the characters sqsChar allows.
func ValidBody(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 || !sqsChar(r) {
			return false // invalid UTF-8, or a character SQS refuses
		}
		b = b[size:]
	}
	return true
}

// sqsChar reports whether SQS allows r in a body or String attribute:
// #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 to #x10FFFF.
func sqsChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func isPriority(name string) bool {
	for _, p := range priority {
		if p == name {
			return true
		}
	}
	return false
}

// FromAttributes rebuilds the key and headers from attributes: bridge-key
// becomes the key, bridge-headers is unpacked, everything else is a header.
// A malformed bridge-headers is kept as a plain header and reported.
func FromAttributes(attrs []Attribute) (key []byte, headers []event.Header, err error) {
	for _, a := range attrs {
		switch a.Name {
		case event.HeaderKey:
			key = []byte(a.Value)
		case event.HeaderOverflow:
			pairs, perr := decodeOverflow(a.Value)
			if perr != nil {
				err = fmt.Errorf("sqsattr: attribute %s: %w", event.HeaderOverflow, perr)
				headers = append(headers, event.Header{Key: a.Name, Value: []byte(a.Value)})
				continue
			}
			for _, p := range pairs {
				if p.Key == event.HeaderKey && key == nil {
					key = p.Value
					continue
				}
				headers = append(headers, p)
			}
		default:
			headers = append(headers, event.Header{Key: a.Name, Value: []byte(a.Value)})
		}
	}
	return key, headers, err
}

// decodeOverflow parses a bridge-headers value: a JSON array of
// [name, value] or [name, base64, "base64"].
func decodeOverflow(s string) ([]event.Header, error) {
	var raw [][]string
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("not a JSON array of pairs: %w", err)
	}
	out := make([]event.Header, 0, len(raw))
	for i, p := range raw {
		switch {
		case len(p) == 2:
			out = append(out, event.Header{Key: p[0], Value: []byte(p[1])})
		case len(p) == 3 && p[2] == "base64":
			v, err := base64.StdEncoding.DecodeString(p[1])
			if err != nil {
				return nil, fmt.Errorf("entry %d (%s): %w", i, p[0], err)
			}
			out = append(out, event.Header{Key: p[0], Value: v})
		default:
			return nil, fmt.Errorf("entry %d: want [name, value] or [name, value, \"base64\"]", i)
		}
	}
	return out, nil
}

// ValidName reports whether SQS accepts name as a message attribute name:
// 1 to 256 characters of A-Z a-z 0-9 _ - ., not starting with "AWS." or
// "Amazon." (any case), not starting or ending with ".", no "..".
func ValidName(name string) bool {
	if name == "" || len(name) > 256 || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
