// Package journey records what each route did with the events of each
// backbone partition (engine.Journal), so the console can tell one event's
// journey: which batch handled it and when, how many attempts its send
// took, and whether it was dead-lettered, dropped or stopped its route.
//
// Memory is bounded: each (pipeline, route, partition) keeps its last
// PerCursor entries (a batch is one entry, whatever its size; a failure is
// one entry). Events older than what is kept are reported as "before the
// journal", and the console falls back to the route's checkpoint, which
// still says whether the event was handled. Safe for concurrent use.
package journey

import (
	"sync"

	"github.com/bridgeio/bridge/engine"
)

// DefaultPerCursor is how many entries each route partition keeps.
const DefaultPerCursor = 2048

type cursorKey struct {
	pipeline, route string
	partition       int32
}

// ring is one cursor's entries, oldest first once wrapped.
type ring struct {
	entries []engine.JournalEntry
	next    int
	full    bool
}

// Recorder is an engine.Journal.
type Recorder struct {
	perCursor int

	mu    sync.Mutex
	rings map[cursorKey]*ring
}

// New returns a recorder keeping perCursor entries per route partition
// (DefaultPerCursor when ≤ 0).
func New(perCursor int) *Recorder {
	if perCursor <= 0 {
		perCursor = DefaultPerCursor
	}
	return &Recorder{perCursor: perCursor, rings: map[cursorKey]*ring{}}
}

// Record keeps e. It does not block beyond a short critical section.
func (r *Recorder) Record(e engine.JournalEntry) {
	k := cursorKey{e.Pipeline, e.Route, e.Partition}
	r.mu.Lock()
	defer r.mu.Unlock()
	rg := r.rings[k]
	if rg == nil {
		rg = &ring{entries: make([]engine.JournalEntry, 0, min(r.perCursor, 64))}
		r.rings[k] = rg
	}
	if len(rg.entries) < r.perCursor {
		rg.entries = append(rg.entries, e)
		return
	}
	rg.entries[rg.next] = e
	rg.next = (rg.next + 1) % r.perCursor
	rg.full = true
}

// Result is what the journal knows of one event on one route.
type Result struct {
	// Entries cover the offset, oldest first: the batches that handled it
	// (more than one after a replay), retries, and its on_error outcome.
	Entries []engine.JournalEntry
	// OldestKept is the lowest offset the kept entries cover; an event below
	// it is older than the journal (-1 when nothing is kept).
	OldestKept int64
}

// Find returns the entries of a route partition that cover offset.
func (r *Recorder) Find(pipeline, route string, partition int32, offset int64) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{OldestKept: -1}
	rg := r.rings[cursorKey{pipeline, route, partition}]
	if rg == nil {
		return res
	}
	n := len(rg.entries)
	for i := range n {
		e := rg.entries[(rg.next+i)%n]
		if res.OldestKept < 0 || e.From < res.OldestKept {
			res.OldestKept = e.From
		}
		if e.Covers(offset) {
			res.Entries = append(res.Entries, e)
		}
	}
	return res
}
