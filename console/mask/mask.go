// Package mask hides configured JSON fields and headers in what the
// console shows (browse, tail, export, dead letters, journey, playground).
//
// A field rule without a dot ("password") masks a key of that name at any
// depth; a dotted rule ("customer.email") masks that path from the root,
// arrays being transparent ("items.card" masks items[i].card). Matching is
// case-sensitive for fields (JSON keys are) and case-insensitive for
// headers (HTTP, AMQP and Kafka users write them either way). A masked
// value, whatever its type, becomes the string "***"; key order and every
// other value are kept.
//
// Guarantees: for valid JSON input the output is valid JSON without any
// masked value, and masking is idempotent. Input that is not JSON is
// returned unchanged with ok false: the caller decides how to show it.
package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// Masked is what a masked value is replaced with.
const Masked = "***"

// Masker applies one set of rules. The zero value masks nothing. It is
// immutable and safe for concurrent use.
type Masker struct {
	anyDepth map[string]bool
	paths    map[string]bool
	headers  map[string]bool
}

// New builds a masker from field rules and header names.
func New(fields, headers []string) *Masker {
	m := &Masker{anyDepth: map[string]bool{}, paths: map[string]bool{}, headers: map[string]bool{}}
	for _, f := range fields {
		if strings.Contains(f, ".") {
			m.paths[f] = true
		} else if f != "" {
			m.anyDepth[f] = true
		}
	}
	for _, h := range headers {
		m.headers[strings.ToLower(h)] = true
	}
	return m
}

// Empty reports whether the masker masks nothing.
func (m *Masker) Empty() bool {
	return m == nil || len(m.anyDepth)+len(m.paths)+len(m.headers) == 0
}

// Header returns value, or Masked when name is a masked header.
func (m *Masker) Header(name, value string) string {
	if m != nil && m.headers[strings.ToLower(name)] {
		return Masked
	}
	return value
}

// HeaderMasked reports whether name is masked.
func (m *Masker) HeaderMasked(name string) bool {
	return m != nil && m.headers[strings.ToLower(name)]
}

func (m *Masker) field(path, key string) bool {
	if m.anyDepth[key] {
		return true
	}
	if len(m.paths) == 0 {
		return false
	}
	if path == "" {
		return m.paths[key]
	}
	return m.paths[path+"."+key]
}

// JSON masks the fields of a JSON document. ok is false when data is not
// one valid JSON value; data is then returned as it was.
func (m *Masker) JSON(data []byte) (out []byte, ok bool) {
	if m.Empty() || len(m.anyDepth)+len(m.paths) == 0 {
		return data, json.Valid(data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := m.value(dec, &buf, ""); err != nil {
		return data, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return data, false // trailing data
	}
	return buf.Bytes(), true
}

// value copies one JSON value from dec to buf, masking fields below path.
func (m *Masker) value(dec *json.Decoder, buf *bytes.Buffer, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return m.object(dec, buf, path)
		case '[':
			return m.array(dec, buf, path)
		}
		return errors.New("mask: unexpected delimiter")
	default:
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		buf.Write(b)
		return nil
	}
}

func (m *Masker) object(dec *json.Decoder, buf *bytes.Buffer, path string) error {
	buf.WriteByte('{')
	for first := true; dec.More(); first = false {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("mask: object key is not a string")
		}
		if !first {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(key)
		buf.Write(kb)
		buf.WriteByte(':')
		if m.field(path, key) {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			buf.WriteString(`"` + Masked + `"`)
			continue
		}
		child := key
		if path != "" {
			child = path + "." + key
		}
		if err := m.value(dec, buf, child); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	buf.WriteByte('}')
	return nil
}

func (m *Masker) array(dec *json.Decoder, buf *bytes.Buffer, path string) error {
	buf.WriteByte('[')
	for first := true; dec.More(); first = false {
		if !first {
			buf.WriteByte(',')
		}
		if err := m.value(dec, buf, path); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return err
	}
	buf.WriteByte(']')
	return nil
}
