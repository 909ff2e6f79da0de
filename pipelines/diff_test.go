package pipelines

import (
	"fmt"
	"strings"
	"testing"
)

const diffBase = `
connections:
  k: { type: kafka, brokers: ["a:9092"] }
backbone: { topics: { in: { partitions: 2 }, out: { partitions: 1 } } }
broker:
  queues: { jobs: {}, old: {} }
  exchanges:
    x: { type: direct, bindings: [{ queue: jobs, key: a }] }
pipelines:
  - name: p
    from: in
    filter: 'body.ok == true'
    routes:
      - name: to-out
        to: { topic: out }
      - name: to-kafka
        to: { kafka: { connection: k, topic: t } }
      - name: to-x
        to: { exchange: x, routing_key: '"a"' }
  - name: gone
    from: in
    routes:
      - to: { queue: old }
`

func diffParse(t *testing.T, src string) *Plan {
	t.Helper()
	p, err := Parse("t.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDiffNoChanges(t *testing.T) {
	d := Diff(diffParse(t, diffBase), diffParse(t, diffBase))
	if !d.Empty() || d.String() != "no changes\n" || d.RouteChanges() != 0 {
		t.Fatalf("diff of a config with itself: %+v", d)
	}
}

func TestDiffClassifiesChanges(t *testing.T) {
	next := strings.NewReplacer(
		`brokers: ["a:9092"]`, `brokers: ["b:9092"]`, // connection changed: to-kafka changes
		"queues: { jobs: {}, old: {} }", "queues: { jobs: { visibility_timeout: 1m }, new: {} }",
		"bindings: [{ queue: jobs, key: a }]", "bindings: [{ queue: jobs, key: b }]",
		"out: { partitions: 1 } }", "out: { partitions: 1 }, more: { partitions: 1 } }",
		"      - name: to-out\n", "      - name: renamed\n",
	).Replace(diffBase)
	next = next[:strings.Index(next, "  - name: gone")] + `  - name: fresh
    from: more
    routes:
      - to: { topic: out }
`
	d := Diff(diffParse(t, diffBase), diffParse(t, next))
	got := fmt.Sprintf("%v %v %+v %v %v %v %v %v %v %v",
		d.PipelinesAdded, d.PipelinesRemoved, d.PipelinesChanged, d.TopicsAdded, d.QueuesAdded, d.QueuesRemoved,
		d.QueuesChanged, d.ExchangesChanged, d.ConnectionsChanged, d.Restart)
	want := "[fresh] [gone] [{Name:p Settings:false RoutesAdded:[renamed] RoutesRemoved:[to-out] RoutesChanged:[to-kafka]}] [more] [new] [old] [jobs] [x] [k] []"
	if got != want {
		t.Fatalf("diff\n got %s\nwant %s", got, want)
	}
	if d.RouteChanges() != 5 {
		t.Fatalf("route changes %d, want 5", d.RouteChanges())
	}
	for _, line := range []string{"+ pipeline fresh", "- pipeline gone", "+ route p/renamed", "- route p/to-out",
		"~ route p/to-kafka", "+ topic more", "~ exchange x", "~ connection k"} {
		if !strings.Contains(d.String(), line+"\n") {
			t.Errorf("plan lacks %q:\n%s", line, d.String())
		}
	}
}

func TestDiffPipelineSettingsChangeEveryRoute(t *testing.T) {
	next := strings.Replace(diffBase, "body.ok == true", "body.ok != false", 1)
	d := Diff(diffParse(t, diffBase), diffParse(t, next))
	pd, ok := d.Pipeline("p")
	if !ok || !pd.Settings || fmt.Sprint(pd.RoutesChanged) != "[to-kafka to-out to-x]" {
		t.Fatalf("filter change: %+v", pd)
	}
	if _, ok := d.Pipeline("gone"); ok {
		t.Fatal("an unchanged pipeline is in the diff")
	}
}

func TestDiffFromChangeReplacesThePipeline(t *testing.T) {
	next := strings.Replace(diffBase, "  - name: gone\n    from: in", "  - name: gone\n    from: out", 1)
	d := Diff(diffParse(t, diffBase), diffParse(t, next))
	if fmt.Sprint(d.PipelinesAdded, d.PipelinesRemoved) != "[gone] [gone]" {
		t.Fatalf("from change: added %v removed %v", d.PipelinesAdded, d.PipelinesRemoved)
	}
}

func TestDiffRestartSettingsAndPartitions(t *testing.T) {
	next := "http: { listen: 127.0.0.1:9999 }\nauth: { tokens: [{ token: t, role: admin }] }\n" +
		strings.Replace(diffBase, "in: { partitions: 2 }", "in: { partitions: 1 }", 1)
	d := Diff(diffParse(t, diffBase), diffParse(t, next))
	if fmt.Sprint(d.Restart) != "[http auth]" || len(d.PartitionsChanged) != 1 || d.PartitionsChanged[0] != (PartitionChange{"in", 2, 1}) {
		t.Fatalf("restart %v partitions %+v", d.Restart, d.PartitionsChanged)
	}
}
