package journey

import (
	"sync"
	"testing"

	"github.com/bridgeio/bridge/engine"
)

func batch(from, to int64) engine.JournalEntry {
	return engine.JournalEntry{Kind: engine.JournalBatch, Pipeline: "p", Route: "r", Partition: 0, From: from, To: to}
}

func TestFindCoversOffsetsAndBounds(t *testing.T) {
	r := New(4)
	r.Record(batch(0, 10))
	r.Record(engine.JournalEntry{Kind: engine.JournalRetry, Pipeline: "p", Route: "r", From: 12, To: 13, Attempt: 1})
	r.Record(engine.JournalEntry{Kind: engine.JournalDeadLetter, Pipeline: "p", Route: "r", From: 12, To: 13, Attempt: 2})
	r.Record(batch(10, 20))
	r.Record(engine.JournalEntry{Kind: engine.JournalBatch, Pipeline: "p", Route: "other", From: 0, To: 100})

	got := r.Find("p", "r", 0, 12)
	if len(got.Entries) != 3 || got.Entries[0].Kind != engine.JournalRetry || got.Entries[1].Kind != engine.JournalDeadLetter ||
		got.Entries[2].Kind != engine.JournalBatch {
		t.Fatalf("offset 12: %+v", got.Entries)
	}
	if got := r.Find("p", "r", 0, 5); len(got.Entries) != 1 || got.OldestKept != 0 {
		t.Fatalf("offset 5: %+v", got)
	}
	// A fifth entry pushes out the oldest batch [0,10).
	r.Record(batch(20, 30))
	if got := r.Find("p", "r", 0, 5); len(got.Entries) != 0 || got.OldestKept != 10 {
		t.Fatalf("after wrap, offset 5: %+v (want none, oldest kept 10)", got)
	}
	if got := r.Find("p", "r", 0, 25); len(got.Entries) != 1 || got.Entries[0].From != 20 {
		t.Fatalf("offset 25: %+v", got)
	}
	if got := r.Find("p", "r", 1, 5); got.OldestKept != -1 || len(got.Entries) != 0 {
		t.Fatalf("other partition: %+v", got)
	}
}

func TestConcurrentRecord(t *testing.T) {
	r := New(64)
	var wg sync.WaitGroup
	for p := range int32(4) {
		wg.Go(func() {
			for i := range int64(1000) {
				r.Record(engine.JournalEntry{Kind: engine.JournalBatch, Pipeline: "p", Route: "r", Partition: p, From: i * 10, To: i*10 + 10})
			}
		})
	}
	wg.Wait()
	for p := range int32(4) {
		if got := r.Find("p", "r", p, 9995); len(got.Entries) != 1 || got.OldestKept != (1000-64)*10 {
			t.Fatalf("partition %d: %+v", p, got)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	r := New(0)
	e := batch(0, 256)
	for b.Loop() {
		e.From += 256
		e.To += 256
		r.Record(e)
	}
}

func TestRetryListingOffsetsCoversOnlyThose(t *testing.T) {
	r := New(8)
	r.Record(engine.JournalEntry{Kind: engine.JournalRetry, Pipeline: "p", Route: "r", From: 11, To: 14, Offsets: []int64{11, 13}, Attempt: 1})
	for off, want := range map[int64]int{11: 1, 12: 0, 13: 1, 14: 0} {
		if got := r.Find("p", "r", 0, off); len(got.Entries) != want {
			t.Errorf("offset %d: %d entries, want %d", off, len(got.Entries), want)
		}
	}
}
