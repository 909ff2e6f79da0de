package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/engine"
)

func openLog(t testing.TB, fsync commitlog.FsyncPolicy) *commitlog.Log {
	t.Helper()
	l, err := commitlog.Open(commitlog.Options{Dir: t.TempDir(), Fsync: fsync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for name, n := range map[string]int{"orders": 3, "audit": 1} {
		if err := l.CreateTopic(name, n); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

type fakePipelines struct {
	mu      sync.Mutex
	replays []engine.ReplayFrom
}

func (f *fakePipelines) Pipelines() []engine.PipelineStatus {
	return []engine.PipelineStatus{{Name: "p", Topic: "orders", State: "running"}}
}

func (f *fakePipelines) Pipeline(name string) (engine.PipelineStatus, bool) {
	if name != "p" {
		return engine.PipelineStatus{}, false
	}
	return f.Pipelines()[0], true
}

func (f *fakePipelines) Replay(_ context.Context, name string, from engine.ReplayFrom) (map[int32]int64, error) {
	if name != "p" {
		return nil, engine.ErrUnknownPipeline
	}
	f.mu.Lock()
	f.replays = append(f.replays, from)
	f.mu.Unlock()
	return map[int32]int64{0: 0}, nil
}

func (f *fakePipelines) Ready() bool { return true }

type fakeQueues struct{ moved int }

func (f *fakeQueues) QueueDepths() []engine.QueueDepth {
	return []engine.QueueDepth{{Name: "q", Visible: 3}}
}

func (f *fakeQueues) Redrive(_ context.Context, dlq, _ string, _, _ int) (int, error) {
	if dlq != "dlq" {
		return 0, fmt.Errorf("%w: %s", engine.ErrUnknownQueue, dlq)
	}
	f.moved = 2
	return 2, nil
}

func newTestServer(t *testing.T, tokens map[string]Role, logs io.Writer) (*httptest.Server, *commitlog.Log) {
	t.Helper()
	l := openLog(t, commitlog.FsyncNever)
	if logs == nil {
		logs = io.Discard
	}
	s := New(Options{Backbone: engine.Embedded(l), Pipelines: &fakePipelines{}, Queues: &fakeQueues{},
		Tokens: tokens, MaxRequestSize: 4096, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "# metrics\n") })})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, l
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	srv, _ := newTestServer(t, nil, nil)
	u := srv.URL
	cases := []struct {
		name, method, path, body string
		code                     int
		contains                 string
	}{
		{"post one", "POST", "/v1/topics/orders/events", `{"key":"a","value":{"n":1}}`, 200, `"offsets":[{"partition":`},
		{"post array", "POST", "/v1/topics/audit/events", `[{"value":{"n":1}},{"value":"text"},{"value_base64":"AP8="}]`, 200, `"offset":2`},
		{"read back json, text and binary", "GET", "/v1/topics/audit/events?partition=0&offset=0&limit=10", "", 200, `"value":{"n":1}`},
		{"text is base64 on read", "GET", "/v1/topics/audit/events?partition=0&offset=1&limit=1", "", 200, `"value_base64":"dGV4dA=="`},
		{"null key", "GET", "/v1/topics/audit/events?partition=0&offset=0&limit=1", "", 200, `"key":null`},
		{"read past end is empty", "GET", "/v1/topics/audit/events?partition=0&offset=3", "", 200, `"events":[]`},
		{"read beyond end", "GET", "/v1/topics/audit/events?partition=0&offset=99", "", 416, "offset_out_of_range"},
		{"bad partition", "GET", "/v1/topics/audit/events?partition=7", "", 400, "bad_partition"},
		{"topic list", "GET", "/v1/topics", "", 200, `{"name":"audit","partitions":[{"partition":0,"start_offset":0,"end_offset":3}]}`},
		{"one topic", "GET", "/v1/topics/orders", "", 200, `"name":"orders"`},
		{"unknown topic", "GET", "/v1/topics/nope", "", 404, "unknown_topic"},
		{"post unknown topic", "POST", "/v1/topics/nope/events", `{"value":1}`, 404, "unknown_topic"},
		{"malformed", "POST", "/v1/topics/orders/events", `[{"value":1},{"value":]`, 400, `"index":1`},
		{"too large", "POST", "/v1/topics/orders/events", `{"value":"` + strings.Repeat("x", 5000) + `"}`, 413, "too_large"},
		{"pipelines", "GET", "/v1/pipelines", "", 200, `"name":"p"`},
		{"pipeline", "GET", "/v1/pipelines/p", "", 200, `"state":"running"`},
		{"unknown pipeline", "GET", "/v1/pipelines/x", "", 404, "unknown_pipeline"},
		{"replay earliest", "POST", "/v1/pipelines/p/replay", `{"from":"earliest"}`, 200, `"offsets"`},
		{"replay offsets", "POST", "/v1/pipelines/p/replay", `{"offset":{"0":5}}`, 200, `"offsets"`},
		{"replay time", "POST", "/v1/pipelines/p/replay", `{"timestamp":"2026-01-01T00:00:00Z"}`, 200, `"offsets"`},
		{"replay two choices", "POST", "/v1/pipelines/p/replay", `{"from":"earliest","timestamp":"2026-01-01T00:00:00Z"}`, 400, "exactly one"},
		{"replay unknown", "POST", "/v1/pipelines/x/replay", `{"from":"earliest"}`, 404, "unknown_pipeline"},
		{"queues", "GET", "/v1/queues", "", 200, `"visible":3`},
		{"redrive", "POST", "/v1/queues/dlq/redrive", ``, 200, `"moved":2`},
		{"redrive unknown", "POST", "/v1/queues/nope/redrive", `{}`, 404, "unknown_queue"},
		{"healthz", "GET", "/healthz", "", 200, "ok"},
		{"readyz", "GET", "/readyz", "", 200, "ready"},
		{"metrics", "GET", "/metrics", "", 200, "# metrics"},
		{"no such endpoint", "GET", "/v2/x", "", 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, u+tc.path, "", tc.body)
			if code != tc.code || !strings.Contains(body, tc.contains) {
				t.Fatalf("%s %s: %d %s; want %d containing %s", tc.method, tc.path, code, body, tc.code, tc.contains)
			}
			if code >= 400 && !strings.Contains(body, `"error":{`) {
				t.Fatalf("error body is not {\"error\":{...}}: %s", body)
			}
		})
	}
}

func TestLongPollRead(t *testing.T) {
	srv, l := newTestServer(t, nil, nil)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = engine.Embedded(l).Append(context.Background(), "audit", nil)
		_, _ = call(t, "POST", srv.URL+"/v1/topics/audit/events", "", `{"value":"late"}`)
	}()
	start := time.Now()
	code, body := call(t, "GET", srv.URL+"/v1/topics/audit/events?partition=0&offset=0&wait=5s", "", "")
	if code != 200 || !strings.Contains(body, "bGF0ZQ==") {
		t.Fatalf("%d %s", code, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("long poll did not wake on append: %v", d)
	}
}

func TestAuthRoles(t *testing.T) {
	var logs bytes.Buffer
	tokens := map[string]Role{"adm-secret-1": RoleAdmin, "prod-secret-2": RoleProducer, "cons-secret-3": RoleConsumer}
	srv, _ := newTestServer(t, tokens, &logs)
	cases := []struct {
		name, method, path, token, body string
		code                            int
	}{
		{"health needs nothing", "GET", "/healthz", "", "", 200},
		{"no token", "GET", "/v1/topics", "", "", 401},
		{"unknown token", "GET", "/v1/topics", "wrong", "", 401},
		{"consumer reads", "GET", "/v1/topics", "cons-secret-3", "", 200},
		{"consumer cannot post", "POST", "/v1/topics/orders/events", "cons-secret-3", `{"value":1}`, 403},
		{"producer posts", "POST", "/v1/topics/orders/events", "prod-secret-2", `{"value":1}`, 200},
		{"producer cannot read", "GET", "/v1/topics", "prod-secret-2", "", 403},
		{"producer cannot replay", "POST", "/v1/pipelines/p/replay", "prod-secret-2", `{"from":"earliest"}`, 403},
		{"consumer cannot redrive", "POST", "/v1/queues/dlq/redrive", "cons-secret-3", ``, 403},
		{"admin replays", "POST", "/v1/pipelines/p/replay", "adm-secret-1", `{"from":"earliest"}`, 200},
		{"admin posts", "POST", "/v1/topics/orders/events", "adm-secret-1", `{"value":1}`, 200},
		{"metrics need a token", "GET", "/metrics", "", "", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := call(t, tc.method, srv.URL+tc.path, tc.token, tc.body); code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
		})
	}
	for tok := range tokens {
		if strings.Contains(logs.String(), tok) {
			t.Fatalf("token %s appears in the logs", tok)
		}
	}
}

// BenchmarkHTTPIngest posts batches of 100 events of ~200 bytes from 8
// keep-alive clients over loopback into a log with fsync interval, and
// reports events/s and the p99 latency of a POST.
func BenchmarkHTTPIngest(b *testing.B) {
	for _, policy := range []commitlog.FsyncPolicy{commitlog.FsyncInterval, commitlog.FsyncAlways} {
		b.Run("fsync="+string(policy), func(b *testing.B) { benchIngest(b, policy) })
	}
}

func benchIngest(b *testing.B, policy commitlog.FsyncPolicy) {
	l := openLog(b, policy)
	srv := httptest.NewServer(New(Options{Backbone: engine.Embedded(l)}))
	defer srv.Close()
	var batch []map[string]any
	for i := range 100 {
		batch = append(batch, map[string]any{"key": fmt.Sprintf("order-%06d", i), "value": map[string]any{
			"type": "order.created", "order_id": fmt.Sprintf("order-%06d", i), "region": "eu", "amount": 123.45,
			"customer": "customer-000042", "items": []string{"sku-1", "sku-2"}, "currency": "EUR"}})
	}
	body, _ := json.Marshal(batch)
	const clients = 8
	work := make(chan struct{}, clients)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for range work {
				t0 := time.Now()
				resp, err := client.Post(srv.URL+"/v1/topics/orders/events", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	for b.Loop() {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N*100)/elapsed.Seconds(), "events/s")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}
