package rules

import (
	"errors"
	"fmt"
	"math"
	"reflect"
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
	// Body paths read by recent programs for the current event: a
	// transform runs several programs (split, value, key, ...) over one
	// event, once per part, and each must scan the body once per event,
	// not once per part.
	paths    [pathCaches]pathCache
	pathNext int
	intern   internTable

	failure Failure

	// The event a chain of transforms started from (Reset sets it, View
	// keeps it): uuid() derives its ids from it, and now() is read once
	// per origin.
	origin    *event.Event
	originGen uint64
	nowGen    uint64
	now       time.Time
	clock     func() time.Time

	// The element of a split being evaluated (SplitScope rules), its index,
	// and the split path of the step's input ("" or "2", "2.0", ...).
	item        any
	index       int
	inSplit     bool
	splitPrefix string
	uuidScope   string // the step whose uuid() sites are running
	scratch     []byte

	// patch is the scratch state of the omit/merge fast path (patch.go).
	patch patchState

	bodyDecodes int // full decodes, for tests of "at most once per event"
	bodyScans   int // path scans, for tests
}

// pathCaches bounds the programs whose body paths are kept per event; a
// route with a transform and target rules runs about that many.
const pathCaches = 8

// pathCache holds the body path values of prog for the event of gen.
type pathCache struct {
	prog *Program
	gen  uint64
	vals []any
}

// pathValues returns the cache of p's path values for the current event,
// and whether it is already filled. When it is not, the caller fills vals
// (len(vals) is p's path count) and the entry is valid from then on.
func (e *Env) pathValues(p *Program) (vals []any, filled bool) {
	free := -1
	for i := range e.paths {
		c := &e.paths[i]
		if c.prog == p {
			if c.gen == e.gen {
				return c.vals, true
			}
			free = i
			break
		}
		if free < 0 && (c.prog == nil || c.gen != e.gen) {
			free = i
		}
	}
	if free < 0 {
		free = e.pathNext
		e.pathNext = (e.pathNext + 1) % pathCaches
	}
	c := &e.paths[free]
	n := len(p.paths.paths)
	if cap(c.vals) < n {
		c.vals = make([]any, n)
	}
	c.prog, c.gen, c.vals = p, e.gen, c.vals[:n]
	return c.vals, false
}

// NewEnv returns an empty environment; call Reset before evaluating.
func NewEnv() *Env { return &Env{gen: 1, clock: time.Now} }

// Reset points the environment at ev, a new event. It does no work:
// values, headers and the body are computed lazily when a rule reads them.
// ev must stay unchanged until the next Reset. ev is also the origin of
// what transforms derive from it (see View).
func (e *Env) Reset(ev *event.Event) {
	e.ev = ev
	e.gen++
	e.origin = ev
	e.originGen++
	e.inSplit, e.item, e.splitPrefix = false, nil, ""
}

// View points the environment at ev, an event derived from the last Reset's
// (a transform's output): rules now read ev, while now() keeps its value
// and uuid() keeps deriving ids from the origin. ev must stay unchanged
// until the next Reset or View.
func (e *Env) View(ev *event.Event) {
	e.ev = ev
	e.gen++
	e.inSplit, e.item, e.splitPrefix = false, nil, ""
}

// SetClock replaces the clock now() reads (time.Now by default), for tests
// and `bridge test` cases that fix the time.
func (e *Env) SetClock(now func() time.Time) { e.clock = now }

// setItem makes item and index visible to SplitScope rules.
func (e *Env) setItem(item any, index int) {
	e.item, e.index, e.inSplit = item, index, true
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

// EvalInt runs an Int rule. A nil result is ok=false (absent). An integral
// float (JSON numbers are floats) is accepted; anything else is an error.
func (p *Program) EvalInt(e *Env) (n int64, ok bool, err error) {
	out, err := p.run(e)
	if err != nil || out == nil {
		return 0, false, err
	}
	switch v := out.(type) {
	case int:
		return int64(v), true, nil
	case int64:
		return v, true, nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), true, nil
		}
		return 0, false, fmt.Errorf("rules: %q yields %v, not an integer", p.src, v)
	}
	if rv := reflect.ValueOf(out); rv.CanInt() {
		return rv.Int(), true, nil
	} else if rv.CanUint() && rv.Uint() < 1<<63 {
		return int64(rv.Uint()), true, nil
	}
	return 0, false, fmt.Errorf("rules: %q yields %T, not an integer", p.src, out)
}

// EvalDuration runs a Duration rule: a time.Duration as is, a number as
// seconds, a string parsed as a Go duration ("90s"). A nil result is
// ok=false (absent); a negative duration is an error.
func (p *Program) EvalDuration(e *Env) (d time.Duration, ok bool, err error) {
	out, err := p.run(e)
	if err != nil || out == nil {
		return 0, false, err
	}
	switch v := out.(type) {
	case time.Duration:
		d = v
	case int:
		d = time.Duration(v) * time.Second
	case int64:
		d = time.Duration(v) * time.Second
	case float64:
		if math.IsNaN(v) || math.Abs(v) > float64(math.MaxInt64/int64(time.Second)) {
			return 0, false, fmt.Errorf("rules: %q yields %v, not a duration", p.src, v)
		}
		d = time.Duration(v * float64(time.Second))
	case string:
		if d, err = time.ParseDuration(v); err != nil {
			return 0, false, fmt.Errorf("rules: %q: %w", p.src, err)
		}
	default:
		return 0, false, fmt.Errorf("rules: %q yields %T, not a duration", p.src, out)
	}
	if d < 0 {
		return 0, false, fmt.Errorf("rules: %q yields %v: a duration cannot be negative", p.src, d)
	}
	return d, true, nil
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
	case []byte:
		return string(x), nil
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

func fnItem(params ...any) (any, error)  { return params[0].(*Env).item, nil }
func fnIndex(params ...any) (any, error) { return params[0].(*Env).index, nil }

// fnNow is now(): one reading of the clock per origin event, so every rule
// and every part of one event sees the same time.
func fnNow(params ...any) (any, error) {
	e := params[0].(*Env)
	if e.nowGen != e.originGen {
		e.now, e.nowGen = e.clock(), e.originGen
	}
	return e.now, nil
}

// fnUUID is uuid(): a name-based UUID (RFC 9562 version 5) of the origin
// event's id, the step, the split path and the call site, so a redelivered
// event gets the same ids, while two parts or two call sites never share one.
func fnUUID(params ...any) (any, error) {
	e := params[0].(*Env)
	site := params[1].(int)
	b := e.scratch[:0]
	if id, ok := e.origin.Header(event.HeaderEventID); ok {
		b = append(b, id...)
	} else {
		b = append(b, e.origin.Topic...)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(e.origin.Partition), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, e.origin.Offset, 10)
	}
	b = append(b, 0)
	b = append(b, e.uuidScope...)
	b = append(b, 0)
	b = e.appendSplitPath(b)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(site), 10)
	e.scratch = b
	return nameUUID(b), nil
}

// appendSplitPath appends the split path of the part being computed: the
// input's path, then the current index when splitting ("1", "1.0").
func (e *Env) appendSplitPath(b []byte) []byte {
	b = append(b, e.splitPrefix...)
	if e.inSplit {
		if e.splitPrefix != "" {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(e.index), 10)
	}
	return b
}

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
// first path read of an event by a program scans the body once for all of
// the program's paths; a program that also uses body whole reads them from
// that decode.
func (e *Env) bodyPath(slot int) any {
	p := e.cur
	vals, filled := e.pathValues(p)
	if !filled {
		ps := &p.paths
		if p.fullBody || e.bodyGen == e.gen {
			b := e.fullBody()
			for i, path := range ps.paths {
				vals[i] = walkPath(b, path)
			}
		} else {
			extract(e.ev.Value, ps, vals, &e.intern)
			e.bodyScans++
		}
	}
	return vals[slot]
}
