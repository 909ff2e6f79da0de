package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/bridgeio/bridge/internal/fauxqs"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tourCTraceID is the trace every produced payment carries in traceparent.
const tourCTraceID = "0af7651916cd43dd8448eb211c80319c"

// tourCConfig loads pipelines/examples/kafka-to-sqs.yaml and points its
// HTTP listener and data dir at the test's; Kafka brokers and the SQS
// endpoint and queue come from the environment, as the example documents.
func tourCConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../pipelines/examples/kafka-to-sqs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("127.0.0.1:8080", "${HTTP}", "data_dir: ./data", "data_dir: ${DATA}").Replace(string(b))
	for _, want := range []string{"${HTTP}", "${DATA}", "${KAFKA_BROKERS", "${SQS_ENDPOINT", "${SQS_QUEUE_URL"} {
		if !strings.Contains(s, want) {
			t.Fatalf("example kafka-to-sqs.yaml: %s not found", want)
		}
	}
	return s
}

// tourCTarget is an SQS endpoint the tour forwards to.
type tourCTarget struct {
	name string
	// setup returns the SQS endpoint and the URL of an existing queue.
	setup func(t *testing.T) (endpoint, queueURL string)
	kill  bool
}

// TestKafkaSQSTour is the README's tour (c): Kafka is the backbone; payment
// events are produced to it by a Kafka client and over bridge's HTTP
// ingest; bridge (the shipped example config) forwards the selected ones
// to an SQS queue, consumed by a worker written with the AWS SDK. The worker
// must get every selected payment at least once and nothing else, each with
// its key, headers and trace context; a SIGKILL of bridge mid-stream loses
// nothing. Against fauxqs (an independent emulator), with the kill, and
// against a second bridge's embedded SQS API without it (the kill costs a
// consumer-group session timeout, up to ~30 s, and proves the same thing).
func TestKafkaSQSTour(t *testing.T) {
	targets := []tourCTarget{
		{name: "fauxqs", kill: true, setup: func(t *testing.T) (string, string) {
			endpoint := fauxqs.StartTB(t)
			out, err := sqsClient(endpoint).CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("payments-review")})
			if err != nil {
				t.Fatalf("create queue on fauxqs: %v", err)
			}
			return endpoint, aws.ToString(out.QueueUrl)
		}},
		{name: "embedded-sqs-api", setup: func(t *testing.T) (string, string) {
			data := t.TempDir()
			cfg, httpAddr, sqsAddr := writeConfig(t, data, tourCQueueHost)
			host := start(t, cfg, httpAddr, sqsAddr, data)
			return host.sqsURL, host.sqsURL + "/000000000000/payments-review"
		}},
	}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) { runTourC(t, target) })
	}
}

// tourCQueueHost is a second bridge that only hosts the queue, for the run
// against the embedded SQS API.
const tourCQueueHost = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
sqs_api: { listen: "${SQS}" }
backbone:
  type: embedded
  topics:
    unused: { partitions: 1 }
broker:
  queues:
    payments-review: { visibility_timeout: 30s }
pipelines:
  - name: idle
    from: unused
    routes:
      - to: { queue: payments-review }
`

// tourCPayment is what a producer sends and what the worker checks.
type tourCPayment struct {
	N        int    `json:"n"`
	Type     string `json:"type"`
	Amount   int    `json:"amount"`
	Currency string `json:"currency"`
	Account  string `json:"account"`
}

func tourCMake(n int) (p tourCPayment, test, selected bool) {
	p = tourCPayment{N: n, Type: "payment.captured", Amount: (n * 37) % 2000, Currency: "EUR", Account: "acct-" + strconv.Itoa(n%40)}
	if n%4 == 3 {
		p.Type = "payment.refunded"
	}
	test = n%50 == 7
	selected = p.Type == "payment.captured" && p.Amount >= 1000 && !test
	return p, test, selected
}

func runTourC(t *testing.T, target tourCTarget) {
	endpoint, queueURL := target.setup(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	t.Setenv("KAFKA_BROKERS", strings.Join(cluster.ListenAddrs(), ","))
	t.Setenv("SQS_ENDPOINT", endpoint)
	t.Setenv("SQS_QUEUE_URL", queueURL)

	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, tourCConfig(t))
	began := time.Now()
	in := start(t, cfg, httpAddr, sqsAddr, data)
	tourCWaitOwned(t, in)
	t.Logf("bridge ready and owning the 6 partitions after %v", time.Since(began).Round(time.Millisecond))

	kafkaN, httpN := 6000, 1500
	if testing.Short() {
		kafkaN, httpN = 2000, 500
	}
	const httpBase = 1_000_000 // n of payments posted over HTTP
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	want := map[int]bool{}
	for n := range kafkaN {
		if _, _, sel := tourCMake(n); sel {
			want[n] = true
		}
	}
	for n := httpBase; n < httpBase+httpN; n++ {
		if _, _, sel := tourCMake(n); sel {
			want[n] = true
		}
	}

	// Producers: a Kafka client writes straight to the backbone topic and
	// an HTTP client posts to bridge, interleaved over a few seconds so the
	// kill lands mid-stream.
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	var httpURL sync.Map // the current bridge's HTTP URL, changes at restart
	httpURL.Store("url", in.httpURL)
	var produced sync.WaitGroup
	var roundsDone atomic.Int32
	const rounds = 20
	produced.Go(func() {
		defer roundsDone.Store(rounds)
		for r := range rounds {
			roundsDone.Store(int32(r))
			var rs []*kgo.Record
			for n := r * kafkaN / rounds; n < (r+1)*kafkaN/rounds; n++ {
				p, test, _ := tourCMake(n)
				v, _ := json.Marshal(p)
				hs := []kgo.RecordHeader{{Key: "traceparent", Value: []byte(tourCTraceParent(n))},
					{Key: "origin", Value: []byte("kafka")}, {Key: "seq", Value: []byte(strconv.Itoa(n))}}
				if test {
					hs = append(hs, kgo.RecordHeader{Key: "test", Value: []byte("true")})
				}
				rs = append(rs, &kgo.Record{Topic: "payments", Key: []byte(p.Account), Value: v, Headers: hs})
			}
			if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			var evs []map[string]any
			for n := httpBase + r*httpN/rounds; n < httpBase+(r+1)*httpN/rounds; n++ {
				p, test, _ := tourCMake(n)
				hs := map[string]string{"traceparent": tourCTraceParent(n), "origin": "http", "seq": strconv.Itoa(n)}
				if test {
					hs["test"] = "true"
				}
				evs = append(evs, map[string]any{"key": p.Account, "headers": hs, "value": p})
			}
			// The bridge may be down (killed) right now: retry until a
			// restarted one answers. HTTP ingest is at-least-once too.
			for {
				u, _ := httpURL.Load("url")
				code, _, err := postEvents(ctx, u.(string), "payments", evs)
				if err == nil && code == 200 {
					break
				}
				if ctx.Err() != nil {
					t.Errorf("post: %v", ctx.Err())
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(400 * time.Millisecond)
		}
	})

	worker := newTourCWorker(sqsClient(endpoint), queueURL)
	var consumed sync.WaitGroup
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	for range 2 {
		consumed.Go(func() { worker.run(wctx, t) })
	}

	if target.kill {
		// Kill once the route is sending, while producers are still going.
		waitFor(t, time.Minute, func() error {
			if n := worker.distinct(); n < len(want)/10 {
				return fmt.Errorf("worker has %d of %d selected payments", n, len(want))
			}
			return nil
		})
		if r := roundsDone.Load(); r >= rounds {
			t.Fatalf("producers finished before the kill: not mid-stream")
		} else {
			t.Logf("SIGKILL after %d of %d production rounds", r, rounds)
		}
		in.kill()
		killed := time.Now()
		in = start(t, cfg, httpAddr, sqsAddr, data)
		httpURL.Store("url", in.httpURL)
		tourCWaitOwned(t, in)
		t.Logf("restarted bridge owns the 6 partitions %v after the kill", time.Since(killed).Round(time.Millisecond))
	}
	produced.Wait()
	t.Logf("producers done after %v", time.Since(began).Round(time.Millisecond))
	waitFor(t, 2*time.Minute, func() error {
		if missing := worker.missing(want); len(missing) > 0 {
			return fmt.Errorf("%d of %d selected payments not received yet, e.g. n=%d", len(missing), len(want), missing[0])
		}
		return nil
	})
	t.Logf("every selected payment received after %v", time.Since(began).Round(time.Millisecond))
	// Let redeliveries that are still in flight arrive before counting.
	waitFor(t, 30*time.Second, func() error {
		if idle := time.Since(worker.lastReceive()); idle < 2*time.Second {
			return fmt.Errorf("worker received a message %v ago", idle)
		}
		return nil
	})
	stopWorkers()
	consumed.Wait()

	counts, problems := worker.result()
	for _, p := range problems {
		t.Error(p)
	}
	dups := 0
	for n, c := range counts {
		if !want[n] {
			t.Errorf("payment n=%d reached the queue but the filter rejects it", n)
		}
		dups += c - 1
	}
	t.Logf("%s: %d payments (%d over Kafka, %d over HTTP), %d selected, all received, %d duplicates, kill=%v",
		target.name, kafkaN+httpN, kafkaN, httpN, len(want), dups, target.kill)
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func tourCTraceParent(n int) string {
	return fmt.Sprintf("00-%s-%016x-01", tourCTraceID, n+1)
}

// tourCWaitOwned waits until this bridge's route owns all 6 partitions of
// payments through the consumer group: after a SIGKILL, the dead member's
// partitions come back once its session times out.
func tourCWaitOwned(t *testing.T, in *instance) {
	t.Helper()
	waitFor(t, 90*time.Second, func() error {
		var st struct {
			Routes []struct {
				Partitions []struct {
					Partition int32 `json:"partition"`
				} `json:"partitions"`
			} `json:"routes"`
		}
		getJSON(t, in.httpURL+"/v1/pipelines/payments-to-review", &st)
		if len(st.Routes) != 1 || len(st.Routes[0].Partitions) != 6 {
			return fmt.Errorf("route owns %v partitions, want 6", st.Routes)
		}
		return nil
	})
}

// tourCWorker is the review worker: it receives with the AWS SDK, checks
// each message, records it and deletes it.
type tourCWorker struct {
	client   *sqs.Client
	queueURL string

	mu       sync.Mutex
	counts   map[int]int
	problems []string
	last     time.Time
}

func newTourCWorker(c *sqs.Client, queueURL string) *tourCWorker {
	return &tourCWorker{client: c, queueURL: queueURL, counts: map[int]int{}, last: time.Now()}
}

func (w *tourCWorker) run(ctx context.Context, t *testing.T) {
	for ctx.Err() == nil {
		// A short visibility timeout, so that a receive whose answer is
		// lost (SDK race, see connectors/sqs.SafeTransport) would hide its
		// messages only briefly; with sqsClient it fails the test instead.
		out, err := w.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.queueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 10,
			MessageAttributeNames: []string{"All"}})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.Errorf("receive: %v", err)
			return
		}
		var del []types.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			w.check(&m)
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if len(del) > 0 {
			res, err := w.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(w.queueURL), Entries: del})
			if ctx.Err() != nil {
				return
			}
			if err != nil || len(res.Failed) > 0 {
				t.Errorf("delete: %v %+v", err, res)
			}
		}
	}
}

// check records one message and notes anything it lost on the way.
func (w *tourCWorker) check(m *types.Message) {
	var p tourCPayment
	var problem string
	attr := func(name string) string {
		a, ok := m.MessageAttributes[name]
		if !ok {
			return ""
		}
		return aws.ToString(a.StringValue)
	}
	err := json.Unmarshal([]byte(aws.ToString(m.Body)), &p)
	switch {
	case err != nil:
		problem = fmt.Sprintf("body %q: %v", aws.ToString(m.Body), err)
	case attr("bridge-key") != p.Account:
		problem = fmt.Sprintf("n=%d: bridge-key %q, want the Kafka key %q", p.N, attr("bridge-key"), p.Account)
	case attr("seq") != strconv.Itoa(p.N):
		problem = fmt.Sprintf("n=%d: header seq %q", p.N, attr("seq"))
	case attr("origin") != map[bool]string{true: "http", false: "kafka"}[p.N >= 1_000_000]:
		problem = fmt.Sprintf("n=%d: header origin %q", p.N, attr("origin"))
	case !strings.HasPrefix(attr("bridge-event-id"), "payments/"):
		problem = fmt.Sprintf("n=%d: bridge-event-id %q", p.N, attr("bridge-event-id"))
	}
	if tp := attr("traceparent"); problem == "" && (len(tp) != 55 || tp[3:35] != tourCTraceID) {
		problem = fmt.Sprintf("n=%d: traceparent %q is not in trace %s", p.N, tp, tourCTraceID)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = time.Now()
	if problem != "" {
		if len(w.problems) < 10 {
			w.problems = append(w.problems, problem)
		}
		return
	}
	w.counts[p.N]++
}

func (w *tourCWorker) distinct() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.counts)
}

func (w *tourCWorker) missing(want map[int]bool) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for n := range want {
		if w.counts[n] == 0 {
			out = append(out, n)
		}
	}
	return out
}

func (w *tourCWorker) lastReceive() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *tourCWorker) result() (map[int]int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts, w.problems
}
