package kafkaapi

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func produceN(t *testing.T, ts *testServer, topic string, from, n int) {
	t.Helper()
	prod := ts.client(kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := prod.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestGroupConsumeCommitResume: a group member consumes half, commits,
// leaves; a new member resumes from the commit, also after the server and
// log restart (commits are durable).
func TestGroupConsumeCommitResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	ts.topic("t", 3)
	produceN(t, ts, "t", 0, 200)
	for _, balancer := range []kgo.GroupBalancer{kgo.RangeBalancer(), kgo.RoundRobinBalancer(), kgo.CooperativeStickyBalancer()} {
		group := fmt.Sprintf("g-%s", balancer.ProtocolName())
		cl := ts.client(kgo.ConsumerGroup(group), kgo.ConsumeTopics("t"), kgo.DisableAutoCommit(), kgo.Balancers(balancer),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		first := consume(t, cl, 1, 20*time.Second)
		if err := cl.CommitRecords(ctxT(t, 10*time.Second), first...); err != nil {
			t.Fatal(err)
		}
		cl.LeaveGroup()
		adm := kadm.NewClient(ts.client())
		committed, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
		if err != nil {
			t.Fatal(err)
		}
		last := first[len(first)-1]
		if o, ok := committed.Lookup("t", last.Partition); !ok || o.At != last.Offset+1 {
			t.Fatalf("%s: committed %+v, want %d", group, o, last.Offset+1)
		}
	}
	ts.stop()
	// Restart: commits survive; a new member of each group resumes there.
	ts = startServer(t, dir, nil)
	adm := kadm.NewClient(ts.client())
	committed, err := adm.FetchOffsets(ctxT(t, 10*time.Second), "g-range")
	if err != nil {
		t.Fatal(err)
	}
	var committedTotal int64
	committed.Each(func(o kadm.OffsetResponse) { committedTotal += o.At })
	if committedTotal == 0 {
		t.Fatal("no commits after restart")
	}
	cl := ts.client(kgo.ConsumerGroup("g-range"), kgo.ConsumeTopics("t"), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	rest := consume(t, cl, 200-int(committedTotal), 20*time.Second)
	if len(rest) != 200-int(committedTotal) {
		t.Fatalf("resumed with %d records, want %d", len(rest), 200-committedTotal)
	}
	for _, r := range rest {
		if o, ok := committed.Lookup("t", r.Partition); ok && r.Offset < o.At {
			t.Fatalf("record %d/%d is below the commit %d", r.Partition, r.Offset, o.At)
		}
	}
}

// TestGroupTwoMembersSplitPartitions: two members of one group split six
// partitions between them (each gets some, none shared), and records
// produced afterwards reach exactly one member each.
func TestGroupTwoMembersSplitPartitions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.topic("t", 6)
	var mu sync.Mutex
	assigned := map[int]map[int32]bool{}
	var clients []*kgo.Client
	for m := range 2 {
		assigned[m] = map[int32]bool{}
		track := func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			assigned[m] = map[int32]bool{}
			for _, p := range ps["t"] {
				assigned[m][p] = true
			}
		}
		clients = append(clients, ts.client(kgo.ConsumerGroup("split"), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.Balancers(kgo.RangeBalancer()), kgo.OnPartitionsAssigned(track), kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) {
				mu.Lock()
				assigned[m] = map[int32]bool{}
				mu.Unlock()
			})))
	}
	split := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(assigned[0]) == 0 || len(assigned[1]) == 0 || len(assigned[0])+len(assigned[1]) != 6 {
			return false
		}
		for p := range assigned[0] {
			if assigned[1][p] {
				return false
			}
		}
		return true
	}
	var seen sync.Map
	var counts [2]atomic.Int64
	ctx := ctxT(t, 30*time.Second)
	var wg sync.WaitGroup
	for m, cl := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				if fs.IsClientClosed() {
					return
				}
				for _, r := range fs.Records() {
					if prev, dup := seen.LoadOrStore(string(r.Value), m); dup {
						t.Errorf("record %s reached members %d and %d", r.Value, prev, m)
					}
					counts[m].Add(1)
				}
			}
		})
	}
	for !split() {
		if ctx.Err() != nil {
			t.Fatalf("the members never split the partitions: %v", assigned)
		}
		time.Sleep(20 * time.Millisecond)
	}
	produceN(t, ts, "t", 0, 600)
	for counts[0].Load()+counts[1].Load() < 600 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	total := counts[0].Load() + counts[1].Load()
	for _, cl := range clients {
		cl.Close()
	}
	wg.Wait()
	if total != 600 || counts[0].Load() == 0 || counts[1].Load() == 0 {
		t.Fatalf("members consumed %d and %d records, want 600 split between both", counts[0].Load(), counts[1].Load())
	}
}
