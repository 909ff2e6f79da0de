package pipelines

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Console configures the web console served at /console on the HTTP
// listener (package console). It is on unless enabled: false.
type Console struct {
	Enabled bool `yaml:"enabled"`
	// Mask lists what every browse view (topics, tail, export, queues,
	// dead letters, journey, playground) shows as "***".
	Mask ConsoleMask `yaml:"mask"`
	// TraceURL links a trace id to a tracing UI; {trace_id} is replaced,
	// e.g. http://127.0.0.1:16686/trace/{trace_id}. Empty: no link.
	TraceURL string `yaml:"trace_url"`
	// SessionTTL bounds a console login. Default 12h.
	SessionTTL Duration `yaml:"session_ttl"`
	// MaxRedriveRate caps the per-second rate an operator may choose for a
	// redrive from the console. Default 1000.
	MaxRedriveRate int `yaml:"max_redrive_rate"`
}

// ConsoleMask names JSON fields and headers to mask. A field without a dot
// ("password") is masked at any depth; a dotted one ("customer.email") is a
// path from the root, arrays transparent. Header names ignore case.
type ConsoleMask struct {
	Fields  []string `yaml:"fields"`
	Headers []string `yaml:"headers"`
}

// Console defaults.
const (
	DefaultSessionTTL     = 12 * time.Hour
	DefaultMaxRedriveRate = 1000
)

func applyConsoleDefaults(c *Console, written func(string) bool) {
	if !written("console.enabled") {
		c.Enabled = true
	}
	setDefault(&c.SessionTTL, Duration(DefaultSessionTTL))
	setDefault(&c.MaxRedriveRate, DefaultMaxRedriveRate)
}

var (
	maskField  = regexp.MustCompile(`^[^.\s*]+(\.[^.\s*]+)*$`)
	headerName = regexp.MustCompile(`^[!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z]+$`) // RFC 9110 token
)

func (v *validator) console() {
	c := v.cfg.Console
	for i, f := range c.Mask.Fields {
		p := "console.mask.fields[" + strconv.Itoa(i) + "]"
		if !maskField.MatchString(f) {
			v.fail(p, ErrInvalid, "%q is not a field name or dotted path (no spaces, no empty segments, no wildcards)", f)
		}
	}
	for i, h := range c.Mask.Headers {
		p := "console.mask.headers[" + strconv.Itoa(i) + "]"
		if !headerName.MatchString(h) {
			v.fail(p, ErrInvalid, "%q is not a header name", h)
		}
	}
	if c.TraceURL != "" {
		u, err := url.Parse(strings.ReplaceAll(c.TraceURL, "{trace_id}", "0"))
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			v.fail("console.trace_url", ErrInvalid, "%q is not an http(s) URL", c.TraceURL)
		case !strings.Contains(c.TraceURL, "{trace_id}"):
			v.fail("console.trace_url", ErrInvalid, "must contain {trace_id}")
		}
	}
	v.between("console.session_ttl", c.SessionTTL, time.Minute, 30*24*time.Hour)
	if c.MaxRedriveRate < 1 || c.MaxRedriveRate > 100000 {
		v.fail("console.max_redrive_rate", ErrInvalid, "must be between 1 and 100000")
	}
}
