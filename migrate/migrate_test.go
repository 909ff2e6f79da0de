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

	amqp091 "github.com/rabbitmq/amqp091-go"
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

// TestRabbitToRabbitVerified covers an AMQP target: the read-back consumes
// without acking and hands every message back, and the report is clean.
func TestRabbitToRabbitVerified(t *testing.T) {
	const n = 300
	src, dst := newQueue(t), newQueue(t)
	publish(t, src, n, 100, 5)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := Run(ctx, Config{From: rabbitURL() + "?queue=" + src, To: rabbitURL() + "?queue=" + dst,
		StateDir: dir, Verify: true, Idle: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Report
	if sum.Moved != n || r == nil || !r.OK || r.SourceCount != n || r.TargetCount != n || r.Missing != 0 ||
		r.Extra != 0 || r.Mismatched != 0 || r.OrderViolations != 0 {
		t.Fatalf("summary %+v report %+v", sum, r)
	}
	// Verification left every message in the target queue.
	conn, err := amqp091.Dial(rabbitURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(dst, true, false, false, false, nil)
	if err != nil || q.Messages != n {
		t.Fatalf("target queue holds %d messages after verify (%v), want %d", q.Messages, err, n)
	}
	d, ok, err := ch.Get(dst, true)
	if err != nil || !ok || d.MessageId != "m-0" || d.Headers["seq"] != "0" || d.Headers["bridge-key"] != "k-0" {
		t.Fatalf("first target message: ok=%v err=%v id=%q headers=%v", ok, err, d.MessageId, d.Headers)
	}
}
