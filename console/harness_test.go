package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/console/journey"
	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
	"golang.org/x/net/html"
)

// The harness runs the real parts: the embedded commitlog, queue manager,
// exchanges and engine, built from a YAML config as bridge run builds
// them, with the console mounted on an httptest server.

const testConfig = `
data_dir: ./data
auth:
  tokens:
    - { token: admin-token, role: admin }
    - { token: reader-token, role: consumer }
    - { token: producer-token, role: producer }
backbone:
  topics:
    orders: { partitions: 2 }
    orders-dlq: { partitions: 1 }
broker:
  queues:
    work: { visibility_timeout: 30s, max_receive_count: 1, dead_letter_queue: work-dlq }
    work-dlq: {}
  exchanges:
    orders:
      type: topic
      bindings:
        - { queue: work, key: "order.#" }
console:
  mask: { fields: [card, customer.email], headers: [authorization] }
  trace_url: "http://127.0.0.1:16686/trace/{trace_id}"
pipelines:
  - name: to-work
    from: orders
    filter: 'body.type == "order"'
    routes:
      - to: { exchange: orders, routing_key: '"order." + body.region' }
    dead_letter: { topic: orders-dlq }
`

type harness struct {
	t       testing.TB
	srv     *Server
	http    *httptest.Server
	log     *commitlog.Log
	queues  *queue.Manager
	engine  *engine.Engine
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	now     time.Time
	nowMu   sync.Mutex
	topics  []string
	noRun   bool
	extra   func(*commitlog.Log, *queue.Manager)
	wrap    func(engine.Backbone) engine.Backbone // replaces the backbone the console and engine see
	options func(*Options)
}

func (h *harness) clock() time.Time {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	if h.now.IsZero() {
		return time.Now()
	}
	return h.now
}

func (h *harness) setNow(t time.Time) {
	h.nowMu.Lock()
	h.now = t
	h.nowMu.Unlock()
}

// newHarness builds everything from cfg and starts the engine and the
// console's sampler.
func newHarness(t testing.TB, cfg string, setup ...func(*harness)) *harness {
	t.Helper()
	h := &harness{t: t}
	for _, f := range setup {
		f(h)
	}
	dir := t.TempDir()
	plan, err := pipelines.Parse("test.yaml", []byte(cfg), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	lg, err := commitlog.Open(commitlog.Options{Dir: filepath.Join(dir, "log"), Fsync: commitlog.FsyncPolicy("never")})
	if err != nil {
		t.Fatal(err)
	}
	h.log = lg
	t.Cleanup(func() { lg.Close() })
	for name, tc := range plan.Config.Backbone.Topics {
		if err := lg.CreateTopic(name, tc.Partitions); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range h.topics {
		if err := lg.CreateTopic(name, 1); err != nil {
			t.Fatal(err)
		}
	}
	qm, err := queue.Open(queue.Options{Dir: filepath.Join(dir, "queues"), Fsync: "never"})
	if err != nil {
		t.Fatal(err)
	}
	h.queues = qm
	t.Cleanup(func() { qm.Close() })
	broker := declare(t, plan.Config, qm)
	if h.extra != nil {
		h.extra(lg, qm)
	}
	rec := journey.New(0)
	backbone := engine.Embedded(lg)
	if h.wrap != nil {
		backbone = h.wrap(backbone)
	}
	eng, err := engine.Build(plan, engine.Deps{Backbone: backbone, Broker: broker,
		Options: engine.Options{Logger: slog.New(slog.DiscardHandler), CommitInterval: 5 * time.Millisecond, Journal: rec}})
	if err != nil {
		t.Fatal(err)
	}
	h.engine = eng
	dls, err := engine.OpenDeadLetters(eng, filepath.Join(dir, "deadletters"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dls.Close() })
	tokens := map[string]string{}
	for _, tok := range plan.Config.Auth.Tokens {
		tokens[tok.Token] = tok.Role
	}
	opts := Options{Backbone: backbone, Engine: eng, Broker: broker, DeadLetters: dls, Journey: rec, Tokens: tokens,
		Config: plan.Config.Console, Dir: filepath.Join(dir, "console"), Now: h.clock, Tick: 20 * time.Millisecond,
		Keepalive: 150 * time.Millisecond, Retention: "168h"}
	if h.options != nil {
		h.options(&opts)
	}
	srv, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/console/", srv)
	mux.Handle("/console", srv)
	h.http = httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	if !h.noRun {
		h.wg.Go(func() { _ = eng.Run(ctx) })
		h.wg.Go(func() { _ = srv.Run(ctx) })
	}
	t.Cleanup(func() {
		srv.StopStreams()
		h.http.Close()
		cancel()
		h.wg.Wait()
		if err := srv.Close(); err != nil {
			t.Errorf("console Close: %v", err)
		}
	})
	return h
}

func declare(t testing.TB, cfg *pipelines.Config, qm *queue.Manager) *engine.Broker {
	t.Helper()
	for _, pass := range []bool{false, true} { // dead-letter queues first
		for name, q := range cfg.Broker.Queues {
			if (q.DeadLetterQueue != "") != pass {
				continue
			}
			if _, err := qm.Create(queue.Config{Name: name, VisibilityTimeout: time.Duration(q.VisibilityTimeout),
				DeadLetterQueue: q.DeadLetterQueue, MaxReceiveCount: q.MaxReceiveCount}); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := engine.NewBroker(qm)
	for name, xc := range cfg.Broker.Exchanges {
		var bs []exchange.Binding
		for _, bc := range xc.Bindings {
			bs = append(bs, exchange.Binding{Queue: bc.Queue, Key: bc.Key})
		}
		x, err := exchange.New(name, exchange.Kind(xc.Type), bs)
		if err != nil {
			t.Fatal(err)
		}
		b.AddExchange(x, "")
	}
	return b
}

// produce appends events to a topic.
func (h *harness) produce(topic string, evs ...event.Event) []event.Position {
	h.t.Helper()
	for i := range evs {
		if evs[i].Timestamp.IsZero() {
			evs[i].Timestamp = time.Now()
		}
	}
	pos, err := h.log.Append(context.Background(), topic, evs)
	if err != nil {
		h.t.Fatal(err)
	}
	return pos
}

// waitFor polls f until it returns nil.
func waitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("condition not met after %v: %v", timeout, err)
}

// client is an HTTP client of the console with a cookie jar and an
// optional bearer token; it does not follow redirects.
type client struct {
	t     testing.TB
	base  string
	token string
	hc    *http.Client
}

func (h *harness) client(token string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: h.t, base: h.http.URL, token: token, hc: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// get fetches a page, requires want, and returns its parsed document.
func (c *client) get(path string, want int) *html.Node {
	c.t.Helper()
	resp, body := c.do(http.MethodGet, path, nil)
	if resp.StatusCode != want {
		c.t.Fatalf("GET %s: status %d, want %d\n%s", path, resp.StatusCode, want, body)
	}
	return parseHTML(c.t, body)
}

func (c *client) post(path string, form url.Values, want int, hdr ...string) (*http.Response, *html.Node) {
	c.t.Helper()
	resp, body := c.do(http.MethodPost, path, form, hdr...)
	if resp.StatusCode != want {
		c.t.Fatalf("POST %s: status %d, want %d\n%s", path, resp.StatusCode, want, body)
	}
	return resp, parseHTML(c.t, body)
}

func parseHTML(t testing.TB, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

// HTML queries: a tiny selector set (tag, #id, .class, [attr=value]) is
// all the tests need.

func attrOf(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasClass(n *html.Node, class string) bool {
	v, _ := attrOf(n, "class")
	for _, c := range strings.Fields(v) {
		if c == class {
			return true
		}
	}
	return false
}

// match checks one simple selector: "tag", "#id", "tag#id", ".class",
// "tag.class", "tag[attr=value]".
func match(n *html.Node, sel string) bool {
	if n.Type != html.ElementNode {
		return false
	}
	if i := strings.IndexByte(sel, '['); i >= 0 {
		kv := strings.TrimSuffix(sel[i+1:], "]")
		k, v, hasV := strings.Cut(kv, "=")
		got, ok := attrOf(n, k)
		if !ok || (hasV && got != strings.Trim(v, `"`)) {
			return false
		}
		sel = sel[:i]
	}
	if i := strings.IndexByte(sel, '#'); i >= 0 {
		v, _ := attrOf(n, "id")
		return v == sel[i+1:] && (i == 0 || n.Data == sel[:i])
	}
	tag, class, _ := strings.Cut(sel, ".")
	if tag != "" && n.Data != tag {
		return false
	}
	return class == "" || hasClass(n, class)
}

// findAll returns the elements matching a descendant chain of simple
// selectors, e.g. "table.topics tbody tr".
func findAll(root *html.Node, chain string) []*html.Node {
	sels := strings.Fields(chain)
	cur := []*html.Node{root}
	for _, sel := range sels {
		var next []*html.Node
		seen := map[*html.Node]bool{}
		for _, c := range cur {
			walk(c, func(n *html.Node) {
				if n != c && match(n, sel) && !seen[n] {
					seen[n] = true
					next = append(next, n)
				}
			})
		}
		cur = next
	}
	return cur
}

func find(t *testing.T, root *html.Node, chain string) *html.Node {
	t.Helper()
	all := findAll(root, chain)
	if len(all) == 0 {
		t.Fatalf("no element matches %q", chain)
	}
	return all[0]
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

// text is the element's text content with spaces collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(x *html.Node) {
		if x.Type == html.TextNode {
			b.WriteString(x.Data)
			b.WriteByte(' ')
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

func texts(nodes []*html.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = text(n)
	}
	return out
}

func jsonEvent(key, value string, headers ...string) event.Event {
	ev := event.Event{Key: []byte(key), Value: []byte(value)}
	for i := 0; i+1 < len(headers); i += 2 {
		ev.Headers = append(ev.Headers, event.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return ev
}
