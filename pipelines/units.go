package pipelines

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("30s",
// "10ms", "168h"). yaml.v3 has no native duration support: it would decode
// "30s" into an int64 field as a type error. Duration implements
// encoding.TextUnmarshaler, not yaml.Unmarshaler, so decoding keeps
// KnownFields(true) in force for the whole document (tested).
type Duration time.Duration

// UnmarshalText parses a Go duration. A bare "0" is accepted.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as 30s, 10ms or 168h", string(text))
	}
	*d = Duration(v)
	return nil
}

// MarshalText renders the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// String renders the duration as time.Duration.String does.
func (d Duration) String() string { return time.Duration(d).String() }

// ByteSize is a size in bytes written as a plain integer or with a binary
// unit: B, KiB, MiB, GiB, TiB ("16MiB", "512 KiB"). Decimal units (KB, MB)
// are rejected rather than guessed, since both readings are common.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1},
}

// errSizeUnit is the shared message for a size we cannot read.
var errSizeUnit = errors.New("use a whole number of bytes or B, KiB, MiB, GiB, TiB")

// UnmarshalText parses a size.
func (s *ByteSize) UnmarshalText(text []byte) error {
	v, err := parseByteSize(string(text))
	if err != nil {
		return fmt.Errorf("invalid size %q: %w", string(text), err)
	}
	*s = ByteSize(v)
	return nil
}

func parseByteSize(str string) (int64, error) {
	str = strings.TrimSpace(str)
	factor := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(str, u.suffix); ok {
			str, factor = strings.TrimSpace(num), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil || n < 0 {
		return 0, errSizeUnit
	}
	if n > math.MaxInt64/factor {
		return 0, errors.New("too large")
	}
	return n * factor, nil
}

// MarshalText renders the size with the largest unit that divides it.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String renders the size with the largest binary unit that divides it
// exactly ("16MiB", "1500B" stays "1500").
func (s ByteSize) String() string {
	for _, u := range byteUnits[:len(byteUnits)-1] {
		if s != 0 && int64(s)%u.factor == 0 {
			return strconv.FormatInt(int64(s)/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}
