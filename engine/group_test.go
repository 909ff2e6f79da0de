package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/event"
)

// sharedBackbone is a memBackbone whose partitions are split among the
// members of a group, the way a Kafka consumer group splits them: every
// join or leave revokes all partitions and assigns them again round-robin.
type sharedBackbone struct {
	*memBackbone
	mu      sync.Mutex
	members map[string][]*member // group -> members in join order
}

type member struct {
	assigned, revoked func([]int32)
	owned             []int32
	topic             string
}

func newSharedBackbone(b *memBackbone) *sharedBackbone {
	return &sharedBackbone{memBackbone: b, members: map[string][]*member{}}
}

func (s *sharedBackbone) Join(ctx context.Context, group, topic string, assigned, revoked func([]int32)) error {
	m := &member{assigned: assigned, revoked: revoked, topic: topic}
	s.mu.Lock()
	s.members[group] = append(s.members[group], m)
	s.rebalanceLocked(group)
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	m.revoked(m.owned) // leaving: give everything back, committed
	m.owned = nil
	s.members[group] = slices.DeleteFunc(s.members[group], func(x *member) bool { return x == m })
	s.rebalanceLocked(group)
	return ctx.Err()
}

func (s *sharedBackbone) rebalanceLocked(group string) {
	ms := s.members[group]
	if len(ms) == 0 {
		return
	}
	for _, m := range ms {
		if len(m.owned) > 0 {
			m.revoked(m.owned)
			m.owned = nil
		}
	}
	n, _ := s.Partitions(ms[0].topic)
	for p := range n {
		m := ms[p%len(ms)]
		m.owned = append(m.owned, int32(p))
	}
	for _, m := range ms {
		if len(m.owned) > 0 {
			m.assigned(m.owned)
		}
	}
}

// TestSharedBackboneSplitsAndFailsOver: two engines on one shared backbone
// split the partitions; when one stops, the other takes its partitions over
// from the committed checkpoints and nothing is lost or delivered twice.
func TestSharedBackboneSplitsAndFailsOver(t *testing.T) {
	b := newSharedBackbone(newMemBackbone(map[string]int{"in": 4}))
	sinkA, sinkB := &recSink{}, &recSink{}
	ea := newTestEngine(t, b, testRoute("r", sinkA))
	eb := newTestEngine(t, b, testRoute("r", sinkB))
	runA, runB := runEngine(t, ea), runEngine(t, eb)
	// Produce once both have joined, so that no partition moves while the
	// first batch is delivered.
	waitFor(t, 10*time.Second, func() error {
		a, b := len(ea.Pipelines()[0].Routes[0].Partitions), len(eb.Pipelines()[0].Routes[0].Partitions)
		if a != 2 || b != 2 {
			return fmt.Errorf("engines own %d and %d partitions", a, b)
		}
		return nil
	})
	produce(t, b, "in", 400, func(i int) string { return strconv.Itoa(i) })
	waitFor(t, 10*time.Second, func() error {
		if n := len(sinkA.events()) + len(sinkB.events()); n != 400 {
			return fmt.Errorf("%d delivered", n)
		}
		return nil
	})
	partsOf := func(evs []event.Event) map[int32]bool {
		m := map[int32]bool{}
		for _, ev := range evs {
			m[ev.Partition] = true
		}
		return m
	}
	pa, pb := partsOf(sinkA.events()), partsOf(sinkB.events())
	if len(pa) != 2 || len(pb) != 2 {
		t.Fatalf("partitions not split: A %v, B %v", pa, pb)
	}
	for p := range pa {
		if pb[p] {
			t.Fatalf("partition %d handled by both engines", p)
		}
	}
	if st := ea.Pipelines()[0].Routes[0]; len(st.Partitions) != 2 {
		t.Fatalf("engine A reports %d partitions, want its 2", len(st.Partitions))
	}
	// A stops cleanly: its partitions go to B, which continues from A's
	// checkpoints.
	if err := runA.stop(t); err != nil {
		t.Fatal(err)
	}
	produce(t, b, "in", 400, func(i int) string { return strconv.Itoa(400 + i) })
	waitFor(t, 10*time.Second, func() error {
		if n := len(sinkA.events()) + len(sinkB.events()); n != 800 {
			return fmt.Errorf("%d delivered", n)
		}
		return nil
	})
	_ = runB.stop(t)
	seen := map[string]int{}
	for _, ev := range append(sinkA.events(), sinkB.events()...) {
		seen[string(ev.Value)]++
	}
	for i := range 800 {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Fatalf("event %d delivered %d times", i, n)
		}
	}
	if got := partsOf(sinkB.events()); len(got) != 4 {
		t.Fatalf("B took over %v, want all 4 partitions", got)
	}
}
