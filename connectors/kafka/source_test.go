package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/event"
)

// TestRoundTrip moves records Kafka "in" → Source → in-memory backbone →
// Sink → Kafka "out" and checks that keys (null, empty, set), headers
// (order and repeated names), timestamps and per-key order survive, and
// that the source added its coordinate headers.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := bareClient(t, c)

	base := time.UnixMilli(1_700_000_000_000)
	const n = 600
	in := keyedRecords("in", n, 7, 0)
	for i, r := range in {
		r.Timestamp = base.Add(time.Duration(i) * time.Millisecond)
		r.Headers = []kgo.RecordHeader{
			{Key: "trace", Value: fmt.Appendf(nil, "t%d", i)},
			{Key: "dup", Value: []byte("a")},
			{Key: "dup", Value: []byte("b")},
			{Key: "empty", Value: []byte{}},
		}
	}
	// Null and empty keys must stay apart (Kafka's null key vs "").
	in = append(in,
		&kgo.Record{Topic: "in", Key: nil, Value: []byte("null-key"), Timestamp: base},
		&kgo.Record{Topic: "in", Key: []byte{}, Value: []byte("empty-key"), Timestamp: base})
	produceInput(t, cl, in)

	var backbone collector
	src := newTestSource(t, c, "roundtrip", nil)
	stop := runSource(t, src, backbone.deliver)
	backbone.waitCount(t, len(in), 20*time.Second)
	stop()

	events := backbone.snapshot()
	if len(events) != len(in) {
		t.Fatalf("got %d events, want %d (no duplicates expected without failures)", len(events), len(in))
	}
	checkSourceEvents(t, events, c)

	sink := newTestSink(t, c, "out", nil)
	ctx := context.Background()
	for batch := range slices.Chunk(events, 64) {
		if err := sink.Send(ctx, batch); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	out := consumeAll(t, c, "out", len(in))
	checkPerKeyOrder(t, out)

	byValue := make(map[string]*kgo.Record, len(in))
	for _, r := range in {
		byValue[string(r.Value)] = r
	}
	for _, got := range out {
		want := byValue[string(got.Value)]
		if want == nil {
			t.Fatalf("unexpected record %q", got.Value)
		}
		if (got.Key == nil) != (want.Key == nil) || !bytes.Equal(got.Key, want.Key) {
			t.Errorf("%q: key %q (nil=%v), want %q (nil=%v)", got.Value, got.Key, got.Key == nil, want.Key, want.Key == nil)
		}
		if !got.Timestamp.Equal(want.Timestamp) {
			t.Errorf("%q: timestamp %v, want %v", got.Value, got.Timestamp, want.Timestamp)
		}
		// Original headers first, in order, then the origin coordinates.
		if len(got.Headers) != len(want.Headers)+3 {
			t.Fatalf("%q: %d headers, want %d", got.Value, len(got.Headers), len(want.Headers)+3)
		}
		for i, h := range want.Headers {
			if got.Headers[i].Key != h.Key || !bytes.Equal(got.Headers[i].Value, h.Value) {
				t.Errorf("%q: header %d = %s=%q, want %s=%q", got.Value, i, got.Headers[i].Key, got.Headers[i].Value, h.Key, h.Value)
			}
		}
		if k := got.Headers[len(want.Headers)].Key; k != HeaderTopic {
			t.Errorf("%q: header after the originals is %q, want %q", got.Value, k, HeaderTopic)
		}
	}
}

// checkSourceEvents checks what the source sets on every event: Source,
// the kafka.* coordinate headers (which must name the record in "in"), and
// that backbone coordinates are left unset.
func checkSourceEvents(t *testing.T, events []event.Event, c interface{ ListenAddrs() []string }) {
	t.Helper()
	seen := make(map[string]bool)
	for i := range events {
		ev := &events[i]
		if ev.Source != "kafka-in" {
			t.Fatalf("event %d: Source %q", i, ev.Source)
		}
		if ev.Topic != "" || ev.Offset != 0 || ev.Partition != 0 {
			t.Fatalf("event %d: backbone coordinates set by the source: %s", i, ev.ID())
		}
		topic, _ := ev.Header(HeaderTopic)
		part, okP := ev.Header(HeaderPartition)
		off, okO := ev.Header(HeaderOffset)
		if string(topic) != "in" || !okP || !okO {
			t.Fatalf("event %d: coordinate headers %q %q %q", i, topic, part, off)
		}
		p, err1 := strconv.Atoi(string(part))
		o, err2 := strconv.Atoi(string(off))
		if err1 != nil || err2 != nil || p < 0 || p >= partitions || o < 0 {
			t.Fatalf("event %d: bad coordinates %q/%q", i, part, off)
		}
		id := string(part) + "/" + string(off)
		if seen[id] {
			t.Fatalf("event %d: coordinates %s seen twice", i, id)
		}
		seen[id] = true
	}
}

// checkPerKeyOrder checks that values "kK#SEQ" of one key appear as
// 0, 1, 2, ... with nothing missing or reordered.
func checkPerKeyOrder(t *testing.T, records []*kgo.Record) {
	t.Helper()
	checkKeySeqs(t, records, true)
}

// checkKeySeqs checks per-key order of values "kK#SEQ": strictly increasing,
// and with complete also gapless from 0.
func checkKeySeqs(t *testing.T, records []*kgo.Record, complete bool) {
	t.Helper()
	last := make(map[string]int)
	for _, r := range records {
		key, seqText, ok := bytes.Cut(r.Value, []byte("#"))
		if !ok {
			continue
		}
		seq, err := strconv.Atoi(string(seqText))
		if err != nil {
			t.Fatalf("bad value %q", r.Value)
		}
		prev, seen := last[string(key)]
		if seen && (seq <= prev || complete && seq != prev+1) {
			t.Fatalf("key %s: seq %d after %d", key, seq, prev)
		}
		if complete && !seen && seq != 0 {
			t.Fatalf("key %s: first seq %d, want 0", key, seq)
		}
		last[string(key)] = seq
	}
}

// TestSourceDeliverFailureRedelivers: while deliver fails, nothing is
// committed and the same records come again; after it succeeds, everything
// is delivered and committed.
func TestSourceDeliverFailureRedelivers(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	const n = 300
	produceInput(t, bareClient(t, c), keyedRecords("in", n, 5, 0))

	failUntil := make(chan struct{})
	var firstFailed [][]byte // values of the first failed batch
	backbone := collector{fail: func(call int, batch []event.Event) error {
		select {
		case <-failUntil:
			return nil
		default:
		}
		if firstFailed == nil {
			for _, ev := range batch {
				firstFailed = append(firstFailed, ev.Value)
			}
		}
		return errors.New("backbone unavailable")
	}}
	src := newTestSource(t, c, "redeliver", nil)
	stop := runSource(t, src, backbone.deliver)

	waitFor(t, 10*time.Second, func() error {
		backbone.mu.Lock()
		defer backbone.mu.Unlock()
		if backbone.calls < 4 {
			return fmt.Errorf("%d deliver calls", backbone.calls)
		}
		return nil
	})
	if got := sumOffsets(committed(t, c, "redeliver", "in")); got != 0 {
		t.Fatalf("committed %d offsets while deliver failed", got)
	}
	close(failUntil)
	backbone.waitCount(t, n, 20*time.Second)
	waitFor(t, 10*time.Second, func() error {
		if got := sumOffsets(committed(t, c, "redeliver", "in")); got != n {
			return fmt.Errorf("committed %d of %d", got, n)
		}
		return nil
	})
	stop()

	events := backbone.snapshot()
	delivered := make(map[string]bool)
	for _, ev := range events {
		delivered[string(ev.Value)] = true
	}
	if len(delivered) != n {
		t.Fatalf("%d distinct records delivered, want %d", len(delivered), n)
	}
	for _, v := range firstFailed {
		if !delivered[string(v)] {
			t.Fatalf("record %q of the failed batch was skipped", v)
		}
	}
	if len(events) != n {
		t.Fatalf("%d events delivered for %d records: failed batches must not be half-delivered", len(events), n)
	}
}

// TestSourceRestartResumes stops a source after part of the input and
// starts a new one in the same group: it resumes from the commit, so every
// record is delivered and none twice (the stop committed what was delivered).
func TestSourceRestartResumes(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := bareClient(t, c)
	const n = 400
	produceInput(t, cl, keyedRecords("in", n/2, 5, 0))

	var backbone collector
	stop := runSource(t, newTestSource(t, c, "restart", nil), backbone.deliver)
	backbone.waitCount(t, n/2, 20*time.Second)
	stop()
	if got := sumOffsets(committed(t, c, "restart", "in")); got != n/2 {
		t.Fatalf("after stop: committed %d, want %d", got, n/2)
	}

	produceInput(t, cl, keyedRecords("in", n/2, 5, n/2))
	stop = runSource(t, newTestSource(t, c, "restart", nil), backbone.deliver)
	backbone.waitCount(t, n, 20*time.Second)
	stop()

	events := backbone.snapshot()
	if len(events) != n {
		t.Fatalf("delivered %d events for %d records", len(events), n)
	}
	checkDistinct(t, events, n)
	checkEventOrder(t, events)
}

// checkDistinct fails unless events hold exactly n distinct values.
func checkDistinct(t *testing.T, events []event.Event, n int) {
	t.Helper()
	seen := make(map[string]bool, len(events))
	for _, ev := range events {
		seen[string(ev.Value)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records, want %d", len(seen), n)
	}
}

// checkEventOrder checks per-key order of first appearances in events:
// complete and in order.
func checkEventOrder(t *testing.T, events []event.Event) {
	t.Helper()
	checkEventSeqs(t, events, true)
}

// checkEventSeqs is checkKeySeqs on the first appearance of each value.
func checkEventSeqs(t *testing.T, events []event.Event, complete bool) {
	t.Helper()
	records := make([]*kgo.Record, 0, len(events))
	seen := make(map[string]bool)
	for _, ev := range events {
		if seen[string(ev.Value)] {
			continue // a redelivered duplicate
		}
		seen[string(ev.Value)] = true
		records = append(records, &kgo.Record{Value: ev.Value})
	}
	checkKeySeqs(t, records, complete)
}

// TestSourceGroupFailover: two sources in one group split the partitions;
// when one stops, the other takes over and continues from the last commit.
func TestSourceGroupFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := bareClient(t, c)

	var a, b collector
	stopA := runSource(t, newTestSource(t, c, "failover", nil), a.deliver)
	stopB := runSource(t, newTestSource(t, c, "failover", nil), b.deliver)

	// Produce until both members received something: they split the work.
	const chunk = 120
	produced := 0
	waitFor(t, 20*time.Second, func() error {
		produceInput(t, cl, keyedRecords("in", chunk, 12, produced))
		produced += chunk
		if a.count() == 0 || b.count() == 0 {
			return fmt.Errorf("members got %d and %d events", a.count(), b.count())
		}
		return nil
	})
	stopA()

	produceInput(t, cl, keyedRecords("in", chunk, 12, produced))
	produced += chunk
	waitFor(t, 30*time.Second, func() error {
		all := append(a.snapshot(), b.snapshot()...)
		seen := make(map[string]bool)
		for _, ev := range all {
			seen[string(ev.Value)] = true
		}
		if len(seen) != produced {
			return fmt.Errorf("%d of %d records delivered", len(seen), produced)
		}
		return nil
	})
	stopB()
	// A stopped cleanly and committed on revoke, so nothing is delivered twice.
	all := append(a.snapshot(), b.snapshot()...)
	if len(all) != produced {
		t.Fatalf("%d deliveries for %d records: a clean handover must not duplicate", len(all), produced)
	}
	// Each member sees each key in order (a member may see a key's middle
	// only, from the commit it took over at).
	checkEventSeqs(t, a.snapshot(), false)
	checkEventSeqs(t, b.snapshot(), false)
	// Together they saw every record (the wait above) exactly once (the
	// count above). Which member saw a key first depends on the join order,
	// so no order is checked across members.
	if got := sumOffsets(committed(t, c, "failover", "in")); got != int64(produced) {
		t.Fatalf("committed %d, want %d", got, produced)
	}
}

// TestSourceBrokerOutage: fetches fail for a while; the source keeps going
// once the cluster answers again and delivers everything.
func TestSourceBrokerOutage(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := bareClient(t, c)
	var fetchOutage outage
	fetchOutage.install(c, 1) // kmsg.Fetch

	var backbone collector
	stop := runSource(t, newTestSource(t, c, "outage", nil), backbone.deliver)
	produceInput(t, cl, keyedRecords("in", 100, 5, 0))
	backbone.waitCount(t, 100, 20*time.Second)

	// Turn the outage on and wait until it rejected fetches: a fetch that
	// was already waiting at the broker is not affected and may still
	// return the next chunk.
	fetchOutage.on.Store(true)
	produceInput(t, cl, keyedRecords("in", 100, 5, 100))
	waitFor(t, 10*time.Second, func() error {
		if n := fetchOutage.rejected.Load(); n < 3 {
			return fmt.Errorf("%d fetches rejected", n)
		}
		return nil
	})
	produceInput(t, cl, keyedRecords("in", 100, 5, 200))
	// Negative check: while fetches fail, the last chunk cannot arrive.
	time.Sleep(300 * time.Millisecond)
	if got := backbone.count(); got > 200 {
		t.Fatalf("%d events delivered during the outage", got)
	}
	fetchOutage.on.Store(false)
	backbone.waitCount(t, 300, 30*time.Second)
	stop()
	events := backbone.snapshot()
	checkDistinct(t, events, 300)
	checkEventOrder(t, events)
}

// TestNewSourceValidates: New reports every problem of the config at once.
func TestNewSourceValidates(t *testing.T) {
	t.Parallel()
	_, err := NewSource(SourceConfig{MaxBatch: -1})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	for _, want := range []string{"brokers", "topics", "group", "name", "max_batch"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestSourceRebalanceDuringDeliver: a member joins while the first member is
// inside a slow deliver. The rebalance waits for the batch (it is not split
// between owners), the first member commits it on revoke, and the new owner
// starts after it: every record is delivered exactly once across both.
func TestSourceRebalanceDuringDeliver(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := bareClient(t, c)
	const n = 300
	produceInput(t, cl, keyedRecords("in", n, 12, 0))

	inDeliver := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseA := func() { releaseOnce.Do(func() { close(release) }) }
	a := collector{fail: func(call int, _ []event.Event) error {
		if call == 1 {
			close(inDeliver)
			<-release
		}
		return nil
	}}
	var b collector
	stopA := runSource(t, newTestSource(t, c, "slow", nil), a.deliver)
	t.Cleanup(releaseA) // runs before stopA's cleanup, so a failed test does not hang
	<-inDeliver
	stopB := runSource(t, newTestSource(t, c, "slow", nil), b.deliver)
	// B's join is pending while A holds its batch. A learns of the
	// rebalance at its next heartbeat (3s), so hold the batch past that:
	// without BlockRebalanceOnPoll the partitions would move now and B would
	// receive records A is still delivering.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if got := b.count(); got != 0 {
			t.Fatalf("the new member got %d events while the first was still delivering them", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	releaseA()

	// Keep producing until the new member owns partitions and receives.
	produced := n
	waitFor(t, 30*time.Second, func() error {
		if b.count() == 0 {
			produceInput(t, cl, keyedRecords("in", 60, 12, produced))
			produced += 60
			return fmt.Errorf("new member got nothing yet")
		}
		return nil
	})
	waitFor(t, 30*time.Second, func() error {
		seen := make(map[string]bool)
		for _, ev := range append(a.snapshot(), b.snapshot()...) {
			seen[string(ev.Value)] = true
		}
		if len(seen) != produced {
			return fmt.Errorf("%d of %d records delivered", len(seen), produced)
		}
		return nil
	})
	stopB()
	stopA()
	all := append(a.snapshot(), b.snapshot()...)
	if len(all) != produced {
		t.Fatalf("%d deliveries of %d records: the handover duplicated records", len(all), produced)
	}
	checkEventSeqs(t, a.snapshot(), false)
	checkEventSeqs(t, b.snapshot(), false)
}

// TestSourceCommitOutage: while offset commits fail, delivery goes on and
// nothing is reported committed; once commits work again the delivered
// offsets are committed even though no new record arrives.
func TestSourceCommitOutage(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var commitOutage outage
	commitOutage.install(c, 8) // kmsg.OffsetCommit
	commitOutage.on.Store(true)

	var backbone collector
	stop := runSource(t, newTestSource(t, c, "commit-outage", nil), backbone.deliver)
	const n = 200
	produceInput(t, bareClient(t, c), keyedRecords("in", n, 5, 0))
	backbone.waitCount(t, n, 20*time.Second)
	waitFor(t, 10*time.Second, func() error {
		if commitOutage.rejected.Load() == 0 {
			return fmt.Errorf("no commit attempted yet")
		}
		return nil
	})
	if got := sumOffsets(committed(t, c, "commit-outage", "in")); got != 0 {
		t.Fatalf("committed %d during the outage", got)
	}
	commitOutage.on.Store(false)
	waitFor(t, 30*time.Second, func() error {
		if got := sumOffsets(committed(t, c, "commit-outage", "in")); got != n {
			return fmt.Errorf("committed %d of %d", got, n)
		}
		return nil
	})
	stop()
	checkDistinct(t, backbone.snapshot(), n)
}
