package rules

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/bridgeio/bridge/event"
)

// HeaderSplitIndex names the header that tells the parts of a split event
// apart: the part's index in its source event's split, "2"; after two
// splits (a pipeline's and a route's) both indexes, "2.0". Together with
// bridge-event-id it identifies a part.
const HeaderSplitIndex = "bridge-split-index"

// DefaultMaxParts bounds how many parts one event may split into.
const DefaultMaxParts = 10_000

// DefaultMaxBytes bounds the keys and values one event's transform writes
// (all parts together), so that a split of a large event cannot exhaust
// memory.
const DefaultMaxBytes = 64 << 20

// ErrTooManyParts is a split whose array is longer than MaxParts.
var ErrTooManyParts = errors.New("rules: split yields too many parts")

// ErrTooLarge is a transform whose outputs for one event would take more
// than MaxBytes.
var ErrTooLarge = errors.New("rules: transform output too large")

// Transform is a compiled transform step (issue 12): it reshapes, splits,
// re-keys or drops one event. It is immutable and safe for concurrent use;
// evaluation state lives in the Env.
//
// The steps run in this order, each reading the step's input event (never
// another step's output): split (one part per element; item and index are
// visible to the following steps), drop_if (per part), then value, key and
// headers of each part.
type Transform struct {
	Split  *Program // List rule in EventScope; nil: one part, the event itself
	DropIf *Program // Bool; SplitScope when Split is set
	Value  *Program // Value; nil: keep the value (the element, when splitting)
	Key    *Program // String; nil: keep the key
	// Set are header rules in name order; Remove are names to delete.
	// Remove applies first; a set header replaces every value of its name.
	Set    []HeaderRule
	Remove []string
	// Step names the step in uuid() derivations ("pipeline", "route NAME"),
	// so two steps with the same rule text still make different ids.
	Step string
	// MaxParts bounds a split; 0 means DefaultMaxParts.
	MaxParts int
	// MaxBytes bounds the bytes one event's parts write; 0 means
	// DefaultMaxBytes.
	MaxBytes int
}

// HeaderRule computes one header. A nil result leaves the header out.
type HeaderRule struct {
	Name string
	Rule *Program
}

// Buffer holds the keys and values that transforms write. Bytes handed out
// stay unchanged until Reset: the buffer only appends, and when its chunk is
// full it starts a bigger one (the slices already handed out keep the old
// chunk alive). Reset rewinds to the start of the last chunk, which after a
// few batches holds a whole batch, so a steady stream of transforms
// allocates nothing. It is not safe for concurrent use.
type Buffer struct {
	b    []byte
	used int // bytes handed out since Reset, over all chunks
}

const bufferChunk = 64 << 10

// Reset makes the buffer reuse its memory: every value handed out before
// may be overwritten by the next transforms. Call it only once those
// values are no longer read (the engine: when a batch is handled). When
// the last batch needed more than one chunk, the next chunk is sized for
// all of it.
func (b *Buffer) Reset() {
	if b.used > cap(b.b) {
		b.b = make([]byte, 0, b.used+b.used/4)
	}
	b.b, b.used = b.b[:0], 0
}

// reserve makes room for about n more bytes and returns the start offset.
func (b *Buffer) reserve(n int) int {
	if cap(b.b)-len(b.b) < max(n, 256) {
		b.b = make([]byte, 0, max(bufferChunk, 2*n))
	}
	return len(b.b)
}

// take returns out[start:] as a value of its own (capacity-limited, so
// appending to it cannot reach the next value) and keeps out as the chunk.
func (b *Buffer) take(out []byte, start int) []byte {
	b.b = out
	b.used += len(out) - start
	return out[start:len(out):len(out)]
}

// Apply runs t on in, which env must be viewing (Reset or View), and
// appends the resulting parts to out: none when drop_if holds or the split
// is empty, one without split, one per element with split. Parts keep in's
// coordinates, timestamp and source, so their bridge-event-id is in's.
//
// A rule failing at run time returns an error naming the step ("value",
// "split item 3: key", ...) and appends nothing: an event is transformed
// whole or not at all.
func (t *Transform) Apply(env *Env, in *event.Event, out []event.Event, buf *Buffer) ([]event.Event, error) {
	env.uuidScope = t.Step
	env.splitPrefix = ""
	if p, ok := in.Header(HeaderSplitIndex); ok {
		env.splitPrefix = string(p)
	}
	env.inSplit, env.item = false, nil
	n := len(out)
	if t.Split == nil {
		part, keep, err := t.part(env, in, buf, nil)
		if err != nil || !keep {
			return out[:n], err
		}
		return append(out, part), nil
	}
	items, err := t.items(env)
	if err != nil {
		return out[:n], err
	}
	limit := t.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	startUsed := buf.used
	for i, item := range items {
		env.setItem(item, i)
		part, keep, err := t.part(env, in, buf, item)
		if err == nil && buf.used-startUsed > limit {
			err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
		}
		if err != nil {
			env.inSplit, env.item = false, nil
			clear(out[n:]) // drop references to the failed event's parts
			return out[:n], fmt.Errorf("split item %d: %w", i, err)
		}
		if keep {
			out = append(out, part)
		}
	}
	env.inSplit, env.item = false, nil
	return out, nil
}

// items evaluates the split: an array of parts; nil (a missing field) is
// no parts.
func (t *Transform) items(env *Env) ([]any, error) {
	v, err := t.Split.run(env)
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	var items []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		items = x
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return nil, fmt.Errorf("split: %q yields %s, not an array", t.Split.src, typeName(v))
		}
		items = make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
	}
	limit := t.MaxParts
	if limit <= 0 {
		limit = DefaultMaxParts
	}
	if len(items) > limit {
		return nil, fmt.Errorf("split: %w: %d elements, at most %d", ErrTooManyParts, len(items), limit)
	}
	return items, nil
}

// part computes one output event; keep is false when drop_if holds.
func (t *Transform) part(env *Env, in *event.Event, buf *Buffer, item any) (out event.Event, keep bool, err error) {
	if t.DropIf != nil {
		drop, err := t.DropIf.EvalBool(env)
		if err != nil {
			return out, false, fmt.Errorf("drop_if: %w", err)
		}
		if drop {
			return out, false, nil
		}
	}
	out = event.Event{Topic: in.Topic, Partition: in.Partition, Offset: in.Offset, Key: in.Key, Value: in.Value,
		Headers: in.Headers, Timestamp: in.Timestamp, Source: in.Source}
	switch {
	case t.Value != nil:
		if out.Value, err = t.Value.appendValue(env, buf); err != nil {
			return out, false, fmt.Errorf("value: %w", err)
		}
	case t.Split != nil:
		if out.Value, err = bufferValue(buf, item); err != nil {
			return out, false, fmt.Errorf("value: the element %w", err)
		}
	}
	if t.Key != nil {
		if out.Key, err = t.key(env, buf); err != nil {
			return out, false, fmt.Errorf("key: %w", err)
		}
	}
	if len(t.Set) > 0 || len(t.Remove) > 0 || t.Split != nil {
		if out.Headers, err = t.headers(env, in.Headers); err != nil {
			return out, false, err
		}
	}
	return out, true, nil
}

// bufferValue writes a value rule's result into buf (nil: no value).
func bufferValue(buf *Buffer, v any) ([]byte, error) {
	start := buf.reserve(256)
	out, isNil, err := appendValue(buf.b, v)
	if err != nil {
		return nil, err
	}
	if isNil {
		return nil, nil
	}
	return buf.take(out, start), nil
}

// key evaluates the key rule: text as is, bytes raw, numbers and booleans
// as JSON text; nil is no key.
func (t *Transform) key(env *Env, buf *Buffer) ([]byte, error) {
	v, err := t.Key.run(env)
	if err != nil || v == nil {
		return nil, err
	}
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	s, err := render(v)
	if err != nil {
		return nil, fmt.Errorf("rules: %q: %w", t.Key.src, err)
	}
	start := buf.reserve(len(s))
	return buf.take(append(buf.b, s...), start), nil
}

// headers builds a part's headers: in's, less the removed and the set
// names, then the set headers in name order, then the split index.
func (t *Transform) headers(env *Env, in []event.Header) ([]event.Header, error) {
	hs := make([]event.Header, 0, len(in)+len(t.Set)+1)
	for _, h := range in {
		if !t.replaces(h.Key) {
			hs = append(hs, h)
		}
	}
	for _, s := range t.Set {
		v, err := s.Rule.run(env)
		if err != nil {
			return nil, fmt.Errorf("headers.set[%s]: %w", s.Name, err)
		}
		if v == nil {
			continue
		}
		var b []byte
		if raw, ok := v.([]byte); ok {
			b = raw
		} else {
			str, err := render(v)
			if err != nil {
				return nil, fmt.Errorf("headers.set[%s]: %w", s.Name, err)
			}
			b = []byte(str)
		}
		hs = append(hs, event.Header{Key: s.Name, Value: b})
	}
	if t.Split != nil {
		path := env.appendSplitPath(env.scratch[:0])
		env.scratch = path
		hs = append(hs, event.Header{Key: HeaderSplitIndex, Value: append([]byte(nil), path...)})
	}
	return hs, nil
}

// replaces reports whether a header of the input is not carried over.
func (t *Transform) replaces(name string) bool {
	if t.Split != nil && name == HeaderSplitIndex {
		return true
	}
	for _, r := range t.Remove {
		if r == name {
			return true
		}
	}
	for _, s := range t.Set {
		if s.Name == name {
			return true
		}
	}
	return false
}

// appendValue evaluates a Value rule into buf: strings and bytes raw, nil
// as no value, anything else as JSON. A rule of the form
// merge(omit(body, ...), {...}) takes the patch path (patch.go).
func (p *Program) appendValue(env *Env, buf *Buffer) ([]byte, error) {
	if p.patch != nil {
		start := buf.reserve(len(env.ev.Value) + 64)
		if out, ok, err := p.patch.apply(env, buf.b); ok {
			if err != nil {
				return nil, err
			}
			return buf.take(out, start), nil
		}
	}
	v, err := p.run(env)
	if err != nil {
		return nil, err
	}
	out, err := bufferValue(buf, v)
	if err != nil {
		return nil, fmt.Errorf("rules: %q: %w", p.src, err)
	}
	return out, nil
}

// EvalValue runs a Value rule and renders its result as appendValue does,
// into a fresh slice; for tools and tests (the engine uses Transform).
func (p *Program) EvalValue(e *Env) ([]byte, error) {
	var buf Buffer
	return p.appendValue(e, &buf)
}
