package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRabbitToKafkaVerified moves a RabbitMQ queue to a Kafka topic in
// drain mode with verification and checks the report, the records and
// the position map.
func TestRabbitToKafkaVerified(t *testing.T) {
	const n = 600
	queue := newQueue(t)
	publish(t, queue, n, 100, 7)
	kc := newKafka(t)
	brokers := kc.ListenAddrs()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := Run(ctx, Config{From: rabbitURL() + "?queue=" + queue,
		To: "kafka://" + strings.Join(brokers, ",") + "/migrated", StateDir: dir, Verify: true, Idle: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Stopped != "drained" || sum.Moved != n || sum.Sent != n {
		t.Fatalf("summary %+v, want drained with %d moved and sent", sum, n)
	}
	r := sum.Report
	if r == nil || !r.OK || r.SourceCount != n || r.TargetCount != n || r.Missing != 0 || r.Extra != 0 || r.Duplicates != 0 ||
		r.OrderViolations != 0 || r.Mismatched != 0 {
		t.Fatalf("report %+v", r)
	}
	recs := consumeAll(t, brokers, "migrated", n)
	for i, rec := range recs {
		if !strings.HasPrefix(string(rec.Value), strings.Repeat("0", 8-len(itoa(i)))+itoa(i)) {
			t.Fatalf("record %d has value %q: order lost", i, rec.Value[:8])
		}
		hs := map[string]string{}
		for _, h := range rec.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs["seq"] != itoa(i) || hs["amqp.message_id"] != "m-"+itoa(i) || hs["amqp.content_type"] != "text/plain" ||
			string(rec.Key) != "k-"+itoa(i%7) || hs["bridge-event-id"] == "" {
			t.Fatalf("record %d: key %q headers %v", i, rec.Key, hs)
		}
	}
	f, err := os.Open(filepath.Join(dir, "positions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		var p position
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.SourceID != "m-"+itoa(p.Seq) || p.Status != "delivered" || p.Target == nil || *p.Target != "migrated/0/"+itoa(p.Seq) {
			t.Fatalf("position line %s", sc.Text())
		}
		lines++
	}
	if lines != n {
		t.Fatalf("position map has %d lines, want %d", lines, n)
	}

	// A rerun finds nothing to move and only verifies.
	sum, err = Run(ctx, Config{From: rabbitURL() + "?queue=" + queue, To: "kafka://" + strings.Join(brokers, ",") + "/migrated",
		StateDir: dir, Verify: true, Idle: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Moved != 0 || sum.Report == nil || !sum.Report.OK || sum.Report.TargetCount != n {
		t.Fatalf("rerun: %+v report %+v", sum, sum.Report)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
