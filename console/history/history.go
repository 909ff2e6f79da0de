// Package history keeps a small embedded time series store: one point per
// minute for a bounded set of named series over a fixed window (24 h by
// default), so the console draws charts without Prometheus.
//
// Samples taken within a minute are averaged into that minute's point; a
// minute without samples is a gap (NaN), never a zero. The store is a ring:
// memory is Window × MaxSeries × 8 bytes at most, fixed when it is built.
// Series beyond MaxSeries are refused and counted, not grown into.
//
// Persistence: MarshalBinary/UnmarshalBinary give a checksummed file image
// (see encode.go), written by the console once a minute, so a restart keeps
// the last day. Safe for concurrent use.
package history

import (
	"errors"
	"math"
	"slices"
	"sync"
	"time"
)

// Options size a Ring.
type Options struct {
	Window    int // minutes kept; default 1440 (24 h)
	MaxSeries int // default 512
}

// Ring is the store.
type Ring struct {
	window, maxSeries int

	mu      sync.Mutex
	stamps  []int64 // unix minute held by each slot; 0 = empty
	series  map[string][]float64
	pending map[string]*acc // the open minute's sums
	open    int64           // the open minute (unix minutes); 0 = none
	// newPending counts pending names without a series yet, so the
	// MaxSeries bound holds before they are committed.
	newPending int
	refused    int64
}

type acc struct {
	sum float64
	n   int
}

// New returns an empty ring.
func New(opts Options) *Ring {
	if opts.Window <= 0 {
		opts.Window = 1440
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = 512
	}
	return &Ring{window: opts.Window, maxSeries: opts.MaxSeries, stamps: make([]int64, opts.Window),
		series: map[string][]float64{}, pending: map[string]*acc{}}
}

// Window returns how many minutes the ring keeps.
func (r *Ring) Window() int { return r.window }

// Refused returns how many samples were refused because MaxSeries series
// existed already.
func (r *Ring) Refused() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// Add records one sample of each named value at now. Values for a minute
// are averaged; NaN and infinite values are ignored. Samples older than the
// open minute are ignored (the clock went back): history is append-only.
func (r *Ring) Add(now time.Time, values map[string]float64) {
	minute := now.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	if minute < r.open {
		return
	}
	if minute > r.open {
		r.commitLocked()
		r.open = minute
	}
	for name, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		a := r.pending[name]
		if a == nil {
			if _, known := r.series[name]; !known {
				if len(r.series)+r.newPending >= r.maxSeries {
					r.refused++
					continue
				}
				r.newPending++
			}
			a = &acc{}
			r.pending[name] = a
		}
		a.sum += v
		a.n++
	}
}

// Flush commits the open minute now (before a save or at shutdown); later
// samples of the same minute start a new average for it.
func (r *Ring) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commitLocked()
}

// commitLocked writes the open minute's averages into its slot.
func (r *Ring) commitLocked() {
	if r.open == 0 || len(r.pending) == 0 {
		return
	}
	slot := int(r.open % int64(r.window))
	if r.stamps[slot] != r.open {
		r.stamps[slot] = r.open
		for _, vals := range r.series {
			vals[slot] = math.NaN()
		}
	}
	for name, a := range r.pending {
		vals, ok := r.series[name]
		if !ok {
			vals = make([]float64, r.window)
			for i := range vals {
				vals[i] = math.NaN()
			}
			r.series[name] = vals
		}
		vals[slot] = a.sum / float64(a.n)
	}
	clear(r.pending)
	r.newPending = 0
}

// Point is one minute of a series; Value is NaN for a gap.
type Point struct {
	Minute time.Time
	Value  float64
}

// ErrUnknownSeries is returned for a series never recorded.
var ErrUnknownSeries = errors.New("history: unknown series")

// Series returns the points of name from since (or the oldest recorded
// minute, if later) to the newest, one per minute (gaps are NaN). The open
// minute, when it has samples, comes last with its running average (it may
// still change); it is there for every series, so all series of one call
// time have the same minutes.
func (r *Ring) Series(name string, since time.Time) ([]Point, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	vals, ok := r.series[name]
	a := r.pending[name]
	if !ok && a == nil {
		return nil, ErrUnknownSeries
	}
	oldest, newest := r.rangeLocked()
	open := len(r.pending) > 0 && r.open > newest
	last := newest
	if open {
		last = r.open
		if oldest == 0 {
			oldest = r.open
		}
	}
	if last == 0 {
		return nil, nil
	}
	first := max(since.Unix()/60, last-int64(r.window)+1, oldest)
	out := make([]Point, 0, max(last-first+1, 0))
	for m := first; m <= last; m++ {
		v := math.NaN()
		slot := int(m % int64(r.window))
		switch {
		case open && m == r.open:
			if a != nil {
				v = a.sum / float64(a.n)
			}
		case vals != nil && r.stamps[slot] == m:
			v = vals[slot]
		}
		out = append(out, Point{Minute: time.Unix(m*60, 0).UTC(), Value: v})
	}
	return out, nil
}

// rangeLocked returns the oldest and newest committed minutes, 0 when none.
func (r *Ring) rangeLocked() (oldest, newest int64) {
	for _, s := range r.stamps {
		if s == 0 {
			continue
		}
		newest = max(newest, s)
		if oldest == 0 || s < oldest {
			oldest = s
		}
	}
	return oldest, newest
}

// Names lists the recorded series, sorted.
func (r *Ring) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.series))
	for n := range r.series {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
