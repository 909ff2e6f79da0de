package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
)

func TestAuthRolesSessionsAndCSRF(t *testing.T) {
	h := newHarness(t, testConfig)
	anon := h.client("")
	resp, _ := anon.do(http.MethodGet, "/console/topics?q=x", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login?next=") {
		t.Fatalf("anonymous: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := anon.do(http.MethodGet, "/console/sse/overview", nil, "Accept", "text/event-stream"); resp.StatusCode != 401 {
		t.Fatalf("anonymous stream: %d, want 401", resp.StatusCode)
	}
	for _, tc := range []struct {
		token string
		want  int
	}{{"admin-token", 200}, {"reader-token", 200}, {"producer-token", 403}, {"nope", 401}} {
		if resp, _ := h.client(tc.token).do(http.MethodGet, "/console/", nil); resp.StatusCode != tc.want {
			t.Errorf("bearer %s: %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}

	// Login form: a wrong token stays on the form; a consumer gets a session.
	browser := h.client("")
	_, doc := browser.post("/console/login", url.Values{"token": {"wrong"}}, http.StatusUnauthorized)
	if got := text(find(t, doc, "div.error")); got != "unknown token" {
		t.Fatalf("login error %q", got)
	}
	browser.post("/console/login", url.Values{"token": {"producer-token"}}, http.StatusUnauthorized)
	resp, _ = browser.post("/console/login", url.Values{"token": {"reader-token"}, "next": {"/console/queues"}}, http.StatusSeeOther)
	if resp.Header.Get("Location") != "/console/queues" {
		t.Fatalf("login redirect %q", resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/console" || len(cookie.Value) != 64 {
		t.Fatalf("session cookie %+v", cookie)
	}
	doc = browser.get("/console/queues/work-dlq", 200)
	if got := text(find(t, doc, "#who")); !strings.HasPrefix(got, "consumer:") {
		t.Fatalf("who %q", got)
	}
	if len(findAll(doc, "button#preview-redrive")) != 0 {
		t.Fatal("a consumer sees the redrive button")
	}
	// An open redirect is refused.
	resp, _ = h.client("").post("/console/login", url.Values{"token": {"reader-token"}, "next": {"//evil.example/x"}}, http.StatusSeeOther)
	if resp.Header.Get("Location") != "/console/" {
		t.Fatalf("next=//evil redirected to %q", resp.Header.Get("Location"))
	}

	// A consumer may run the playground (read-only) but not act.
	csrf := csrfOf(t, browser)
	browser.post("/console/pipelines/to-work/playground", url.Values{"value": {`{"type":"order","region":"eu"}`}}, 200, "X-CSRF-Token", csrf)
	browser.post("/console/queues/work-dlq/redrive/preview", url.Values{"group": {"x"}, "rate": {"1"}}, 403, "X-CSRF-Token", csrf)

	// State-changing requests need the session's CSRF token.
	admin := h.client("")
	admin.post("/console/login", url.Values{"token": {"admin-token"}}, http.StatusSeeOther)
	admin.post("/console/pipelines/to-work/replay/preview", url.Values{"from": {"earliest"}}, 403)
	admin.post("/console/pipelines/to-work/replay/preview", url.Values{"from": {"earliest"}}, 403, "X-CSRF-Token", "guess")
	admin.post("/console/pipelines/to-work/replay/preview", url.Values{"from": {"earliest"}}, 200, "X-CSRF-Token", csrfOf(t, admin))

	// Logout ends the session; expiry too.
	browser.post("/console/logout", url.Values{"csrf": {csrf}}, http.StatusSeeOther)
	if resp, _ := browser.do(http.MethodGet, "/console/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
	h.setNow(time.Now().Add(13 * time.Hour))
	if resp, _ := admin.do(http.MethodGet, "/console/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the session TTL: %d, want a redirect to login", resp.StatusCode)
	}
}

// csrfOf reads the CSRF token a page carries for htmx.
func csrfOf(t *testing.T, c *client) string {
	t.Helper()
	doc := c.get("/console/audit", 200)
	v, _ := attrOf(find(t, doc, "body"), "hx-headers")
	var hdr map[string]string
	if err := json.Unmarshal([]byte(v), &hdr); err != nil || hdr["X-CSRF-Token"] == "" {
		t.Fatalf("hx-headers %q", v)
	}
	return hdr["X-CSRF-Token"]
}

func TestOverviewTopologyAndCards(t *testing.T) {
	h := newHarness(t, testConfig)
	h.produce("orders", jsonEvent("o1", `{"type":"order","region":"eu"}`), jsonEvent("o2", `{"type":"order","region":"us"}`))
	c := h.client("admin-token")
	waitFor(t, 5*time.Second, func() error {
		if st := h.srv.freshSnapshot(); st.Lag != 0 || len(st.Pipelines) == 0 || st.Pipelines[0].Routes[0].Sent != 2 {
			return fmt.Errorf("not delivered yet")
		}
		return nil
	})
	doc := c.get("/console/", 200)
	for _, id := range []string{"card-in", "card-out", "card-lag", "card-errors", "card-dlq"} {
		find(t, doc, "#"+id+" div.value")
	}
	kinds := map[string][]string{}
	for _, g := range findAll(doc, "svg.topology g.node") {
		k, _ := attrOf(g, "data-kind")
		l, _ := attrOf(g, "data-label")
		kinds[k] = append(kinds[k], l)
	}
	if fmt.Sprint(kinds["topic"]) != "[orders]" || fmt.Sprint(kinds["route"]) != "[to-work/exchange:orders]" ||
		fmt.Sprint(kinds["sink"]) != "[exchange:orders]" || fmt.Sprint(kinds["dead letters"]) != "[topic:orders-dlq]" {
		t.Fatalf("topology nodes %v", kinds)
	}
	edges := map[string]bool{}
	for _, g := range findAll(doc, "svg.topology g.link") {
		from, _ := attrOf(g, "data-from")
		to, _ := attrOf(g, "data-to")
		edges[from+" → "+to] = true
		find(t, g, "text.rate")
	}
	for _, want := range []string{"orders → to-work/exchange:orders", "to-work/exchange:orders → exchange:orders",
		"to-work/exchange:orders → topic:orders-dlq", "HTTP API and clients → orders"} {
		if !edges[want] {
			t.Errorf("no edge %s in %v", want, edges)
		}
	}
	rows := findAll(doc, "table.pipelines tbody tr")
	if len(rows) != 1 || !strings.Contains(text(rows[0]), "to-work") || !strings.Contains(text(rows[0]), "running") {
		t.Fatalf("pipelines table %v", texts(rows))
	}
	// The queue the exchange fed shows its depth.
	qrows := texts(findAll(doc, "table.queues tbody tr"))
	if len(qrows) != 2 || !strings.HasPrefix(qrows[0], "work 2 0 0") {
		t.Fatalf("queues table %v", qrows)
	}
}

func TestTopicsPagingAndSearch(t *testing.T) {
	var names []string
	for i := range 120 {
		names = append(names, fmt.Sprintf("t-%03d", i))
	}
	h := newHarness(t, testConfig, func(h *harness) { h.topics = names })
	c := h.client("reader-token")
	doc := c.get("/console/topics", 200)
	rows := findAll(doc, "table.topics tbody tr")
	if len(rows) != listPageSize {
		t.Fatalf("first page has %d rows", len(rows))
	}
	doc = c.get("/console/topics?page=3", 200)
	rows = findAll(doc, "table.topics tbody tr")
	if len(rows) != 122-2*listPageSize || !strings.HasPrefix(text(rows[len(rows)-1]), "t-119") {
		t.Fatalf("last page %v", texts(rows))
	}
	find(t, doc, "a[rel=prev]")
	if len(findAll(doc, "a[rel=next]")) != 0 {
		t.Fatal("a next link on the last page")
	}
	doc = c.get("/console/topics?q=T-11", 200)
	if got := texts(findAll(doc, "table.topics tbody tr td a")); fmt.Sprint(got) != "[t-110 t-111 t-112 t-113 t-114 t-115 t-116 t-117 t-118 t-119]" {
		t.Fatalf("search: %v", got)
	}
}

func TestBrowseSeekFilterMaskExport(t *testing.T) {
	h := newHarness(t, testConfig, func(h *harness) { h.noRun = true })
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for i := range 30 {
		ev := jsonEvent(fmt.Sprintf("k%d", i), fmt.Sprintf(`{"n":%d,"card":"4111-%d","customer":{"email":"c%d@x","name":"n"}}`, i, i, i),
			"authorization", "Bearer secret", "region", []string{"eu", "us"}[i%2])
		ev.Timestamp = base.Add(time.Duration(i) * time.Minute)
		h.log.Append(context.Background(), "orders-dlq", []event.Event{ev}) // one partition: offsets = i
	}
	c := h.client("reader-token")
	doc := c.get("/console/topics/orders-dlq?limit=5", 200)
	rows := findAll(doc, "table#browse tbody tr")
	if len(rows) != 5 {
		t.Fatalf("newest page has %d rows", len(rows))
	}
	if off, _ := attrOf(rows[0], "data-offset"); off != "25" {
		t.Fatalf("newest page starts at %s, want 25", off)
	}
	cell := text(find(t, rows[0], "pre.value"))
	if strings.Contains(cell, "4111") || strings.Contains(cell, "c25@x") || !strings.Contains(cell, `"card": "***"`) || !strings.Contains(cell, `"name": "n"`) {
		t.Fatalf("value not masked: %s", cell)
	}
	if hdrs := text(rows[0]); strings.Contains(hdrs, "secret") || !strings.Contains(hdrs, "authorization: ***") {
		t.Fatalf("header not masked: %s", hdrs)
	}
	// Seek by time, filter with expr over body and headers.
	q := url.Values{"time": {"2026-11-01T10:10:00Z"}, "filter": {`body.n % 3 == 0 && headers["region"] == "us"`}, "limit": {"2"}}
	doc = c.get("/console/topics/orders-dlq?"+q.Encode(), 200)
	var offs []string
	for _, r := range findAll(doc, "table#browse tbody tr") {
		o, _ := attrOf(r, "data-offset")
		offs = append(offs, o)
	}
	if fmt.Sprint(offs) != "[15 21]" {
		t.Fatalf("time + filter gave offsets %v, want [15 21]", offs)
	}
	next := find(t, doc, "a[rel=next]")
	if href, _ := attrOf(next, "href"); !strings.Contains(href, "offset=22") {
		t.Fatalf("next link %s", href)
	}
	doc = c.get("/console/topics/orders-dlq?filter=body.n+%3E", 200)
	if got := text(find(t, doc, "div.error")); !strings.HasPrefix(got, "filter:") {
		t.Fatalf("bad filter: %q", got)
	}
	// Export: JSON lines, masked, the selection asked for.
	resp, body := c.do(http.MethodGet, "/console/topics/orders-dlq/export?"+url.Values{"filter": {`body.n >= 28`}}.Encode(), nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 2 {
		t.Fatalf("export lines %d:\n%s", len(lines), body)
	}
	var l exportLine
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil || l.Offset != 28 || *l.Key != "k28" || l.Headers["authorization"] != "***" ||
		!strings.Contains(string(l.Value), `"card":"***"`) || !strings.Contains(string(l.Value), `"email":"***"`) {
		t.Fatalf("export line %s (%v)", lines[0], err)
	}
	// partition=all exports every partition, each from the same start.
	for i := range 10 {
		h.produce("orders", jsonEvent(fmt.Sprintf("key-%d", i), fmt.Sprintf(`{"n":%d}`, i)))
	}
	resp, body = c.do(http.MethodGet, "/console/topics/orders/export?partition=all&filter="+url.QueryEscape("body.n >= 2"), nil)
	parts := map[int32]int{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		var l exportLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		parts[l.Partition]++
	}
	if resp.StatusCode != 200 || parts[0]+parts[1] != 8 || len(parts) != 2 || !strings.Contains(resp.Header.Get("Content-Disposition"), "orders-all.jsonl") {
		t.Fatalf("export of all partitions: %d %v %s", resp.StatusCode, parts, resp.Header.Get("Content-Disposition"))
	}
}

// stream is an open event stream read line by line on its own goroutine.
type stream struct {
	lines chan string
}

// readSSE reads frames until n messages or timeout.
func readSSE(t *testing.T, s *stream, n int, timeout time.Duration) (msgs []map[string]string, comments int) {
	t.Helper()
	cur := map[string]string{}
	timer := time.After(timeout)
	for len(msgs) < n {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return msgs, comments
			}
			switch {
			case l == "":
				if len(cur) > 0 && cur["data"] != "" {
					msgs = append(msgs, cur)
				}
				cur = map[string]string{}
			case strings.HasPrefix(l, ":"):
				comments++
			default:
				k, v, _ := strings.Cut(l, ": ")
				if k == "data" && cur["data"] != "" {
					v = cur["data"] + "\n" + v
				}
				cur[k] = v
			}
		case <-timer:
			return msgs, comments
		}
	}
	return msgs, comments
}

func openStream(t *testing.T, h *harness, path, token, lastID string) (*stream, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{lines: make(chan string, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.lines)
		br := bufio.NewReader(resp.Body)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case s.lines <- strings.TrimRight(l, "\r\n"):
			case <-ctx.Done():
				return
			}
		}
	}()
	return s, func() { cancel(); resp.Body.Close(); <-done }
}

func TestOverviewStreamIDsKeepaliveResume(t *testing.T) {
	h := newHarness(t, testConfig)
	body, stop := openStream(t, h, "/console/sse/overview", "reader-token", "")
	msgs, _ := readSSE(t, body, 6, 5*time.Second)
	stop()
	if len(msgs) < 6 {
		t.Fatalf("%d messages in 5s", len(msgs))
	}
	var last uint64
	events := map[string]bool{}
	for _, m := range msgs {
		var id uint64
		fmt.Sscan(m["id"], &id)
		if id <= last {
			t.Fatalf("id %d after %d", id, last)
		}
		last = id
		events[m["event"]] = true
		if m["event"] == "cards" {
			doc := parseHTML(t, m["data"])
			find(t, doc, "#card-in div.value")
		}
		if m["event"] == "rates" {
			var p struct {
				T      int64     `json:"t"`
				Values []float64 `json:"values"`
			}
			if err := json.Unmarshal([]byte(m["data"]), &p); err != nil || len(p.Values) != 3 {
				t.Fatalf("rates %q: %v", m["data"], err)
			}
		}
	}
	if !events["cards"] || !events["topology"] || !events["rates"] {
		t.Fatalf("events %v", events)
	}
	// Resume after the last id seen: the next message has a higher id and
	// nothing at or below it comes again.
	body, stop = openStream(t, h, "/console/sse/overview", "reader-token", fmt.Sprint(last))
	again, _ := readSSE(t, body, 3, 5*time.Second)
	stop()
	for _, m := range again {
		var id uint64
		fmt.Sscan(m["id"], &id)
		if id <= last {
			t.Fatalf("resume after %d repeated id %d", last, id)
		}
	}
	if len(again) == 0 {
		t.Fatal("nothing after resume")
	}

	// Keepalive: a tail with no new events sends comments only.
	tail, stop := openStream(t, h, "/console/topics/orders-dlq/tail", "reader-token", "")
	defer stop()
	got, comments := readSSE(t, tail, 1, 600*time.Millisecond)
	if len(got) != 0 || comments == 0 {
		t.Fatalf("idle tail: %d messages, %d comments; want keepalive comments only", len(got), comments)
	}
}

func TestTailIDsAndResume(t *testing.T) {
	h := newHarness(t, testConfig, func(h *harness) { h.noRun = true })
	tail, stop := openStream(t, h, "/console/topics/orders/tail?filter="+url.QueryEscape(`body.n != 3`), "reader-token", "")
	time.Sleep(100 * time.Millisecond)
	for i := range 6 {
		h.log.Append(context.Background(), "orders", []event.Event{{Key: []byte("k"), Value: []byte(fmt.Sprintf(`{"n":%d}`, i)), Timestamp: time.Now()}})
	}
	msgs, _ := readSSE(t, tail, 1, 3*time.Second)
	stop()
	if len(msgs) == 0 || msgs[0]["event"] != "rows" {
		t.Fatalf("tail messages %v", msgs)
	}
	seen := map[string]bool{}
	lastID := ""
	for _, m := range msgs {
		for _, tr := range findAll(parseHTML(t, "<table><tbody>"+m["data"]+"</tbody></table>"), "tr") {
			o, _ := attrOf(tr, "data-offset")
			p, _ := attrOf(tr, "data-partition")
			seen[p+"/"+o] = true
		}
		lastID = m["id"]
	}
	if len(seen) == 0 {
		t.Fatal("no rows")
	}
	// The id names the position reached in each partition.
	pos := parseTailID(lastID, 2)
	if len(pos) != 2 {
		t.Fatalf("tail id %q", lastID)
	}
	// Resuming from "0:0,1:0" replays everything after those positions
	// (except n=3, filtered out).
	tail, stop = openStream(t, h, "/console/topics/orders/tail?filter="+url.QueryEscape(`body.n != 3`), "reader-token", "0:0,1:0")
	defer stop()
	var rows int
	for _, m := range mustRead(t, tail, 1) {
		rows += len(findAll(parseHTML(t, "<table><tbody>"+m["data"]+"</tbody></table>"), "tr"))
		if strings.Contains(m["data"], `&#34;n&#34;: 3`) || strings.Contains(m["data"], `"n": 3`) {
			t.Fatal("the filtered event was sent")
		}
	}
	if rows != 5 {
		t.Fatalf("resume from the start sent %d rows, want 5", rows)
	}
}

func mustRead(t *testing.T, r *stream, n int) []map[string]string {
	t.Helper()
	msgs, _ := readSSE(t, r, n, 3*time.Second)
	if len(msgs) < n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	return msgs
}

func TestQueueDLQWorkflow(t *testing.T) {
	h := newHarness(t, testConfig, func(h *harness) {
		h.extra = func(_ *commitlog.Log, qm *queue.Manager) {}
	})
	q, _ := h.queues.Get("work")
	var in []queue.SendInput
	for i := range 7 {
		in = append(in, queue.SendInput{Body: []byte(fmt.Sprintf(`{"i":%d,"card":"4111"}`, i))})
	}
	if _, err := q.Send(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	// Receive twice with no delete: max_receive_count 1 sends all to the DLQ.
	for range 2 {
		if _, err := q.Receive(context.Background(), 10, time.Millisecond, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dlq, _ := h.queues.Get("work-dlq")
	waitFor(t, 5*time.Second, func() error {
		if st := dlq.Stats(); st.Visible != 7 {
			return fmt.Errorf("dlq visible %d", st.Visible)
		}
		return nil
	})
	admin := h.client("")
	admin.post("/console/login", url.Values{"token": {"admin-token"}}, http.StatusSeeOther)
	csrf := csrfOf(t, admin)
	doc := admin.get("/console/queues/work-dlq", 200)
	groups := findAll(doc, "table.groups tbody tr")
	if len(groups) != 1 || !strings.Contains(text(groups[0]), "work received more than maxReceiveCount times 7") {
		t.Fatalf("groups %v", texts(groups))
	}
	msgs := findAll(doc, "table.messages tbody tr")
	if len(msgs) != 7 || strings.Contains(text(msgs[0]), "4111") {
		t.Fatalf("messages (masked) %v", texts(msgs))
	}
	if st := dlq.Stats(); st.Visible != 7 || st.InFlight != 0 {
		t.Fatalf("browsing changed the DLQ: %+v", st)
	}
	key, _ := attrOf(find(t, groups[0], "input[name=group]"), "value")
	_, pv := admin.post("/console/queues/work-dlq/redrive/preview", url.Values{"group": {key}, "rate": {"50"}}, 200, "X-CSRF-Token", csrf)
	if got := text(find(t, pv, "#preview-total")); got != "7" {
		t.Fatalf("preview total %q", got)
	}
	admin.post("/console/queues/work-dlq/redrive/preview", url.Values{"group": {key}, "rate": {"5000"}}, 400, "X-CSRF-Token", csrf)
	// Confirmation: the queue's name must be typed.
	form := url.Values{"group": {key}, "rate": {"5"}, "expect": {"7"}, "csrf": {csrf}, "confirm": {"work"}}
	admin.post("/console/queues/work-dlq/redrive", form, 400)
	if st := dlq.Stats(); st.Visible != 7 {
		t.Fatal("an unconfirmed redrive moved messages")
	}
	form.Set("confirm", "work-dlq")
	resp, _ := admin.post("/console/queues/work-dlq/redrive", form, http.StatusSeeOther)
	jobURL := resp.Header.Get("Location")
	start := time.Now()
	waitFor(t, 5*time.Second, func() error {
		doc := admin.get(strings.TrimPrefix(jobURL, h.http.URL), 200)
		if s := text(find(t, doc, "#job-state")); s != "done" {
			return fmt.Errorf("job %s", s)
		}
		return nil
	})
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("7 messages at 5/s took %v: not paced", took)
	}
	if st := dlq.Stats(); st.Visible != 0 {
		t.Fatalf("DLQ after redrive %+v", st)
	}
	if st := q.Stats(); st.Visible != 7 {
		t.Fatalf("source after redrive %+v", st)
	}
	doc = admin.get("/console/audit", 200)
	rows := texts(findAll(doc, "table.audit tbody tr"))
	if len(rows) != 2 || !strings.Contains(rows[0], "admin:") || !strings.Contains(rows[0], "redrive.queue work-dlq 7") ||
		!strings.HasSuffix(rows[0], "done") || !strings.HasSuffix(rows[1], "started") {
		t.Fatalf("audit %v", rows)
	}
}

func TestPipelineDeadLettersPlaygroundReplayJourney(t *testing.T) {
	h := newHarness(t, testConfig)
	pos := h.produce("orders",
		jsonEvent("good", `{"type":"order","region":"eu"}`, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
		jsonEvent("bad", `{"type":"order","region":7}`), jsonEvent("skip", `{"type":"refund"}`))
	waitFor(t, 5*time.Second, func() error {
		st, _ := h.engine.Pipeline("to-work")
		if st.Routes[0].Lag != 0 || st.Routes[0].DeadLettered != 1 {
			return fmt.Errorf("lag %d dead-lettered %d", st.Routes[0].Lag, st.Routes[0].DeadLettered)
		}
		return nil
	})
	c := h.client("reader-token")
	id := func(i int) string { return fmt.Sprintf("orders/%d/%d", pos[i].Partition, pos[i].Offset) }
	// Journey of a delivered event: rules, acknowledgement, trace link.
	doc := c.get("/console/journey?id="+url.QueryEscape(id(0)), 200)
	route := find(t, doc, "div.journey-route")
	if st, _ := attrOf(route, "data-status"); st != "delivered" || !strings.Contains(text(route), "acknowledged by exchange:orders") {
		t.Fatalf("journey of a delivered event: %s / %s", st, text(route))
	}
	if href, _ := attrOf(find(t, doc, "#trace-link"), "href"); href != "http://127.0.0.1:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace link %q", href)
	}
	// ...of a dead-lettered one: the rule error, the outcome, the dead letter.
	doc = c.get("/console/journey?id="+url.QueryEscape(id(1)), 200)
	route = find(t, doc, "div.journey-route")
	if st, _ := attrOf(route, "data-status"); st != "dead-lettered" || !strings.Contains(text(route), "dead-lettered to topic:orders-dlq") {
		t.Fatalf("journey of a dead letter: %s / %s", st, text(route))
	}
	if rows := findAll(doc, "table.deadletters tbody tr"); len(rows) != 1 || !strings.Contains(text(rows[0]), "orders-dlq/0/0") {
		t.Fatalf("dead letters of the event %v", texts(rows))
	}
	doc = c.get("/console/journey?id="+url.QueryEscape(id(2)), 200)
	if st, _ := attrOf(find(t, doc, "div.journey-route"), "data-status"); st != "not selected" {
		t.Fatalf("filtered event: %s", st)
	}
	doc = c.get("/console/journey?topic=orders&key=good", 200)
	if rows := findAll(doc, "table.events tbody tr"); len(rows) != 1 {
		t.Fatalf("find by key: %v", texts(rows))
	}

	// Pipeline dead letters page: grouped by reason.
	doc = c.get("/console/deadletters", 200)
	groups := findAll(doc, "table.groups tbody tr")
	if len(groups) != 1 || !strings.Contains(text(groups[0]), "pipeline to-work / exchange:orders") || !strings.Contains(text(groups[0]), "permanent: rule: routing_key") {
		t.Fatalf("dead-letter groups %v", texts(groups))
	}

	// Playground: an event from the log, and one written in the form.
	csrfClient := h.client("")
	csrfClient.post("/console/login", url.Values{"token": {"admin-token"}}, http.StatusSeeOther)
	csrf := csrfOf(t, csrfClient)
	_, frag := csrfClient.post("/console/pipelines/to-work/playground", url.Values{"partition": {fmt.Sprint(pos[1].Partition)},
		"offset": {fmt.Sprint(pos[1].Offset)}}, 200, "X-CSRF-Token", csrf)
	dec := find(t, frag, "table#decisions tbody tr")
	if sel, _ := attrOf(dec, "data-selected"); sel != "false" || !strings.Contains(text(dec), "rule failed → dead_letter") {
		t.Fatalf("playground on the bad event: %s", text(dec))
	}
	_, frag = csrfClient.post("/console/pipelines/to-work/playground", url.Values{"value": {`{"type":"order","region":"ap"}`},
		"headers": {"x-a: 1"}}, 200, "X-CSRF-Token", csrf)
	dec = find(t, frag, "table#decisions tbody tr")
	if sel, _ := attrOf(dec, "data-selected"); sel != "true" || !strings.Contains(text(dec), "routing key: order.ap") {
		t.Fatalf("playground on a written event: %s", text(dec))
	}

	// Replay: preview, confirmation, audit.
	_, frag = csrfClient.post("/console/pipelines/to-work/replay/preview", url.Values{"from": {"earliest"}}, 200, "X-CSRF-Token", csrf)
	if got := text(find(t, frag, "#replay-total")); got != "3" {
		t.Fatalf("replay preview total %q", got)
	}
	csrfClient.post("/console/pipelines/to-work/replay", url.Values{"from": {"earliest"}, "csrf": {csrf}, "confirm": {"nope"}}, 400)
	csrfClient.post("/console/pipelines/to-work/replay", url.Values{"from": {"earliest"}, "csrf": {csrf}, "confirm": {"to-work"}}, http.StatusSeeOther)
	waitFor(t, 5*time.Second, func() error {
		st, _ := h.engine.Pipeline("to-work")
		if st.Routes[0].DeadLettered != 2 {
			return fmt.Errorf("dead-lettered %d after replay", st.Routes[0].DeadLettered)
		}
		return nil
	})
	doc = c.get("/console/audit", 200)
	if rows := texts(findAll(doc, "table.audit tbody tr")); len(rows) != 2 || !strings.Contains(rows[0], "replay to-work 3 from earliest done") {
		t.Fatalf("audit %v", rows)
	}

	// Redrive of pipeline dead letters: a job that reports what happened.
	doc = csrfClient.get("/console/deadletters", 200)
	key, _ := attrOf(find(t, doc, "table.groups input[name=group]"), "value")
	resp, _ := csrfClient.post("/console/deadletters/redrive", url.Values{"group": {key}, "rate": {"100"}, "csrf": {csrf}, "confirm": {"redrive"}}, http.StatusSeeOther)
	jobPath := strings.TrimPrefix(resp.Header.Get("Location"), h.http.URL)
	waitFor(t, 5*time.Second, func() error {
		if s := text(find(t, csrfClient.get(jobPath, 200), "#job-state")); s != "done" {
			return fmt.Errorf("job %s", s)
		}
		return nil
	})
	// Redriven through the route, the rule fails again: both count as failed.
	if got := text(find(t, csrfClient.get(jobPath, 200), "dl.kv")); !strings.Contains(got, "0 of 2 sent, 2 failed") {
		t.Fatalf("job %s", got)
	}
}

func TestPagesRenderAndNotFound(t *testing.T) {
	h := newHarness(t, testConfig)
	c := h.client("admin-token")
	for _, p := range []string{"/console/", "/console/topics", "/console/topics/orders", "/console/queues", "/console/queues/work",
		"/console/pipelines", "/console/pipelines/to-work", "/console/journey", "/console/history", "/console/audit", "/console/deadletters"} {
		doc := c.get(p, 200)
		if cur := findAll(doc, "nav a[aria-current=page]"); len(cur) != 1 {
			t.Errorf("%s: %d current nav items", p, len(cur))
		}
		for _, s := range findAll(doc, "script") {
			if src, ok := attrOf(s, "src"); !ok || !strings.HasPrefix(src, "/console/static/") {
				t.Errorf("%s: script %q is not a local static file", p, src)
			}
		}
	}
	for _, p := range []string{"/console/topics/nope", "/console/queues/nope", "/console/pipelines/nope", "/console/elsewhere"} {
		c.get(p, 404)
	}
	resp, _ := c.do(http.MethodGet, "/console/", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	// Theme: a cookie, rendered on the html element.
	resp, _ = c.do(http.MethodGet, "/console/theme?set=dark&back=/console/topics", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/topics" {
		t.Fatalf("theme: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	doc := c.get("/console/topics", 200)
	if th, _ := attrOf(find(t, doc, "html"), "data-theme"); th != "dark" {
		t.Fatalf("theme %q", th)
	}
	// History JSON: series with minute points.
	resp, body := c.do(http.MethodGet, "/console/api/history.json?series=in,out", nil)
	var hist chartData
	if err := json.Unmarshal([]byte(body), &hist); resp.StatusCode != 200 || err != nil || len(hist.Series) != 2 {
		t.Fatalf("history.json %d %s", resp.StatusCode, body)
	}
}

func TestJourneyShowsJournalledRetriesAndOutcome(t *testing.T) {
	h := newHarness(t, testConfig, func(h *harness) { h.noRun = true })
	pos := h.produce("orders", jsonEvent("k", `{"type":"order","region":"eu"}`))
	p, o := pos[0].Partition, pos[0].Offset
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	rec := h.srv.opts.Journey
	for i := 1; i <= 2; i++ {
		rec.Record(engine.JournalEntry{Kind: engine.JournalRetry, Pipeline: "to-work", Route: "exchange:orders", Partition: p,
			From: o, To: o + 1, Matched: 1, Attempt: i, Error: "connection refused", Target: "exchange:orders", At: at})
	}
	rec.Record(engine.JournalEntry{Kind: engine.JournalDeadLetter, Pipeline: "to-work", Route: "exchange:orders", Partition: p,
		From: o, To: o + 1, Attempt: 3, Error: "connection refused", Target: "topic:orders-dlq", At: at})
	doc := h.client("reader-token").get(fmt.Sprintf("/console/journey?id=orders/%d/%d", p, o), 200)
	route := find(t, doc, "div.journey-route")
	steps := texts(findAll(route, "ul.steps li"))
	var retries, dead int
	for _, s := range steps {
		if strings.Contains(s, "send attempt") && strings.Contains(s, "failed") && strings.Contains(s, "connection refused") {
			retries++
		}
		if strings.Contains(s, "dead-lettered to topic:orders-dlq after 3 attempts") {
			dead++
		}
	}
	if retries != 2 || dead != 1 {
		t.Fatalf("steps %q", steps)
	}
	if st, _ := attrOf(route, "data-status"); st != "dead-lettered" {
		t.Fatalf("status %q", st)
	}
}

func TestHistoryJSONAfterMinutes(t *testing.T) {
	h := newHarness(t, testConfig, func(h *harness) { h.noRun = true })
	t0 := time.Now().Truncate(time.Minute).Add(-10 * time.Minute)
	for m := range 4 {
		h.setNow(t0.Add(time.Duration(m) * time.Minute))
		snap := h.srv.resample(h.clock())
		snap.InRate = float64(100 * (m + 1)) // as if events arrived
		h.srv.record(snap)
	}
	h.setNow(time.Time{})
	resp, body := h.client("reader-token").do(http.MethodGet, "/console/api/history.json?series=in,pipeline/to-work/lag&hours=1", nil)
	var got chartData
	if err := json.Unmarshal([]byte(body), &got); resp.StatusCode != 200 || err != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if len(got.Series) != 2 || len(got.T) != 4 || got.Series[0].Name != "in" { // 3 committed minutes and the open one
		t.Fatalf("history %s", body)
	}
	for i, v := range got.Series[0].Values {
		if v == nil || *v != float64(100*(i+1)) {
			t.Fatalf("in[%d] = %v in %s", i, v, body)
		}
	}
	if got.Series[1].Values[0] == nil || *got.Series[1].Values[0] != 0 {
		t.Fatalf("pipeline lag series %s", body)
	}
}

// A pipeline's dead letters in a queue (dead_letter: {queue: …}) have no
// source queue: they are redriven through their route and deleted from the
// DLQ only when the route's sink took them.
func TestQueueDeadLettersOfAPipelineGoBackThroughTheirRoute(t *testing.T) {
	cfg := strings.Replace(testConfig, "dead_letter: { topic: orders-dlq }", "dead_letter: { queue: work-dlq }", 1)
	h := newHarness(t, cfg)
	h.produce("orders", jsonEvent("bad", `{"type":"order","region":7}`)) // the routing key rule fails
	dlq, _ := h.queues.Get("work-dlq")
	waitFor(t, 5*time.Second, func() error {
		if st := dlq.Stats(); st.Visible != 1 {
			return fmt.Errorf("dlq visible %d", st.Visible)
		}
		return nil
	})
	// A dead letter of a failure that has passed (as after an outage).
	if _, err := dlq.Send(context.Background(), []queue.SendInput{{Body: []byte(`{"type":"order","region":"eu"}`), Attributes: []queue.Attribute{
		{Name: event.HeaderPipeline, DataType: "String", Value: []byte("to-work")},
		{Name: event.HeaderRoute, DataType: "String", Value: []byte("exchange:orders")},
		{Name: event.HeaderError, DataType: "String", Value: []byte("exchange unreachable")},
		{Name: event.HeaderEventID, DataType: "String", Value: []byte("orders/0/99")}}}}); err != nil {
		t.Fatal(err)
	}
	admin := h.client("")
	admin.post("/console/login", url.Values{"token": {"admin-token"}}, http.StatusSeeOther)
	csrf := csrfOf(t, admin)
	doc := admin.get("/console/queues/work-dlq", 200)
	groups := findAll(doc, "table.groups tbody tr")
	if len(groups) != 2 {
		t.Fatalf("groups %v", texts(groups))
	}
	form := url.Values{"rate": {"100"}, "csrf": {csrf}, "confirm": {"work-dlq"}, "expect": {"2"}}
	for _, g := range groups {
		k, _ := attrOf(find(t, g, "input[name=group]"), "value")
		form.Add("group", k)
		if !strings.Contains(text(g), "pipeline to-work / exchange:orders") {
			t.Fatalf("group source: %s", text(g))
		}
	}
	resp, _ := admin.post("/console/queues/work-dlq/redrive", form, http.StatusSeeOther)
	jobPath := strings.TrimPrefix(resp.Header.Get("Location"), h.http.URL)
	waitFor(t, 5*time.Second, func() error {
		if s := text(find(t, admin.get(jobPath, 200), "#job-state")); s != "done" {
			return fmt.Errorf("job %s", s)
		}
		return nil
	})
	if got := text(find(t, admin.get(jobPath, 200), "dl.kv")); !strings.Contains(got, "1 of 2 sent, 1 failed") {
		t.Fatalf("job %s", got)
	}
	// The passing one reached the exchange's queue and left the DLQ; the
	// failing one is still there, visible.
	work, _ := h.queues.Get("work")
	if st := work.Stats(); st.Visible != 1 {
		t.Fatalf("work queue %+v", st)
	}
	left, _ := dlq.Peek(0, 10)
	if len(left) != 1 || left[0].State != "visible" || !strings.Contains(string(left[0].Body), `"region":7`) {
		t.Fatalf("left in the DLQ %+v", left)
	}
}

// The playground evaluates like the cursor: a transform that splits an
// order into items gives one output per item.
func TestPlaygroundShowsTransformOutputs(t *testing.T) {
	cfg := strings.Replace(testConfig, `    filter: 'body.type == "order"'
`, `    filter: 'body.type == "order"'
    transform:
      split: 'body.items'
      value: '{"sku": item.sku, "region": body.region}'
`, 1)
	h := newHarness(t, cfg, func(h *harness) { h.noRun = true })
	admin := h.client("")
	admin.post("/console/login", url.Values{"token": {"admin-token"}}, http.StatusSeeOther)
	_, frag := admin.post("/console/pipelines/to-work/playground", url.Values{
		"value": {`{"type":"order","region":"eu","items":[{"sku":"a"},{"sku":"b"},{"sku":"c"}]}`}}, 200, "X-CSRF-Token", csrfOf(t, admin))
	dec := find(t, frag, "table#decisions tbody tr")
	outs := findAll(dec, "div.output")
	if sel, _ := attrOf(dec, "data-selected"); sel != "true" || len(outs) != 3 {
		t.Fatalf("decision %s (%d outputs)", text(dec), len(outs))
	}
	for i, sku := range []string{"a", "b", "c"} {
		if got := text(outs[i]); !strings.Contains(got, `"sku": "`+sku+`"`) || !strings.Contains(got, "routing key: order.eu") {
			t.Fatalf("output %d: %s", i, got)
		}
	}
}

func TestFailedLoginsAreLimited(t *testing.T) {
	h := newHarness(t, testConfig, func(h *harness) { h.noRun = true })
	c := h.client("")
	for i := range 10 {
		c.post("/console/login", url.Values{"token": {fmt.Sprint("wrong-", i)}}, http.StatusUnauthorized)
	}
	// The eleventh try in the minute is refused, even with a good token.
	c.post("/console/login", url.Values{"token": {"admin-token"}}, http.StatusTooManyRequests)
	h.setNow(time.Now().Add(61 * time.Second))
	c.post("/console/login", url.Values{"token": {"admin-token"}}, http.StatusSeeOther)
}
