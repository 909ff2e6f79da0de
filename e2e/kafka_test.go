package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const kafkaBridgeConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
sqs_api: { listen: "${SQS}" }
connections:
  k: { type: kafka, brokers: [${BROKERS}] }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 4 }
sources:
  - { name: kin, type: kafka, connection: k, topics: [in], group: bridge-e2e, topic: orders }
pipelines:
  - name: forward
    from: orders
    filter: 'body.n % 2 == 0'
    routes:
      - name: out
        to: { kafka: { connection: k, topic: out } }
    retry: { initial_backoff: 50ms, max_backoff: 1s }
`

func kafkaConfig(c *kfake.Cluster) string {
	return strings.ReplaceAll(kafkaBridgeConfig, "${BROKERS}", `"`+strings.Join(c.ListenAddrs(), `","`)+`"`)
}

type outRecord struct {
	n       int
	key     string
	headers map[string]string
}

// consumeAll reads topic from the start until want distinct n are seen or
// ctx ends.
func consumeAll(ctx context.Context, t *testing.T, brokers []string, topic string, want int) map[int][]outRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[int][]outRecord{}
	for len(seen) < want && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var v struct{ N int }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Errorf("output %q: %v", r.Value, err)
				return
			}
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[h.Key] = string(h.Value)
			}
			seen[v.N] = append(seen[v.N], outRecord{v.N, string(r.Key), hs})
		})
	}
	return seen
}

// TestKafkaToKafkaAcrossKills: Kafka topic → bridge source → backbone →
// filter → Kafka sink, with the bridge SIGKILLed three times mid-stream.
// Every input that passes the filter reaches the output at least once,
// with its key and headers, in order per key.
func TestKafkaToKafkaAcrossKills(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, kafkaConfig(cluster))
	in := start(t, cfg, httpAddr, sqsAddr, data)

	const total, keys = 20_000, 50
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for from := 0; from < total; from += 500 {
			var rs []*kgo.Record
			for n := from; n < from+500; n++ {
				rs = append(rs, &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(n%keys)),
					Value:   fmt.Appendf(nil, `{"n":%d}`, n),
					Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t" + strconv.Itoa(n))}, {Key: "seq", Value: []byte(strconv.Itoa(n / keys))}}})
			}
			if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			time.Sleep(300 * time.Millisecond) // ~12 s of input, across the kills
		}
	})
	// Each kill hits a process that owns partitions and is consuming. (A
	// process killed while its JoinGroup is still pending is a case kfake
	// gets wrong: such a member never expires, and its partitions stay
	// assigned to it forever; real brokers expire it after the session
	// timeout.) The dead member's partitions move to the new process after
	// the connection's session timeout (10 s by default).
	for range 3 {
		waitFor(t, time.Minute, func() error {
			if !strings.Contains(in.stderr.String(), "kafka partitions assigned") {
				return fmt.Errorf("no partitions assigned yet")
			}
			return nil
		})
		time.Sleep(time.Second)
		in.kill()
		in = start(t, cfg, httpAddr, sqsAddr, data)
	}
	wg.Wait()
	seen := consumeAll(ctx, t, cluster.ListenAddrs(), "out", total/2)
	lastSeq := map[string]int{}
	dups := 0
	for n := 0; n < total; n += 2 {
		recs := seen[n]
		if len(recs) == 0 {
			t.Fatalf("input %d missing from the output (%d of %d seen)", n, len(seen), total/2)
		}
		dups += len(recs) - 1
		r := recs[0]
		if r.key != "k"+strconv.Itoa(n%keys) || r.headers["trace"] != "t"+strconv.Itoa(n) || r.headers["bridge-event-id"] == "" {
			t.Fatalf("output %d lost its key or headers: %+v", n, r)
		}
	}
	// Per-key order: within the output partition of a key, first
	// occurrences must come in input order. Checked on a fresh read in
	// partition order.
	cl, _ := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	firstSeen := map[int]bool{}
	for len(firstSeen) < total/2 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			var v struct{ N int }
			_ = json.Unmarshal(r.Value, &v)
			if firstSeen[v.N] {
				return
			}
			firstSeen[v.N] = true
			seq := v.N / keys
			if prev, ok := lastSeq[string(r.Key)]; ok && seq < prev {
				t.Errorf("key %s: seq %d after %d", r.Key, seq, prev)
			}
			lastSeq[string(r.Key)] = seq
		})
	}
	t.Logf("%d inputs, 3 SIGKILLs: %d selected, 0 missing, %d duplicates", total, total/2, dups)
	_ = in.stop()
}

// TestKafkaOutage: the Kafka cluster goes away while events keep arriving
// over HTTP. bridge keeps answering 200 (the backbone is the buffer),
// retries the sink with backoff, and delivers everything once Kafka is back.
func TestKafkaOutage(t *testing.T) {
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	newCluster := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.Ports(ports...), kfake.SeedTopics(6, "in", "out"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cluster := newCluster()
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, kafkaConfig(cluster))
	in := start(t, cfg, httpAddr, sqsAddr, data)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	post := func(from, n int) {
		var evs []map[string]any
		for i := from; i < from+n; i++ {
			evs = append(evs, map[string]any{"key": "k" + strconv.Itoa(i%10), "value": map[string]any{"n": i}})
		}
		if code, body, err := postEvents(ctx, in.httpURL, "orders", evs); err != nil || code != 200 {
			t.Fatalf("post during outage: %d %v %v", code, body, err)
		}
	}
	cluster.Close() // outage
	for i := range 10 {
		post(i*100, 100) // accepted while Kafka is down
		time.Sleep(100 * time.Millisecond)
	}
	var st struct {
		Routes []struct {
			Retries int64 `json:"retries"`
			Lag     int64 `json:"lag"`
		} `json:"routes"`
	}
	waitFor(t, 30*time.Second, func() error {
		getJSON(t, in.httpURL+"/v1/pipelines/forward", &st)
		if st.Routes[0].Retries == 0 {
			return fmt.Errorf("no retries yet")
		}
		return nil
	})
	cluster = newCluster() // Kafka is back, on the same ports
	defer cluster.Close()
	post(1000, 100)
	seen := consumeAll(ctx, t, cluster.ListenAddrs(), "out", 550)
	for n := 0; n < 1100; n += 2 {
		if len(seen[n]) == 0 {
			t.Fatalf("event %d posted during the outage never reached Kafka (%d of 550)", n, len(seen))
		}
	}
	getJSON(t, in.httpURL+"/v1/pipelines/forward", &st)
	t.Logf("1,000 events accepted during the outage, %d retries, all 550 selected delivered after recovery", st.Routes[0].Retries)
	_ = in.stop()
}
