package telemetry

import (
	"context"
	"encoding/hex"
	"errors"

	"github.com/bridgeio/bridge/event"
	"go.opentelemetry.io/otel/trace"
)

// HeaderTraceID is the dead-letter provenance header naming the trace the
// failed event belonged to (32 lowercase hex digits), so an operator can
// jump from a dead letter to its trace.
const HeaderTraceID = "bridge-trace-id"

// traceParentLen is the length of a version-00 traceparent:
// 2 (version) + 1 + 32 (trace id) + 1 + 16 (parent id) + 1 + 2 (flags).
const traceParentLen = 55

// ErrTraceParent is returned for a malformed traceparent value.
var ErrTraceParent = errors.New("telemetry: malformed traceparent")

// ParseTraceParent decodes a W3C traceparent value
// (VERSION-TRACEID-PARENTID-FLAGS, lowercase hex). It does not allocate.
// Per the W3C spec, a version other than 00 is parsed by its version-00
// prefix when it is followed by "-" or ends there, version ff is invalid,
// and all-zero trace or parent ids are invalid. The returned context is
// marked remote.
func ParseTraceParent(v []byte) (trace.SpanContext, error) {
	if len(v) < traceParentLen || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return trace.SpanContext{}, ErrTraceParent
	}
	var version [1]byte
	if !decodeHex(version[:], v[0:2]) || version[0] == 0xff {
		return trace.SpanContext{}, ErrTraceParent
	}
	if version[0] == 0 && len(v) != traceParentLen {
		return trace.SpanContext{}, ErrTraceParent
	}
	if version[0] != 0 && len(v) > traceParentLen && v[traceParentLen] != '-' {
		return trace.SpanContext{}, ErrTraceParent
	}
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	if !decodeHex(tid[:], v[3:35]) || !decodeHex(sid[:], v[36:52]) || !decodeHex(flags[:], v[53:55]) {
		return trace.SpanContext{}, ErrTraceParent
	}
	if !tid.IsValid() || !sid.IsValid() {
		return trace.SpanContext{}, ErrTraceParent
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true}), nil
}

// decodeHex decodes lowercase hex only, as the W3C spec requires.
func decodeHex(dst, src []byte) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := nibble(src[2*i])
		lo, ok2 := nibble(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func nibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// AppendTraceParent appends the version-00 traceparent of sc to dst.
func AppendTraceParent(dst []byte, sc trace.SpanContext) []byte {
	tid, sid := sc.TraceID(), sc.SpanID()
	dst = append(dst, '0', '0', '-')
	dst = hex.AppendEncode(dst, tid[:])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, sid[:])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, []byte{byte(sc.TraceFlags())})
}

// FromHeaders returns the span context in an event's traceparent (and
// tracestate) headers, and whether there is a valid one.
func FromHeaders(hs []event.Header) (trace.SpanContext, bool) {
	var tp, ts []byte
	for i := range hs {
		switch hs[i].Key {
		case event.HeaderTraceParent:
			tp = hs[i].Value
		case event.HeaderTraceState:
			ts = hs[i].Value
		}
	}
	if tp == nil {
		return trace.SpanContext{}, false
	}
	sc, err := ParseTraceParent(tp)
	if err != nil {
		return trace.SpanContext{}, false
	}
	if len(ts) > 0 {
		if state, err := trace.ParseTraceState(string(ts)); err == nil {
			sc = sc.WithTraceState(state)
		}
	}
	return sc, true
}

// SetTraceParent sets the traceparent header of hs to sc, replacing an
// existing one in place or appending one. It keeps tracestate as is: the
// state belongs to the trace, not to the hop. hs must be owned by the
// caller (not aliasing a backbone read buffer).
func SetTraceParent(hs []event.Header, sc trace.SpanContext) []event.Header {
	return SetTraceParentValue(hs, sc, AppendTraceParent(make([]byte, 0, traceParentLen), sc))
}

// SetTraceParentValue is SetTraceParent with the encoded traceparent of sc
// given, so that a batch shares one encoding. v must not be modified later:
// every event of the batch aliases it.
func SetTraceParentValue(hs []event.Header, sc trace.SpanContext, v []byte) []event.Header {
	for i := range hs {
		if hs[i].Key == event.HeaderTraceParent {
			hs[i].Value = v
			return hs
		}
	}
	hs = append(hs, event.Header{Key: event.HeaderTraceParent, Value: v})
	if ts := sc.TraceState(); ts.Len() > 0 {
		hs = append(hs, event.Header{Key: event.HeaderTraceState, Value: []byte(ts.String())})
	}
	return hs
}

// MaxLinks caps the links a batch span records to the other traces of its
// batch, so that a 10,000-event batch of distinct traces stays one small span.
const MaxLinks = 32

// BatchParent picks the parent of a span over a batch: the first valid
// trace context among the events, plus links to (at most MaxLinks) other
// distinct traces. ctx is returned with the parent set as remote span
// context when one is found.
func BatchParent(ctx context.Context, evs []event.Event, links []trace.Link) (context.Context, trace.SpanContext, []trace.Link) {
	var parent trace.SpanContext
	var lastTrace trace.TraceID
	var lastTP []byte
	for i := range evs {
		tp, ok := evs[i].Header(event.HeaderTraceParent)
		if !ok {
			continue
		}
		// Events of one POST or upstream batch share a traceparent: a byte
		// compare skips the hex decode for all but the first of a run.
		if lastTP != nil && string(tp) == string(lastTP) {
			continue
		}
		lastTP = tp
		sc, err := ParseTraceParent(tp)
		if err != nil {
			continue
		}
		if !parent.IsValid() {
			parent, lastTrace = sc, sc.TraceID()
			if full, ok := FromHeaders(evs[i].Headers); ok {
				parent = full
			}
			continue
		}
		// Consecutive events of one trace (a POSTed batch) are linked once.
		if sc.TraceID() == lastTrace || sc.TraceID() == parent.TraceID() || len(links) >= MaxLinks {
			continue
		}
		lastTrace = sc.TraceID()
		links = append(links, trace.Link{SpanContext: sc})
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return ctx, parent, links
}
