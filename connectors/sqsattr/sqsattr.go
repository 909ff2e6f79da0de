// Package sqsattr maps an event's key and headers to SQS message attributes
// and back (SPEC §8, SQS column). It is shared by the SQS connector and the
// embedded queues, so that a message looks the same whichever of the two
// carried it.
//
// Mapping: each header becomes a String attribute of the same name; the key
// becomes the attribute bridge-key (FIFO queues also use it as the default
// MessageGroupId). SQS allows 10 attributes per message and restricts
// names, so headers that do not fit (the 11th and later, a repeated name,
// a name SQS rejects) travel together in one attribute bridge-headers, a
// JSON array of [name, value] pairs, which FromAttributes unpacks. The
// headers bridge-event-id, bridge-key, traceparent and tracestate are
// placed first so that they stay individually visible to SQS consumers.
package sqsattr

import (
	"encoding/json"
	"fmt"
	"strings"

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
		if used[p[0]] || !ValidName(p[0]) || room == 0 {
			overflow = append(overflow, p)
			continue
		}
		used[p[0]] = true
		attrs = append(attrs, Attribute{p[0], p[1]})
	}
	if len(overflow) > 0 {
		b, _ := json.Marshal(overflow) // [][2]string cannot fail
		attrs = append(attrs, Attribute{event.HeaderOverflow, string(b)})
	}
	return attrs
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
			var pairs [][2]string
			if jerr := json.Unmarshal([]byte(a.Value), &pairs); jerr != nil {
				err = fmt.Errorf("sqsattr: attribute %s is not a JSON array of pairs: %w", event.HeaderOverflow, jerr)
				headers = append(headers, event.Header{Key: a.Name, Value: []byte(a.Value)})
				continue
			}
			for _, p := range pairs {
				if p[0] == event.HeaderKey && key == nil {
					key = []byte(p[1])
					continue
				}
				headers = append(headers, event.Header{Key: p[0], Value: []byte(p[1])})
			}
		default:
			headers = append(headers, event.Header{Key: a.Name, Value: []byte(a.Value)})
		}
	}
	return key, headers, err
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
