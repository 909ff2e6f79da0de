package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	bsqs "github.com/bridgeio/bridge/connectors/sqs"
)

// exampleConfig loads a shipped example and points it at this test's ports
// and data dir, so the tour in the README is what is tested.
func exampleConfig(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../pipelines/examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("127.0.0.1:8080", "${HTTP}", "127.0.0.1:9324", "${SQS}", "data_dir: ./data", "data_dir: ${DATA}").Replace(string(b))
	for _, want := range []string{"${HTTP}", "${SQS}", "${DATA}"} {
		if !strings.Contains(s, want) {
			t.Fatalf("example %s: could not place %s", name, want)
		}
	}
	return s
}

// sqsClient is a worker's SDK client. It uses bridge's SafeTransport (see
// connectors/sqs), which the README recommends to Go workers, and no SDK
// retries, so a response lost on the way fails the test instead of hiding.
func sqsClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("worker", "secret", ""),
		HTTPClient:       bsqs.SafeHTTPClient(awshttp.NewBuildableClient()),
		RetryMaxAttempts: 1})
}

// TestOrderFanoutTour is the README's tour: orders posted over HTTP are
// routed by region to fulfillment queues and consumed by workers written
// with the AWS SDK. Every order reaches exactly the queue its region binds
// to, exactly once; a message a worker keeps failing lands in the DLQ after
// 5 receives, and a redrive brings it back.
func TestOrderFanoutTour(t *testing.T) {
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, exampleConfig(t, "order-fanout.yaml"))
	in := startBinary(t, raceBinary(t), cfg, httpAddr, sqsAddr, data)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const orders = 3000
	regions := []string{"eu", "us", "apac"} // apac has no binding: unroutable, dropped and counted
	want := map[string]map[string]bool{"fulfillment-eu": {}, "fulfillment-us": {}}
	var batch []map[string]any
	for i := range orders {
		id := fmt.Sprintf("o-%05d", i)
		region := regions[i%3]
		typ := "order.created"
		if i%10 == 9 {
			typ = "order.cancelled" // filtered out
		}
		if typ == "order.created" && region != "apac" {
			want["fulfillment-"+region][id] = true
		}
		batch = append(batch, map[string]any{"key": id, "headers": map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			"value": map[string]any{"type": typ, "region": region, "order_id": id, "amount": 100 + i}})
		if len(batch) == 100 {
			if code, body, err := postEvents(ctx, in.httpURL, "orders", batch); err != nil || code != 200 {
				t.Fatalf("post: %d %v %v", code, body, err)
			}
			batch = batch[:0]
		}
	}

	client := sqsClient(in.sqsURL)
	queueURL := func(name string) string {
		out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatalf("GetQueueUrl %s: %v", name, err)
		}
		return *out.QueueUrl
	}
	// One order of the EU queue is "poison": its worker never deletes it.
	poison := "o-00000"
	got := map[string]map[string]int{"fulfillment-eu": {}, "fulfillment-us": {}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for q := range want {
		url := queueURL(q)
		for range 2 { // two workers per queue
			wg.Go(func() {
				idle := 0
				for idle < 3 && ctx.Err() == nil {
					out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
						MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 1,
						MessageAttributeNames: []string{"All"}})
					if err != nil {
						t.Errorf("receive %s: %v", q, err)
						return
					}
					if len(out.Messages) == 0 {
						idle++
						continue
					}
					idle = 0
					var del []types.DeleteMessageBatchRequestEntry
					for i, m := range out.Messages {
						var body struct {
							OrderID string `json:"order_id"`
						}
						if err := json.Unmarshal([]byte(*m.Body), &body); err != nil {
							t.Errorf("body %q: %v", *m.Body, err)
							continue
						}
						if a, ok := m.MessageAttributes["traceparent"]; !ok || !strings.HasPrefix(*a.StringValue, "00-0af7651916cd43dd") {
							t.Errorf("message %s lacks traceparent: %v", body.OrderID, m.MessageAttributes)
						}
						if a, ok := m.MessageAttributes["bridge-key"]; !ok || *a.StringValue != body.OrderID {
							t.Errorf("message %s: bridge-key attribute %v", body.OrderID, a)
						}
						if _, ok := m.MessageAttributes["bridge-event-id"]; !ok {
							t.Errorf("message %s lacks bridge-event-id", body.OrderID)
						}
						if body.OrderID == poison {
							continue // the worker fails this one: no delete, it comes back
						}
						mu.Lock()
						got[q][body.OrderID]++
						mu.Unlock()
						del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
					}
					if len(del) > 0 {
						out, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del})
						if err != nil || len(out.Failed) > 0 {
							t.Errorf("delete: %v %v", err, out)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	for q, ids := range want {
		for id := range ids {
			if id == poison {
				continue
			}
			if got[q][id] != 1 {
				t.Errorf("%s: order %s received %d times, want exactly 1", q, id, got[q][id])
			}
		}
		for id := range got[q] {
			if !ids[id] {
				t.Errorf("%s: order %s should not be there", q, id)
			}
		}
	}
	t.Logf("eu %d, us %d orders consumed exactly once", len(got["fulfillment-eu"]), len(got["fulfillment-us"]))

	// The poison message: after 5 receives it is in the DLQ.
	dlqURL := queueURL("fulfillment-dlq")
	waitFor(t, 30*time.Second, func() error {
		out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(dlqURL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
		if err != nil {
			return err
		}
		if n := out.Attributes["ApproximateNumberOfMessages"]; n != "1" {
			// Receiving drives the move: poll the EU queue so the count passes 5.
			_, _ = client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL("fulfillment-eu")), VisibilityTimeout: 1, WaitTimeSeconds: 1})
			return fmt.Errorf("DLQ holds %s", n)
		}
		return nil
	})
	// Redrive through the HTTP API brings it back to fulfillment-eu.
	resp, err := http.Post(in.httpURL+"/v1/queues/fulfillment-dlq/redrive", "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("redrive: %v %v", resp, err)
	}
	resp.Body.Close()
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL("fulfillment-eu")),
		WaitTimeSeconds: 5, MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}})
	if err != nil || len(out.Messages) != 1 || !strings.Contains(*out.Messages[0].Body, poison) {
		t.Fatalf("after redrive: %v %+v", err, out)
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
