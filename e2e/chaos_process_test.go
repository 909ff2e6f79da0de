package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const chaosProcessConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
sqs_api: { listen: "${SQS}" }
connections:
  k:      { type: kafka, brokers: ${BROKERS} }
  rabbit: { type: amqp, url: "${AMQP_URL}" }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 4 }
sources:
  - { name: kin, type: kafka, connection: k, topics: [in], group: chaos-proc, topic: orders }
  - { name: legacy, type: amqp, connection: rabbit, queue: "${IN_QUEUE}", topic: orders, key: 'headers["key"]' }
broker:
  queues:
    work: { visibility_timeout: 5s }
pipelines:
  - name: fan
    from: orders
    routes:
      - name: kafka-out
        to: { kafka: { connection: k, topic: out } }
      - name: rabbit-out
        to: { amqp: { connection: rabbit, exchange: "${OUT_EXCHANGE}", routing_key: '"out"' } }
      - name: queue
        to: { queue: work }
    retry: { initial_backoff: 50ms, max_backoff: 1s }
`

// TestChaosProcessSignals freezes bridge with SIGSTOP for longer than its
// peers' liveness timeouts (Kafka's session timeout, 10 s; RabbitMQ's
// heartbeat, 10 s), continues it with SIGCONT, then SIGKILLs and restarts
// it, all while HTTP clients, a Kafka producer and a RabbitMQ producer
// keep sending and workers consume the Kafka, RabbitMQ and embedded-queue
// sinks. Expected: while frozen, producers see timeouts (nothing is
// acknowledged that is not durable); after SIGCONT the Kafka group
// rebalances, RabbitMQ's closed connections are re-dialled, and the flow
// resumes by itself; after the kill, the restart resumes at the
// checkpoints. Nothing acknowledged is lost; order per key holds at the
// Kafka and RabbitMQ sinks.
func TestChaosProcessSignals(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfakeSeed("in", "out")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	amqpURL := rabbitVhost(t)
	id := strconv.FormatUint(rand.Uint64(), 36)
	inQueue, outExchange, outQueue := "proc.in."+id, "proc.out."+id, "proc.sink."+id
	declareRabbit(t, amqpURL, inQueue, outExchange, outQueue)
	tmpl := strings.NewReplacer("${BROKERS}", `["`+strings.Join(cluster.ListenAddrs(), `","`)+`"]`, "${AMQP_URL}", amqpURL,
		"${IN_QUEUE}", inQueue, "${OUT_EXCHANGE}", outExchange).Replace(chaosProcessConfig)
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, tmpl)
	in := start(t, cfg, httpAddr, sqsAddr, data)

	kopts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	producer, err := kgo.NewClient(kopts...)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	sinks := []string{"kafka-out", "amqp-out", "queue"}
	l := newLedger("kafka-out", "amqp-out")
	producers, consumers := newGroup(t.Context()), newGroup(t.Context())
	hp := &httpProducer{url: func() string { return in.httpURL }, topic: "orders", batch: 10, rate: 10,
		sinks: sinks, ledger: l, seq: newKeyedSeq("h-", 16)}
	kp := &kafkaProducer{client: producer, topic: "in", batch: 10, rate: 10, sinks: sinks, ledger: l, seq: newKeyedSeq("k-", 16)}
	ap := &amqpProducer{url: amqpURL, queue: inQueue, batch: 10, rate: 10, sinks: sinks, ledger: l, seq: newKeyedSeq("a-", 16)}
	producers.Go(hp.run)
	producers.Go(func(ctx context.Context) { kp.run(ctx, t) })
	producers.Go(func(ctx context.Context) { ap.run(ctx, t) })
	consumers.Go(func(ctx context.Context) { consumeKafka(ctx, t, kopts, "out", "kafka-out", l) })
	consumers.Go(func(ctx context.Context) { consumeAMQP(ctx, amqpURL, outQueue, "amqp-out", l) })
	worker := &sqsWorker{client: sqsClient(in.sqsURL), queueURL: in.sqsURL + "/000000000000/work", sink: "queue", ledger: l}
	consumers.Go(worker.run)

	in = signalPhases(t, in, l, hp, sinks, func() *instance { return start(t, cfg, httpAddr, sqsAddr, data) })
	r := finishLedger(t, producers, consumers, l, 2*time.Minute)
	t.Logf("%s; kafka %d, amqp %d acked; %d duplicates; worker errors %d", hp.describe(), kp.posted.Load(), ap.posted.Load(),
		r.Duplicates, worker.errors.Load())
	if code := in.stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

// signalPhases runs the SIGSTOP/SIGCONT and the SIGKILL phases of
// TestChaosProcessSignals and returns the restarted bridge.
func signalPhases(t *testing.T, in *instance, l *ledger, hp *httpProducer, sinks []string, restart func() *instance) *instance {
	t.Helper()
	all := func() int64 {
		var n int64
		for _, s := range sinks {
			n += l.deliveredTo(s)
		}
		return n
	}
	progress(t, "before the faults", 60*time.Second, 300, all)
	dups := func(phase string) {
		r := l.report()
		t.Logf("%s: duplicates so far kafka-out %d, amqp-out %d, queue %d", phase,
			r.PerSink["kafka-out"].Duplicates, r.PerSink["amqp-out"].Duplicates, r.PerSink["queue"].Duplicates)
	}
	dups("before the faults")

	// SIGSTOP past every liveness timeout of the peers.
	acked := hp.posted.Load()
	in.freeze()
	time.Sleep(25 * time.Second)
	if got := hp.posted.Load() - acked; got > int64(hp.batch) {
		t.Errorf("%d HTTP inputs acknowledged while bridge was stopped", got)
	}
	in.signal(syscall.SIGCONT)
	took := progress(t, "after SIGCONT", 60*time.Second, 300, all)
	t.Logf("SIGSTOP for 25 s: flowing again %v after SIGCONT", took.Round(100*time.Millisecond))
	for _, sink := range sinks {
		progress(t, "after SIGCONT at "+sink, 60*time.Second, 30, func() int64 { return l.deliveredTo(sink) })
	}
	time.Sleep(5 * time.Second)
	dups("after SIGSTOP/SIGCONT")

	// SIGKILL mid-stream, restart on the same data dir and ports.
	in.kill()
	in = restart()
	took = progress(t, "after SIGKILL and restart", 90*time.Second, 300, all)
	t.Logf("SIGKILL: flowing again %v after the restart was ready", took.Round(100*time.Millisecond))
	time.Sleep(5 * time.Second)
	dups("after SIGKILL")

	return in
}

const chaosDiskConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
sqs_api: { listen: "${SQS}" }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 2 }
    copy:   { partitions: 2 }
broker:
  queues:
    work: { visibility_timeout: 5s }
pipelines:
  - name: fan
    from: orders
    routes:
      - name: queue
        to: { queue: work }
      - name: copy
        to: { topic: copy }
    retry: { initial_backoff: 50ms, max_backoff: 1s }
`

// TestChaosDiskFull runs bridge on a 48 MiB file system and fills it
// mid-stream. Expected: ingest answers a clear error (5xx naming the full
// disk) instead of acknowledging what it could not store; the process
// stays up and healthy; what was acknowledged stays readable and keeps
// flowing to the queue and the topic; when space is freed, ingest and
// delivery resume without a restart; a restart afterwards finds every
// acknowledged event.
func TestChaosDiskFull(t *testing.T) {
	t.Parallel()
	disk := smallDisk(t, 48<<20)
	data := disk + "/data"
	cfg, httpAddr, sqsAddr := writeConfig(t, data, chaosDiskConfig)
	in := start(t, cfg, httpAddr, sqsAddr, data)

	sinks := []string{"queue"}
	l := newLedger()
	producers, consumers := newGroup(t.Context()), newGroup(t.Context())
	hp := &httpProducer{url: func() string { return in.httpURL }, topic: "orders", batch: 20, rate: 20, pad: 200,
		sinks: sinks, ledger: l, seq: newKeyedSeq("h-", 16)}
	producers.Go(hp.run)
	worker := &sqsWorker{client: sqsClient(in.sqsURL), queueURL: in.sqsURL + "/000000000000/work", sink: "queue", ledger: l}
	consumers.Go(worker.run)
	progress(t, "before the fault", 60*time.Second, 300, func() int64 { return l.deliveredTo("queue") })

	filler := fillDisk(t, disk, 0)
	refusedBefore := hp.refused.Load()
	waitFor(t, 30*time.Second, func() error {
		if hp.refused.Load() == refusedBefore {
			return errors.New("ingest still acknowledges on a full disk")
		}
		return nil
	})
	answer := *hp.lastRefusal.Load()
	t.Logf("on a full disk, ingest answers %s", answer)
	if !strings.HasPrefix(answer, "5") || !strings.Contains(answer, "no space left") {
		t.Errorf("ingest on a full disk answered %s, want a 5xx naming the full disk", answer)
	}
	if resp, err := http.Get(in.httpURL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz on a full disk: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	time.Sleep(3 * time.Second) // the fault lasts

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	acked := hp.posted.Load()
	took := progress(t, "ingest after space was freed", 30*time.Second, 100, hp.posted.Load)
	t.Logf("space freed: ingest acknowledges again after %v (no restart)", took.Round(100*time.Millisecond))
	progress(t, "delivery after space was freed", 30*time.Second, 100, func() int64 { return l.deliveredTo("queue") })
	if hp.posted.Load() <= acked {
		t.Fatal("no progress")
	}

	r := finishLedger(t, producers, consumers, l, time.Minute)
	t.Logf("%s; %d duplicates", hp.describe(), r.Duplicates)
	checkTopicHas(t, in.httpURL, "copy", l)
	if code := in.stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	in = start(t, cfg, httpAddr, sqsAddr, data)
	checkTopicHas(t, in.httpURL, "orders", l)
	_ = in.stop()
}

// checkTopicHas reads topic through the HTTP API and checks that every
// acknowledged input of the ledger is there.
func checkTopicHas(t *testing.T, url, topic string, l *ledger) {
	t.Helper()
	seen := map[string]bool{}
	for _, ev := range readAll(t, url, topic) {
		var m ledgerMsg
		if err := json.Unmarshal(ev.Value, &m); err == nil {
			seen[m.ID] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	missing := 0
	for id, in := range l.inputs {
		if !in.acked.IsZero() && !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("topic %s misses %d acknowledged inputs", topic, missing)
	}
}
