package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ingestConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}", max_request_size: 64KiB }
sqs_api: { listen: "${SQS}" }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 3 }
`

// TestIngestSurvivesKill posts events from concurrent clients, kills the
// process with SIGKILL while they post, restarts it, and reads back every
// event whose POST was answered 200: none may be missing.
func TestIngestSurvivesKill(t *testing.T) {
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, ingestConfig)
	in := start(t, cfg, httpAddr, sqsAddr, data)

	var mu sync.Mutex
	acked := map[string]bool{} // value ids whose POST returned 200
	var seq atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				batch := make([]map[string]any, 10)
				ids := make([]string, 10)
				for i := range batch {
					id := fmt.Sprintf("c%d-%d", c, seq.Add(1))
					ids[i] = id
					batch[i] = map[string]any{"key": id, "value": map[string]any{"id": id}}
				}
				code, _, err := postEvents(ctx, in.httpURL, "orders", batch)
				if err != nil || code != 200 {
					continue // refused or cut off by the kill: not acknowledged
				}
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
			}
		})
	}
	waitFor(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 2000 {
			return fmt.Errorf("only %d acked", len(acked))
		}
		return nil
	})
	in.kill()
	cancel()
	wg.Wait()

	in = start(t, cfg, httpAddr, sqsAddr, data)
	got := map[string]bool{}
	for _, ev := range readAll(t, in.httpURL, "orders") {
		if ev.Key != nil {
			got[*ev.Key] = true
		}
	}
	missing := 0
	for id := range acked {
		if !got[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events lost after SIGKILL", missing, len(acked))
	}
	t.Logf("%d acknowledged events all present after SIGKILL (%d stored)", len(acked), len(got))
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
}

// TestIngestBadInput checks the answers to bad requests and that the
// process keeps serving.
func TestIngestBadInput(t *testing.T) {
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, ingestConfig)
	in := start(t, cfg, httpAddr, sqsAddr, data)
	ctx := context.Background()
	cases := []struct {
		name, topic, body string
		code              int
		contains          string
	}{
		{"malformed second event", "orders", `[{"value":1},{"value":}]`, 400, `"index":1`},
		{"not json", "orders", `hello`, 400, "malformed"},
		{"unknown field", "orders", `{"valu":1}`, 400, `"index":0`},
		{"unknown topic", "nope", `{"value":1}`, 404, "unknown_topic"},
		{"too large", "orders", `{"value":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "too_large"},
		{"empty array", "orders", `[]`, 400, "empty"},
		{"good", "orders", `[{"key":"a","value":{"n":1}},{"value":"text"}]`, 200, "offsets"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, "POST", in.httpURL+"/v1/topics/"+tc.topic+"/events", strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var sb strings.Builder
			_, _ = fmt.Fprint(&sb, readBody(resp))
			if resp.StatusCode != tc.code || !strings.Contains(sb.String(), tc.contains) {
				t.Fatalf("got %d %s, want %d containing %q", resp.StatusCode, sb.String(), tc.code, tc.contains)
			}
		})
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
}

func readBody(resp *http.Response) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}
