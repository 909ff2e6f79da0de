// Package httpapi serves bridge's HTTP API (SPEC §6): ingest into backbone
// topics, reads, pipeline status and replay, queue depths and redrive, dead
// letters (browse with a rules filter, idempotent redrive), health, and
// metrics. Every error is {"error":{"code":..,"message":..}}.
//
// Tracing: a POST continues the caller's W3C trace (traceparent request
// header) with one span per request, and every event without its own
// traceparent header is stored with the request's trace context, so the
// trace continues through the backbone and the pipelines.
//
// A POST of events answers 200 only once the backbone made them durable
// under its fsync policy; any failure before that answers an error and the
// client retries (at-least-once from the producer's side).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/event"
)

// Pipelines is what the API needs of the engine.
type Pipelines interface {
	Pipelines() []engine.PipelineStatus
	Pipeline(name string) (engine.PipelineStatus, bool)
	Replay(ctx context.Context, name string, from engine.ReplayFrom) (map[int32]int64, error)
	Ready() bool
}

// Queues is what the API needs of the embedded broker.
type Queues interface {
	QueueDepths() []engine.QueueDepth
	// Redrive moves messages of dlq back to their source queues (or to dest).
	Redrive(ctx context.Context, dlq, dest string, max, perSecond int) (int, error)
}

// Role is an API token's role (SPEC §6).
type Role string

const (
	RoleAdmin    Role = "admin"
	RoleProducer Role = "producer"
	RoleConsumer Role = "consumer"
)

// Options configure a Server.
type Options struct {
	Backbone       engine.Backbone
	Pipelines      Pipelines // nil: no pipelines
	Queues         Queues    // nil: no broker
	Metrics        http.Handler
	Tokens         map[string]Role // empty: no auth
	MaxRequestSize int64           // default 16 MiB
	Logger         *slog.Logger
	Now            func() time.Time
	// Ready reports extra readiness (e.g. backbone recovered); nil = true.
	Ready func() bool
	// Telemetry records ingest spans and metrics; nil = off. The caller's
	// traceparent is carried into events either way.
	Telemetry *telemetry.Telemetry
	// DeadLetters serves /v1/deadletters; nil lists none.
	DeadLetters DeadLetters
	// Replays serves route replays (/v1/pipelines/{name}/replays,
	// /v1/replays); nil: none.
	Replays RouteReplays
	// Console, when set, serves /console and everything below it (the web
	// console does its own auth with the same tokens and roles).
	Console http.Handler
	// Config serves /v1/config: reload, versions, shadow (config.go); nil:
	// none.
	Config Config
}

// Server is the HTTP API. It is an http.Handler, safe for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux
	log  *slog.Logger
}

// New builds the API handler. It starts nothing.
func New(opts Options) *Server {
	if opts.MaxRequestSize <= 0 {
		opts.MaxRequestSize = 16 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), log: opts.Logger}
	s.handle("POST /v1/topics/{topic}/events", RoleProducer, s.postEvents)
	s.handle("GET /v1/topics", RoleConsumer, s.listTopics)
	s.handle("GET /v1/topics/{topic}", RoleConsumer, s.getTopic)
	s.handle("GET /v1/topics/{topic}/events", RoleConsumer, s.getEvents)
	s.handle("GET /v1/pipelines", RoleConsumer, s.listPipelines)
	s.handle("GET /v1/pipelines/{name}", RoleConsumer, s.getPipeline)
	s.handle("POST /v1/pipelines/{name}/replay", RoleAdmin, s.replay)
	s.registerRouteReplays()
	s.registerConfig()
	s.handle("GET /v1/queues", RoleConsumer, s.listQueues)
	s.handle("POST /v1/queues/{dlq}/redrive", RoleAdmin, s.redrive)
	s.handle("GET /v1/deadletters", RoleConsumer, s.listDeadLetters)
	s.handle("GET /v1/deadletters/{id...}", RoleConsumer, s.getDeadLetter)
	s.handle("POST /v1/deadletters/redrive", RoleAdmin, s.redriveDeadLetters)
	s.handle("GET /readyz", RoleConsumer, s.readyz)
	if opts.Metrics != nil {
		s.handle("GET /metrics", RoleConsumer, opts.Metrics.ServeHTTP)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if opts.Console != nil {
		s.mux.Handle("/console", opts.Console)
		s.mux.Handle("/console/", opts.Console)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handle registers h behind the auth check for role. Admin may do anything;
// producer may POST events; consumer may read.
func (s *Server) handle(pattern string, role Role, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if len(s.opts.Tokens) > 0 {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || tok == "" {
				writeError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token")
				return
			}
			have, known := s.opts.Tokens[tok]
			if !known {
				writeError(w, http.StatusUnauthorized, "unauthorized", "unknown token")
				return
			}
			if have != RoleAdmin && have != role {
				writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s may not do this (needs %s)", have, role))
				return
			}
		}
		h(w, r)
	})
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if !s.topicExists(topic) {
		writeError(w, http.StatusNotFound, "unknown_topic", "no such topic: "+topic)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "read body: "+err.Error())
		return
	}
	evs, err := decodeEvents(body, "http", s.opts.Now())
	if err != nil {
		var bad *BadEventError
		idx := -1
		if errors.As(err, &bad) {
			idx = bad.Index
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
			"code": "malformed_event", "message": err.Error(), "index": idx}})
		return
	}
	ctx, span := s.startIngestSpan(r, topic, len(evs))
	defer span.End()
	stampTrace(evs, trace.SpanContextFromContext(ctx))
	pos, err := s.opts.Backbone.Append(ctx, topic, evs)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		s.opts.Telemetry.Ingest(ctx, "http", topic, len(evs), 0, true)
		s.log.Warn("append failed", "topic", topic, "events", len(evs), "err", err)
		writeError(w, http.StatusServiceUnavailable, "append_failed", err.Error())
		return
	}
	if s.opts.Telemetry != nil {
		var n int64
		for i := range evs {
			n += int64(len(evs[i].Value))
		}
		s.opts.Telemetry.Ingest(ctx, "http", topic, len(evs), n, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"offsets": pos})
}

// traceContext reads W3C traceparent/tracestate request headers.
var traceContext = propagation.TraceContext{}

// startIngestSpan continues the caller's trace (traceparent request header)
// with one server span per POST, whatever the number of events. With
// tracing off it returns the caller's context in a non-recording span.
func (s *Server) startIngestSpan(r *http.Request, topic string, events int) (context.Context, trace.Span) {
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	if !s.opts.Telemetry.Tracing() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return s.opts.Telemetry.Tracer().Start(ctx, "ingest "+topic, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(telemetry.AttrSystem.String(telemetry.System), telemetry.AttrDestination.String(topic),
			telemetry.AttrOperation.String("ingest"), telemetry.AttrBatchSize.Int(events)))
}

// stampTrace gives every event without a traceparent header the request's
// trace context, so the trace continues through the backbone. An event
// that carries its own traceparent keeps it: the producer said which trace
// it belongs to.
func stampTrace(evs []event.Event, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	tp := telemetry.AppendTraceParent(nil, sc) // shared by the request's events; never modified
	for i := range evs {
		if _, ok := evs[i].Header(event.HeaderTraceParent); ok {
			continue
		}
		evs[i].Headers = telemetry.SetTraceParentValue(evs[i].Headers, sc, tp)
	}
}

func (s *Server) topicExists(topic string) bool {
	_, err := s.opts.Backbone.Partitions(topic)
	return err == nil
}

type partitionInfo struct {
	Partition   int32 `json:"partition"`
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
}

type topicInfo struct {
	Name       string          `json:"name"`
	Partitions []partitionInfo `json:"partitions"`
}

func (s *Server) topicInfo(name string) (topicInfo, error) {
	n, err := s.opts.Backbone.Partitions(name)
	if err != nil {
		return topicInfo{}, err
	}
	ti := topicInfo{Name: name, Partitions: make([]partitionInfo, 0, n)}
	for p := range n {
		start, end, err := s.opts.Backbone.Offsets(name, int32(p))
		if err != nil {
			return topicInfo{}, err
		}
		ti.Partitions = append(ti.Partitions, partitionInfo{int32(p), start, end})
	}
	return ti, nil
}

func (s *Server) listTopics(w http.ResponseWriter, _ *http.Request) {
	out := []topicInfo{}
	for _, name := range s.opts.Backbone.Topics() {
		ti, err := s.topicInfo(name)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, ti)
	}
	writeJSON(w, http.StatusOK, map[string]any{"topics": out})
}

func (s *Server) getTopic(w http.ResponseWriter, r *http.Request) {
	ti, err := s.topicInfo(r.PathValue("topic"))
	if err != nil {
		writeError(w, http.StatusNotFound, "unknown_topic", "no such topic: "+r.PathValue("topic"))
		return
	}
	writeJSON(w, http.StatusOK, ti)
}

// getEvents reads up to limit events of one partition from offset; with
// wait=DURATION (at most 30s) it long-polls when there is nothing yet.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	parts, err := s.opts.Backbone.Partitions(topic)
	if err != nil {
		writeError(w, http.StatusNotFound, "unknown_topic", "no such topic: "+topic)
		return
	}
	q := r.URL.Query()
	partition, err := intParam(q.Get("partition"), 0)
	if err != nil || partition < 0 || partition >= int64(parts) {
		writeError(w, http.StatusBadRequest, "bad_partition", fmt.Sprintf("partition must be 0..%d", parts-1))
		return
	}
	start, end, _ := s.opts.Backbone.Offsets(topic, int32(partition))
	offset, err := intParam(q.Get("offset"), start)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_offset", "offset must be an integer")
		return
	}
	if ts := q.Get("timestamp"); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_timestamp", "timestamp must be RFC3339")
			return
		}
		if offset, err = s.opts.Backbone.OffsetForTime(topic, int32(partition), t); err != nil {
			writeError(w, http.StatusInternalServerError, "read_failed", err.Error())
			return
		}
	}
	limit, err := intParam(q.Get("limit"), 100)
	if err != nil || limit < 1 || limit > 10000 {
		writeError(w, http.StatusBadRequest, "bad_limit", "limit must be 1..10000")
		return
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > 30*time.Second {
			writeError(w, http.StatusBadRequest, "bad_wait", "wait must be a duration up to 30s")
			return
		}
	}
	var evs []event.Event
	if wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		evs, err = s.opts.Backbone.Fetch(ctx, topic, int32(partition), offset, int(limit), 8<<20)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			evs, err = nil, nil
		}
	} else {
		evs, err = s.opts.Backbone.Read(topic, int32(partition), offset, int(limit), 8<<20)
	}
	if err != nil {
		if earliest, latest, ok := s.opts.Backbone.OutOfRange(err); ok {
			writeJSON(w, http.StatusRequestedRangeNotSatisfiable, map[string]any{"error": map[string]any{
				"code": "offset_out_of_range", "message": fmt.Sprintf("offset %d is outside [%d, %d]", offset, earliest, latest),
				"start_offset": earliest, "end_offset": latest}})
			return
		}
		writeError(w, http.StatusInternalServerError, "read_failed", err.Error())
		return
	}
	out := make([]outEvent, len(evs))
	for i := range evs {
		out[i] = toOut(&evs[i])
	}
	next := offset
	if len(evs) > 0 {
		next = evs[len(evs)-1].Offset + 1
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next_offset": next, "start_offset": start, "end_offset": end})
}

func intParam(v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

func (s *Server) listPipelines(w http.ResponseWriter, _ *http.Request) {
	out := []engine.PipelineStatus{}
	if s.opts.Pipelines != nil {
		out = s.opts.Pipelines.Pipelines()
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipelines": out})
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) {
	if s.opts.Pipelines != nil {
		if st, ok := s.opts.Pipelines.Pipeline(r.PathValue("name")); ok {
			writeJSON(w, http.StatusOK, st)
			return
		}
	}
	writeError(w, http.StatusNotFound, "unknown_pipeline", "no such pipeline: "+r.PathValue("name"))
}

// replayRequest is {"from":"earliest"|"latest"}, {"offset":{"P":O}} or {"timestamp":"RFC3339"}.
type replayRequest struct {
	From      string           `json:"from"`
	Offset    map[string]int64 `json:"offset"`
	Timestamp string           `json:"timestamp"`
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	if s.opts.Pipelines == nil {
		writeError(w, http.StatusNotFound, "unknown_pipeline", "no such pipeline: "+r.PathValue("name"))
		return
	}
	var req replayRequest
	if !readSmallJSON(w, r, &req, "replay body", false) {
		return
	}
	from, err := req.parse()
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	targets, err := s.opts.Pipelines.Replay(r.Context(), r.PathValue("name"), from)
	if err != nil {
		if errors.Is(err, engine.ErrUnknownPipeline) {
			writeError(w, http.StatusNotFound, "unknown_pipeline", err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, "replay_failed", err.Error())
		return
	}
	out := map[string]int64{}
	for p, o := range targets {
		out[strconv.Itoa(int(p))] = o
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipeline": r.PathValue("name"), "offsets": out})
}

func (req replayRequest) parse() (engine.ReplayFrom, error) {
	set := 0
	for _, b := range []bool{req.From != "", req.Offset != nil, req.Timestamp != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return engine.ReplayFrom{}, errors.New(`give exactly one of "from", "offset", "timestamp"`)
	}
	switch {
	case req.From == "earliest":
		return engine.ReplayFrom{Earliest: true}, nil
	case req.From == "latest":
		return engine.ReplayFrom{Latest: true}, nil
	case req.From != "":
		return engine.ReplayFrom{}, fmt.Errorf(`"from" must be earliest or latest, not %q`, req.From)
	case req.Offset != nil:
		offs := map[int32]int64{}
		for k, v := range req.Offset {
			p, err := strconv.ParseInt(k, 10, 32)
			if err != nil || p < 0 || v < 0 {
				return engine.ReplayFrom{}, fmt.Errorf("offset: bad partition %q or offset %d", k, v)
			}
			offs[int32(p)] = v
		}
		return engine.ReplayFrom{Offsets: offs}, nil
	default:
		t, err := time.Parse(time.RFC3339Nano, req.Timestamp)
		if err != nil {
			return engine.ReplayFrom{}, fmt.Errorf("timestamp: %w", err)
		}
		return engine.ReplayFrom{Time: t}, nil
	}
}

func (s *Server) listQueues(w http.ResponseWriter, _ *http.Request) {
	out := []engine.QueueDepth{}
	if s.opts.Queues != nil {
		out = s.opts.Queues.QueueDepths()
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": out})
}

// redriveRequest is optional: {"to":"queue","max":N,"per_second":N}.
type redriveRequest struct {
	To        string `json:"to"`
	Max       int    `json:"max"`
	PerSecond int    `json:"per_second"`
}

func (s *Server) redrive(w http.ResponseWriter, r *http.Request) {
	if s.opts.Queues == nil {
		writeError(w, http.StatusNotFound, "unknown_queue", "no such queue: "+r.PathValue("dlq"))
		return
	}
	var req redriveRequest
	if !readSmallJSON(w, r, &req, "redrive body", true) {
		return
	}
	n, err := s.opts.Queues.Redrive(r.Context(), r.PathValue("dlq"), req.To, req.Max, req.PerSecond)
	if err != nil {
		if errors.Is(err, engine.ErrUnknownQueue) {
			writeError(w, http.StatusNotFound, "unknown_queue", err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, "redrive_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"queue": r.PathValue("dlq"), "moved": n})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	var why []string
	if s.opts.Ready != nil && !s.opts.Ready() {
		why = append(why, "backbone not ready")
	}
	if s.opts.Pipelines != nil && !s.opts.Pipelines.Ready() {
		for _, p := range s.opts.Pipelines.Pipelines() {
			if p.State != "running" {
				why = append(why, "pipeline "+p.Name+" is "+p.State)
			}
		}
		if len(why) == 0 {
			why = append(why, "pipelines not started")
		}
	}
	if len(why) > 0 {
		sort.Strings(why)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reasons": why})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
