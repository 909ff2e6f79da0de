// Package jsonstr scans, decodes and writes JSON strings the way
// encoding/json does, for the hand-written JSON readers and writers on hot
// paths (rules' lazy field access and transforms, the SQS API). Standard
// library only.
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

const hexDigits = "0123456789abcdef"

// Append appends s as a JSON string, byte for byte as encoding/json's
// Encoder with SetEscapeHTML(false) writes it: the short escapes \b \f \n
// \r \t, \u00XX for the other control characters, invalid UTF-8 as
// \ufffd, and U+2028 and U+2029 escaped (they end lines in JavaScript).
func Append(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
