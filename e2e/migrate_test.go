package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/bridgeio/bridge/internal/fauxqs"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// migReport is the JSON report of bridge migrate --verify --report.
type migReport struct {
	SourceCount      int64 `json:"source_count"`
	TargetCount      int64 `json:"target_count"`
	Missing          int64 `json:"missing"`
	Extra            int64 `json:"extra"`
	Duplicates       int64 `json:"duplicates"`
	OrderViolations  int64 `json:"order_violations"`
	Mismatched       int64 `json:"mismatched"`
	Delivered        int64 `json:"delivered"`
	SourceDuplicates int64 `json:"source_duplicates"`
	TargetDuplicates int64 `json:"target_duplicates"`
	OK               bool  `json:"ok"`
}

// migRun runs bridge migrate to completion and returns its exit code,
// output and the report (when --report was given).
func migRun(t *testing.T, timeout time.Duration, args ...string) (int, string, *migReport) {
	t.Helper()
	reportPath := ""
	for i, a := range args {
		if a == "--report" {
			reportPath = args[i+1]
		}
	}
	if reportPath != "" {
		_ = os.Remove(reportPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"migrate"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("bridge migrate did not finish within %s:\n%s", timeout, out.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("bridge migrate: %v", err)
		}
		code = ee.ExitCode()
	}
	var rep *migReport
	if reportPath != "" {
		if data, err := os.ReadFile(reportPath); err == nil {
			rep = &migReport{}
			if err := json.Unmarshal(data, rep); err != nil {
				t.Fatalf("report %s: %v", data, err)
			}
		}
	}
	return code, out.String(), rep
}

// migPublish declares queue and publishes n persistent messages: body
// {"n":I,...} padded to ~200 bytes, message_id m-I, content_type, header
// seq=I, and the key k-(I%50) in bridge-key.
func migPublish(t *testing.T, amqpURL, queue string, n int) {
	t.Helper()
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 160)
	ctx := context.Background()
	var pending []*amqp091.DeferredConfirmation
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp091.Publishing{
			DeliveryMode: amqp091.Persistent, ContentType: "application/json", MessageId: "m-" + strconv.Itoa(i),
			Body:    fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, pad),
			Headers: amqp091.Table{"seq": strconv.Itoa(i), "bridge-key": "k-" + strconv.Itoa(i%50)},
		})
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, dc)
		if len(pending) == 1000 || i == n-1 {
			for _, d := range pending {
				if ok, err := d.WaitContext(ctx); !ok || err != nil {
					t.Fatalf("publish %d not confirmed: %v", i, err)
				}
			}
			pending = pending[:0]
		}
	}
}

// migKafkaRecords reads topic from the start to its end offsets now.
func migKafkaRecords(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	idle := 0
	for idle < 3 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		if n := len(fs.Records()); n == 0 {
			idle++
		} else {
			idle = 0
			out = append(out, fs.Records()...)
		}
	}
	return out
}

// migCheckKafka checks that topic holds every message 0..n-1 of
// migPublish with its key and headers, each key's messages in order of
// first appearance.
func migCheckKafka(t *testing.T, recs []*kgo.Record, n int) {
	t.Helper()
	seen := map[int]bool{}
	lastPerKey := map[string]int{}
	for _, r := range recs {
		var v struct{ N int }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record value %q: %v", r.Value, err)
		}
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		if string(r.Key) != "k-"+strconv.Itoa(v.N%50) || hs["seq"] != strconv.Itoa(v.N) || hs["amqp.message_id"] != "m-"+strconv.Itoa(v.N) ||
			hs["amqp.content_type"] != "application/json" || hs["bridge-event-id"] == "" {
			t.Fatalf("message %d arrived with key %q headers %v", v.N, r.Key, hs)
		}
		if seen[v.N] {
			continue
		}
		seen[v.N] = true
		if last, ok := lastPerKey[string(r.Key)]; ok && v.N < last {
			t.Fatalf("key %s: message %d arrived after %d", r.Key, v.N, last)
		}
		lastPerKey[string(r.Key)] = v.N
	}
	if len(seen) != n {
		t.Fatalf("Kafka has %d of %d messages", len(seen), n)
	}
}

// TestMigrateRabbitToKafkaTour is the README's tour (b): a RabbitMQ queue
// of 20,000 messages moved to a Kafka topic with --verify while every
// connection of the test's vhost is force-closed midway; the migration
// reconnects, ends in a clean report and exits 0.
func TestMigrateRabbitToKafkaTour(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 5000
	}
	amqpURL := rabbitVhost(t)
	queue := "legacy.orders"
	migPublish(t, amqpURL, queue, n)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")

	cmd := exec.Command(binary, "migrate", "--from", amqpURL+"?queue="+queue, "--to", "kafka://"+strings.Join(brokers, ",")+"/orders",
		"--verify", "--report", report, "--state", filepath.Join(dir, "state"), "--idle", "1s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	// Force the disconnect once part of the queue has moved.
	var left int
	waitFor(t, 60*time.Second, func() error {
		d, err := queueDepth(amqpURL, queue)
		if err != nil {
			return err
		}
		if d > n*3/4 {
			return fmt.Errorf("depth %d", d)
		}
		left = d
		return nil
	})
	closeVhostConnections(t, amqpURL)
	if left == 0 {
		t.Fatalf("the queue was empty before the disconnect: the test did not exercise it")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bridge migrate: %v\n%s", err, out.String())
		}
	case <-time.After(120 * time.Second):
		t.Fatalf("bridge migrate did not finish:\n%s", out.String())
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, out.String())
	}
	var rep migReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Missing != 0 || rep.Mismatched != 0 || rep.Extra != 0 || rep.OrderViolations != 0 ||
		rep.SourceCount != int64(n)+rep.SourceDuplicates || rep.TargetCount != rep.SourceCount+rep.TargetDuplicates {
		t.Fatalf("report %s\n%s", data, out.String())
	}
	for _, want := range []string{"verification: OK", "missing", "order_violations", "position map:"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	if d, err := queueDepth(amqpURL, queue); err != nil || d != 0 {
		t.Fatalf("source queue depth %d (%v) after the migration", d, err)
	}
	migCheckKafka(t, migKafkaRecords(t, brokers, "orders"), n)
	t.Logf("forced disconnect with %d messages left; report %s", left, data)
}

// TestMigrateResumesAfterKill: a migration SIGKILLed midway continues
// from its state dir when rerun, and the verified result is complete,
// with no more re-sent than at-least-once allows.
func TestMigrateResumesAfterKill(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 4000
	}
	amqpURL := rabbitVhost(t)
	queue := "jobs"
	migPublish(t, amqpURL, queue, n)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	dir := t.TempDir()
	args := []string{"--from", amqpURL + "?queue=" + queue, "--to", "kafka://" + strings.Join(kc.ListenAddrs(), ",") + "/jobs",
		"--state", filepath.Join(dir, "state"), "--idle", "1s"}
	cmd := exec.Command(binary, append([]string{"migrate"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() error {
		if d, err := queueDepth(amqpURL, queue); err != nil || d > n/2 {
			return fmt.Errorf("depth %d (%v)", d, err)
		}
		return nil
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	left, _ := queueDepth(amqpURL, queue)
	if left == 0 {
		t.Fatal("the queue was empty before the kill: the test did not exercise it")
	}
	report := filepath.Join(dir, "report.json")
	code, output, rep := migRun(t, 90*time.Second, append(args, "--verify", "--report", report)...)
	if code != 0 || rep == nil {
		t.Fatalf("rerun exit %d:\n%s", code, output)
	}
	if !rep.OK || rep.Missing != 0 || rep.Mismatched != 0 || rep.SourceCount != int64(n)+rep.SourceDuplicates ||
		rep.TargetCount != rep.SourceCount+rep.TargetDuplicates || rep.Duplicates >= int64(n/2) {
		t.Fatalf("report %+v\n%s", rep, output)
	}
	migCheckKafka(t, migKafkaRecords(t, kc.ListenAddrs(), "jobs"), n)
	t.Logf("killed with %d left; report %+v", left, rep)
}

// TestMigrateSQSAndKafka moves an SQS queue (fauxqs) to Kafka and a
// Kafka topic to an SQS queue, both with --verify, then alters the SQS
// target (one message deleted, one replaced by an altered copy) and
// checks that a verify rerun fails with exit status 1 and says why.
func TestMigrateSQSAndKafka(t *testing.T) {
	const n = 1500
	endpoint := fauxqs.StartTB(t)
	client := sqsClient(endpoint)
	ctx := context.Background()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := strings.Join(kc.ListenAddrs(), ",")

	// SQS → Kafka.
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("payments")})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for j := i; j < i+10; j++ {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)),
				MessageBody: aws.String(fmt.Sprintf(`{"n":%d}`, j)),
				MessageAttributes: map[string]sqstypes.MessageAttributeValue{
					"seq":        {DataType: aws.String("String"), StringValue: aws.String(strconv.Itoa(j))},
					"bridge-key": {DataType: aws.String("String"), StringValue: aws.String("c-" + strconv.Itoa(j%20))},
				}})
		}
		out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			t.Fatalf("send: %v %v", err, out)
		}
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "sqs-kafka.json")
	code, output, rep := migRun(t, 90*time.Second, "--from", "sqs://payments?endpoint="+endpoint, "--to", "kafka://"+brokers+"/payments",
		"--verify", "--report", report, "--state", filepath.Join(dir, "s1"), "--idle", "1s")
	if code != 0 || rep == nil || !rep.OK || rep.Missing != 0 || rep.SourceCount != n+rep.SourceDuplicates ||
		rep.TargetCount != rep.SourceCount+rep.TargetDuplicates || rep.Mismatched != 0 {
		t.Fatalf("SQS → Kafka: exit %d report %+v\n%s", code, rep, output)
	}
	recs := migKafkaRecords(t, kc.ListenAddrs(), "payments")
	got := map[string]bool{}
	for _, r := range recs {
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs["sqs.MessageId"] == "" || string(r.Key) == "" || !strings.Contains(string(r.Value), `"n":`+hs["seq"]+"}") {
			t.Fatalf("record key %q value %q headers %v", r.Key, r.Value, hs)
		}
		got[hs["seq"]] = true
	}
	if len(got) != n {
		t.Fatalf("Kafka has %d of %d messages", len(got), n)
	}

	// Kafka → SQS, into a queue migrate creates.
	p, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p.Produce(ctx, &kgo.Record{Topic: "events", Key: []byte("u-" + strconv.Itoa(i%30)), Value: fmt.Appendf(nil, `{"e":%d}`, i),
			Headers: []kgo.RecordHeader{{Key: "type", Value: []byte("click")}}}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	state := filepath.Join(dir, "s2")
	report = filepath.Join(dir, "kafka-sqs.json")
	args := []string{"--from", "kafka://" + brokers + "/events", "--to", "sqs://events-copy?endpoint=" + endpoint,
		"--verify", "--report", report, "--state", state, "--idle", "1s"}
	code, output, rep = migRun(t, 90*time.Second, args...)
	if code != 0 || rep == nil || !rep.OK || rep.Missing != 0 || rep.Mismatched != 0 || rep.SourceCount != n || rep.TargetCount != n {
		t.Fatalf("Kafka → SQS: exit %d report %+v\n%s", code, rep, output)
	}

	// Alter the target: delete one message, replace another with a copy
	// whose body differs (same attributes, so the same bridge-event-id).
	qurl, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("events-copy")})
	if err != nil {
		t.Fatal(err)
	}
	recv, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: qurl.QueueUrl, MaxNumberOfMessages: 2,
		MessageAttributeNames: []string{"All"}, VisibilityTimeout: 30})
	if err != nil || len(recv.Messages) != 2 {
		t.Fatalf("receive: %v (%d messages)", err, len(recv.Messages))
	}
	for i, m := range recv.Messages {
		if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: qurl.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl.QueueUrl, MessageBody: aws.String(`{"e":"tampered"}`),
				MessageAttributes: m.MessageAttributes}); err != nil {
				t.Fatal(err)
			}
		}
	}
	code, output, rep = migRun(t, 90*time.Second, args...)
	if code != 1 || rep == nil || rep.OK || rep.Missing != 1 || rep.Mismatched != 1 || rep.TargetCount != n-1 {
		t.Fatalf("verify of an altered target: exit %d report %+v\n%s", code, rep, output)
	}
	for _, want := range []string{"verification: FAILED", "first missing:", "first mismatched:"} {
		if !strings.Contains(output, want) {
			t.Fatalf("output lacks %q:\n%s", want, output)
		}
	}
}

// TestMigrateBridgeTopics moves a topic of a running bridge into another
// topic of it over the HTTP API (bridge:// as source and as target) with
// --verify: every event arrives once with its key and headers, and the
// report is clean. A rerun finds nothing new to move and verifies again.
func TestMigrateBridgeTopics(t *testing.T) {
	const n = 500
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
sqs_api: { listen: "${SQS}" }
backbone:
  fsync: always
  topics:
    legacy: { partitions: 3 }
    moved: { partitions: 3 }
`)
	in := start(t, cfg, httpAddr, sqsAddr, data)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var batch []map[string]any
	for i := range n {
		batch = append(batch, map[string]any{"key": "k-" + strconv.Itoa(i%13),
			"headers": map[string]string{"seq": strconv.Itoa(i)}, "value": map[string]any{"n": i}})
		if len(batch) == 100 {
			if code, body, err := postEvents(ctx, in.httpURL, "legacy", batch); err != nil || code != 200 {
				t.Fatalf("post: %d %v %v", code, body, err)
			}
			batch = batch[:0]
		}
	}
	dir := t.TempDir()
	args := []string{"--from", "bridge://legacy?addr=" + in.httpURL, "--to", "bridge://moved?addr=" + in.httpURL,
		"--verify", "--report", filepath.Join(dir, "r.json"), "--state", filepath.Join(dir, "state"), "--idle", "500ms"}
	code, output, rep := migRun(t, 90*time.Second, args...)
	if code != 0 || rep == nil || !rep.OK || rep.SourceCount != n || rep.TargetCount != n || rep.Missing != 0 ||
		rep.Mismatched != 0 || rep.Extra != 0 || rep.Duplicates != 0 {
		t.Fatalf("bridge → bridge: exit %d report %+v\n%s", code, rep, output)
	}
	// Read the target topic back through the HTTP API: every seq once, key kept.
	seen := map[string]bool{}
	for p := range 3 {
		resp, err := http.Get(fmt.Sprintf("%s/v1/topics/moved/events?partition=%d&offset=0&limit=1000", in.httpURL, p))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Events []struct {
				Key     string            `json:"key"`
				Headers map[string]string `json:"headers"`
				Value   struct{ N int }   `json:"value"`
			} `json:"events"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range got.Events {
			seq := ev.Headers["seq"]
			if seq != strconv.Itoa(ev.Value.N) || ev.Key != "k-"+strconv.Itoa(ev.Value.N%13) || seen[seq] {
				t.Fatalf("event key %q headers %v value %d (seen before: %v)", ev.Key, ev.Headers, ev.Value.N, seen[seq])
			}
			seen[seq] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("topic moved holds %d of %d events", len(seen), n)
	}
	code, output, rep = migRun(t, 60*time.Second, args...)
	if code != 0 || rep == nil || !rep.OK || rep.TargetCount != n || rep.Missing != 0 {
		t.Fatalf("rerun: exit %d report %+v\n%s", code, rep, output)
	}
}
