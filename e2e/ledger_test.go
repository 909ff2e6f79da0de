package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ledger is the accounting of a chaos test or the soak: every input that
// was acknowledged to its producer (HTTP 200, a Kafka produce ack, a
// RabbitMQ publisher confirm), the sinks it must reach, and every delivery
// seen at each sink. check then proves that nothing acknowledged was lost,
// counts duplicates, and counts order violations per key at the sinks
// that promise order.
//
// Every input's value is the JSON of a ledgerMsg, so any sink's message
// body identifies it.
type ledger struct {
	mu      sync.Mutex
	inputs  map[string]*ledgerInput
	sinks   map[string]*sinkTally
	ordered map[string]bool // sinks that promise per-key order
}

// ledgerMsg is the value of every input event.
type ledgerMsg struct {
	ID  string `json:"id"`  // unique per input, e.g. "h-12345"
	Key string `json:"key"` // the event key; order is per key
	Seq int    `json:"seq"` // position of this input among its key's inputs
	Pad string `json:"pad,omitempty"`
}

type ledgerInput struct {
	msg   ledgerMsg
	sinks []string
	acked time.Time // zero until acknowledged
	sent  time.Time
}

type sinkTally struct {
	count     map[string]int       // id -> deliveries
	lastSeq   map[string]int       // key -> seq of the last first delivery
	latency   []time.Duration      // first delivery - sent, per input
	violation []string             // the first few order violations, for the report
	unknown   int                  // deliveries that are not inputs of this ledger
	at        map[string]time.Time // id -> first delivery
	order     int                  // order violations
}

func newLedger(ordered ...string) *ledger {
	l := &ledger{inputs: map[string]*ledgerInput{}, sinks: map[string]*sinkTally{}, ordered: map[string]bool{}}
	for _, s := range ordered {
		l.ordered[s] = true
	}
	return l
}

func (l *ledger) sink(name string) *sinkTally {
	s := l.sinks[name]
	if s == nil {
		s = &sinkTally{count: map[string]int{}, lastSeq: map[string]int{}, at: map[string]time.Time{}}
		l.sinks[name] = s
	}
	return s
}

// sent records an input before it is offered to bridge (or to the
// upstream system bridge reads); it counts only once acked.
func (l *ledger) sent(m ledgerMsg, sinks ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if in, ok := l.inputs[m.ID]; ok {
		in.sent = time.Now() // a retry: latency counts from the last attempt
		return
	}
	l.inputs[m.ID] = &ledgerInput{msg: m, sinks: sinks, sent: time.Now()}
	for _, s := range sinks {
		l.sink(s)
	}
}

// acked marks inputs as acknowledged by whoever received them.
func (l *ledger) acked(ids ...string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if in, ok := l.inputs[id]; ok && in.acked.IsZero() {
			in.acked = now
		}
	}
}

// delivered records one delivery of body at sink.
func (l *ledger) delivered(sink string, body []byte) {
	var m ledgerMsg
	err := json.Unmarshal(body, &m)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sink(sink)
	in, ok := l.inputs[m.ID]
	if err != nil || !ok {
		s.unknown++
		return
	}
	s.count[m.ID]++
	if s.count[m.ID] > 1 {
		return
	}
	s.at[m.ID] = now
	s.latency = append(s.latency, now.Sub(in.sent))
	if !l.ordered[sink] {
		return
	}
	if last, ok := s.lastSeq[m.Key]; ok && m.Seq < last {
		s.order++
		if len(s.violation) < 5 {
			s.violation = append(s.violation, fmt.Sprintf("key %s: seq %d after %d", m.Key, m.Seq, last))
		}
	}
	s.lastSeq[m.Key] = max(s.lastSeq[m.Key], m.Seq)
}

// missing returns, per sink, how many acknowledged inputs it has not seen.
func (l *ledger) missing() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for name := range l.sinks {
		out[name] = 0
	}
	for _, in := range l.inputs {
		if in.acked.IsZero() {
			continue
		}
		for _, s := range in.sinks {
			if l.sinks[s].count[in.msg.ID] == 0 {
				out[s]++
			}
		}
	}
	return out
}

// waitComplete reports nil once every sink has every acknowledged input.
func (l *ledger) complete() error {
	var parts []string
	for s, n := range l.missing() {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s misses %d", s, n))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	sort.Strings(parts)
	return fmt.Errorf("%s", strings.Join(parts, ", "))
}

// ledgerReport is the result of the final check.
type ledgerReport struct {
	Acked, Unacked  int // inputs acknowledged / offered but never acknowledged
	Deliveries      int // expected (input, sink) pairs
	Lost            int // expected pairs never delivered
	Duplicates      int // deliveries past the first
	OrderViolations int
	Unknown         int
	P50, P99, Max   time.Duration // sent -> first delivery
	PerSink         map[string]sinkReport
}

type sinkReport struct {
	Expected, Lost, Duplicates, OrderViolations, Unexpected int
	P99                                                     time.Duration
	Violations                                              []string
}

// report checks the ledger. Deliveries of inputs that were never
// acknowledged are allowed (a producer cannot tell a lost answer from a
// lost request) but are not expected.
func (l *ledger) report() ledgerReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := ledgerReport{PerSink: map[string]sinkReport{}}
	var all []time.Duration
	for name, s := range l.sinks {
		sr := sinkReport{OrderViolations: s.order, Violations: s.violation}
		for _, n := range s.count {
			if n > 1 {
				sr.Duplicates += n - 1
			}
		}
		sr.Unexpected = s.unknown
		sr.P99 = percentile(s.latency, 0.99)
		all = append(all, s.latency...)
		r.PerSink[name] = sr
	}
	for _, in := range l.inputs {
		if in.acked.IsZero() {
			r.Unacked++
			continue
		}
		r.Acked++
		for _, s := range in.sinks {
			sr := r.PerSink[s]
			sr.Expected++
			if l.sinks[s].count[in.msg.ID] == 0 {
				sr.Lost++
			}
			r.PerSink[s] = sr
		}
	}
	for _, sr := range r.PerSink {
		r.Deliveries += sr.Expected
		r.Lost += sr.Lost
		r.Duplicates += sr.Duplicates
		r.OrderViolations += sr.OrderViolations
		r.Unknown += sr.Unexpected
	}
	r.P50, r.P99 = percentile(all, 0.50), percentile(all, 0.99)
	if len(all) > 0 {
		r.Max = slices.Max(all)
	}
	return r
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}

// String is the per-sink table of a report.
func (r ledgerReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s %9s %6s %10s %6s %9s\n", "sink", "expected", "lost", "duplicates", "order", "p99")
	names := make([]string, 0, len(r.PerSink))
	for n := range r.PerSink {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := r.PerSink[n]
		fmt.Fprintf(&b, "%-28s %9d %6d %10d %6d %9v\n", n, s.Expected, s.Lost, s.Duplicates, s.OrderViolations, s.P99.Round(time.Millisecond))
		for _, v := range s.Violations {
			fmt.Fprintf(&b, "    order violation: %s\n", v)
		}
	}
	fmt.Fprintf(&b, "acknowledged inputs %d (never acknowledged %d); lost %d; duplicates %d; order violations %d; unknown %d; latency p50 %v p99 %v max %v\n",
		r.Acked, r.Unacked, r.Lost, r.Duplicates, r.OrderViolations, r.Unknown,
		r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond))
	return b.String()
}
