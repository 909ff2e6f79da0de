package console

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bridgeio/bridge/console/sse"
	"github.com/bridgeio/bridge/console/views"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

const (
	listPageSize  = 50
	maxValueShown = 4 << 10 // bytes of a value drawn in a table cell
	scanBudget    = 20000   // events one browse request may examine
	maxExport     = 100000  // events one export may write
	readChunk     = 500     // events per backbone read
	readBytes     = 8 << 20 // bytes per backbone read
)

// topics lists topics with server-side search and paging.
func (s *Server) topics(w http.ResponseWriter, r *http.Request) {
	rows, pager := searchPage(r, s.freshSnapshot().Topics, func(t views.TopicRow) string { return t.Name }, "/topics")
	l := views.TopicsList{Rows: rows, Pager: pager}
	s.render(w, r, http.StatusOK, views.TopicsPage(s.page(r, "Topics", "topics"), l))
}

// topic shows a topic's partitions and a browse of one partition.
func (s *Server) topic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	parts, err := s.opts.Backbone.Partitions(name)
	if err != nil {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusNotFound, "no such topic: "+name)
		return
	}
	t := views.TopicDetail{Name: name, Retention: s.retention()}
	for p := range parts {
		start, end, _ := s.opts.Backbone.Offsets(name, int32(p))
		t.Partitions = append(t.Partitions, views.PartitionRow{Partition: int32(p), Start: start, End: end})
	}
	for _, row := range s.snapshot().Topics {
		if row.Name == name {
			t.InRate = row.InRate
		}
	}
	for _, p := range s.snapshot().Topology {
		if p.Topic == name {
			t.Readers = append(t.Readers, p.Name)
		}
	}
	t.Browse = s.browse(r, name, parts)
	s.render(w, r, http.StatusOK, views.TopicPage(s.page(r, name, "topics"), t))
}

func (s *Server) retention() string {
	if s.opts.Retention == "" {
		return "as configured (backbone.retention)"
	}
	return s.opts.Retention
}

// browseQuery is a parsed browse or export request.
type browseQuery struct {
	partition int32
	from      int64
	filter    *rules.Program
	limit     int
}

// parseBrowse reads partition, offset or time, filter and limit. With
// neither offset nor time it starts limit events before the end (the
// newest page).
func (s *Server) parseBrowse(r *http.Request, topic string, parts, defLimit, maxLimit int) (browseQuery, views.Browse, error) {
	q := r.URL.Query()
	b := views.Browse{Offset: q.Get("offset"), Time: q.Get("time"), Filter: q.Get("filter"), Limit: defLimit}
	var bq browseQuery
	p, err := strconv.Atoi(q.Get("partition"))
	if q.Get("partition") == "" {
		p, err = 0, nil
	}
	if err != nil || p < 0 || p >= parts {
		return bq, b, fmt.Errorf("partition must be 0..%d", parts-1)
	}
	bq.partition, b.Partition = int32(p), int32(p)
	if v := q.Get("limit"); v != "" {
		n, err := parsePositive(v, maxLimit)
		if err != nil {
			return bq, b, fmt.Errorf("limit must be 1..%d", maxLimit)
		}
		b.Limit = n
	}
	bq.limit = b.Limit
	if b.Filter != "" {
		prog, err := rules.Compile(b.Filter, rules.Bool)
		if err != nil {
			return bq, b, fmt.Errorf("filter: %v", err)
		}
		bq.filter = prog
	}
	start, end, err := s.opts.Backbone.Offsets(topic, bq.partition)
	if err != nil {
		return bq, b, err
	}
	switch {
	case strings.TrimSpace(b.Time) != "":
		t, err := parseTime(b.Time)
		if err != nil {
			return bq, b, err
		}
		if bq.from, err = s.opts.Backbone.OffsetForTime(topic, bq.partition, t); err != nil {
			return bq, b, err
		}
	case strings.TrimSpace(b.Offset) != "":
		o, err := strconv.ParseInt(strings.TrimSpace(b.Offset), 10, 64)
		if err != nil || o < 0 {
			return bq, b, fmt.Errorf("offset must be a number ≥ 0")
		}
		bq.from = min(max(o, start), end)
	default:
		bq.from = max(start, end-int64(b.Limit))
	}
	return bq, b, nil
}

// parseTime accepts RFC 3339 and the browser's datetime-local form (UTC).
func parseTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339, e.g. 2026-11-01T10:00:00Z", v)
}

// browse runs the topic page's browse.
func (s *Server) browse(r *http.Request, topic string, parts int) views.Browse {
	bq, b, err := s.parseBrowse(r, topic, parts, 50, 500)
	if err != nil {
		b.Error = err.Error()
		return b
	}
	env := rules.NewEnv()
	budget := scanBudget
	err = s.scan(topic, bq, &budget, env, func(ev *event.Event) bool {
		b.Events = append(b.Events, s.eventRow(ev))
		return len(b.Events) < bq.limit
	}, &b)
	if err != nil {
		b.Error = err.Error()
	}
	return b
}

// scan reads a partition from bq.from, calling f with each event that
// passes the filter until f returns false, the budget of examined events
// is spent, or the end. It records progress in b (scanned, next, more).
func (s *Server) scan(topic string, bq browseQuery, budget *int, env *rules.Env, f func(*event.Event) bool, b *views.Browse) error {
	next := bq.from
	_, end, err := s.opts.Backbone.Offsets(topic, bq.partition)
	if err != nil {
		return err
	}
	for next < end && *budget > 0 {
		evs, err := s.opts.Backbone.Read(topic, bq.partition, next, min(readChunk, *budget), readBytes)
		if err != nil {
			if earliest, _, ok := s.opts.Backbone.OutOfRange(err); ok && next < earliest {
				next = earliest // retention removed the head meanwhile
				continue
			}
			return err
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			ev := &evs[i]
			*budget--
			b.Scanned++
			next = ev.Offset + 1
			if bq.filter != nil {
				env.Reset(ev)
				ok, err := bq.filter.EvalBool(env)
				if err != nil {
					b.FilterErr++
				}
				if err != nil || !ok {
					continue
				}
			}
			if !f(ev) {
				b.Next, b.More = next, next < end
				return nil
			}
		}
	}
	b.Next, b.More = next, next < end
	return nil
}

// eventRow renders an event for a browse view, masked.
func (s *Server) eventRow(ev *event.Event) views.EventRow {
	row := views.EventRow{Topic: ev.Topic, Partition: ev.Partition, Offset: ev.Offset, Time: ev.Timestamp,
		Key: string(ev.Key), KeyNull: ev.Key == nil, Size: len(ev.Value)}
	for _, h := range ev.Headers {
		row.Headers = append(row.Headers, views.KV{Key: h.Key, Value: s.masker.Header(h.Key, printable(h.Value)),
			Masked: s.masker.HeaderMasked(h.Key)})
	}
	row.Value, row.Format = s.showValue(ev.Value)
	if len(row.Value) > maxValueShown {
		row.Value = row.Value[:maxValueShown]
		for !utf8.ValidString(row.Value) {
			row.Value = row.Value[:len(row.Value)-1]
		}
		row.Truncated = true
	}
	return row
}

// showValue returns a value for display: masked, indented JSON; text; or
// base64 for binary.
func (s *Server) showValue(v []byte) (string, string) {
	if masked, ok := s.masker.JSON(v); ok {
		var buf bytes.Buffer
		if json.Indent(&buf, masked, "", "  ") == nil {
			return buf.String(), "json"
		}
		return string(masked), "json"
	}
	if utf8.Valid(v) {
		return string(v), "text"
	}
	return base64.StdEncoding.EncodeToString(v), "binary"
}

func printable(v []byte) string {
	if utf8.Valid(v) {
		return string(v)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(v)
}

// export streams the browse selection as JSON lines (masked), up to
// maxExport events or the limit asked for; partition=all exports every
// partition in turn (the offset or time applies to each).
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	parts, err := s.opts.Backbone.Partitions(topic)
	if err != nil {
		http.Error(w, "no such topic: "+topic, http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if q.Get("offset") == "" && q.Get("time") == "" {
		q.Set("offset", "0") // export starts at the beginning unless told otherwise
	}
	partitions := []string{q.Get("partition")}
	if q.Get("partition") == "all" {
		partitions = partitions[:0]
		for p := range parts {
			partitions = append(partitions, strconv.Itoa(p))
		}
	}
	var queries []browseQuery
	for _, p := range partitions {
		q.Set("partition", p)
		r.URL.RawQuery = q.Encode()
		bq, _, err := s.parseBrowse(r, topic, parts, maxExport, maxExport)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		queries = append(queries, bq)
	}
	name := fmt.Sprintf("%s-p%s.jsonl", safeFileName(topic), safeFileName(strings.Join(partitions, "_")))
	if len(partitions) > 1 {
		name = safeFileName(topic) + "-all.jsonl"
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	enc := json.NewEncoder(w)
	env := rules.NewEnv()
	budget := maxExport * 10
	n := 0
	for _, bq := range queries {
		var b views.Browse
		_ = s.scan(topic, bq, &budget, env, func(ev *event.Event) bool {
			if enc.Encode(s.exportLine(ev)) != nil {
				return false // the client went away
			}
			n++
			return n < bq.limit
		}, &b)
		if n >= bq.limit || budget <= 0 {
			return
		}
	}
}

type exportLine struct {
	Topic       string            `json:"topic"`
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Timestamp   time.Time         `json:"timestamp"`
	Key         *string           `json:"key"`
	Headers     map[string]string `json:"headers,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueText   *string           `json:"value_text,omitempty"`
	ValueBase64 string            `json:"value_base64,omitempty"`
}

func (s *Server) exportLine(ev *event.Event) exportLine {
	l := exportLine{Topic: ev.Topic, Partition: ev.Partition, Offset: ev.Offset, Timestamp: ev.Timestamp}
	if ev.Key != nil {
		k := string(ev.Key)
		l.Key = &k
	}
	if len(ev.Headers) > 0 {
		l.Headers = map[string]string{}
		for _, h := range ev.Headers {
			l.Headers[h.Key] = s.masker.Header(h.Key, printable(h.Value))
		}
	}
	switch masked, ok := s.masker.JSON(ev.Value); {
	case ok:
		l.Value = bytes.Clone(masked)
	case utf8.Valid(ev.Value):
		t := string(ev.Value)
		l.ValueText = &t
	default:
		l.ValueBase64 = base64.StdEncoding.EncodeToString(ev.Value)
	}
	return l
}

func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// Live tail (SSE). The stream's id is the position it reached in every
// partition ("0:120,1:98"), so a reconnecting EventSource resumes exactly
// where it stopped (Last-Event-ID), without gaps or repeats while the
// events are retained.
const (
	tailTick    = 500 * time.Millisecond
	tailPerTick = 10   // events drawn per tick per tab: 20/s
	tailBehind  = 1000 // a tab this far behind skips to the end
)

func (s *Server) tail(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	parts, err := s.opts.Backbone.Partitions(topic)
	if err != nil {
		http.Error(w, "no such topic: "+topic, http.StatusNotFound)
		return
	}
	var filter *rules.Program
	if f := r.URL.Query().Get("filter"); f != "" {
		if filter, err = rules.Compile(f, rules.Bool); err != nil {
			http.Error(w, "filter: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	pos := make([]int64, parts)
	resume := parseTailID(sse.LastEventID(r), parts)
	for p := range parts {
		_, end, _ := s.opts.Backbone.Offsets(topic, int32(p))
		pos[p] = end
		if o, ok := resume[p]; ok && o <= end {
			pos[p] = o
		}
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	sw, err := sse.Start(w, 2*time.Second)
	if err != nil {
		return
	}
	tick := time.NewTicker(tailTick)
	defer tick.Stop()
	env := rules.NewEnv()
	idle := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		html, sent, err := s.tailStep(topic, pos, filter, env)
		if err != nil {
			return
		}
		if sent {
			idle = 0
			if sw.Send(formatTailID(pos), "rows", html) != nil {
				return
			}
			continue
		}
		if idle++; time.Duration(idle)*tailTick >= s.opts.Keepalive {
			idle = 0
			if sw.Comment("keepalive") != nil {
				return
			}
		}
	}
}

// tailStep reads what arrived since pos (advancing it) and renders up to
// tailPerTick rows, newest first. sent is false when there is nothing new.
func (s *Server) tailStep(topic string, pos []int64, filter *rules.Program, env *rules.Env) ([]byte, bool, error) {
	var rows []views.EventRow
	skipped := int64(0)
	moved := false
	for p := range pos {
		_, end, err := s.opts.Backbone.Offsets(topic, int32(p))
		if err != nil {
			return nil, false, err
		}
		if end-pos[p] > tailBehind {
			skipped += end - tailPerTick - pos[p]
			pos[p] = end - tailPerTick
		}
		for pos[p] < end && len(rows) < tailPerTick {
			evs, err := s.opts.Backbone.Read(topic, int32(p), pos[p], tailPerTick, readBytes)
			if err != nil {
				if earliest, _, ok := s.opts.Backbone.OutOfRange(err); ok && pos[p] < earliest {
					pos[p] = earliest
					continue
				}
				return nil, false, err
			}
			if len(evs) == 0 {
				break
			}
			for i := range evs {
				pos[p] = evs[i].Offset + 1
				moved = true
				if filter != nil {
					env.Reset(&evs[i])
					if ok, err := filter.EvalBool(env); err != nil || !ok {
						continue
					}
				}
				rows = append(rows, s.eventRow(&evs[i]))
				if len(rows) == tailPerTick {
					break
				}
			}
		}
	}
	if !moved {
		return nil, false, nil
	}
	var buf bytes.Buffer
	p := views.Page{Base: s.base}
	for i := len(rows) - 1; i >= 0; i-- {
		if err := views.EventTR(p, rows[i]).Render(s.ctx, &buf); err != nil {
			return nil, false, err
		}
	}
	if skipped > 0 {
		fmt.Fprintf(&buf, `<tr class="skipped"><td colspan="5" class="warn">skipped %d events to keep up</td></tr>`, skipped)
	}
	return buf.Bytes(), true, nil
}

func formatTailID(pos []int64) string {
	var b strings.Builder
	for p, o := range pos {
		if p > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(o, 10))
	}
	return b.String()
}

// parseTailID reads "P:O,P:O"; entries that do not parse or name no
// partition are ignored (the stream then starts at the end there).
func parseTailID(id string, parts int) map[int]int64 {
	out := map[int]int64{}
	for _, item := range strings.Split(id, ",") {
		ps, os, ok := strings.Cut(item, ":")
		if !ok {
			continue
		}
		p, err1 := strconv.Atoi(ps)
		o, err2 := strconv.ParseInt(os, 10, 64)
		if err1 != nil || err2 != nil || p < 0 || p >= parts || o < 0 {
			continue
		}
		out[p] = o
	}
	return out
}
