package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/bridgeio/bridge/event"
)

func newBackbone(t *testing.T, c *kfake.Cluster) *Backbone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := NewBackbone(ctx, BackboneConfig{Client: clientConfig(c), Topics: map[string]int{"orders": 4, "in": 9}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBackboneLogOperations: append, read back in order with keys, headers
// and source, offsets, lookup by time, checkpoints.
func TestBackboneLogOperations(t *testing.T) {
	c := newCluster(t)
	b := newBackbone(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, err := b.Partitions("orders"); err != nil || n != 4 {
		t.Fatalf("orders has %d partitions (%v), want 4 (created)", n, err)
	}
	if n, _ := b.Partitions("in"); n != partitions {
		t.Fatalf("existing topic in: %d partitions, want its own %d", n, partitions)
	}
	if got := b.Topics(); !slices.Equal(got, []string{"in", "orders"}) {
		t.Fatalf("topics %v", got)
	}
	before := time.Now().Add(-time.Second)
	var evs []event.Event
	for i := range 40 {
		evs = append(evs, event.Event{Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []event.Header{{Key: "h", Value: []byte("1")}, {Key: "h", Value: []byte("2")}}, Source: "http",
			Timestamp: time.Now()})
	}
	pos, err := b.Append(ctx, "orders", evs)
	if err != nil {
		t.Fatal(err)
	}
	byPart := map[int32][]int{}
	for i, p := range pos {
		if i > 0 && evs[i].Key != nil && string(evs[i].Key) == string(evs[i%3].Key) && p.Partition != pos[i%3].Partition {
			t.Fatalf("key %s on two partitions", evs[i].Key)
		}
		byPart[p.Partition] = append(byPart[p.Partition], i)
	}
	for part, idx := range byPart {
		got, err := b.Fetch(ctx, "orders", part, 0, 1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for len(got) < len(idx) {
			more, err := b.Fetch(ctx, "orders", part, got[len(got)-1].Offset+1, 1000, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, more...)
		}
		for j, ev := range got {
			want := evs[idx[j]]
			if string(ev.Value) != string(want.Value) || string(ev.Key) != string(want.Key) || ev.Source != "http" ||
				len(ev.Headers) != 2 || string(ev.Headers[1].Value) != "2" || ev.Offset != pos[idx[j]].Offset {
				t.Fatalf("partition %d event %d: %+v, want %+v", part, j, ev, want)
			}
		}
		start, end, err := b.Offsets("orders", part)
		if err != nil || start != 0 {
			t.Fatalf("offsets %d %d %v", start, end, err)
		}
		if o, err := b.OffsetForTime("orders", part, before); err != nil || o != 0 {
			t.Fatalf("offset for time: %d %v", o, err)
		}
	}
	if _, ok, err := b.Committed(ctx, "g", "orders", 0); ok || err != nil {
		t.Fatalf("fresh group committed: %v %v", ok, err)
	}
	if err := b.Commit(ctx, "g", "orders", 0, 7); err != nil {
		t.Fatal(err)
	}
	if next, ok, err := b.Committed(ctx, "g", "orders", 0); !ok || err != nil || next != 7 {
		t.Fatalf("committed %d %v %v", next, ok, err)
	}
	// Fetch long-polls: it returns on ctx end without data.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	_, end, _ := b.Offsets("orders", 0)
	if _, err := b.Fetch(short, "orders", 0, end, 10, 1<<20); err == nil {
		t.Fatal("fetch at the end returned without data or error")
	}
}

// TestBackboneJoinSplitsPartitions: two members of one group split the
// partitions; when one leaves, the other gets them all, and commits made
// by a member inside revoke are visible to the next owner.
func TestBackboneJoinSplitsPartitions(t *testing.T) {
	c := newCluster(t)
	b1, b2 := newBackbone(t, c), newBackbone(t, c)
	type owner struct {
		mu    sync.Mutex
		parts map[int32]bool
	}
	track := func(b *Backbone, o *owner) (func([]int32), func([]int32)) {
		return func(ps []int32) {
				o.mu.Lock()
				defer o.mu.Unlock()
				for _, p := range ps {
					o.parts[p] = true
				}
			}, func(ps []int32) {
				o.mu.Lock()
				defer o.mu.Unlock()
				for _, p := range ps {
					delete(o.parts, p)
					// The final checkpoint is committed while still a member.
					if err := b.Commit(context.Background(), "route", "in", p, 100+int64(p)); err != nil {
						t.Errorf("commit on revoke: %v", err)
					}
				}
			}
	}
	count := func(o *owner) int {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.parts)
	}
	o1, o2 := &owner{parts: map[int32]bool{}}, &owner{parts: map[int32]bool{}}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done1, done2 := make(chan error, 1), make(chan error, 1)
	a1, r1 := track(b1, o1)
	a2, r2 := track(b2, o2)
	go func() { done1 <- b1.Join(ctx1, "route", "in", a1, r1) }()
	go func() { done2 <- b2.Join(ctx2, "route", "in", a2, r2) }()
	deadline := time.Now().Add(30 * time.Second)
	for count(o1)+count(o2) != partitions || count(o1) == 0 || count(o2) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("partitions not split: %d and %d", count(o1), count(o2))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel1()
	<-done1
	for count(o2) != partitions {
		if time.Now().After(deadline) {
			t.Fatalf("survivor owns %d partitions, want %d", count(o2), partitions)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel2()
	<-done2
	for p := range int32(partitions) {
		next, ok, err := b1.Committed(context.Background(), "route", "in", p)
		if err != nil || !ok || next != 100+int64(p) {
			t.Fatalf("partition %d: committed %d %v %v", p, next, ok, err)
		}
	}
}
