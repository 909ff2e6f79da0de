package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bridgeio/bridge/engine/telemetry"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// Dead letters as first-class objects (SPEC §5.5, issue 7).
//
// A dead letter is an entry of a pipeline's dead-letter topic: the failed
// event's key, value and headers, plus the provenance headers written by
// deadLetterEvent (bridge-event-id, bridge-error, bridge-error-class,
// bridge-pipeline, bridge-route, bridge-attempts, bridge-trace-id). Its id
// is its own coordinates in the dead-letter topic, TOPIC/PARTITION/OFFSET,
// which never change and are never reused.
//
// Redrive sends a dead letter again, to its route's target (the route named
// by bridge-route, with the route's key and parameter rules but without its
// filter: the event was selected once) or to another backbone topic. The
// provenance headers are stripped, so the target sees the original event
// with its original bridge-event-id (consumers deduplicate on it) and its
// trace context.
//
// Idempotency: every redriven dead letter's id is appended to a ledger file
// (DIR/redriven.log, fsynced per dead letter) after its target
// acknowledged it; a dead letter in the ledger is never redriven again. A
// crash between the target's ack and the ledger write redrives that one
// dead letter once more: at-least-once, like every other delivery.
//
// Not covered: dead letters in embedded queues (dead_letter: {queue: ...}
// or a queue's dead_letter_queue) are browsed and moved by the queue API
// (GET /v1/queues, POST /v1/queues/{dlq}/redrive, SQS
// StartMessageMoveTask); a queue cannot be read without receiving.

// DeadLetter is one dead letter.
type DeadLetter struct {
	ID         string      `json:"id"` // TOPIC/PARTITION/OFFSET in the dead-letter topic
	Pipeline   string      `json:"pipeline"`
	Route      string      `json:"route"`
	EventID    string      `json:"event_id"` // the original event's bridge-event-id
	Error      string      `json:"error"`
	ErrorClass string      `json:"error_class"`
	Attempts   int         `json:"attempts"`
	TraceID    string      `json:"trace_id,omitempty"`
	Redriven   bool        `json:"redriven"`
	Event      event.Event `json:"-"` // as stored, provenance headers included
}

// RedriveRequest selects dead letters and says where they go.
type RedriveRequest struct {
	Pipeline string         // "" = every pipeline
	Filter   *rules.Program // nil = all; evaluated over the dead letter
	IDs      []string       // when set, only these ids
	// To is "" (each dead letter's own route), "topic:NAME" (a backbone
	// topic) or "route:PIPELINE/ROUTE" (that route's target).
	To string
	// PerSecond limits the redrive rate; 0 means 100/s. Max bounds how many
	// are redriven (0 = no bound).
	PerSecond int
	Max       int
	// Progress, when set, is called after each dead letter is handled
	// (redriven, skipped or failed) with the totals so far, on Redrive's
	// goroutine. Picked is called once with how many were selected.
	Progress func(RedriveResult)
	Picked   func(n int)
}

// RedriveResult counts what a redrive did.
type RedriveResult struct {
	Redriven int      `json:"redriven"`
	Skipped  int      `json:"skipped"` // already redriven earlier (ledger)
	Failed   int      `json:"failed"`
	Errors   []string `json:"errors,omitempty"` // first few failures
}

// Errors of the dead-letter API.
var (
	ErrUnknownDeadLetter = errors.New("engine: no such dead letter")
	ErrBadTarget         = errors.New("engine: bad redrive target")
)

// DeadLetters browses and redrives the dead letters of an engine's
// pipelines. It is safe for concurrent use; redrives run one at a time so
// that two of them cannot both send the same dead letter.
type DeadLetters struct {
	e         *Engine
	dir       string
	redriveMu sync.Mutex // held for a whole Redrive
	mu        sync.Mutex // guards done and file
	done      map[string]bool
	file      *os.File
}

// OpenDeadLetters loads the redrive ledger from dir (created if missing).
func OpenDeadLetters(e *Engine, dir string) (*DeadLetters, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "redriven.log")
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	d := &DeadLetters{e: e, dir: dir, done: map[string]bool{}}
	for _, line := range bytes.Split(data, []byte("\n")) {
		// A torn last line (crash mid-write) is not an id: it names no
		// dead letter, so it is ignored and that redrive may repeat once.
		if id, _, ok := strings.Cut(string(line), " "); ok && id != "" {
			d.done[id] = true
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	d.file = f
	return d, nil
}

// Close closes the ledger. It is idempotent.
func (d *DeadLetters) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.file == nil {
		return nil
	}
	err := d.file.Close()
	d.file = nil
	return err
}

// topics returns the dead-letter topic of each pipeline (by name) whose
// dead_letter target is a backbone topic.
func (d *DeadLetters) topics(pipeline string) []struct{ pipeline, topic string } {
	var out []struct{ pipeline, topic string }
	seen := map[string]bool{}
	for _, p := range d.e.pipelineList() {
		if pipeline != "" && p.name != pipeline {
			continue
		}
		for _, r := range p.routeList() {
			ts, ok := r.deadLetter.(*topicSink)
			if !ok || seen[ts.topic] {
				continue
			}
			seen[ts.topic] = true
			out = append(out, struct{ pipeline, topic string }{p.name, ts.topic})
		}
	}
	return out
}

// scanChunk bounds one read of a dead-letter topic.
const scanChunk = 500

// List returns up to limit dead letters of pipeline ("" = all) for which
// filter (nil = all) holds, oldest first per partition. A dead-letter
// topic shared by several pipelines is filtered by bridge-pipeline.
func (d *DeadLetters) List(pipeline string, filter *rules.Program, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := d.scan(pipeline, filter, func(dl DeadLetter) bool {
		out = append(out, dl)
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// scan calls f on each matching dead letter until f returns false.
func (d *DeadLetters) scan(pipeline string, filter *rules.Program, f func(DeadLetter) bool) error {
	env := rules.NewEnv()
	for _, t := range d.topics(pipeline) {
		parts, err := d.e.backbone.Partitions(t.topic)
		if err != nil {
			return err
		}
		for part := range parts {
			start, end, err := d.e.backbone.Offsets(t.topic, int32(part))
			if err != nil {
				return err
			}
			for next := start; next < end; {
				evs, err := d.e.backbone.Read(t.topic, int32(part), next, scanChunk, 8<<20)
				if err != nil {
					if e, _, ok := d.e.backbone.OutOfRange(err); ok && next < e {
						next = e // retention deleted the head meanwhile
						continue
					}
					return fmt.Errorf("read %s/%d at %d: %w", t.topic, part, next, err)
				}
				if len(evs) == 0 {
					break
				}
				next = evs[len(evs)-1].Offset + 1
				for i := range evs {
					dl := d.deadLetter(&evs[i])
					if pipeline != "" && dl.Pipeline != pipeline {
						continue
					}
					if filter != nil {
						env.Reset(&evs[i])
						if ok, err := filter.EvalBool(env); err != nil || !ok {
							continue
						}
					}
					if !f(dl) {
						return nil
					}
				}
			}
		}
	}
	return nil
}

// deadLetter describes one dead-letter topic entry. It copies the event,
// which may alias the backbone's read buffer.
func (d *DeadLetters) deadLetter(ev *event.Event) DeadLetter {
	h := func(name string) string {
		v, _ := ev.Header(name)
		return string(v)
	}
	attempts, _ := strconv.Atoi(h(event.HeaderAttempts))
	cp := *ev
	cp.Key = bytes.Clone(ev.Key)
	cp.Value = bytes.Clone(ev.Value)
	cp.Headers = make([]event.Header, len(ev.Headers))
	for i, hd := range ev.Headers {
		cp.Headers[i] = event.Header{Key: hd.Key, Value: bytes.Clone(hd.Value)}
	}
	id := ev.ID()
	d.mu.Lock()
	redriven := d.done[id]
	d.mu.Unlock()
	return DeadLetter{ID: id, Pipeline: h(event.HeaderPipeline), Route: h(event.HeaderRoute), EventID: h(event.HeaderEventID),
		Error: h(event.HeaderError), ErrorClass: h(event.HeaderErrorClass), Attempts: attempts,
		TraceID: h(telemetry.HeaderTraceID), Redriven: redriven, Event: cp}
}

// Get returns one dead letter by id (TOPIC/PARTITION/OFFSET). Only ids in
// a pipeline's dead-letter topic are served.
func (d *DeadLetters) Get(id string) (DeadLetter, error) {
	i := strings.LastIndexByte(id, '/')
	j := strings.LastIndexByte(id[:max(i, 0)], '/')
	if i < 0 || j < 0 {
		return DeadLetter{}, fmt.Errorf("%w: %q is not TOPIC/PARTITION/OFFSET", ErrUnknownDeadLetter, id)
	}
	topic := id[:j]
	part, err1 := strconv.ParseInt(id[j+1:i], 10, 32)
	offset, err2 := strconv.ParseInt(id[i+1:], 10, 64)
	if err1 != nil || err2 != nil {
		return DeadLetter{}, fmt.Errorf("%w: %q is not TOPIC/PARTITION/OFFSET", ErrUnknownDeadLetter, id)
	}
	known := false
	for _, t := range d.topics("") {
		known = known || t.topic == topic
	}
	if !known {
		return DeadLetter{}, fmt.Errorf("%w: %s is not a dead-letter topic", ErrUnknownDeadLetter, topic)
	}
	evs, err := d.e.backbone.Read(topic, int32(part), offset, 1, 8<<20)
	if err != nil || len(evs) == 0 || evs[0].Offset != offset {
		return DeadLetter{}, fmt.Errorf("%w: %s", ErrUnknownDeadLetter, id)
	}
	return d.deadLetter(&evs[0]), nil
}

// Redrive sends the selected dead letters to their target at most
// PerSecond per second, skipping those redriven before. It stops at the
// first context cancellation; what was redriven until then is recorded.
func (d *DeadLetters) Redrive(ctx context.Context, req RedriveRequest) (RedriveResult, error) {
	d.redriveMu.Lock()
	defer d.redriveMu.Unlock()
	if req.PerSecond <= 0 {
		req.PerSecond = 100
	}
	var fixed event.Sink
	if req.To != "" {
		s, err := d.target(req.To)
		if err != nil {
			return RedriveResult{}, err
		}
		fixed = s
	}
	var picked []DeadLetter
	want := map[string]bool{}
	for _, id := range req.IDs {
		want[id] = true
	}
	err := d.scan(req.Pipeline, req.Filter, func(dl DeadLetter) bool {
		if len(want) == 0 || want[dl.ID] {
			picked = append(picked, dl)
		}
		return true
	})
	if err != nil {
		return RedriveResult{}, err
	}
	if req.Picked != nil {
		req.Picked(len(picked))
	}
	var res RedriveResult
	progress := func() {
		if req.Progress != nil {
			req.Progress(res)
		}
	}
	interval := time.Second / time.Duration(req.PerSecond)
	next := time.Now()
	for _, dl := range picked {
		if req.Max > 0 && res.Redriven >= req.Max {
			break
		}
		if dl.Redriven {
			res.Skipped++
			progress()
			continue
		}
		if wait := time.Until(next); wait > 0 && !sleep(ctx, wait) {
			return res, ctx.Err()
		}
		next = time.Now().Add(interval)
		if err := d.redriveOne(ctx, dl, fixed); err != nil {
			res.Failed++
			if len(res.Errors) < 10 {
				res.Errors = append(res.Errors, dl.ID+": "+err.Error())
			}
			progress()
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			continue
		}
		res.Redriven++
		progress()
	}
	return res, nil
}

// redriveOne sends one dead letter and records it in the ledger.
func (d *DeadLetters) redriveOne(ctx context.Context, dl DeadLetter, fixed event.Sink) error {
	ev := original(&dl.Event)
	if fixed != nil {
		if err := fixed.Send(ctx, []event.Event{ev}); err != nil {
			return err
		}
		return d.record(dl)
	}
	r := d.route(dl.Pipeline, dl.Route)
	if r == nil {
		return fmt.Errorf("%w: route %s/%s of the dead letter is not in the running config", ErrBadTarget, dl.Pipeline, dl.Route)
	}
	if err := sendThroughRoute(ctx, r, d.e, ev); err != nil {
		return err
	}
	return d.record(dl)
}

// sendThroughRoute sends ev to r's target through r's transforms and its
// key and parameter rules, skipping its filter: the event was selected
// once. A route's when is skipped too, unless the pipeline transforms the
// event (then when selects among the parts, which may differ per route).
func sendThroughRoute(ctx context.Context, r *route, e *Engine, ev event.Event) error {
	unfiltered := &route{pipeline: r.pipeline, name: r.name, topic: r.topic, transform: r.transform,
		routeTransform: r.routeTransform, key: r.key, routingKey: r.routingKey, groupID: r.groupID, dedupID: r.dedupID}
	if r.transform != nil {
		unfiltered.when = r.when
	}
	c := newCursor(unfiltered, ev.Partition, e.backbone, e.log)
	if err := c.evaluate(&ev, 0); err != nil {
		return fmt.Errorf("rule: %w", err)
	}
	if len(c.outbuf) == 0 {
		return nil
	}
	if ps, ok := r.sink.(event.ParamSink); ok && c.params != nil {
		return ps.SendParams(ctx, c.outbuf, c.params)
	}
	return r.sink.Send(ctx, c.outbuf)
}

// original strips the provenance headers a dead letter got, so the target
// receives the event as it was (bridge-event-id and trace context kept).
func original(dl *event.Event) event.Event {
	ev := event.Event{Key: dl.Key, Value: dl.Value, Timestamp: dl.Timestamp, Source: dl.Source}
	for _, h := range dl.Headers {
		switch h.Key {
		case event.HeaderError, event.HeaderErrorClass, event.HeaderPipeline, event.HeaderRoute, event.HeaderAttempts,
			telemetry.HeaderTraceID:
			continue
		}
		ev.Headers = append(ev.Headers, h)
	}
	return ev
}

func (d *DeadLetters) route(pipeline, name string) *route {
	p, ok := d.e.lookup(pipeline)
	if !ok {
		return nil
	}
	for _, r := range p.routeList() {
		if r.name == name {
			return r
		}
	}
	return nil
}

// target resolves a redrive's To.
func (d *DeadLetters) target(to string) (event.Sink, error) {
	if topic, ok := strings.CutPrefix(to, "topic:"); ok {
		if _, err := d.e.backbone.Partitions(topic); err != nil {
			return nil, fmt.Errorf("%w: topic %s: %v", ErrBadTarget, topic, err)
		}
		return &topicSink{backbone: d.e.backbone, topic: topic}, nil
	}
	if pr, ok := strings.CutPrefix(to, "route:"); ok {
		pipeline, name, _ := strings.Cut(pr, "/")
		r := d.route(pipeline, name)
		if r == nil {
			return nil, fmt.Errorf("%w: no route %s", ErrBadTarget, pr)
		}
		return routeSink{r: r, e: d.e}, nil
	}
	return nil, fmt.Errorf("%w: %q: want topic:NAME or route:PIPELINE/ROUTE", ErrBadTarget, to)
}

// routeSink sends through a route's rules and target.
type routeSink struct {
	r *route
	e *Engine
}

func (s routeSink) Send(ctx context.Context, batch []event.Event) error {
	for _, ev := range batch {
		if err := sendThroughRoute(ctx, s.r, s.e, ev); err != nil {
			return err
		}
	}
	return nil
}
func (s routeSink) Close(context.Context) error { return nil }

// record appends a redriven id (and its event id, for people reading the
// file) to the ledger and syncs it before the redrive counts as done.
func (d *DeadLetters) record(dl DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.file == nil {
		return errors.New("engine: dead letters closed")
	}
	w := bufio.NewWriter(d.file)
	fmt.Fprintf(w, "%s %s\n", dl.ID, dl.EventID)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("redrive ledger: %w", err)
	}
	if err := d.file.Sync(); err != nil {
		return fmt.Errorf("redrive ledger: %w", err)
	}
	d.done[dl.ID] = true
	return nil
}
