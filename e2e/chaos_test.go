package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/internal/fauxqs"
)

// The chaos tests: one per peer, each with Toxiproxy between bridge and
// the peer, traffic flowing from both bridge's HTTP ingest and the peer as
// a source, and the faults of docs/reliability.md injected one after the
// other mid-stream. Each step states what must hold while the fault lasts
// (inputs keep flowing, only slower; or nothing is lost and the process
// notices) and every step must end with the flow resuming by itself. The
// ledger then proves that every acknowledged input reached every sink it
// should, and counts duplicates and per-key order violations.

// chaosStep is one fault of a plan.
type chaosStep struct {
	name    string
	faults  []fault
	hold    time.Duration
	flowing bool // inputs must keep reaching the sinks during the fault
	// log, when set, is a line bridge must have logged by the end of the
	// fault: the clear error an operator sees.
	log string
}

// The plan every peer goes through. Latency, bandwidth and slicing slow
// the flow but must not stop it; a reset, a half-open connection, a silent
// peer and a partition stop it, and bridge must notice by itself (or wait
// without losing anything, for a partition that heals) and resume after
// the fault. halfOpen is how long the faults that bridge can only detect
// by a timeout last.
func chaosPlan(halfOpen, partition time.Duration) []chaosStep {
	return []chaosStep{
		{name: "latency 150±50 ms both ways", faults: []fault{faultLatency, faultLatencyUp}, hold: 4 * time.Second, flowing: true},
		{name: "bandwidth 32 KB/s", faults: []fault{faultBandwidth}, hold: 4 * time.Second, flowing: true},
		{name: "slicer (16-byte segments, 200 µs apart)", faults: []fault{faultSlicer, faultSlicerUp}, hold: 4 * time.Second, flowing: true},
		{name: "connection reset (reset_peer)", faults: []fault{faultReset}, hold: 3 * time.Second},
		{name: "half-open (timeout toxic): nothing passes", faults: []fault{faultBlackholeUp, faultBlackholeDown}, hold: halfOpen},
		{name: "silent peer: nothing passes, nothing closes", faults: []fault{faultSilentUp, faultSilentDown}, hold: halfOpen},
		{name: "partition: nothing moves until it heals", faults: []fault{faultPartitionUp, faultPartitionDown}, hold: partition},
	}
}

// runChaosPlan injects each step into target while the workload runs,
// and checks the step's promise and the recovery after it. Progress is
// counted where the fault is: the events bridge's pipeline reports sent
// (acknowledged by the sink), not what consumers drain from a backlog; the
// ledger checks the consumers' side at the end.
func runChaosPlan(t *testing.T, in *instance, pipeline string, target faultGroup, steps []chaosStep, recoverWithin time.Duration) {
	t.Helper()
	var last int64
	sent := func() int64 {
		if n, err := routeSent(in.httpURL, pipeline); err == nil {
			last = n
		}
		return last
	}
	progress(t, "before the faults", 60*time.Second, 200, sent)
	for _, st := range steps {
		before := sent()
		target.add(st.faults...)
		began := time.Now()
		if st.flowing {
			progress(t, st.name+" (during)", st.hold+20*time.Second, 20, sent)
		}
		if rest := st.hold - time.Since(began); rest > 0 {
			time.Sleep(rest)
		}
		during := sent() - before
		held := time.Since(began)
		if st.log != "" && !strings.Contains(in.stderr.String(), st.log) {
			t.Errorf("%s: bridge did not log %q", st.name, st.log)
		}
		target.clear()
		took := progress(t, st.name+" (after)", recoverWithin, 100, sent)
		t.Logf("fault %-45s held %v: bridge sent %d events during it; flowing again %v after it ended",
			st.name, held.Round(100*time.Millisecond), during, took.Round(100*time.Millisecond))
	}
}

// routeSent is the number of events the pipeline's routes report sent.
func routeSent(url, pipeline string) (int64, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url + "/v1/pipelines/" + pipeline)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Routes []struct {
			Sent int64 `json:"sent"`
		} `json:"routes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, err
	}
	var n int64
	for _, r := range st.Routes {
		n += r.Sent
	}
	return n, nil
}

// finishLedger stops the producers, waits for every acknowledged input to
// arrive, stops the consumers and checks the ledger.
func finishLedger(t *testing.T, producers, consumers *group, l *ledger, within time.Duration) ledgerReport {
	t.Helper()
	producers.stop()
	deadline := time.Now().Add(within)
	for l.complete() != nil && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // late duplicates still count
	consumers.stop()
	r := l.report()
	t.Logf("ledger:\n%s", r)
	if r.Lost > 0 {
		t.Errorf("%d acknowledged inputs never reached a sink they should have (%v)", r.Lost, l.complete())
	}
	if r.OrderViolations > 0 {
		t.Errorf("%d per-key order violations at sinks that promise order", r.OrderViolations)
	}
	if r.Unknown > 0 {
		t.Errorf("%d deliveries that no producer sent", r.Unknown)
	}
	if r.Acked == 0 {
		t.Error("no input was acknowledged")
	}
	return r
}

const chaosAMQPConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
connections:
  rabbit: { type: amqp, url: "${AMQP_URL}" }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 4 }
sources:
  - { name: legacy, type: amqp, connection: rabbit, queue: "${IN_QUEUE}", topic: orders, key: 'headers["key"]' }
pipelines:
  - name: relay
    from: orders
    routes:
      - name: rabbit-out
        to: { amqp: { connection: rabbit, exchange: "${OUT_EXCHANGE}", routing_key: '"out"' } }
    retry: { initial_backoff: 50ms, max_backoff: 1s }
`

// TestChaosAMQP: RabbitMQ behind Toxiproxy, as bridge's source and sink.
// A half-open connection is noticed by AMQP heartbeats (10 s, so up to
// 30 s of silence) and re-dialled.
func TestChaosAMQP(t *testing.T) {
	t.Parallel()
	amqpURL := rabbitVhost(t)
	vhost := amqpURL[strings.LastIndex(amqpURL, "/")+1:]
	id := strconv.FormatUint(rand.Uint64(), 36)
	inQueue, outExchange, outQueue := "chaos.in."+id, "chaos.out."+id, "chaos.sink."+id
	declareRabbit(t, amqpURL, inQueue, outExchange, outQueue)

	fn := newFaultNet(t)
	rabbit := fn.proxy(t, "rabbitmq", "127.0.0.1:5672")
	tmpl := strings.NewReplacer("${AMQP_URL}", "amqp://guest:guest@"+rabbit.addr()+"/"+vhost,
		"${IN_QUEUE}", inQueue, "${OUT_EXCHANGE}", outExchange).Replace(chaosAMQPConfig)
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, tmpl)
	in := start(t, cfg, httpAddr, sqsAddr, data)

	l := newLedger("amqp-out")
	producers, consumers := newGroup(t.Context()), newGroup(t.Context())
	hp := &httpProducer{url: func() string { return in.httpURL }, topic: "orders", batch: 10, rate: 10,
		sinks: []string{"amqp-out"}, ledger: l, seq: newKeyedSeq("h-", 16)}
	ap := &amqpProducer{url: amqpURL, queue: inQueue, batch: 10, rate: 10, sinks: []string{"amqp-out"}, ledger: l, seq: newKeyedSeq("a-", 16)}
	producers.Go(hp.run)
	producers.Go(func(ctx context.Context) { ap.run(ctx, t) })
	consumers.Go(func(ctx context.Context) { consumeAMQP(ctx, amqpURL, outQueue, "amqp-out", l) })

	plan := chaosPlan(40*time.Second, 15*time.Second)
	plan[4].log = "amqp connection lost, reconnecting"
	runChaosPlan(t, in, "relay", faultGroup{rabbit}, plan, 90*time.Second)
	r := finishLedger(t, producers, consumers, l, 90*time.Second)
	t.Logf("%s; amqp %d acked; %d duplicates", hp.describe(), ap.posted.Load(), r.Duplicates)
	if code := in.stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

// declareRabbit declares the input queue, the output exchange and the
// queue bound to it (routing key "out").
func declareRabbit(t testing.TB, amqpURL, inQueue, outExchange, outQueue string) {
	t.Helper()
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Fatalf("RabbitMQ at 127.0.0.1:5672: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{inQueue, outQueue} {
		if q == "" {
			continue
		}
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if outExchange == "" {
		return
	}
	if err := ch.ExchangeDeclare(outExchange, "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(outQueue, "out", outExchange, false, nil); err != nil {
		t.Fatal(err)
	}
}

const chaosKafkaConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
connections:
  k: { type: kafka, brokers: ${BROKERS}, request_timeout: 5s }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 4 }
sources:
  - { name: kin, type: kafka, connection: k, topics: [in], group: chaos, topic: orders }
pipelines:
  - name: forward
    from: orders
    routes:
      - name: kafka-out
        to: { kafka: { connection: k, topic: out } }
    retry: { initial_backoff: 50ms, max_backoff: 1s }
`

// TestChaosKafka: kfake behind Toxiproxy (every broker advertises its
// proxy), as bridge's source and sink. request_timeout 5s bounds how long
// a request may go unanswered; a half-open broker also costs the source
// its group membership (session timeout 10 s) and a rebalance.
func TestChaosKafka(t *testing.T) {
	t.Parallel()
	fn := newFaultNet(t)
	pk := newProxiedKafka(t, fn, kfakeSeed("in", "out")...)
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, strings.ReplaceAll(chaosKafkaConfig, "${BROKERS}", pk.brokersYAML()))
	in := start(t, cfg, httpAddr, sqsAddr, data)

	direct := []kgo.Opt{kgo.SeedBrokers(pk.ListenAddrs()...), kgo.Dialer(pk.dial)}
	producer, err := kgo.NewClient(direct...)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	l := newLedger("kafka-out")
	producers, consumers := newGroup(t.Context()), newGroup(t.Context())
	hp := &httpProducer{url: func() string { return in.httpURL }, topic: "orders", batch: 10, rate: 10,
		sinks: []string{"kafka-out"}, ledger: l, seq: newKeyedSeq("h-", 16)}
	kp := &kafkaProducer{client: producer, topic: "in", batch: 10, rate: 10, sinks: []string{"kafka-out"}, ledger: l, seq: newKeyedSeq("k-", 16)}
	producers.Go(hp.run)
	producers.Go(func(ctx context.Context) { kp.run(ctx, t) })
	consumers.Go(func(ctx context.Context) { consumeKafka(ctx, t, direct, "out", "kafka-out", l) })

	plan := chaosPlan(15*time.Second, 15*time.Second)
	runChaosPlan(t, in, "forward", pk.proxies, plan, 90*time.Second)
	r := finishLedger(t, producers, consumers, l, 90*time.Second)
	t.Logf("%s; kafka %d acked; %d duplicates", hp.describe(), kp.posted.Load(), r.Duplicates)
	if code := in.stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

const chaosSQSConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
connections:
  aws: { type: sqs, region: us-east-1, endpoint: "http://${SQS_PROXY}", access_key_id: x, secret_access_key: x, request_timeout: 5s }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 4 }
sources:
  - { name: sqsin, type: sqs, connection: aws, queue_url: "${IN_URL}", topic: orders, wait_time: 2s }
pipelines:
  - name: to-sqs
    from: orders
    routes:
      - name: sqs-out
        to: { sqs: { connection: aws, queue_url: "${OUT_URL}" } }
    retry: { initial_backoff: 50ms, max_backoff: 1s }
`

// TestChaosSQS: fauxqs behind Toxiproxy, as bridge's SQS source and sink.
// A request that goes unanswered is abandoned after the connection's
// request_timeout and retried.
func TestChaosSQS(t *testing.T) {
	t.Parallel()
	endpoint := fauxqs.StartTB(t)
	client := sqsClient(endpoint)
	id := strconv.FormatUint(rand.Uint64(), 36)
	inURL := fauxqsQueue(t, client, "chaos-in-"+id, map[string]string{"VisibilityTimeout": "10"})
	outURL := fauxqsQueue(t, client, "chaos-out-"+id, map[string]string{"VisibilityTimeout": "10"})

	fn := newFaultNet(t)
	proxy := fn.proxy(t, "fauxqs", strings.TrimPrefix(endpoint, "http://"))
	tmpl := strings.NewReplacer("${SQS_PROXY}", proxy.addr(), "${IN_URL}", inURL, "${OUT_URL}", outURL).Replace(chaosSQSConfig)
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, tmpl)
	in := start(t, cfg, httpAddr, sqsAddr, data)

	l := newLedger()
	producers, consumers := newGroup(t.Context()), newGroup(t.Context())
	hp := &httpProducer{url: func() string { return in.httpURL }, topic: "orders", batch: 10, rate: 10,
		sinks: []string{"sqs-out"}, ledger: l, seq: newKeyedSeq("h-", 16)}
	sp := &sqsSender{client: client, queueURL: inURL, rate: 10, sinks: []string{"sqs-out"}, ledger: l, seq: newKeyedSeq("s-", 16)}
	producers.Go(hp.run)
	producers.Go(sp.run)
	for range 2 {
		w := &sqsWorker{client: client, queueURL: outURL, sink: "sqs-out", ledger: l}
		consumers.Go(w.run)
	}

	plan := chaosPlan(12*time.Second, 12*time.Second)
	plan[5].log = "no answer within the request timeout"
	runChaosPlan(t, in, "to-sqs", faultGroup{proxy}, plan, 30*time.Second)
	r := finishLedger(t, producers, consumers, l, 90*time.Second)
	t.Logf("%s; sqs %d acked; %d duplicates", hp.describe(), sp.posted.Load(), r.Duplicates)
	if depth := fauxqsDepth(t, client, inURL); depth != 0 {
		t.Errorf("bridge's source queue still holds %d messages", depth)
	}
	if code := in.stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

func fauxqsDepth(t testing.TB, client *sqs.Client, url string) int {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
	if err != nil {
		t.Fatalf("queue attributes: %v", err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n
}

// kfakeSeed is the options of a chaos cluster: 3 brokers, 4 partitions
// per topic.
func kfakeSeed(topics ...string) []kfake.Opt {
	return []kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(4, topics...)}
}
