package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

// manyTopics adds n synthetic topics of 3 partitions to a real backbone.
// An embedded log with 5,000 real topics needs more file descriptors than
// this machine gives a process (segments and indexes per partition);
// what the console does per topic (list, offsets) is the same.
type manyTopics struct {
	engine.Backbone
	n int
}

func (m manyTopics) synthetic(name string) (int, bool) {
	var i int
	if _, err := fmt.Sscanf(name, "topic-%05d", &i); err != nil || i < 0 || i >= m.n {
		return 0, false
	}
	return i, true
}

func (m manyTopics) Topics() []string {
	out := m.Backbone.Topics()
	for i := range m.n {
		out = append(out, fmt.Sprintf("topic-%05d", i))
	}
	return out
}

func (m manyTopics) Partitions(topic string) (int, error) {
	if _, ok := m.synthetic(topic); ok {
		return 3, nil
	}
	return m.Backbone.Partitions(topic)
}

func (m manyTopics) Offsets(topic string, p int32) (int64, int64, error) {
	if i, ok := m.synthetic(topic); ok {
		return int64(i), int64(i*10 + int(p)), nil
	}
	return m.Backbone.Offsets(topic, p)
}

// benchHarness is a console over 5,000 topics and 5,000 queues (the
// issue's figure), with the engine not running: what is measured is the
// console's own work.
func benchHarness(b *testing.B) *harness {
	b.Helper()
	return newHarness(b, testConfig, func(h *harness) {
		h.noRun = true
		// Pages render from the stored sample; with an hour's tick they
		// never resample on demand, so the render alone is measured.
		h.options = func(o *Options) { o.Tick = time.Hour }
		h.wrap = func(real engine.Backbone) engine.Backbone { return manyTopics{Backbone: real, n: 5000} }
		h.extra = func(_ *commitlog.Log, qm *queue.Manager) {
			for i := range 5000 {
				if _, err := qm.Create(queue.Config{Name: fmt.Sprintf("queue-%05d", i)}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkConsole5k runs the console's benchmarks over one harness of
// 5,000 topics and 5,000 queues (building it takes most of the time).
func BenchmarkConsole5k(b *testing.B) {
	h := benchHarness(b)
	h.srv.snap.Store(h.srv.sample(time.Now()))
	b.Run("OverviewRender", func(b *testing.B) { benchOverviewRender(b, h) })
	b.Run("Sample", func(b *testing.B) { benchSample(b, h) })
	b.Run("TopicsSearch", func(b *testing.B) { benchTopicsSearch(b, h) })
	b.Run("Publish", func(b *testing.B) { benchPublish(b, h) })
}

// benchOverviewRender renders the whole overview page (cards, topology,
// busiest topics and queues, pipelines) from a sample of 5,000 topics and
// 5,000 queues. The issue asks for < 100 ms.
func benchOverviewRender(b *testing.B, h *harness) {
	if n, q := len(h.srv.snapshot().Topics), len(h.srv.snapshot().Queues); n != 5002 || q != 5002 {
		b.Fatalf("%d topics, %d queues", n, q)
	}
	req := httptest.NewRequest(http.MethodGet, "/console/", nil)
	req.Header.Set("Authorization", "Bearer reader-token")
	var worst time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "topic-0") {
			b.Fatalf("status %d", rec.Code)
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}

// benchSample is one sampler tick over 5,000 topics and 5,000 queues:
// the once-per-second cost that makes every page and tab cheap.
func benchSample(b *testing.B, h *harness) {
	b.ReportAllocs()
	for b.Loop() {
		h.srv.snap.Store(h.srv.sample(time.Now()))
	}
}

// benchTopicsSearch is a search of 5,000 topics and one page of the result.
func benchTopicsSearch(b *testing.B, h *harness) {
	req := httptest.NewRequest(http.MethodGet, "/console/topics?q=topic-04&page=2", nil)
	req.Header.Set("Authorization", "Bearer reader-token")
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// benchPublish renders and publishes one tick's live fragments (what
// every open overview tab shares).
func benchPublish(b *testing.B, h *harness) {
	snap := h.srv.sample(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		h.srv.publish(snap)
	}
}

// BenchmarkTailStep is one tick of a live-tail tab on a topic that
// receives more than the tab draws (the 100k events/s case): it reads and
// renders at most tailPerTick rows, skipping ahead when far behind. A tab
// runs two ticks a second.
func BenchmarkTailStep(b *testing.B) {
	h := newHarness(b, testConfig, func(h *harness) { h.noRun = true })
	for range 20 {
		var evs []event.Event
		for i := range 1000 {
			evs = append(evs, event.Event{Key: []byte("k"), Value: []byte(fmt.Sprintf(`{"n":%d,"type":"order.created","card":"4111"}`, i)), Timestamp: time.Now()})
		}
		h.produce("orders", evs...)
	}
	_, end0, _ := h.srv.opts.Backbone.Offsets("orders", 0)
	_, end1, _ := h.srv.opts.Backbone.Offsets("orders", 1)
	env := rules.NewEnv()
	b.ReportAllocs()
	for b.Loop() {
		pos := []int64{end0 - 5000, end1 - 5} // one partition far behind, one close
		if _, sent, err := h.srv.tailStep("orders", pos, nil, env); err != nil || !sent {
			b.Fatalf("tail step: %v %v", sent, err)
		}
	}
	b.ReportMetric(2*float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e9*100, "cpu%-per-tab")
}
