package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/internal/fauxqs"
)

// The soak (issue 18): a mixed workload through one bridge for a while,
// with faults injected on a schedule, then the ledger check and a leak
// check of the process. `make soak` runs it for 30 minutes
// (BRIDGE_SOAK=30m); scripts/test.sh runs the default, 3 minutes.
// docs/reliability.md describes it and holds the last report.

const soakConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
sqs_api: { listen: "${SQS}" }
connections:
  k:      { type: kafka, brokers: ${BROKERS}, request_timeout: 5s }
  rabbit: { type: amqp, url: "${AMQP_URL}" }
  aws:    { type: sqs, region: us-east-1, endpoint: "http://${SQS_PROXY}", access_key_id: x, secret_access_key: x, request_timeout: 5s }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 4 }
sources:
  - { name: kin, type: kafka, connection: k, topics: [in], group: soak, topic: orders }
  - { name: legacy, type: amqp, connection: rabbit, queue: "${IN_QUEUE}", topic: orders, key: 'headers["key"]' }
broker:
  queues:
    work:         { visibility_timeout: 2s, max_receive_count: 50, dead_letter_queue: work-dlq }
    work-dlq:     {}
    ordered.fifo: { fifo: true, visibility_timeout: 2s }
pipelines:
  - name: fan
    from: orders
    routes:
      - name: queue
        to: { queue: work }
      - name: fifo
        to: { queue: ordered.fifo, group_id: 'key' }
      - name: kafka-out
        to: { kafka: { connection: k, topic: out } }
      - name: rabbit-out
        to: { amqp: { connection: rabbit, exchange: "${OUT_EXCHANGE}", routing_key: '"out"' } }
      - name: sqs-out
        to: { sqs: { connection: aws, queue_url: "${OUT_URL}" } }
    retry: { initial_backoff: 50ms, max_backoff: 2s }
`

// soakSinks are the five sinks every input must reach; soakOrdered are
// those that promise per-key order (a Kafka partition, a RabbitMQ queue
// with one consumer, a FIFO queue's message group).
var (
	soakSinks   = []string{"queue", "fifo", "kafka-out", "amqp-out", "sqs-out"}
	soakOrdered = []string{"fifo", "kafka-out", "amqp-out"}
)

// soakEnv is everything the soak runs against.
type soakEnv struct {
	t                   *testing.T
	in                  *instance
	inMu                sync.Mutex
	cfg, http, sqs, dir string
	pprof               string
	disk                string
	kafka               *proxiedKafka
	rabbit, aws         *faultProxy
	amqpURL, id         string // the test's vhost; the suffix of its names
	fauxqs, outURL      string // fauxqs's endpoint; the SQS sink's queue
}

func (e *soakEnv) cur() *instance {
	e.inMu.Lock()
	defer e.inMu.Unlock()
	return e.in
}

func (e *soakEnv) restart() {
	e.inMu.Lock()
	defer e.inMu.Unlock()
	e.in.kill()
	e.in = startArgs(e.t, binary, e.cfg, e.http, e.sqs, e.dir, "--pprof", e.pprof)
}

// soakFault is one entry of the schedule: inject, hold, end.
type soakFault struct {
	name string
	hold time.Duration
	do   func(e *soakEnv) (end func())
}

func proxyFault(target func(e *soakEnv) faultGroup, fs ...fault) func(e *soakEnv) func() {
	return func(e *soakEnv) func() {
		g := target(e)
		g.add(fs...)
		return g.clear
	}
}

var (
	onKafka  = func(e *soakEnv) faultGroup { return e.kafka.proxies }
	onRabbit = func(e *soakEnv) faultGroup { return faultGroup{e.rabbit} }
	onAWS    = func(e *soakEnv) faultGroup { return faultGroup{e.aws} }
)

// soakSchedule is the cycle of faults: every period one is injected for
// its hold, then the system runs clean for the rest of the period. The
// SIGKILL comes first and only once, so that the leak check has one
// process life to watch.
func soakSchedule() (kill soakFault, cycle []soakFault) {
	kill = soakFault{"bridge SIGKILL + restart", 0, func(e *soakEnv) func() { e.restart(); return func() {} }}
	cycle = []soakFault{
		{"RabbitMQ latency 150±50 ms", 8 * time.Second, proxyFault(onRabbit, faultLatency, faultLatencyUp)},
		{"Kafka partition", 8 * time.Second, proxyFault(onKafka, faultPartitionUp, faultPartitionDown)},
		{"fauxqs reset_peer", 4 * time.Second, proxyFault(onAWS, faultReset)},
		{"bridge SIGSTOP 6 s", 6 * time.Second, func(e *soakEnv) func() {
			in := e.cur()
			in.signal(syscall.SIGSTOP)
			return func() { in.signal(syscall.SIGCONT) }
		}},
		{"fauxqs silent peer", 8 * time.Second, proxyFault(onAWS, faultSilentUp, faultSilentDown)},
		{"Kafka slicer + latency", 8 * time.Second, proxyFault(onKafka, faultSlicer, faultLatencyUp)},
		{"RabbitMQ reset_peer", 4 * time.Second, proxyFault(onRabbit, faultReset)},
		{"full disk", 5 * time.Second, func(e *soakEnv) func() {
			filler := fillDisk(e.t, e.disk, 0)
			return func() {
				if err := os.Remove(filler); err != nil {
					e.t.Error(err)
				}
			}
		}},
		{"fauxqs bandwidth 32 KB/s", 8 * time.Second, proxyFault(onAWS, faultBandwidth)},
		{"RabbitMQ half-open (timeout toxic)", 8 * time.Second, proxyFault(onRabbit, faultBlackholeUp, faultBlackholeDown)},
	}
	return kill, cycle
}

// soakDuration is BRIDGE_SOAK (a Go duration), else 3 minutes (1 minute
// under -short).
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("BRIDGE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("BRIDGE_SOAK=%q: %v", v, err)
		}
		return d
	}
	if testing.Short() {
		return time.Minute
	}
	return 3 * time.Minute
}

// TestSoak: HTTP ingest, a Kafka source and a RabbitMQ source feed one
// topic; one pipeline fans every event out to an embedded queue and a FIFO
// queue (consumed by SQS-API workers written with aws-sdk-go-v2 that fail
// 5% of the messages they receive, which come back after the visibility
// timeout), to Kafka, to RabbitMQ and to SQS (fauxqs, whose workers also
// fail 5%). Faults run on a schedule. Then: every acknowledged input at
// every sink, duplicates counted, no order violation per key where order
// is promised, and the process's RSS, goroutines and open files flat.
func TestSoak(t *testing.T) {
	t.Parallel()
	duration := soakDuration(t)
	e := setupSoak(t)
	l := newLedger(soakOrdered...)
	producers, consumers := newGroup(t.Context()), newGroup(t.Context())
	workers := startSoakWorkload(t, e, l, producers, consumers)

	samples := newSampler(e)
	began := time.Now()
	kill, cycle := soakSchedule()
	period := 20 * time.Second
	var injected []string
	next := began.Add(period / 2)
	for i := 0; time.Until(began.Add(duration)) > period/2; i++ {
		time.Sleep(time.Until(next))
		next = next.Add(period)
		samples.take(t, "quiet") // before each fault: the comparable moments
		f := kill
		if i > 0 {
			f = cycle[(i-1)%len(cycle)]
		}
		end := f.do(e)
		time.Sleep(f.hold)
		end()
		injected = append(injected, f.name)
		t.Logf("%v: fault %s (%v)", time.Since(began).Round(time.Second), f.name, f.hold)
	}
	time.Sleep(time.Until(began.Add(duration)))
	r := finishLedger(t, producers, consumers, l, 3*time.Minute)
	samples.take(t, "quiet")
	leaks := samples.leaks()
	for _, leak := range leaks {
		t.Error(leak)
	}
	rep := soakReport{duration: duration, began: began, faults: injected, ledger: r, samples: samples,
		workerFailures: workers.failed(), inputs: workers.inputs(), leaks: leaks}
	out := rep.String()
	t.Logf("soak report:\n%s", out)
	path := os.Getenv("BRIDGE_SOAK_REPORT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "soak-report.md")
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Errorf("write report: %v", err)
	}
	if code := e.cur().stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

func setupSoak(t *testing.T) *soakEnv {
	t.Helper()
	fn := newFaultNet(t)
	e := &soakEnv{t: t, disk: smallDisk(t, 1<<30), pprof: freeAddr(t)}
	e.kafka = newProxiedKafka(t, fn, kfakeSeed("in", "out")...)
	e.rabbit = fn.proxy(t, "rabbitmq", "127.0.0.1:5672")
	endpoint := fauxqs.StartTB(t)
	e.aws = fn.proxy(t, "fauxqs", strings.TrimPrefix(endpoint, "http://"))
	amqpURL := rabbitVhost(t)
	vhost := amqpURL[strings.LastIndex(amqpURL, "/")+1:]
	id := strconv.FormatUint(rand.Uint64(), 36)
	declareRabbit(t, amqpURL, "soak.in."+id, "soak.out."+id, "soak.sink."+id)
	outURL := fauxqsQueue(t, sqsClient(endpoint), "soak-out-"+id, map[string]string{"VisibilityTimeout": "2"})
	tmpl := strings.NewReplacer("${BROKERS}", e.kafka.brokersYAML(),
		"${AMQP_URL}", "amqp://guest:guest@"+e.rabbit.addr()+"/"+vhost, "${IN_QUEUE}", "soak.in."+id,
		"${OUT_EXCHANGE}", "soak.out."+id, "${SQS_PROXY}", e.aws.addr(), "${OUT_URL}", outURL).Replace(soakConfig)
	e.dir = filepath.Join(e.disk, "data")
	e.cfg, e.http, e.sqs = writeConfig(t, e.dir, tmpl)
	e.in = startArgs(t, binary, e.cfg, e.http, e.sqs, e.dir, "--pprof", e.pprof)
	e.amqpURL, e.id, e.fauxqs, e.outURL = amqpURL, id, endpoint, outURL
	return e
}

// soakWorkers are the workload's parts that the report counts.
type soakWorkers struct {
	http          *httpProducer
	kafka         *kafkaProducer
	amqp          *amqpProducer
	queueWorkers  []*sqsWorker
	fauxqsWorkers []*sqsWorker
}

func (w *soakWorkers) failed() int64 {
	var n int64
	for _, x := range append(slices.Clone(w.queueWorkers), w.fauxqsWorkers...) {
		n += x.failed.Load()
	}
	return n
}

func (w *soakWorkers) inputs() string {
	return fmt.Sprintf("HTTP %d, Kafka %d, RabbitMQ %d", w.http.posted.Load(), w.kafka.posted.Load(), w.amqp.posted.Load())
}

// startSoakWorkload starts the producers (about 200 inputs/s in all:
// modest, so that the suite stays light on a shared 2-core machine) and
// the consumers of the five sinks.
func startSoakWorkload(t *testing.T, e *soakEnv, l *ledger, producers, consumers *group) *soakWorkers {
	t.Helper()
	amqpURL, id := e.amqpURL, e.id
	direct := []kgo.Opt{kgo.SeedBrokers(e.kafka.ListenAddrs()...), kgo.Dialer(e.kafka.dial)}
	producer, err := kgo.NewClient(direct...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	w := &soakWorkers{
		http: &httpProducer{url: func() string { return e.cur().httpURL }, topic: "orders", batch: 10, rate: 10,
			sinks: soakSinks, ledger: l, seq: newKeyedSeq("h-", 32)},
		kafka: &kafkaProducer{client: producer, topic: "in", batch: 10, rate: 5, sinks: soakSinks, ledger: l, seq: newKeyedSeq("k-", 32)},
		amqp:  &amqpProducer{url: amqpURL, queue: "soak.in." + id, batch: 10, rate: 5, sinks: soakSinks, ledger: l, seq: newKeyedSeq("a-", 32)},
	}
	producers.Go(w.http.run)
	producers.Go(func(ctx context.Context) { w.kafka.run(ctx, t) })
	producers.Go(func(ctx context.Context) { w.amqp.run(ctx, t) })

	bridgeSQS := sqsClient(e.cur().sqsURL) // the same ports across restarts
	for range 2 {
		qw := &sqsWorker{client: bridgeSQS, queueURL: e.cur().sqsURL + "/000000000000/work", sink: "queue", ledger: l, failRate: 0.05}
		w.queueWorkers = append(w.queueWorkers, qw)
		consumers.Go(qw.run)
	}
	fifo := &sqsWorker{client: bridgeSQS, queueURL: e.cur().sqsURL + "/000000000000/ordered.fifo", sink: "fifo", ledger: l, failRate: 0.05, fifo: true}
	w.queueWorkers = append(w.queueWorkers, fifo)
	consumers.Go(fifo.run)
	fauxqsClient := sqsClient(e.fauxqs)
	for range 2 {
		fw := &sqsWorker{client: fauxqsClient, queueURL: e.outURL, sink: "sqs-out", ledger: l, failRate: 0.05}
		w.fauxqsWorkers = append(w.fauxqsWorkers, fw)
		consumers.Go(fw.run)
	}
	consumers.Go(func(ctx context.Context) { consumeKafka(ctx, t, direct, "out", "kafka-out", l) })
	consumers.Go(func(ctx context.Context) { consumeAMQP(ctx, amqpURL, "soak.sink."+id, "amqp-out", l) })
	return w
}

// sampler records the bridge process's resources at quiet moments (just
// before each fault, and after the final drain).
type sampler struct {
	e    *soakEnv
	mu   sync.Mutex
	life map[int][]procSample // by pid: a restart starts a new life
	pids []int
}

func newSampler(e *soakEnv) *sampler { return &sampler{e: e, life: map[int][]procSample{}} }

func (s *sampler) take(t *testing.T, _ string) {
	in := s.e.cur()
	pid := in.cmd.Process.Pid
	sample, err := sampleProcess(pid, "http://"+s.e.pprof)
	if err != nil {
		t.Logf("sample of pid %d: %v", pid, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.life[pid]; !ok {
		s.pids = append(s.pids, pid)
	}
	s.life[pid] = append(s.life[pid], sample)
}

// last is the samples of the current process life.
func (s *sampler) last() []procSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pids) == 0 {
		return nil
	}
	return s.life[s.pids[len(s.pids)-1]]
}

// leaks compares the first and the last third of the current life's
// samples, dropping the first (warm-up): goroutines, open files and RSS
// must not grow beyond noise. It needs at least 4 samples.
func (s *sampler) leaks() []string {
	all := s.last()
	if len(all) < 5 {
		return nil
	}
	all = all[1:]
	third := max(1, len(all)/3)
	first, lastThird := all[:third], all[len(all)-third:]
	med := func(xs []procSample, f func(procSample) int64) int64 {
		v := make([]int64, len(xs))
		for i, x := range xs {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var out []string
	check := func(what string, f func(procSample) int64, slack func(int64) int64) {
		a, b := med(first, f), med(lastThird, f)
		if b > a+slack(a) {
			out = append(out, fmt.Sprintf("leak: %s grew from %d (median of the first third) to %d (median of the last third)", what, a, b))
		}
	}
	check("goroutines", func(p procSample) int64 { return int64(p.goroutines) }, func(a int64) int64 { return a/4 + 30 })
	check("open files", func(p procSample) int64 { return int64(p.fds) }, func(a int64) int64 { return a/4 + 20 })
	check("RSS KiB", func(p procSample) int64 { return p.rssKiB }, func(a int64) int64 { return a/2 + 64<<10 })
	return out
}

// soakReport is the table of docs/reliability.md.
type soakReport struct {
	duration       time.Duration
	began          time.Time
	faults         []string
	ledger         ledgerReport
	samples        *sampler
	workerFailures int64
	inputs         string
	leaks          []string
}

func (r soakReport) String() string {
	var b strings.Builder
	life := r.samples.last()
	var maxRSS int64
	var g0, g1, f0, f1 int
	for _, s := range life {
		maxRSS = max(maxRSS, s.rssKiB)
	}
	if len(life) > 0 {
		g0, f0 = life[0].goroutines, life[0].fds
		g1, f1 = life[len(life)-1].goroutines, life[len(life)-1].fds
	}
	leak := "none"
	if len(r.leaks) > 0 {
		leak = strings.Join(r.leaks, "; ")
	}
	fmt.Fprintf(&b, "Soak of %v started %s on %d cores (load average at the end: %s)\n\n", r.duration, r.began.UTC().Format(time.RFC3339), runtime.NumCPU(), loadAvg())
	fmt.Fprintf(&b, "| faults injected | events (acknowledged inputs × sinks) | lost | duplicates | order violations | p99 latency under faults | max RSS | goroutines first → last | open files first → last | leak |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d inputs × 5 = %d | %d | %d | %d | %v | %.0f MiB | %d → %d | %d → %d | %s |\n\n",
		len(r.faults), r.ledger.Acked, r.ledger.Deliveries, r.ledger.Lost, r.ledger.Duplicates, r.ledger.OrderViolations,
		r.ledger.P99.Round(time.Millisecond), float64(maxRSS)/1024, g0, g1, f0, f1, leak)
	fmt.Fprintf(&b, "Inputs acknowledged: %s. Worker failures (received, not deleted, delivered again): %d.\n\n", r.inputs, r.workerFailures)
	fmt.Fprintf(&b, "Per sink:\n\n```\n%s```\n\n", r.ledger.String())
	counts := map[string]int{}
	for _, f := range r.faults {
		counts[f]++
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(&b, "Faults (each held for its duration, then 12 s or more clean, every 20 s):\n\n")
	for _, n := range names {
		fmt.Fprintf(&b, "- %s × %d\n", n, counts[n])
	}
	return b.String()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
