package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestOrderTasksTour runs the shipped example pipelines/examples/
// order-tasks.yaml: orders posted over HTTP become one task per item in the
// warehouse's FIFO queue, read with the AWS SDK through the SQS API, and a
// slim audit record per task on a backbone topic; `bridge test` passes the
// example's cases, `bridge tail --transform` previews the same outputs
// without sending, and `bridge validate` points at a broken transform.
func TestOrderTasksTour(t *testing.T) {
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, exampleConfig(t, "order-tasks.yaml"))
	in := start(t, cfg, httpAddr, sqsAddr, data)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const orders = 40
	wantTasks := map[string]map[string]bool{"tasks-eu.fifo": {}, "tasks-us.fifo": {}}
	var batch []map[string]any
	for i := range orders {
		id := fmt.Sprintf("o-%03d", i)
		var items []map[string]any
		for j := range i%3 + 1 {
			wh := []string{"eu", "us"}[(i+j)%2]
			qty := (i + j) % 4 // qty 0 is dropped
			items = append(items, map[string]any{"sku": fmt.Sprintf("sku-%d", j), "qty": qty, "warehouse": wh})
			if qty > 0 {
				wantTasks["tasks-"+wh+".fifo"][fmt.Sprintf("%s/%d", id, j+1)] = true
			}
		}
		batch = append(batch, map[string]any{"key": id, "value": map[string]any{"type": "order.created", "order_id": id,
			"customer": map[string]any{"id": "c-1", "email": "a@b.c"}, "items": items}})
	}
	if code, body, err := postEvents(ctx, in.httpURL, "orders", batch); err != nil || code != 200 {
		t.Fatalf("post: %d %v %v", code, body, err)
	}

	client := sqsClient(in.sqsURL)
	for q, want := range wantTasks {
		url, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		lastLine := map[string]int{}
		for idle := 0; idle < 3 && ctx.Err() == nil; {
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, MaxNumberOfMessages: 10,
				WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) == 0 {
				idle++
				continue
			}
			idle = 0
			for _, m := range out.Messages {
				var task struct {
					OrderID, SKU, Warehouse, TaskID string `json:"-"`
				}
				var raw map[string]any
				if err := json.Unmarshal([]byte(*m.Body), &raw); err != nil {
					t.Fatalf("task %q: %v", *m.Body, err)
				}
				task.OrderID, _ = raw["order_id"].(string)
				task.TaskID, _ = raw["task_id"].(string)
				line := int(raw["line"].(float64))
				if _, pii := raw["customer"]; pii || len(task.TaskID) != 36 || "tasks-"+raw["warehouse"].(string)+".fifo" != q {
					t.Fatalf("task in %s: %s", q, *m.Body)
				}
				// One group per order: its tasks arrive in line order.
				if line <= lastLine[task.OrderID] {
					t.Fatalf("%s: line %d of %s after line %d", q, line, task.OrderID, lastLine[task.OrderID])
				}
				lastLine[task.OrderID] = line
				if a := m.MessageAttributes["task-type"]; a.StringValue == nil || *a.StringValue != "pick" {
					t.Fatalf("task-type attribute %v", m.MessageAttributes)
				}
				got[fmt.Sprintf("%s/%d", task.OrderID, line)] = true
				if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: url.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d tasks, want %d", q, len(got), len(want))
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("%s: task %s missing", q, k)
			}
		}
	}
	audit := readAll(t, in.httpURL, "task-audit")
	if n := len(wantTasks["tasks-eu.fifo"]) + len(wantTasks["tasks-us.fifo"]); len(audit) != n {
		t.Fatalf("%d audit records, want %d", len(audit), n)
	}

	// The preview prints the same outputs and sends nothing.
	before := len(readAll(t, in.httpURL, "task-audit"))
	out, err := bridgeCLI(t, in, "tail", "orders", "--transform", cfg, "-o", "json", "--limit", "3")
	if err != nil {
		t.Fatalf("tail --transform: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var first struct {
		Route   string            `json:"route"`
		Headers map[string]string `json:"headers"`
		Value   map[string]any    `json:"value"`
	}
	if len(lines) < 3 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.Route == "" ||
		first.Headers["bridge-event-id"] == "" || first.Value["order_id"] == nil {
		t.Fatalf("tail --transform printed:\n%s", out)
	}
	if after := len(readAll(t, in.httpURL, "task-audit")); after != before {
		t.Fatalf("the preview sent events: audit %d → %d", before, after)
	}

	// bridge test runs the example's cases; bridge validate locates a bad transform.
	if out, err := exec.Command(binary, "test", "-c", "../pipelines/examples/order-tasks.yaml").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "5 passed, 0 failed") {
		t.Fatalf("bridge test: %v\n%s", err, out)
	}
	example, err := os.ReadFile("../pipelines/examples/order-tasks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(example), "split: 'body.items'", "split: 'body.items != nil'", 1)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out2, err := exec.Command(binary, "validate", "-c", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out2), bad+":41:15: pipelines[0].transform.split: expected array, but got bool") {
		t.Fatalf("bridge validate: %v\n%s", err, out2)
	}
}
