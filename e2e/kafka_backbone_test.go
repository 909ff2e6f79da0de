package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const kafkaBackboneConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
sqs_api: { listen: "${SQS}" }
connections:
  k: { type: kafka, brokers: [${BROKERS}] }
backbone:
  type: kafka
  connection: k
  topics:
    orders: { partitions: 6 }
    even:   { partitions: 6 }
pipelines:
  - name: evens
    from: orders
    filter: 'body.n % 2 == 0'
    routes:
      - name: even
        to: { topic: even }
`

// TestKafkaBackboneScaleOut runs two bridge processes on one Kafka cluster
// (kfake, the real Kafka protocol) with Kafka as the backbone. They split
// the pipeline's partitions; when one is killed with SIGKILL, the other
// takes its partitions over from the last commit, and every event that
// passes the filter reaches the output at least once.
func TestKafkaBackboneScaleOut(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := `"` + strings.Join(cluster.ListenAddrs(), `","`) + `"`
	cfgText := strings.ReplaceAll(kafkaBackboneConfig, "${BROKERS}", brokers)

	dataA, dataB := t.TempDir(), t.TempDir()
	cfgA, httpA, sqsA := writeConfig(t, dataA, cfgText)
	cfgB, httpB, sqsB := writeConfig(t, dataB, cfgText)
	a := start(t, cfgA, httpA, sqsA, dataA)
	b := start(t, cfgB, httpB, sqsB, dataB)

	owned := func(in *instance) int {
		var st pipelineStatus2
		getJSON(t, in.httpURL+"/v1/pipelines/evens", &st)
		return len(st.Routes[0].Partitions)
	}
	waitFor(t, 60*time.Second, func() error {
		if oa, ob := owned(a), owned(b); oa != 3 || ob != 3 {
			return fmt.Errorf("processes own %d and %d of 6 partitions", oa, ob)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	post := func(in *instance, from, n int) {
		var evs []map[string]any
		for i := from; i < from+n; i++ {
			evs = append(evs, map[string]any{"key": "k" + strconv.Itoa(i%20), "value": map[string]any{"n": i}})
			if len(evs) == 100 {
				if code, body, err := postEvents(ctx, in.httpURL, "orders", evs); err != nil || code != 200 {
					t.Fatalf("post: %d %v %v", code, body, err)
				}
				evs = evs[:0]
			}
		}
	}
	post(a, 0, 2000)
	post(b, 2000, 2000)
	// Kill A while it works; B must take over its partitions.
	a.kill()
	waitFor(t, 90*time.Second, func() error {
		if ob := owned(b); ob != 6 {
			return fmt.Errorf("survivor owns %d of 6 partitions", ob)
		}
		return nil
	})
	post(b, 4000, 2000)

	// Read the output topic with a plain Kafka client until every even n
	// is there.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("even"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[int]int{}
	for len(seen) < 3000 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			var v struct{ N int }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Errorf("output %q: %v", r.Value, err)
			}
			if v.N%2 != 0 {
				t.Errorf("odd %d passed the filter", v.N)
			}
			seen[v.N]++
		})
	}
	dups := 0
	for n := 0; n < 6000; n += 2 {
		if seen[n] == 0 {
			t.Fatalf("event %d missing from the output (%d of 3000 seen)", n, len(seen))
		}
		dups += seen[n] - 1
	}
	t.Logf("6000 events through two processes sharing a Kafka backbone, one SIGKILLed: 3000 selected, 0 missing, %d duplicates", dups)
	if code := b.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

type pipelineStatus2 struct {
	Routes []struct {
		Partitions []struct {
			Partition int32 `json:"partition"`
		} `json:"partitions"`
	} `json:"routes"`
}
