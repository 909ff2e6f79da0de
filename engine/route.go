package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/rules"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// On-error policies of a pipeline (SPEC §3).
const (
	OnErrorDeadLetter = "dead_letter"
	OnErrorDrop       = "drop"
	OnErrorStop       = "stop"
)

// errStopped ends a cursor whose pipeline has on_error: stop and met a
// failure. The cursor keeps its checkpoint before the failing event.
var errStopped = errors.New("engine: route stopped by on_error: stop")

// route is one route of one pipeline: its rules, its sink and its policies.
// Each partition of the pipeline's topic gets its own cursor over a route,
// so a slow target holds back only its own route (the log is the buffer).
type route struct {
	pipeline string
	name     string
	topic    string
	start    string // "earliest" | "latest", used when no checkpoint exists

	filter    *rules.Program   // pipeline filter; nil = every event
	transform *rules.Transform // pipeline transform; nil = events as they are
	when      *rules.Program   // route condition; nil = every event passing filter
	// routeTransform runs after when; nil = parts as they are.
	routeTransform *rules.Transform
	key            *rules.Program // replaces the event key when set
	routingKey     *rules.Program
	groupID        *rules.Program
	dedupID        *rules.Program
	// message computes a queue or exchange target's priority, ttl, delay,
	// reply_to and correlation_id (queueparams.go); nil when none is set.
	message *pipelines.Target

	sink         event.Sink
	deadLetter   event.Sink // where failed events go when onError is dead_letter
	onError      string
	retry        RetryPolicy
	retryIf      *rules.Program // retry only when it holds
	deadLetterIf *rules.Program // dead-letter at once when it holds

	batchSize int
	maxBytes  int

	// stats are shared by every version of the route (reload.go), so that
	// counters survive a swap.
	stats *routeStats
	// version is the config version whose rules these are (reload.go);
	// versionValue its decimal form, the value of the bridge-rules-version
	// header of every output; nil (version 0) adds no header.
	version      int64
	versionValue []byte
	// canary, when set, takes the events whose key hash falls below
	// canaryPct (canary.go); shadow, when set, is evaluated beside this
	// route without sending and compared (shadow.go).
	canary    *route
	canaryPct int
	shadow    *shadowRun
	// journal, when set, receives a record per handled batch and per
	// failure (console.go): the console's message journey.
	journal Journal

	// Telemetry, set by instrumentRoutes. tracer is nil unless spans are
	// recorded: with tracing off the cursor starts no span at all and the
	// upstream traceparent travels unchanged. metrics is nil when telemetry
	// is off; its methods are nil-safe.
	tracer      trace.Tracer
	metrics     *telemetry.RouteMetrics
	processName string // span names built once
	sendName    string
	spanAttrs   []attribute.KeyValue
}

// instrumentRoutes attaches the engine's telemetry to a pipeline's routes.
func (e *Engine) instrumentRoutes(routes []*route) {
	tel := e.opts.Telemetry
	if tel == nil {
		return
	}
	for _, r := range routes {
		target := targetName(r.sink)
		r.metrics = tel.Route(r.pipeline, r.name, r.topic, target)
		if tel.Tracing() {
			r.tracer = tel.Tracer()
		}
		r.processName = "process " + r.pipeline + "/" + r.name
		r.sendName = "send " + target
		r.spanAttrs = []attribute.KeyValue{telemetry.AttrSystem.String(telemetry.System),
			telemetry.AttrPipeline.String(r.pipeline), telemetry.AttrRoute.String(r.name),
			telemetry.AttrDestination.String(target)}
	}
}

// group is the consumer group name under which the route checkpoints.
func (r *route) group() string { return "pipeline." + r.pipeline + ".route." + r.name }

// routeStats are the route's counters, summed over partitions.
type routeStats struct {
	read, matched, sent, deadLettered, dropped, ruleErrors, sendErrors, retries atomic.Int64
	// permanentFailures and retryableFailures count failed events of sends
	// by class (sendErrors counts failed sends).
	permanentFailures, retryableFailures atomic.Int64
}

// cursor runs one route over one partition: read, evaluate, send in order,
// advance. acked is the contiguous handled prefix: every event below it was
// acknowledged by the sink, dead-lettered, dropped by policy or not selected.
type cursor struct {
	// r is the route version the cursor runs; only the cursor's goroutine
	// reads it while the cursor runs, and a reload replaces it at a clean
	// point (reload.go). The identity below never changes: other goroutines
	// (committer, status) read only that.
	r         *route
	pipeline  string
	name      string
	topic     string
	group     string
	partition int32
	backbone  Backbone
	log       *slog.Logger

	acked     atomic.Int64 // next offset to handle; -1 until the start is known
	committed atomic.Int64 // last value written by Commit; -1 when none
	stopped   atomic.Bool  // on_error: stop tripped
	lastErr   atomic.Pointer[string]

	mu     sync.Mutex // guards seekTo and the swap state (reload.go)
	seekTo int64      // -1 when no replay is pending
	swap   swapState
	// stop ends this cursor alone after its batch (a removed route); done is
	// closed when run returned.
	stop context.CancelFunc
	done chan struct{}
	// scratch of canary.go and shadow.go
	slices2  [2][]event.Event
	shadowEv [2]*cursor
	env      *rules.Env
	params   []event.Params
	outbuf   []event.Event
	indexes  []int // indexes[i]: the fetched event outbuf[i] came from
	// Transforms write values into buf (reset per fetched batch) and their
	// parts into parts (the pipeline transform's) and finals (the route
	// transform's), reused per source event: outbuf keeps copies of the
	// event structs.
	buf rules.Buffer
	// headerArena and idArena hold the outgoing events' header slices and
	// bridge-event-id values of the current batch (see headerSlice).
	headerArena []event.Header
	idArena     []byte
	parts       []event.Event
	finals      []event.Event
	givenUp     []int // scratch of send: fetched events handed to on_error
	links       []trace.Link
	// span is the context of the current batch's process span; invalid when
	// tracing is off. Only the cursor goroutine touches it. spanTP is its
	// traceparent encoding and spanTraceHex its trace id in hex, computed
	// once per batch: every outgoing event of the batch shares spanTP.
	span         trace.SpanContext
	spanTP       []byte
	spanTraceHex [32]byte
}

func newCursor(r *route, partition int32, b Backbone, log *slog.Logger) *cursor {
	c := &cursor{r: r, pipeline: r.pipeline, name: r.name, topic: r.topic, group: r.group(), partition: partition,
		backbone: b, seekTo: -1, env: rules.NewEnv(), done: make(chan struct{}),
		log: log.With("pipeline", r.pipeline, "route", r.name, "partition", partition)}
	if r.stats == nil {
		r.stats = &routeStats{}
	}
	c.acked.Store(-1)
	c.committed.Store(-1)
	return c
}

// requestSeek asks the cursor to continue at offset after its current batch.
func (c *cursor) requestSeek(offset int64) {
	c.mu.Lock()
	c.seekTo = offset
	c.mu.Unlock()
}

func (c *cursor) takeSeek() (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.seekTo
	c.seekTo = -1
	return o, o >= 0
}

// startOffset is where the cursor begins: the checkpoint, else start.
func (c *cursor) startOffset(ctx context.Context) (int64, error) {
	next, ok, err := c.backbone.Committed(ctx, c.r.group(), c.r.topic, c.partition)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	if ok {
		c.committed.Store(next)
		return next, nil
	}
	start, end, err := c.backbone.Offsets(c.r.topic, c.partition)
	if err != nil {
		return 0, err
	}
	if c.r.start == "latest" {
		return end, nil
	}
	return start, nil
}

// fetchWait bounds one long poll so that a cursor notices replays promptly.
const fetchWait = 500 * time.Millisecond

// run is the cursor's loop. soft is cancelled to stop intake (the current
// batch still completes); hard is cancelled to abandon sends. A return
// leaves acked at the last fully handled offset.
func (c *cursor) run(soft, hard context.Context) error {
	c.begin()
	defer c.exit()
	next, err := c.startOffset(hard)
	if err != nil {
		return err
	}
	c.acked.Store(next)
	for soft.Err() == nil {
		if o, ok := c.takeSeek(); ok {
			next = o
			c.acked.Store(next)
		}
		if req := c.takeSwap(); req != nil {
			c.applySwap(hard, next, req) // a clean point: the last batch is handled (reload.go)
		}
		fctx, cancel := context.WithTimeout(soft, fetchWait)
		c.fetching(cancel)
		evs, err := c.backbone.Fetch(fctx, c.topic, c.partition, next, c.r.batchSize, c.r.maxBytes)
		c.fetching(nil)
		cancel()
		if err != nil {
			if earliest, latest, ok := c.backbone.OutOfRange(err); ok {
				next = c.outOfRange(next, earliest, latest)
				c.acked.Store(next)
				continue
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				continue
			}
			return fmt.Errorf("fetch %s/%d at %d: %w", c.r.topic, c.partition, next, err)
		}
		if len(evs) == 0 {
			continue
		}
		if err := c.handle(soft, hard, evs); err != nil {
			if errors.Is(err, errStopped) {
				c.stopped.Store(true)
				msg := err.Error()
				c.lastErr.Store(&msg)
			}
			return err
		}
		next = evs[len(evs)-1].Offset + 1
		c.acked.Store(next)
	}
	return nil
}

// outOfRange moves a cursor whose offset left the log. Below the start means
// retention deleted events this route never handled: that is reported, since
// it is data loss the operator must know of; past the end (a replay too far)
// clamps to the end.
func (c *cursor) outOfRange(next, earliest, latest int64) int64 {
	if next < earliest {
		c.log.Error("events deleted by retention before this route handled them",
			"from", next, "to", earliest, "lost", earliest-next)
		return earliest
	}
	return latest
}

// handle evaluates and sends one fetched batch, in offset order. It returns
// only when every event is handled (acked, dead-lettered or dropped), or
// with an error that leaves the batch unhandled. The outputs of a batch are
// sent in chunks of about batchSize events (a split can multiply them); the
// parts of one event are never divided between chunks.
func (c *cursor) handle(soft, hard context.Context, evs []event.Event) error {
	r := c.r
	if r.canary != nil {
		return c.handleCanary(soft, hard, evs)
	}
	if err := c.handleBatch(soft, hard, evs); err != nil {
		return err
	}
	if r.shadow != nil {
		c.compareShadow(evs)
	}
	return nil
}

// handleBatch is handle for the route version c.r, without canary or shadow.
func (c *cursor) handleBatch(soft, hard context.Context, evs []event.Event) error {
	r := c.r
	r.stats.read.Add(int64(len(evs)))
	c.resetOutputs()
	// The previous batch's outputs were all acknowledged or handed to
	// on_error: their bytes may be overwritten (sinks copy what they keep
	// after Send returns, as for the log's read buffers).
	c.resetArenas()
	ctx := hard
	if r.tracer != nil {
		var span trace.Span
		ctx, span = c.startProcessSpan(hard, evs)
		defer func() { span.End(); c.span, c.spanTP = trace.SpanContext{}, nil }()
	}
	var evalStart time.Time
	if r.metrics != nil {
		evalStart = time.Now()
	}
	matched := 0
	for i := range evs {
		ev := &evs[i]
		before := len(c.outbuf)
		if err := c.evaluate(ev, i); err != nil {
			c.truncateOutputs(before) // an event is transformed whole or not at all
			r.stats.ruleErrors.Add(1)
			r.metrics.Error(ctx, telemetry.ClassRule, 1)
			if err := c.fail(soft, hard, ev, fmt.Errorf("rule: %w", event.Permanent(err)), 0); err != nil {
				return err
			}
			continue
		}
		if len(c.outbuf) >= r.batchSize && i < len(evs)-1 {
			matched += len(c.outbuf)
			if err := c.send(soft, hard, ctx, evs, c.outbuf, c.params, c.indexes); err != nil {
				return err
			}
			c.resetOutputs()
		}
	}
	matched += len(c.outbuf)
	r.stats.matched.Add(int64(matched))
	if r.metrics != nil {
		r.metrics.Read(ctx, len(evs), time.Since(evalStart).Seconds())
	}
	if r.tracer != nil {
		trace.SpanFromContext(ctx).SetAttributes(telemetry.AttrMatched.Int(matched))
	}
	if len(c.outbuf) == 0 {
		c.journalBatch(evs, matched)
		return nil
	}
	if err := c.send(soft, hard, ctx, evs, c.outbuf, c.params, c.indexes); err != nil {
		return err
	}
	c.journalBatch(evs, matched)
	return nil
}

func (c *cursor) resetOutputs() { c.truncateOutputs(0) }

// truncateOutputs drops the outputs from n on.
func (c *cursor) truncateOutputs(n int) {
	clear(c.outbuf[n:]) // no references to values already sent
	c.outbuf = c.outbuf[:n]
	c.indexes = c.indexes[:min(n, len(c.indexes))]
	c.params = c.params[:min(n, len(c.params))]
}

// startProcessSpan starts the batch's process span: a child of the first
// traced event, linked to the other traces of the batch (SPEC §8 tracing:
// one span per batch, not per event).
func (c *cursor) startProcessSpan(hard context.Context, evs []event.Event) (context.Context, trace.Span) {
	r := c.r
	pctx, _, links := telemetry.BatchParent(hard, evs, c.links[:0])
	ctx, span := r.tracer.Start(pctx, r.processName, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(r.spanAttrs...),
		trace.WithAttributes(telemetry.AttrOperation.String("process"), telemetry.AttrPartition.Int(int(c.partition)),
			telemetry.AttrBatchSize.Int(len(evs))))
	clear(links) // drop references to the batch's span contexts
	c.links = links[:0]
	c.span = span.SpanContext()
	c.spanTP = telemetry.AppendTraceParent(nil, c.span)
	copy(c.spanTraceHex[:], c.spanTP[3:35])
	return ctx, span
}

// evaluate runs the route's chain on the fetched event evs[index] and
// appends its outputs (none, one, or one per part of a split) to outbuf:
// the filter on the event; the pipeline's transform; per part, the route's
// when and transform; per output, the target's rules. pipelines.Outputs is
// the same chain for `bridge test`. On error the caller truncates outbuf.
func (c *cursor) evaluate(ev *event.Event, index int) error {
	r := c.r
	c.env.Reset(ev)
	if r.filter != nil {
		ok, err := r.filter.EvalBool(c.env)
		if err != nil || !ok {
			return err
		}
	}
	if r.transform == nil {
		return c.routeStage(ev, index)
	}
	var err error
	if c.parts, err = r.transform.Apply(c.env, ev, c.parts[:0], &c.buf); err != nil {
		return fmt.Errorf("transform: %w", err)
	}
	for j := range c.parts {
		c.env.View(&c.parts[j])
		if err := c.routeStage(&c.parts[j], index); err != nil {
			return err
		}
	}
	return nil
}

// routeStage runs when and the route's transform on part, which the env
// views, and emits what results.
func (c *cursor) routeStage(part *event.Event, index int) error {
	r := c.r
	if r.when != nil {
		ok, err := r.when.EvalBool(c.env)
		if err != nil || !ok {
			return err
		}
	}
	if r.routeTransform == nil {
		return c.emit(part, index)
	}
	var err error
	if c.finals, err = r.routeTransform.Apply(c.env, part, c.finals[:0], &c.buf); err != nil {
		return fmt.Errorf("route transform: %w", err)
	}
	for k := range c.finals {
		c.env.View(&c.finals[k])
		if err := c.emit(&c.finals[k], index); err != nil {
			return err
		}
	}
	return nil
}

// emit computes the target's rules over ev, which the env views, and
// appends the outgoing event.
func (c *cursor) emit(ev *event.Event, index int) error {
	r := c.r
	out := c.outgoing(ev)
	if r.key != nil {
		k, ok, err := r.key.EvalString(c.env)
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		if ok {
			out.Key = []byte(k)
		} else {
			out.Key = nil
		}
	}
	withParams := r.routingKey != nil || r.groupID != nil || r.dedupID != nil || r.message != nil
	if withParams {
		var params event.Params
		var err error
		if params.RoutingKey, err = evalParam(r.routingKey, c.env); err != nil {
			return fmt.Errorf("routing_key: %w", err)
		}
		if params.GroupID, err = evalParam(r.groupID, c.env); err != nil {
			return fmt.Errorf("group_id: %w", err)
		}
		if params.DedupID, err = evalParam(r.dedupID, c.env); err != nil {
			return fmt.Errorf("dedup_id: %w", err)
		}
		if params.DedupID == "" && r.dedupID == nil {
			params.DedupID = defaultDedupID(&out)
		}
		if err := r.messageParams(c.env, &params); err != nil {
			return err
		}
		c.params = append(c.params, params)
	}
	c.outbuf = append(c.outbuf, out)
	c.indexes = append(c.indexes, index)
	return nil
}

// defaultDedupID is the deduplication id of an output with no dedup_id
// rule: its bridge-event-id, plus the split index for a part of a split
// (the parts of one event share the id and must not deduplicate each
// other away).
func defaultDedupID(out *event.Event) string {
	id, _ := out.Header(event.HeaderEventID)
	if part, ok := out.Header(rules.HeaderSplitIndex); ok {
		return string(id) + "#" + string(part)
	}
	return string(id)
}

func evalParam(p *rules.Program, env *rules.Env) (string, error) {
	if p == nil {
		return "", nil
	}
	s, _, err := p.EvalString(env)
	return s, err
}

// outgoing is the event as a sink receives it: the same record with the
// header bridge-event-id naming its backbone coordinates. An event that
// already carries one (copied from another bridge topic or system) keeps the
// original, so consumers deduplicate on the first id an event ever had.
//
// When span is valid (tracing on), the event's traceparent is replaced by
// span, so that the next hop is a child of this pipeline's process span, if
// the event belongs to span's trace or had no trace; an event of another
// trace of the batch keeps its upstream traceparent (its trace is linked
// from the span), so no event ever leaves with a trace id it did not have.
func (c *cursor) outgoing(ev *event.Event) event.Event {
	out := *ev
	_, hasID := ev.Header(event.HeaderEventID)
	inject := c.span.IsValid() && c.sameTraceOrNone(ev)
	version := c.r.versionValue
	if hasID && !inject && version == nil {
		return out
	}
	// A slice of our own: ev.Headers may alias the backbone's read buffer.
	hs := c.headerSlice(len(ev.Headers), len(ev.Headers)+3)
	copy(hs, ev.Headers)
	if !hasID {
		hs = append(hs, event.Header{Key: event.HeaderEventID, Value: c.eventID(ev)})
	}
	if inject {
		hs = telemetry.SetTraceParentValue(hs, c.span, c.spanTP)
	}
	if version != nil {
		hs = setHeader(hs, HeaderRulesVersion, version)
	}
	out.Headers = hs
	return out
}

// headerSlice carves a header slice of length n and capacity capacity from
// the cursor's arena, and eventID writes ev's id into its byte arena. Both
// arenas are rewound per fetched batch, like the transform buffer: a
// handful of allocations per batch instead of two per event.
func (c *cursor) headerSlice(n, capacity int) []event.Header {
	if cap(c.headerArena)-len(c.headerArena) < capacity {
		c.headerArena = make([]event.Header, 0, max(1024, 2*cap(c.headerArena), capacity))
	}
	start := len(c.headerArena)
	c.headerArena = c.headerArena[:start+capacity]
	return c.headerArena[start : start+n : start+capacity]
}

func (c *cursor) eventID(ev *event.Event) []byte {
	need := len(ev.Topic) + 2 + 2*20
	if cap(c.idArena)-len(c.idArena) < need {
		c.idArena = make([]byte, 0, max(16<<10, 2*cap(c.idArena)))
	}
	start := len(c.idArena)
	b := append(c.idArena, ev.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(ev.Partition), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, ev.Offset, 10)
	c.idArena = b
	return b[start:len(b):len(b)]
}

// resetArenas rewinds the arenas; every output of the last batch was
// acknowledged or handed to on_error (sinks copy what they keep).
func (c *cursor) resetArenas() {
	clear(c.headerArena) // drop references to the last batch's bytes
	c.headerArena = c.headerArena[:0]
	c.idArena = c.idArena[:0]
	c.buf.Reset()
}

// sameTraceOrNone reports whether ev has no valid traceparent or one in the
// batch span's trace. The common case (the event is in the batch's trace)
// is a 32-byte compare; only other values are parsed.
func (c *cursor) sameTraceOrNone(ev *event.Event) bool {
	tp, ok := ev.Header(event.HeaderTraceParent)
	if !ok {
		return true
	}
	if len(tp) >= 35 && string(tp[3:35]) == string(c.spanTraceHex[:]) {
		return true
	}
	sc, err := telemetry.ParseTraceParent(tp)
	return err != nil || sc.TraceID() == c.span.TraceID()
}

// send delivers the selected events with retries, keeping their order. On a
// partial failure only the failed events are sent again. It returns nil when
// every event was acknowledged or handed to on_error.
func (c *cursor) send(soft, hard, spanCtx context.Context, evs, batch []event.Event, params []event.Params, indexes []int) error {
	r := c.r
	ctx := hard
	var span trace.Span
	if r.tracer != nil {
		ctx, span = r.tracer.Start(spanCtx, r.sendName, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(r.spanAttrs...), trace.WithAttributes(telemetry.AttrOperation.String("send"),
				telemetry.AttrBatchSize.Int(len(batch))))
		defer span.End()
	}
	for attempt := 1; ; attempt++ {
		var sent time.Time
		if r.metrics != nil {
			sent = time.Now()
		}
		err := c.sendOnce(ctx, batch, params)
		if err == nil {
			r.stats.sent.Add(int64(len(batch)))
			if r.metrics != nil {
				r.metrics.Send(ctx, time.Since(sent).Seconds(), false, len(batch), valueBytes(batch, nil))
			}
			return nil
		}
		if hard.Err() != nil {
			return hard.Err()
		}
		r.stats.sendErrors.Add(1)
		failed := failedItems(err, len(batch))
		r.stats.sent.Add(int64(len(batch) - len(failed)))
		permanent := 0
		for _, f := range failed {
			if errors.Is(f.err, event.ErrPermanent) {
				permanent++
			}
		}
		r.stats.permanentFailures.Add(int64(permanent)) // errors by class, per event (console, status)
		r.stats.retryableFailures.Add(int64(len(failed) - permanent))
		if r.metrics != nil {
			r.metrics.Send(ctx, time.Since(sent).Seconds(), true, len(batch)-len(failed), valueBytes(batch, failed))
			r.metrics.Error(ctx, telemetry.ClassPermanent, permanent)
			r.metrics.Error(ctx, telemetry.ClassRetryable, len(failed)-permanent)
		}
		if span != nil {
			span.AddEvent("send failed", trace.WithAttributes(attribute.Int("attempt", attempt),
				attribute.Int("failed", len(failed)), attribute.String("error", err.Error())))
		}
		keepBatch, keepParams, keepIdx, failErr := c.triage(soft, hard, evs, batch, params, indexes, failed, attempt)
		if failErr != nil {
			return failErr
		}
		if len(keepBatch) == 0 {
			if span != nil {
				span.SetStatus(codes.Error, "events handed to on_error")
			}
			return nil
		}
		batch, params, indexes = keepBatch, keepParams, keepIdx
		c.journalRetry(evs, indexes, attempt, err)
		r.stats.retries.Add(1)
		r.metrics.Retry(ctx)
		pause := r.retry.backoff(attempt)
		c.log.Warn("send failed, retrying", "attempt", attempt, "events", len(batch), "backoff", pause, "err", err)
		// A soft stop ends the wait: the batch is not acknowledged, so it is
		// not committed and is delivered again after a restart.
		if !sleep(soft, pause) {
			return soft.Err()
		}
	}
}

// triage decides per failed output whether to retry it, and returns the
// outputs to send again. An event any of whose outputs is given up is
// handed to on_error once, as the original event; its other outputs are not
// retried (a redrive sends the event again whole).
func (c *cursor) triage(soft, hard context.Context, evs, batch []event.Event, params []event.Params, indexes []int,
	failed []failedItem, attempt int) (keepBatch []event.Event, keepParams []event.Params, keepIdx []int, err error) {
	var retry []failedItem
	givenUp := c.givenUp[:0]
	for _, f := range failed {
		src := indexes[f.index]
		if slices.Contains(givenUp, src) {
			continue
		}
		if c.retryable(&evs[src], f.err, attempt) {
			retry = append(retry, f)
			continue
		}
		givenUp = append(givenUp, src)
		if err := c.fail(soft, hard, &evs[src], partCause(&batch[f.index], f.err), attempt); err != nil {
			return nil, nil, nil, err
		}
	}
	c.givenUp = givenUp
	for _, f := range retry {
		if slices.Contains(givenUp, indexes[f.index]) {
			continue
		}
		keepBatch = append(keepBatch, batch[f.index])
		if params != nil {
			keepParams = append(keepParams, params[f.index])
		}
		keepIdx = append(keepIdx, indexes[f.index])
	}
	return keepBatch, keepParams, keepIdx, nil
}

func (c *cursor) sendOnce(ctx context.Context, batch []event.Event, params []event.Params) error {
	if ps, ok := c.r.sink.(event.ParamSink); ok && params != nil {
		return ps.SendParams(ctx, batch, params)
	}
	return c.r.sink.Send(ctx, batch)
}

// valueBytes sums the value sizes of the batch's events not in failed.
func valueBytes(batch []event.Event, failed []failedItem) int64 {
	var n int64
	for i := range batch {
		n += int64(len(batch[i].Value))
	}
	for _, f := range failed {
		n -= int64(len(batch[f.index].Value))
	}
	return n
}

type failedItem struct {
	index int
	err   error
}

// partCause names the part of a split whose send failed, since the dead
// letter is the whole original event.
func partCause(out *event.Event, err error) error {
	if part, ok := out.Header(rules.HeaderSplitIndex); ok {
		return fmt.Errorf("split part %s: %w", part, err)
	}
	return err
}

// failedItems lists which events of a batch failed: those a *BatchError
// names, or all of them.
func failedItems(err error, n int) []failedItem {
	var be *event.BatchError
	if errors.As(err, &be) && len(be.Failed) > 0 {
		out := make([]failedItem, 0, len(be.Failed))
		for _, f := range be.Failed {
			if f.Index >= 0 && f.Index < n {
				out = append(out, failedItem{f.Index, f.Err})
			}
		}
		return out
	}
	out := make([]failedItem, n)
	for i := range out {
		out[i] = failedItem{i, err}
	}
	return out
}

// retryable decides, once per failure, whether to try again: the sink's
// class first (event.ErrPermanent), then the pipeline's dead_letter_if and
// retry_if rules, then the attempt budget.
func (c *cursor) retryable(ev *event.Event, err error, attempt int) bool {
	r := c.r
	permanent := errors.Is(err, event.ErrPermanent)
	if r.deadLetterIf != nil || r.retryIf != nil {
		c.env.Reset(ev)
		c.env.SetError(rules.Failure{Message: err.Error(), Permanent: permanent, Attempts: attempt,
			Route: r.name, Target: r.name})
		if r.deadLetterIf != nil {
			if ok, rerr := r.deadLetterIf.EvalBool(c.env); rerr == nil && ok {
				return false
			}
		}
		if r.retryIf != nil && !permanent {
			if ok, rerr := r.retryIf.EvalBool(c.env); rerr == nil && !ok {
				return false
			}
		}
	}
	if permanent {
		return false
	}
	return r.retry.MaxAttempts <= 0 || attempt < r.retry.MaxAttempts
}

// fail applies on_error to one event that will not be delivered.
func (c *cursor) fail(soft, hard context.Context, ev *event.Event, cause error, attempts int) error {
	r := c.r
	switch r.onError {
	case OnErrorDrop:
		c.journalFailure(JournalDropped, ev, attempts, cause)
		r.stats.dropped.Add(1)
		c.log.Warn("event dropped by on_error: drop", "offset", ev.Offset, "err", cause)
		return nil
	case OnErrorStop:
		c.journalFailure(JournalStopped, ev, attempts, cause)
		c.log.Error("route stopped by on_error: stop", "offset", ev.Offset, "err", cause)
		return fmt.Errorf("%w: offset %d: %v", errStopped, ev.Offset, cause)
	}
	dl := deadLetterEvent(ev, r, cause, attempts)
	dl.Headers = c.traceDeadLetter(ev, dl.Headers)
	for attempt := 1; ; attempt++ {
		err := r.deadLetter.Send(hard, []event.Event{dl})
		if err == nil {
			c.journalFailure(JournalDeadLetter, ev, attempts, cause)
			r.stats.deadLettered.Add(1)
			r.metrics.DeadLetter(hard)
			return nil
		}
		if hard.Err() != nil {
			return hard.Err()
		}
		pause := r.retry.backoff(attempt)
		c.log.Error("dead letter write failed, retrying", "offset", ev.Offset, "attempt", attempt, "err", err)
		if !sleep(soft, pause) {
			return soft.Err()
		}
	}
}

// traceDeadLetter adds the trace to a dead letter's headers: bridge-trace-id
// names the trace the event belonged to (its own, else the batch's), and
// when tracing is on the traceparent makes the dead letter a child of this
// batch's process span, as outgoing does for a delivered event.
func (c *cursor) traceDeadLetter(ev *event.Event, hs []event.Header) []event.Header {
	var id trace.TraceID
	if tp, ok := ev.Header(event.HeaderTraceParent); ok {
		if sc, err := telemetry.ParseTraceParent(tp); err == nil {
			id = sc.TraceID()
		}
	}
	if c.span.IsValid() && (!id.IsValid() || id == c.span.TraceID()) {
		id = c.span.TraceID()
		hs = telemetry.SetTraceParentValue(hs, c.span, c.spanTP)
	}
	if id.IsValid() {
		hs = append(hs, event.Header{Key: telemetry.HeaderTraceID, Value: []byte(id.String())})
	}
	return hs
}

// deadLetterEvent keeps the original key, value and headers and adds the
// provenance headers of SPEC §5.5.
func deadLetterEvent(ev *event.Event, r *route, cause error, attempts int) event.Event {
	class := "retryable"
	if errors.Is(cause, event.ErrPermanent) {
		class = "permanent"
	}
	hs := make([]event.Header, 0, len(ev.Headers)+6)
	for _, h := range ev.Headers {
		switch h.Key {
		case event.HeaderError, event.HeaderErrorClass, event.HeaderPipeline, event.HeaderRoute, event.HeaderAttempts,
			telemetry.HeaderTraceID:
			continue // a redriven dead letter gets fresh provenance
		}
		hs = append(hs, h)
	}
	if _, ok := ev.Header(event.HeaderEventID); !ok {
		hs = append(hs, event.Header{Key: event.HeaderEventID, Value: []byte(ev.ID())})
	}
	hs = append(hs,
		event.Header{Key: event.HeaderError, Value: []byte(cause.Error())},
		event.Header{Key: event.HeaderErrorClass, Value: []byte(class)},
		event.Header{Key: event.HeaderPipeline, Value: []byte(r.pipeline)},
		event.Header{Key: event.HeaderRoute, Value: []byte(r.name)},
		event.Header{Key: event.HeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
	)
	return event.Event{Key: ev.Key, Value: ev.Value, Headers: hs, Timestamp: ev.Timestamp, Source: ev.Source}
}
