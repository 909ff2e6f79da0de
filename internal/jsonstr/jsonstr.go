// Package jsonstr scans and decodes JSON strings the way encoding/json does,
// for the hand-written JSON readers on hot paths (rules' lazy field access,
// the SQS API's request decoder). Standard library only.
package jsonstr

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Scan reads the JSON string whose opening quote is data[i]. It returns
// the raw bytes between the quotes, whether they hold escapes (esc) or
// bytes past ASCII (high), and the index just past the closing quote. ok is
// false for an unterminated string, a control character, a bad escape, or
// data[i] not being '"'.
func Scan(data []byte, i int) (raw []byte, esc, high bool, end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, false, false, i, false
	}
	i++
	start := i
	for i < len(data) {
		// Most bytes are printable ASCII: step over them in a tight loop.
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			break
		}
		switch c := data[i]; {
		case c == '"':
			return data[start:i], esc, high, i + 1, true
		case c == '\\':
			esc = true
			i++
			if i >= len(data) {
				return nil, false, false, i, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(data) {
					return nil, false, false, i, false
				}
				for _, h := range data[i+1 : i+5] {
					if !isHex(h) {
						return nil, false, false, i, false
					}
				}
				i += 5
			default:
				return nil, false, false, i, false
			}
		case c < 0x20:
			return nil, false, false, i, false
		default: // c >= 0x80
			high = true
			i++
		}
	}
	return nil, false, false, i, false
}

// plain marks the string bytes that need no attention: printable ASCII
// other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// Decode returns the string Scan found, copying raw once when it needs no
// decoding.
func Decode(raw []byte, esc, high bool) string {
	if !esc && (!high || utf8.Valid(raw)) {
		return string(raw)
	}
	return Unquote(raw)
}

// Unquote decodes the contents of a string Scan accepted, with
// encoding/json's rules: a surrogate pair escape is one rune, a lone
// surrogate and every invalid UTF-8 byte become U+FFFD.
func Unquote(raw []byte) string {
	b := make([]byte, 0, len(raw)+8)
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(raw[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if r2 := utf16.DecodeRune(r, hex4(raw[i+2:i+6])); r2 != utf8.RuneError {
							b = utf8.AppendRune(b, r2)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, raw[i:i+size]...)
			}
			i += size
		}
	}
	return string(b)
}

// hex4 reads four hex digits Scan already checked.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			r |= rune(c - 'a' + 10)
		}
	}
	return r
}
