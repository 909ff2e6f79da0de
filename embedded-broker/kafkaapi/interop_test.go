package kafkaapi

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The interop suite drives bridge's listener with independent clients
// (kcat and rdkafka_performance on librdkafka, kafka-python, kafkajs) and
// runs the very same scenarios against kfake, the reference Kafka
// implementation, so that a scenario that passes on bridge but fails on
// kfake (or the reverse) shows the test, not the server, is wrong.
// scripts/ensure.d/kafka-clients.sh installs the clients and exports their
// paths; without them the suite fails unless BRIDGE_SKIP_KAFKA_INTEROP=1.

type interopTools struct {
	kcat, rdkafkaPerf, python, node, nodePath string
}

var printVersions sync.Once

func tools(t *testing.T) interopTools {
	t.Helper()
	tl := interopTools{kcat: os.Getenv("KAFKA_INTEROP_KCAT"), rdkafkaPerf: os.Getenv("KAFKA_INTEROP_RDKAFKA_PERFORMANCE"),
		python: os.Getenv("KAFKA_INTEROP_PYTHON"), node: os.Getenv("KAFKA_INTEROP_NODE"), nodePath: os.Getenv("KAFKA_INTEROP_NODE_PATH")}
	if tl.kcat == "" || tl.rdkafkaPerf == "" || tl.python == "" || tl.node == "" || tl.nodePath == "" {
		if os.Getenv("BRIDGE_SKIP_KAFKA_INTEROP") == "1" {
			t.Skip("BRIDGE_SKIP_KAFKA_INTEROP=1")
		}
		t.Fatal("Kafka interop clients not configured: run scripts/test.sh, or source scripts/ensure.d/kafka-clients.sh " +
			"(KAFKA_INTEROP_* variables), or set BRIDGE_SKIP_KAFKA_INTEROP=1 to skip")
	}
	printVersions.Do(func() {
		out, _ := exec.Command(tl.kcat, "-V").CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "ersion") {
				t.Logf("kcat: %s", strings.TrimSpace(l))
			}
		}
		t.Logf("rdkafka_performance: built from librdkafka-dev's example source (%s)", tl.rdkafkaPerf)
		out, _ = exec.Command(tl.python, "-c", "import kafka; print('kafka-python', kafka.__version__)").CombinedOutput()
		t.Logf("%s", bytes.TrimSpace(out))
		out, _ = exec.Command(tl.node, "-e", "console.log('kafkajs', require('"+tl.nodePath+"/kafkajs/package.json').version)").CombinedOutput()
		t.Logf("%s", bytes.TrimSpace(out))
	})
	return tl
}

// target is a Kafka-protocol server under test: bridge or kfake.
type target struct {
	name   string
	addr   string
	create func(t *testing.T, topic string, partitions int)
	drops  *atomic.Int64 // retry targets: produce responses dropped so far
}

func startTargets(t *testing.T) []target {
	ts := startServer(t, "", nil)
	bridge := target{name: "bridge", addr: ts.addr, create: func(t *testing.T, topic string, partitions int) { ts.topic(topic, partitions) }}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ref := target{name: "kfake", addr: c.ListenAddrs()[0], create: func(t *testing.T, topic string, partitions int) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).CreateTopic(ctxT(t, 10*time.Second), int32(partitions), 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}}
	return []target{bridge, ref}
}

// runClient runs a client process with a deadline and returns its stdout.
func runClient(t *testing.T, tl interopTools, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), "NODE_PATH="+tl.nodePath), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(name), strings.Join(args, " "), err, tail(stdout.String()), tail(stderr.String()))
	}
	return stdout.String()
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

func script(name string) string {
	p, _ := filepath.Abs(filepath.Join("testdata", "interop", name))
	return p
}

// readValues consumes a topic from the start with franz-go until want
// records arrived, and returns their values (and the records).
func readValues(t *testing.T, addr, topic string, want int) ([]string, []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := consume(t, cl, want, 30*time.Second)
	var values []string
	for _, r := range recs {
		values = append(values, string(r.Value))
	}
	sort.Strings(values)
	return values, recs
}

func expected(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	sort.Strings(out)
	return out
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: got %d values, want %d\n got %v\nwant %v", what, len(got), len(want), first(got), first(want))
	}
}

func first(s []string) []string { return s[:min(len(s), 8)] }

var codecNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func TestInteropProduceCompressed(t *testing.T) {
	t.Parallel()
	tl := tools(t)
	for _, tg := range startTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, codec := range codecNames {
				// kcat: lines from stdin, key:value.
				topic := "kcat-" + codec
				tg.create(t, topic, 2)
				var in strings.Builder
				for i := range 50 {
					fmt.Fprintf(&in, "k%d:kcat-%s-%d\n", i, codec, i)
				}
				cmd := exec.Command(tl.kcat, "-P", "-b", tg.addr, "-t", topic, "-z", codec, "-K", ":", "-H", "h=1", "-X", "enable.idempotence=true")
				cmd.Stdin = strings.NewReader(in.String())
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("kcat produce %s: %v: %s", codec, err, out)
				}
				got, recs := readValues(t, tg.addr, topic, 50)
				sameStrings(t, "kcat "+codec, got, expected("kcat-"+codec, 50))
				if len(recs[0].Headers) != 1 || recs[0].Headers[0].Key != "h" || !bytes.HasPrefix(recs[0].Key, []byte("k")) {
					t.Fatalf("kcat %s: key %q headers %v", codec, recs[0].Key, recs[0].Headers)
				}

				topic = "python-" + codec
				tg.create(t, topic, 2)
				runClient(t, tl, nil, tl.python, script("kafka_python.py"), "produce", tg.addr, topic, "60", codec, "py-"+codec)
				got, _ = readValues(t, tg.addr, topic, 60)
				sameStrings(t, "kafka-python "+codec, got, expected("py-"+codec, 60))

				topic = "kafkajs-" + codec
				tg.create(t, topic, 2)
				runClient(t, tl, nil, tl.node, script("kafkajs.js"), "produce", tg.addr, topic, "60", codec, "js-"+codec, "idempotent")
				got, _ = readValues(t, tg.addr, topic, 60)
				sameStrings(t, "kafkajs "+codec, got, expected("js-"+codec, 60))
			}
		})
	}
}

// TestInteropRdkafkaPerformance: librdkafka's benchmark client produces
// 100-byte messages with idempotence and each codec, then consumes them.
func TestInteropRdkafkaPerformance(t *testing.T) {
	t.Parallel()
	tl := tools(t)
	for _, tg := range startTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, codec := range codecNames {
				topic := "rdperf-" + codec
				tg.create(t, topic, 1)
				out := runClient(t, tl, nil, tl.rdkafkaPerf, "-P", "-t", topic, "-p", "0", "-b", tg.addr, "-s", "100", "-c", "2000",
					"-z", codec, "-X", "enable.idempotence=true", "-X", "linger.ms=5")
				if !strings.Contains(out, "2000 messages") {
					t.Fatalf("rdkafka_performance produce %s: %s", codec, tail(out))
				}
				got, _ := readValues(t, tg.addr, topic, 2000)
				if len(got) != 2000 {
					t.Fatalf("%s: %d records in the topic, want 2000", codec, len(got))
				}
				out = runClient(t, tl, nil, tl.rdkafkaPerf, "-C", "-t", topic, "-p", "0", "-b", tg.addr, "-o", "beginning", "-c", "2000")
				if !strings.Contains(out, "2000 messages") {
					t.Fatalf("rdkafka_performance consume %s: %s", codec, tail(out))
				}
			}
		})
	}
}

// TestInteropConsume: records produced by franz-go (keys, headers) are
// read back by each client from the beginning.
func TestInteropConsume(t *testing.T) {
	t.Parallel()
	tl := tools(t)
	for _, tg := range startTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			tg.create(t, "src", 3)
			cl, err := kgo.NewClient(kgo.SeedBrokers(tg.addr), kgo.DefaultProduceTopic("src"), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var recs []*kgo.Record
			for i := range 90 {
				recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "src-%d", i),
					Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}})
			}
			if err := cl.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want := expected("src", 90)
			out := runClient(t, tl, nil, tl.kcat, "-C", "-b", tg.addr, "-t", "src", "-o", "beginning", "-e", "-q", "-f", "%s\n")
			sameStrings(t, "kcat consume", lines(out), want)
			out = runClient(t, tl, nil, tl.kcat, "-C", "-b", tg.addr, "-t", "src", "-o", "beginning", "-e", "-q", "-f", "%k|%h\n")
			for _, l := range lines(out) {
				if !strings.HasPrefix(l, "k") || !strings.HasSuffix(l, "|h=v") {
					t.Fatalf("kcat key|headers line %q", l)
				}
			}
			out = runClient(t, tl, nil, tl.python, script("kafka_python.py"), "consume", tg.addr, "src", "90")
			sameStrings(t, "kafka-python consume", lines(out), want)
			out = runClient(t, tl, nil, tl.node, script("kafkajs.js"), "group", tg.addr, "src", "js-consume", "90")
			sameStrings(t, "kafkajs consume", lines(out), want)
		})
	}
}

// TestInteropGroupCommitResume: each client consumes in a group, commits
// and leaves; after more records arrive, the same group resumes with
// exactly the new ones.
func TestInteropGroupCommitResume(t *testing.T) {
	t.Parallel()
	tl := tools(t)
	for _, tg := range startTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			produce := func(topic, prefix string, from, n int) {
				cl, err := kgo.NewClient(kgo.SeedBrokers(tg.addr), kgo.DefaultProduceTopic(topic))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				var recs []*kgo.Record
				for i := from; i < from+n; i++ {
					recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "%s-%d", prefix, i)})
				}
				if err := cl.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			type client struct {
				name string
				run  func(topic, group string, n int) []string
			}
			clients := []client{
				{"kafka-python", func(topic, group string, n int) []string {
					return lines(runClient(t, tl, nil, tl.python, script("kafka_python.py"), "group", tg.addr, topic, group, fmt.Sprint(n)))
				}},
				{"kafkajs", func(topic, group string, n int) []string {
					return lines(runClient(t, tl, nil, tl.node, script("kafkajs.js"), "group", tg.addr, topic, group, fmt.Sprint(n)))
				}},
				{"kcat", func(topic, group string, n int) []string {
					// -G consumes as a group member; -e exits at the end of
					// every partition, committing on close.
					return lines(runClient(t, tl, nil, tl.kcat, "-b", tg.addr, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", "-f", "%s\n",
						"-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100", topic))
				}},
			}
			for _, c := range clients {
				topic := "resume-" + c.name
				tg.create(t, topic, 1)
				produce(topic, "a", 0, 40)
				sameStrings(t, c.name+" first run", c.run(topic, "g-"+c.name, 40), expected("a", 40))
				produce(topic, "a", 40, 25)
				got := c.run(topic, "g-"+c.name, 25)
				var want []string
				for i := 40; i < 65; i++ {
					want = append(want, fmt.Sprintf("a-%d", i))
				}
				sort.Strings(want)
				sameStrings(t, c.name+" resumed run", got, want)
			}
		})
	}
}

// TestInteropTwoMembers: two processes of one client join one group on a
// four-partition topic; every record reaches exactly one of them and both
// get some.
func TestInteropTwoMembers(t *testing.T) {
	t.Parallel()
	tl := tools(t)
	for _, tg := range startTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct {
				name string
				args func(topic string) (string, []string)
			}{
				{"kafka-python", func(topic string) (string, []string) {
					return tl.python, []string{script("kafka_python.py"), "member", tg.addr, topic, "two-py"}
				}},
				{"kafkajs", func(topic string) (string, []string) {
					return tl.node, []string{script("kafkajs.js"), "member", tg.addr, topic, "two-js"}
				}},
			} {
				topic := "two-" + c.name
				tg.create(t, topic, 4)
				twoMembers(t, tl, tg, topic, c.name, c.args)
			}
		})
	}
}

func twoMembers(t *testing.T, tl interopTools, tg target, topic, name string, args func(string) (string, []string)) {
	stop := filepath.Join(t.TempDir(), "stop")
	var outs [2]syncBuffer
	var cmds [2]*exec.Cmd
	for i := range 2 {
		bin, a := args(topic)
		cmds[i] = exec.Command(bin, a...)
		cmds[i].Env = append(os.Environ(), "NODE_PATH="+tl.nodePath, "STOP_FILE="+stop)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, c := range cmds {
			if c.ProcessState == nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	}()
	// Wait until both members hold partitions (the group's assignment,
	// read with kadm), then produce.
	cl, err := kgo.NewClient(kgo.SeedBrokers(tg.addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	group := map[string]string{"kafka-python": "two-py", "kafkajs": "two-js"}[name]
	deadline := time.Now().Add(90 * time.Second)
	for !bothAssigned(t, cl, group) {
		if time.Now().After(deadline) {
			described, err := kadm.NewClient(cl).DescribeGroups(ctxT(t, 5*time.Second), group)
			t.Fatalf("%s: the two members never split the partitions: %+v %v", name, described, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var recs []*kgo.Record
	for i := range 200 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "two-%d", i)})
	}
	if err := cl.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got [2][]string
	for time.Now().Before(deadline) {
		got[0], got[1] = lines(outs[0].String()), lines(outs[1].String())
		if len(got[0])+len(got[1]) >= 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("%s member: %v", name, err)
		}
	}
	got[0], got[1] = lines(outs[0].String()), lines(outs[1].String())
	if len(got[0]) == 0 || len(got[1]) == 0 {
		t.Fatalf("%s: members got %d and %d records; want both to get some", name, len(got[0]), len(got[1]))
	}
	all := append(append([]string{}, got[0]...), got[1]...)
	sort.Strings(all)
	sameStrings(t, name+" two members", all, expected("two", 200))
}

func bothAssigned(t *testing.T, cl *kgo.Client, group string) bool {
	described, err := kadm.NewClient(cl).DescribeGroups(ctxT(t, 5*time.Second), group)
	if err != nil {
		return false
	}
	g, ok := described[group]
	if !ok || g.State != "Stable" || len(g.Members) != 2 {
		return false
	}
	for _, m := range g.Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok || len(ca.Topics) == 0 || len(ca.Topics[0].Partitions) == 0 {
			return false
		}
	}
	return true
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
