package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const kafkaAPIConfig = `
data_dir: ${DATA}
http: { listen: ${HTTP} }
sqs_api: { listen: ${SQS} }
kafka_api: { listen: ${KAFKA} }
backbone:
  topics:
    orders: { partitions: 3 }
    big: { partitions: 1 }
pipelines:
  - name: big-orders
    from: orders
    filter: 'headers["kind"] == "order" && body.amount >= 100 && key != "" && timestamp.Year() == 2025'
    routes:
      - to: { topic: big }
`

// TestKafkaAPIPipeline: records produced by an unmodified Kafka client
// (franz-go, zstd batches) are events to pipelines like any other (key,
// headers, body, timestamp in the rule); what the pipeline writes is
// consumed back over the Kafka API in a consumer group, whose committed
// offsets survive kill -9.
func TestKafkaAPIPipeline(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	kafkaAddr := freeAddr(t)
	cfg, httpAddr, sqsAddr := writeConfig(t, data, strings.ReplaceAll(kafkaAPIConfig, "${KAFKA}", kafkaAddr))
	in := start(t, cfg, httpAddr, sqsAddr, data)

	prod, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic("orders"), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ts := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 100 {
		kind := "order"
		if i%10 == 3 {
			kind = "refund"
		}
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "c%d", i), Value: fmt.Appendf(nil, `{"amount":%d}`, i*10),
			Headers:   []kgo.RecordHeader{{Key: "kind", Value: []byte(kind)}, {Key: "n", Value: fmt.Appendf(nil, "%d", i)}},
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// i >= 10 (amount >= 100), minus the refunds (i%10 == 3): 81 records.
	const want = 81
	consumer := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumerGroup("e2e-readers"), kgo.ConsumeTopics("big"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	cl := consumer()
	var got []*kgo.Record
	for len(got) < 40 && ctx.Err() == nil {
		got = append(got, cl.PollRecords(ctx, 40-len(got)).Records()...)
	}
	for _, r := range got {
		var body struct{ Amount int }
		if err := json.Unmarshal(r.Value, &body); err != nil || body.Amount < 100 {
			t.Fatalf("record %s: %v %s", r.Key, err, r.Value)
		}
		n := headerValue(r, "n")
		if string(r.Key) != "c"+n || headerValue(r, "kind") != "order" || headerValue(r, "bridge-event-id") == "" {
			t.Fatalf("record lost its key or headers: key %q headers %v", r.Key, r.Headers)
		}
		var i int
		fmt.Sscan(n, &i)
		if !r.Timestamp.Equal(ts.Add(time.Duration(i) * time.Millisecond)) {
			t.Fatalf("record %d: timestamp %v, want the producer's", i, r.Timestamp)
		}
	}
	if err := cl.CommitRecords(ctx, got...); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	// kill -9 once the pipeline has checkpointed everything (else it would
	// forward again after the restart, at least once, as promised): the
	// group's committed offsets are durable; it resumes after them.
	waitFor(t, 30*time.Second, func() error {
		var st struct {
			Routes []struct {
				Partitions []struct {
					Checkpoint int64 `json:"checkpoint"`
					End        int64 `json:"end_offset"`
				} `json:"partitions"`
			} `json:"routes"`
		}
		getJSON(t, in.httpURL+"/v1/pipelines/big-orders", &st)
		for _, r := range st.Routes {
			for _, p := range r.Partitions {
				if p.Checkpoint != p.End {
					return fmt.Errorf("checkpoints %+v", r.Partitions)
				}
			}
		}
		return nil
	})
	in.kill()
	in = start(t, cfg, httpAddr, sqsAddr, data)
	adm, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	offsets, err := kadm.NewClient(adm).FetchOffsets(ctx, "e2e-readers")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offsets.Lookup("big", 0); !ok || o.At != 40 {
		t.Fatalf("committed offset after kill -9: %+v, want 40", o)
	}
	cl = consumer()
	defer cl.Close()
	var rest []*kgo.Record
	for len(rest) < want-40 && ctx.Err() == nil {
		rest = append(rest, cl.PollFetches(ctx).Records()...)
	}
	if len(rest) != want-40 || rest[0].Offset != 40 {
		t.Fatalf("resumed with %d records from offset %d, want %d from 40", len(rest), rest[0].Offset, want-40)
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	_ = os.Remove(cfg)
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
