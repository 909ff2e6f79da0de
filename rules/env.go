package rules

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/bridgeio/bridge/event"
)

// Failure describes a failed delivery for error rules (retry_if,
// dead_letter_if).
type Failure struct {
	Message   string
	Permanent bool
	Attempts  int
	Route     string
	Target    string
}

// Env is the per-event environment. One goroutine reuses one Env across
// events; it is not safe for concurrent use. Every value is computed on first
// use and cached until the next Reset, so several rules over one event share
// the work.
type Env struct {
	ev  *event.Event
	gen uint64 // bumped by Reset; caches below are valid when their gen matches
	cur *Program
	vm  vm.VM

	valueGen, keyGen, headersGen uint64
	value, key                   any // boxed strings
	headers                      map[string]string

	// The whole body, decoded once per event when some rule needs it whole.
	bodyGen uint64
	body    any
	// Body paths of pathProg for the current event.
	pathGen  uint64
	pathProg *Program
	pathVals []any
	intern   internTable

	failure Failure

	bodyDecodes int // full decodes, for tests of "at most once per event"
	bodyScans   int // path scans, for tests
}

// NewEnv returns an empty environment; call Reset before evaluating.
func NewEnv() *Env { return &Env{gen: 1} }

// Reset points the environment at ev. It does no work: values, headers and
// the body are computed lazily when a rule reads them. ev must stay
// unchanged until the next Reset.
func (e *Env) Reset(ev *event.Event) {
	e.ev = ev
	e.gen++
}

// SetError sets the failure seen by error rules.
func (e *Env) SetError(f Failure) { e.failure = f }

// EvalBool runs a Bool rule. A nil result (a missing body field) is false.
// Run-time errors are returned, never panicked.
func (p *Program) EvalBool(e *Env) (ok bool, err error) {
	out, err := p.run(e)
	if err != nil {
		return false, err
	}
	switch v := out.(type) {
	case bool:
		return v, nil
	case nil:
		return false, nil
	}
	return false, fmt.Errorf("rules: %q yields %T, not bool", p.src, out)
}

// EvalString runs a rule and renders its result as text: a string as is,
// numbers and booleans as their JSON text, maps and arrays as JSON, a time
// in RFC 3339. A nil result is ok=false: the caller treats it as absent.
func (p *Program) EvalString(e *Env) (s string, ok bool, err error) {
	out, err := p.run(e)
	if err != nil {
		return "", false, err
	}
	if out == nil {
		return "", false, nil
	}
	s, err = render(out)
	if err != nil {
		return "", false, fmt.Errorf("rules: %q: %w", p.src, err)
	}
	return s, true, nil
}

func (p *Program) run(e *Env) (out any, err error) {
	if e.ev == nil {
		return nil, errors.New("rules: Env has no event (call Reset)")
	}
	// vm.Run recovers from panics inside the program; this guards the
	// rest (our own helpers) so a rule can never crash the process.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("rules: %q: panic: %v", p.src, r)
		}
	}()
	e.cur = p
	out, err = e.vm.Run(p.prog, e)
	if err != nil {
		return nil, fmt.Errorf("rules: %q: %w", p.src, err)
	}
	return out, nil
}

// render formats a rule's result; see EvalString.
func render(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return formatFloat(x)
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case time.Duration:
		return x.String(), nil
	}
	b, err := marshalJSON(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// formatFloat renders f as encoding/json does, so 100 is "100", not "1e+02".
func formatFloat(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%v has no JSON text", f)
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(make([]byte, 0, 24), f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b), nil
}

// The functions the rewritten rules call. Each receives the *Env as $env.

func fnPath(params ...any) (any, error) {
	return params[0].(*Env).bodyPath(params[1].(int)), nil
}

func fnBody(params ...any) (any, error) { return params[0].(*Env).fullBody(), nil }

func fnValue(params ...any) (any, error) {
	e := params[0].(*Env)
	if e.valueGen != e.gen {
		e.value, e.valueGen = string(e.ev.Value), e.gen
	}
	return e.value, nil
}

func fnKey(params ...any) (any, error) {
	e := params[0].(*Env)
	if e.keyGen != e.gen {
		e.key, e.keyGen = string(e.ev.Key), e.gen
	}
	return e.key, nil
}

func fnHeaders(params ...any) (any, error) {
	e := params[0].(*Env)
	if e.headersGen != e.gen {
		// A fresh map per event: a rule may return it (EvalString renders
		// it), and reusing one would change what an earlier caller holds.
		m := make(map[string]string, len(e.ev.Headers))
		for _, h := range e.ev.Headers {
			m[h.Key] = string(h.Value) // later headers overwrite: last value wins
		}
		e.headers, e.headersGen = m, e.gen
	}
	return e.headers, nil
}

func fnTopic(params ...any) (any, error)     { return params[0].(*Env).ev.Topic, nil }
func fnPartition(params ...any) (any, error) { return int(params[0].(*Env).ev.Partition), nil }
func fnOffset(params ...any) (any, error)    { return int(params[0].(*Env).ev.Offset), nil }
func fnTimestamp(params ...any) (any, error) { return params[0].(*Env).ev.Timestamp, nil }
func fnSource(params ...any) (any, error)    { return params[0].(*Env).ev.Source, nil }

func fnError(params ...any) (any, error) {
	f := params[0].(*Env).failure
	class := "retryable"
	if f.Permanent {
		class = "permanent"
	}
	return errorFields{
		Message: f.Message, Permanent: f.Permanent, Attempts: f.Attempts,
		Class: class, Route: f.Route, Target: f.Target,
	}, nil
}

// fullBody decodes the whole body once per event.
func (e *Env) fullBody() any {
	if e.bodyGen != e.gen {
		e.body, _ = parseJSON(e.ev.Value)
		e.bodyDecodes++
		e.bodyGen = e.gen
	}
	return e.body
}

// bodyPath returns the value at slot of the running program's paths. The
// first path read of an event scans the body once for all of the program's
// paths; a program that also uses body whole reads them from that decode.
func (e *Env) bodyPath(slot int) any {
	p := e.cur
	if e.pathGen != e.gen || e.pathProg != p {
		ps := &p.paths
		if cap(e.pathVals) < len(ps.paths) {
			e.pathVals = make([]any, len(ps.paths))
		}
		e.pathVals = e.pathVals[:len(ps.paths)]
		if p.fullBody || e.bodyGen == e.gen {
			b := e.fullBody()
			for i, path := range ps.paths {
				e.pathVals[i] = walkPath(b, path)
			}
		} else {
			extract(e.ev.Value, ps, e.pathVals, &e.intern)
			e.bodyScans++
		}
		e.pathGen, e.pathProg = e.gen, p
	}
	return e.pathVals[slot]
}
