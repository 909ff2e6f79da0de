package sqsapi

import (
	"strings"
	"unicode/utf8"
)

// SQS limits, from the SQS developer guide.
const (
	maxQueueNameLen      = 80
	maxAttributesPerMsg  = 10
	maxAttributeNameLen  = 256
	maxDataTypeLen       = 256
	maxBatchEntries      = 10
	maxBatchEntryIDLen   = 80
	maxGroupOrDedupIDLen = 128
	// maxBatchPayload is the total payload of one batch (SQS raised both the
	// message and the batch limit to 1 MiB in 2025).
	maxBatchPayload = 1 << 20
	maxDelaySeconds = 900
	maxVisibility   = 43200
	maxWaitSeconds  = 20
)

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validQueueName: 1 to 80 characters of alphanumerics, hyphens and
// underscores; a FIFO queue's name ends in ".fifo" (counted in the 80).
func validQueueName(name string) bool {
	if name == "" || len(name) > maxQueueNameLen {
		return false
	}
	base := strings.TrimSuffix(name, ".fifo")
	if base == "" {
		return false
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// validBatchEntryID: up to 80 alphanumerics, hyphens and underscores.
func validBatchEntryID(id string) bool {
	if id == "" || len(id) > maxBatchEntryIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// validGroupOrDedupID: up to 128 characters of alphanumerics and punctuation
// (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~), as SQS defines MessageGroupId and
// MessageDeduplicationId.
func validGroupOrDedupID(id string) bool {
	if id == "" || len(id) > maxGroupOrDedupIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// validMessageChars reports whether s holds only the characters SQS allows
// in a message body and string attribute: #x9 | #xA | #xD | #x20 to #xD7FF |
// #xE000 to #xFFFD | #x10000 to #x10FFFF (the XML 1.0 character set, a
// leftover of the query protocol every SQS client still assumes).
func validMessageChars(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if r >= 0xD800 && r <= 0xDFFF || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		i += size
	}
	return true
}

// validAttributeName: up to 256 characters of alphanumerics, '-', '_' and
// '.'; not starting with "AWS." or "Amazon." (reserved), not starting or
// ending with '.', and without "..".
func validAttributeName(name string) bool {
	if name == "" || len(name) > maxAttributeNameLen {
		return false
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// baseDataType returns "String", "Number" or "Binary" for a data type with
// an optional custom suffix ("Number.float"), or "" when it is none of them.
func baseDataType(dataType string) string {
	if dataType == "" || len(dataType) > maxDataTypeLen {
		return ""
	}
	base, custom, hasCustom := strings.Cut(dataType, ".")
	if hasCustom && custom == "" {
		return ""
	}
	switch base {
	case "String", "Number", "Binary":
		return base
	}
	return ""
}

// validNumber reports whether s is an SQS Number: an optionally signed
// decimal with at most 38 significant digits, an optional fraction and an
// optional exponent in -128..+126. Only the shape is checked, with a bound on
// the digit count; SQS itself stores numbers as strings.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 || digits > 38 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		expDigits := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			expDigits++
		}
		if expDigits == 0 || expDigits > 3 {
			return false
		}
	}
	return i == len(s)
}
