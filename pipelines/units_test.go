package pipelines

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDurationText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"10ms", 10 * time.Millisecond, false},
		{"168h", 168 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"0", 0, false},
		{" 5s ", 5 * time.Second, false},
		{"30", 0, true}, // a bare number has no unit: refuse to guess seconds
		{"30x", 0, true},
		{"", 0, true},
		{"10 ms", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			var d Duration
			err := d.UnmarshalText([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("UnmarshalText(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if err == nil && time.Duration(d) != tc.want {
				t.Fatalf("UnmarshalText(%q) = %v, want %v", tc.in, time.Duration(d), tc.want)
			}
			if err == nil {
				var back Duration
				text, _ := d.MarshalText()
				if back.UnmarshalText(text) != nil || back != d {
					t.Fatalf("round trip of %v via %q gave %v", d, text, back)
				}
			}
		})
	}
}

func TestByteSizeText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		str     string
		wantErr bool
	}{
		{"16MiB", 16 << 20, "16MiB", false},
		{"10GiB", 10 << 30, "10GiB", false},
		{"512KiB", 512 << 10, "512KiB", false},
		{"512 KiB", 512 << 10, "512KiB", false},
		{"2TiB", 2 << 40, "2TiB", false},
		{"1000", 1000, "1000", false},
		{"1024", 1024, "1KiB", false},
		{"7B", 7, "7", false},
		{"0", 0, "0", false},
		{"16MB", 0, "", true}, // decimal units are ambiguous: rejected
		{"1.5GiB", 0, "", true},
		{"-1", 0, "", true},
		{"lots", 0, "", true},
		{"MiB", 0, "", true},
		{"9999999999TiB", 0, "", true}, // overflows int64
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			var s ByteSize
			err := s.UnmarshalText([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("UnmarshalText(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if int64(s) != tc.want || s.String() != tc.str {
				t.Fatalf("UnmarshalText(%q) = %d (%s), want %d (%s)", tc.in, int64(s), s, tc.want, tc.str)
			}
		})
	}
}

// TestTextUnmarshalerKeepsKnownFields proves the design choice the config
// types rest on: a TextUnmarshaler field does not switch off KnownFields
// for its neighbours, whereas a custom UnmarshalYAML would.
func TestTextUnmarshalerKeepsKnownFields(t *testing.T) {
	t.Parallel()
	type inner struct {
		Timeout Duration `yaml:"timeout"`
		Size    ByteSize `yaml:"size"`
		Name    string   `yaml:"name"`
	}
	type outer struct {
		Inner inner `yaml:"inner"`
	}
	tests := []struct {
		name, doc, wantErr string
	}{
		{"valid", "inner: { timeout: 3s, size: 1KiB, name: x }", ""},
		{"typo next to a duration", "inner: { timeout: 3s, nmae: x }", "field nmae not found"},
		{"typo next to a size", "inner:\n  size: 1KiB\n  sise: 2\n", "line 3: field sise not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out outer
			err := decodeStrict([]byte(tc.doc), &out)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			case tc.wantErr == "" && (time.Duration(out.Inner.Timeout) != 3*time.Second || out.Inner.Size != 1024):
				t.Fatalf("decoded %+v", out.Inner)
			}
		})
	}
}

// TestNoCustomUnmarshalYAML keeps the config types free of yaml.Unmarshaler,
// which would silently disable KnownFields below it (STYLE.md).
func TestNoCustomUnmarshalYAML(t *testing.T) {
	t.Parallel()
	for _, v := range []any{&Config{}, &HTTP{}, &Backbone{}, &Connection{}, &Source{}, &Queue{}, &Exchange{},
		&Binding{}, &PipelineConfig{}, &RouteConfig{}, &TargetConfig{}, new(Duration), new(ByteSize)} {
		if _, ok := v.(yaml.Unmarshaler); ok {
			t.Errorf("%T implements yaml.Unmarshaler", v)
		}
	}
}
