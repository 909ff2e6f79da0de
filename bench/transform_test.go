package bench

// Transforms side by side with Redpanda Connect's engine (Benthos v4.60.0,
// the `mapping` processor) on the same events in the same run (issue 12):
//
//	cd bench && go test -run '^$' -bench 'Transform' -benchtime 3x
//
// The transform removes two fields and adds one computed from the body:
//
//	bridge:  value: merge(omit(body, "customer", "items"), {"amount_cents": body.amount * 100})
//	benthos: root = this.without("customer", "items")
//	         root.amount_cents = this.amount * 100
//
// BenchmarkTransformPipeline gives Benthos the easier job: its stream reads
// from and writes to memory (a producer and a consumer function), while
// bridge reads a topic of its on-disk log and appends to another (fsync
// interval), with checkpoints. BenchmarkTransformPipelineSeparate runs the
// two sides of BenchmarkTransformPipeline each in a process of its own (the
// figure to quote). BenchmarkTransformProcessor compares the transform step
// alone, message by message.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure" // the mapping processor
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/rules"
)

const (
	bridgeTransform = `merge(omit(body, "customer", "items"), {"amount_cents": body.amount * 100})`
	benthosMapping  = "root = this.without(\"customer\", \"items\")\nroot.amount_cents = this.amount * 100"
	transformEvents = 300_000
	// benthosProducers is the number of batches in flight into Benthos.
	benthosProducers = 2
)

// orderValue is the ~200-byte order of engine's BenchmarkPipelineTopicToTopic.
func orderValue(i int) []byte {
	regions := []string{"eu", "us", "apac"}
	types := []string{"order.created", "order.created", "order.paid"}
	return fmt.Appendf(nil, `{"type":%q,"order_id":"order-%07d","customer":"customer-%05d","region":%q,"amount":%d,"currency":"EUR","items":["sku-%d","sku-%d"]}`,
		types[i%3], i, i%9973, regions[i%3], 50+i%200, i%97, i%89)
}

// BenchmarkTransformProcessor: the transform step alone, on 1024 events.
func BenchmarkTransformProcessor(b *testing.B) {
	values := make([][]byte, 1024)
	for i := range values {
		values[i] = orderValue(i)
	}
	b.Run("bridge", func(b *testing.B) {
		value, err := rules.Compile(bridgeTransform, rules.Value)
		if err != nil {
			b.Fatal(err)
		}
		tr := &rules.Transform{Step: "pipeline", Value: value}
		env := rules.NewEnv()
		var buf rules.Buffer
		out := make([]event.Event, 0, 1)
		evs := make([]event.Event, len(values))
		for i := range evs {
			evs[i] = event.Event{Topic: "in", Offset: int64(i), Value: values[i]}
		}
		b.ReportAllocs()
		n := 0
		start, cpu := time.Now(), cpuTime()
		for b.Loop() {
			ev := &evs[n%len(evs)]
			if n%len(evs) == 0 {
				buf.Reset() // as the engine does per fetched batch
			}
			env.Reset(ev)
			if out, err = tr.Apply(env, ev, out[:0], &buf); err != nil || len(out) != 1 {
				b.Fatal(err)
			}
			n++
		}
		reportRates(b, n, start, cpu)
	})
	b.Run("benthos-mapping", func(b *testing.B) {
		exe, err := bloblang.Parse(benthosMapping)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		n := 0
		start, cpu := time.Now(), cpuTime()
		for b.Loop() {
			msg := service.NewMessage(values[n%len(values)])
			res, err := msg.BloblangQuery(exe)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := res.AsBytes(); err != nil {
				b.Fatal(err)
			}
			n++
		}
		reportRates(b, n, start, cpu)
	})
}

// reportRates reports events/s (wall) and the process's CPU time per event,
// which is steadier on a shared machine.
func reportRates(b *testing.B, n int, start time.Time, cpu time.Duration) {
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/event")
}

// cpuTime is the CPU time this process used so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTransformPipeline: 300,000 events through a whole pipeline.
// Both sides share this process when run together: for figures, prefer
// BenchmarkTransformPipelineSeparate.
func BenchmarkTransformPipeline(b *testing.B) {
	b.Run("bridge", benchBridgePipeline)
	b.Run("benthos", benchBenthosPipeline)
}

// BenchmarkTransformPipelineSeparate runs each side of
// BenchmarkTransformPipeline in a process of its own (this test binary run
// again with -test.bench naming one side, 3 iterations of 300,000 events),
// alternating bridge and Benthos once per iteration: the same events in
// the same run, but neither side's heap, goroutines or GC in the other's
// process. It reports each side's CPU per event and events/s (means over
// the iterations) and Benthos's CPU per event over bridge's.
func BenchmarkTransformPipelineSeparate(b *testing.B) {
	sides := []string{"bridge", "benthos"}
	cpu := map[string][]float64{}
	rate := map[string][]float64{}
	for b.Loop() {
		for _, side := range sides {
			out, err := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkTransformPipeline$/^"+side+"$",
				"-test.benchtime=3x", "-test.count=1").CombinedOutput()
			if err != nil {
				b.Fatalf("%s: %v\n%s", side, err, out)
			}
			c, r, ok := parseTransformBench(string(out))
			if !ok {
				b.Fatalf("%s: no cpu-ns/event and events/s in\n%s", side, out)
			}
			cpu[side] = append(cpu[side], c)
			rate[side] = append(rate[side], r)
		}
	}
	for _, side := range sides {
		b.ReportMetric(mean(cpu[side]), side+"-cpu-ns/event")
		b.ReportMetric(mean(rate[side]), side+"-events/s")
	}
	b.ReportMetric(mean(cpu["benthos"])/mean(cpu["bridge"]), "cpu-ratio")
}

// parseTransformBench reads cpu-ns/event and events/s off a benchmark line.
func parseTransformBench(out string) (cpu, rate float64, ok bool) {
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "BenchmarkTransformPipeline/") {
			continue
		}
		f := strings.Fields(line)
		var gotCPU, gotRate bool
		for i := 1; i < len(f); i++ {
			v, err := strconv.ParseFloat(f[i-1], 64)
			if err != nil {
				continue
			}
			switch f[i] {
			case "cpu-ns/event":
				cpu, gotCPU = v, true
			case "events/s":
				rate, gotRate = v, true
			}
		}
		return cpu, rate, gotCPU && gotRate
	}
	return 0, 0, false
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

const bridgeConfig = `
data_dir: /unused
backbone:
  topics:
    in:  { partitions: 4 }
    out: { partitions: 4 }
pipelines:
  - name: bench
    from: in
    transform:
      value: '` + bridgeTransform + `'
    routes:
      - to: { topic: out }
    on_error: drop
    batch_size: 1024
    max_in_flight: 1024
`

func benchBridgePipeline(b *testing.B) {
	l, err := commitlog.Open(commitlog.Options{Dir: b.TempDir(), Fsync: commitlog.FsyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for _, t := range []string{"in", "out"} {
		if err := l.CreateTopic(t, 4); err != nil {
			b.Fatal(err)
		}
	}
	batch := make([]event.Event, 0, 1000)
	for i := range transformEvents {
		batch = append(batch, event.Event{Key: fmt.Appendf(nil, "order-%07d", i), Value: orderValue(i), Source: "bench"})
		if len(batch) == cap(batch) {
			if _, err := l.Append(context.Background(), "in", batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	plan, err := pipelines.Parse("bench.yaml", []byte(bridgeConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	run := 0
	start, cpu := time.Now(), cpuTime()
	for b.Loop() {
		run++
		// A fresh pipeline name per run, so each run starts at the
		// beginning instead of the previous run's checkpoint.
		plan.Pipelines[0].Name = fmt.Sprintf("bench-%d", run)
		e, err := engine.Build(plan, engine.Deps{Backbone: engine.Embedded(l),
			Options: engine.Options{Logger: slog.New(slog.DiscardHandler)}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		for {
			st := e.Pipelines()[0].Routes[0]
			if st.Sent+st.Dropped+st.RuleErrors >= transformEvents {
				if st.Sent != transformEvents {
					b.Fatalf("sent %d of %d (rule errors %d)", st.Sent, transformEvents, st.RuleErrors)
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, b.N*transformEvents, start, cpu)
}

func benchBenthosPipeline(b *testing.B) {
	values := make([][]byte, transformEvents)
	for i := range values {
		values[i] = orderValue(i)
	}
	start, cpu := time.Now(), cpuTime()
	for b.Loop() {
		sb := service.NewStreamBuilder()
		sb.SetLogger(slog.New(slog.DiscardHandler))
		produce, err := sb.AddBatchProducerFunc()
		if err != nil {
			b.Fatal(err)
		}
		if err := sb.AddProcessorYAML("mapping: |\n  " + indent(benthosMapping)); err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		doneAll := make(chan struct{})
		if err := sb.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
			for _, m := range batch {
				if _, err := m.AsBytes(); err != nil {
					return err
				}
			}
			if got.Add(int64(len(batch))) == transformEvents {
				close(doneAll)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		stream, err := sb.Build()
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- stream.Run(ctx) }()
		// A producer waits for its batch's acknowledgement, so several
		// producers keep the stream's processing threads busy.
		var wg sync.WaitGroup
		var produceErr atomic.Pointer[error]
		for p := range benthosProducers {
			wg.Go(func() {
				for first := p * 1024; first < transformEvents; first += benthosProducers * 1024 {
					batch := make(service.MessageBatch, 0, 1024)
					for i := first; i < min(first+1024, transformEvents); i++ {
						batch = append(batch, service.NewMessage(values[i]))
					}
					if err := produce(ctx, batch); err != nil {
						produceErr.Store(&err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := produceErr.Load(); err != nil {
			b.Fatal(*err)
		}
		<-doneAll
		if err := stream.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		cancel()
		<-runErr
	}
	reportRates(b, b.N*transformEvents, start, cpu)
}

func indent(s string) string {
	out := ""
	for i, line := range splitLines(s) {
		if i > 0 {
			out += "\n  "
		}
		out += line
	}
	return out
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	return append(lines, s[start:])
}
