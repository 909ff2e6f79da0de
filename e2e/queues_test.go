package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const queuesConfig = `
data_dir: ${DATA}
http: { listen: ${HTTP} }
sqs_api: { listen: ${SQS} }
backbone:
  fsync: interval
  topics: { jobs: { partitions: 2 } }
broker:
  queues:
    work: { max_priority: 9, message_ttl: 1h, dead_letter_queue: work-dlq, max_receive_count: 3 }
    work-dlq: {}
pipelines:
  - name: jobs
    from: jobs
    routes:
      - name: work
        to:
          queue: work
          priority: 'body.p'
          reply_to: 'headers["reply"]'
          correlation_id: 'body.id'
`

// TestQueueFeaturesEndToEnd drives the binary: a route sets priorities and
// request-reply attributes from the events, an SDK worker receives by
// priority, the priorities survive kill -9, and after the queue is purged
// `bridge replay --route` rebuilds it from the log without moving the
// route's checkpoint.
func TestQueueFeaturesEndToEnd(t *testing.T) {
	ctx := t.Context()
	dataDir := t.TempDir()
	cfgPath, httpAddr, sqsAddr := writeConfig(t, dataDir, queuesConfig)
	in := start(t, cfgPath, httpAddr, sqsAddr, dataDir)
	var evs []map[string]any
	for i := range 30 {
		evs = append(evs, map[string]any{"key": strconv.Itoa(i), "headers": map[string]string{"reply": "replies-7"},
			"value": map[string]any{"id": fmt.Sprint("job-", i), "p": i % 10}})
	}
	if code, out, err := postEvents(ctx, in.httpURL, "jobs", evs); err != nil || code != 200 {
		t.Fatalf("post: %d %v %v", code, out, err)
	}
	client := sqsClient(in.sqsURL)
	url := in.sqsURL + "/000000000000/work"
	visible := func(want int) func() error {
		return func() error {
			out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
				AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
			if err != nil {
				return err
			}
			if got := out.Attributes["ApproximateNumberOfMessages"]; got != strconv.Itoa(want) {
				return fmt.Errorf("%s visible, want %d", got, want)
			}
			return nil
		}
	}
	waitFor(t, 20*time.Second, visible(30))
	waitFor(t, 20*time.Second, func() error { // the checkpoint passed them (else a restart sends them again)
		var p struct {
			Routes []struct {
				Partitions []struct{ Checkpoint, Position int64 } `json:"partitions"`
			} `json:"routes"`
		}
		getJSON(t, in.httpURL+"/v1/pipelines/jobs", &p)
		for _, part := range p.Routes[0].Partitions {
			if part.Checkpoint != part.Position {
				return fmt.Errorf("checkpoint %d, position %d", part.Checkpoint, part.Position)
			}
		}
		return nil
	})
	// Everything is written (fsync interval); kill -9 and start again.
	in.kill()
	in = start(t, cfgPath, httpAddr, sqsAddr, dataDir)
	client = sqsClient(in.sqsURL)
	priorities := receivePriorities(t, client, url, 30)
	if !slices.IsSortedFunc(priorities, func(a, b int) int { return b - a }) || priorities[0] != 9 || priorities[29] != 0 {
		t.Fatalf("priorities after kill -9, in delivery order: %v", priorities)
	}

	// Every job was consumed and deleted: the queue is empty, the log still
	// has every job. Rebuild the queue from the log.
	var before struct {
		Routes []struct {
			Partitions []struct{ Checkpoint int64 } `json:"partitions"`
		} `json:"routes"`
	}
	getJSON(t, in.httpURL+"/v1/pipelines/jobs", &before)
	cmd := exec.Command(binary, "replay", "jobs", "--route", "work", "--from", "earliest", "--rate", "0", "--addr", in.httpURL)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "done: read 30, sent 30") {
		t.Fatalf("bridge replay --route: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, visible(30))
	list, err := exec.Command(binary, "replays", "--addr", in.httpURL).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "replay-1") || !strings.Contains(string(list), "done") {
		t.Fatalf("bridge replays: %v\n%s", err, list)
	}
	msgs := receiveAll(t, client, url)
	if len(msgs) != 30 {
		t.Fatalf("rebuilt queue has %d messages", len(msgs))
	}
	for _, m := range msgs {
		if aws.ToString(m.MessageAttributes["bridge-replayed"].StringValue) != "true" ||
			aws.ToString(m.MessageAttributes["bridge-reply-to"].StringValue) != "replies-7" ||
			!strings.HasPrefix(aws.ToString(m.MessageAttributes["bridge-correlation-id"].StringValue), "job-") {
			t.Fatalf("replayed message attributes: %v", m.MessageAttributes)
		}
	}
	var after struct {
		Routes []struct {
			Partitions []struct{ Checkpoint int64 } `json:"partitions"`
		} `json:"routes"`
	}
	getJSON(t, in.httpURL+"/v1/pipelines/jobs", &after)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("the replay moved the route's checkpoint: %v -> %v", before, after)
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// receivePriorities receives n messages one at a time, deleting each, and
// returns their bridge priority (from the attribute the route's rule gave,
// as the body's p).
func receivePriorities(t *testing.T, client *sqs.Client, url string, n int) []int {
	t.Helper()
	var out []int
	for len(out) < n {
		got, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 1, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) == 0 {
			t.Fatalf("queue empty after %d of %d", len(out), n)
		}
		m := got.Messages[0]
		body := aws.ToString(m.Body)
		i := strings.Index(body, `"p":`)
		p, err := strconv.Atoi(strings.Trim(body[i+4:i+6], ",}"))
		if i < 0 || err != nil {
			t.Fatalf("body %s", body)
		}
		out = append(out, p)
		if _, err := client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func receiveAll(t *testing.T, client *sqs.Client, url string) []types.Message {
	t.Helper()
	var out []types.Message
	for {
		got, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}, VisibilityTimeout: 300})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) == 0 {
			return out
		}
		out = append(out, got.Messages...)
	}
}
