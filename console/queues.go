package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/connectors/sqsattr"
	"github.com/bridgeio/bridge/console/views"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
)

const (
	queuePageSize = 50
	groupScan     = 10000 // messages a grouping of dead letters examines
)

func (s *Server) queues(w http.ResponseWriter, r *http.Request) {
	rows, pager := searchPage(r, s.freshSnapshot().Queues, func(q views.QueueRow) string { return q.Name }, "/queues")
	l := views.QueuesList{Rows: rows, Pager: pager}
	s.render(w, r, http.StatusOK, views.QueuesPage(s.page(r, "Queues", "queues"), l))
}

// queueRow finds a queue's row in the newest snapshot, or builds it.
func (s *Server) queueRow(name string) (views.QueueRow, *queue.Queue, bool) {
	if s.opts.Broker == nil {
		return views.QueueRow{}, nil, false
	}
	q, err := s.opts.Broker.Queues.Get(name)
	if err != nil {
		return views.QueueRow{}, nil, false
	}
	st, cfg := q.Stats(), q.Config()
	row := views.QueueRow{Name: name, Visible: st.Visible, InFlight: st.InFlight, Delayed: st.Delayed, FIFO: cfg.FIFO,
		DeadLetterQueue: cfg.DeadLetterQueue}
	for _, r := range s.snapshot().Queues {
		if r.Name == name {
			row.DeadLetterOf = r.DeadLetterOf
		}
	}
	if oldest := q.Oldest(); !oldest.IsZero() {
		row.Oldest = s.opts.Now().Sub(oldest)
	}
	return row, q, true
}

func (s *Server) queuePage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("queue")
	row, q, ok := s.queueRow(name)
	if !ok {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusNotFound, "no such queue: "+name)
		return
	}
	cfg := q.Config()
	d := views.QueueDetail{Row: row, Visibility: cfg.VisibilityTimeout.String(), Retention: cfg.Retention.String(),
		MaxReceiveCount: cfg.MaxReceiveCount, MaxRate: s.opts.Config.MaxRedriveRate}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	d.After = after
	msgs, more := q.Peek(after, queuePageSize)
	for _, m := range msgs {
		d.Messages = append(d.Messages, s.messageRow(m))
		d.NextAfter = m.Seq
	}
	d.More = more
	groups, scanned, partial := s.groupQueue(q)
	if row.IsDLQ() || len(groups) > 1 || (len(groups) == 1 && groups[0].Source != "") {
		d.Groups, d.Scanned, d.GroupsPartial = groups, scanned, partial
	}
	s.render(w, r, http.StatusOK, views.QueuePage(s.page(r, name, "queues"), d))
}

func (s *Server) messageRow(m queue.PeekedMessage) views.MessageRow {
	row := views.MessageRow{Seq: m.Seq, ID: m.MessageID, State: m.State, SentAt: m.SentAt, ReceiveCount: m.ReceiveCount,
		GroupID: m.GroupID, Source: m.DeadLetterSource}
	for _, a := range m.Attributes {
		row.Attributes = append(row.Attributes, views.KV{Key: a.Name, Value: s.masker.Header(a.Name, printable(a.Value)),
			Masked: s.masker.HeaderMasked(a.Name)})
	}
	row.Body, row.Format = s.showValue(m.Body)
	if len(row.Body) > maxValueShown {
		row.Body, row.Truncated = row.Body[:maxValueShown], true
	}
	return row
}

var digits = regexp.MustCompile(`[0-9]+`)

// normalizeReason makes errors that differ only in numbers (offsets,
// counts, ports) one group, and bounds the length.
func normalizeReason(msg string) string {
	msg = digits.ReplaceAllString(strings.TrimSpace(msg), "N")
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return msg
}

func attr(m queue.PeekedMessage, name string) string {
	for _, a := range m.Attributes {
		if a.Name == name {
			return string(a.Value)
		}
	}
	return ""
}

// queueReason says where a queued dead letter came from and why.
func queueReason(m queue.PeekedMessage) (source, reason string) {
	if p := attr(m, event.HeaderPipeline); p != "" {
		source = "pipeline " + p
		if rt := attr(m, event.HeaderRoute); rt != "" {
			source += " / " + rt
		}
	}
	if e := attr(m, event.HeaderError); e != "" {
		reason = normalizeReason(e)
	}
	switch {
	case m.DeadLetterSource != "":
		source = m.DeadLetterSource
		if reason == "" {
			reason = "received more than maxReceiveCount times"
		}
	case reason == "":
		reason = "sent to this queue directly"
	}
	return source, reason
}

func groupKey(source, reason string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + reason))
	return hex.EncodeToString(sum[:8])
}

// groupQueue groups a queue's messages by origin and reason, scanning at
// most groupScan of them.
func (s *Server) groupQueue(q *queue.Queue) ([]views.ReasonGroup, int, bool) {
	byKey := map[string]*views.ReasonGroup{}
	var after uint64
	scanned := 0
	more := true
	for more && scanned < groupScan {
		var msgs []queue.PeekedMessage
		msgs, more = q.Peek(after, 500)
		for _, m := range msgs {
			after = m.Seq
			scanned++
			source, reason := queueReason(m)
			k := groupKey(source, reason)
			g := byKey[k]
			if g == nil {
				g = &views.ReasonGroup{Key: k, Source: source, Reason: reason, Oldest: m.SentAt, Sample: m.MessageID}
				byKey[k] = g
			}
			g.Count++
			g.Newest = m.SentAt
		}
	}
	return sortGroups(byKey), scanned, more
}

func sortGroups(byKey map[string]*views.ReasonGroup) []views.ReasonGroup {
	out := make([]views.ReasonGroup, 0, len(byKey))
	for _, g := range byKey {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// redriveForm reads the selected groups and the rate.
func (s *Server) redriveForm(r *http.Request) (map[string]bool, int, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return nil, 0, err
	}
	keys := map[string]bool{}
	for _, k := range r.PostForm["group"] {
		keys[k] = true
	}
	if len(keys) == 0 {
		return nil, 0, fmt.Errorf("select at least one group")
	}
	rate, err := parsePositive(r.PostFormValue("rate"), s.opts.Config.MaxRedriveRate)
	if err != nil {
		return nil, 0, fmt.Errorf("rate must be 1..%d messages per second (console.max_redrive_rate)", s.opts.Config.MaxRedriveRate)
	}
	return keys, rate, nil
}

func eta(n, rate int) time.Duration {
	return time.Duration(float64(n) / float64(rate) * float64(time.Second))
}

// queueRedrivePreview shows what a redrive of the selected groups would move.
func (s *Server) queueRedrivePreview(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("queue")
	p := s.page(r, name, "queues")
	_, q, ok := s.queueRow(name)
	if !ok {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusNotFound, "no such queue: "+name)
		return
	}
	keys, rate, err := s.redriveForm(r)
	if err != nil {
		s.render(w, r, http.StatusBadRequest, views.RedrivePreviewFragment(p, views.RedrivePreview{Error: err.Error()}))
		return
	}
	groups, _, _ := s.groupQueue(q)
	pv := views.RedrivePreview{Kind: "queue", Title: "Redrive from " + name, Action: s.base + "/queues/" + name + "/redrive",
		Rate: rate, Destination: "each message's source queue (or, for a pipeline's dead letter, its route)", Confirm: name}
	for _, g := range groups {
		if keys[g.Key] {
			pv.Groups = append(pv.Groups, g)
			pv.Keys = append(pv.Keys, g.Key)
			pv.Total += g.Count
		}
	}
	pv.ETA = eta(pv.Total, rate)
	if pv.Total == 0 {
		pv.Error = "the selected groups are empty now"
	}
	s.render(w, r, http.StatusOK, views.RedrivePreviewFragment(p, pv))
}

// queueRedrive starts a confirmed redrive job.
func (s *Server) queueRedrive(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("queue")
	_, _, ok := s.queueRow(name)
	if !ok {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusNotFound, "no such queue: "+name)
		return
	}
	keys, rate, err := s.redriveForm(r)
	if err == nil && r.PostFormValue("confirm") != name {
		err = fmt.Errorf("type the queue name %q to confirm", name)
	}
	if err != nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusBadRequest, err.Error())
		return
	}
	expect := intOr(r.PostFormValue("expect"), 0)
	j, err := s.startJob("redrive.queue", name, who(r), expect, rate, func(ctx context.Context, j *job) error {
		return s.redriveQueue(ctx, name, keys, rate, j)
	})
	if err != nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusConflict, err.Error())
		return
	}
	redirect(w, r, s.base+"/jobs/"+j.id)
}

// redriveQueue moves the selected dead letters back: those with a source
// queue to it (a queue-to-queue move), those a pipeline wrote through the
// route that failed them (engine.RedriveEvent), each deleted from the DLQ
// only after its target acknowledged it. Both share the rate.
func (s *Server) redriveQueue(ctx context.Context, dlq string, keys map[string]bool, rate int, j *job) error {
	selected := func(m queue.PeekedMessage) bool { return keys[groupKey(queueReason(m))] }
	mgr := s.opts.Broker.Queues
	moved, err := mgr.RedriveMatching(ctx, dlq, "", 0, rate,
		func(m queue.PeekedMessage) bool { return m.DeadLetterSource != "" && selected(m) },
		func(n int) { j.progress(-1, n, 0, 0) })
	if err != nil || s.opts.Engine == nil {
		return err
	}
	viaRoute := func(m queue.PeekedMessage) bool {
		return m.DeadLetterSource == "" && attr(m, event.HeaderPipeline) != "" && attr(m, event.HeaderRoute) != "" && selected(m)
	}
	_, _, err = mgr.HandleMatching(ctx, dlq, 0, rate, viaRoute, func(m queue.PeekedMessage) error {
		return s.opts.Engine.RedriveEvent(ctx, attr(m, event.HeaderPipeline), attr(m, event.HeaderRoute), queueEvent(m))
	}, func(done, failed int) { j.progress(-1, moved+done, failed, 0) })
	return err
}

// queueEvent rebuilds the event a pipeline wrote to a queue: the body is
// the value, the attributes the key and headers (SPEC §8, SQS column).
func queueEvent(m queue.PeekedMessage) event.Event {
	attrs := make([]sqsattr.Attribute, len(m.Attributes))
	for i, a := range m.Attributes {
		attrs[i] = sqsattr.Attribute{Name: a.Name, Value: string(a.Value)}
	}
	key, headers, _ := sqsattr.FromAttributes(attrs) // a malformed overflow header stays a plain header
	return event.Event{Key: key, Value: m.Body, Headers: headers, Timestamp: m.SentAt}
}
