package migrate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/bridgeio/bridge/event"
)

// Report is the outcome of a verification (SPEC §8). The first six fields
// are the contract; the rest explain them.
type Report struct {
	SourceCount     int64 `json:"source_count"`     // events in the ledger: every message that left the source
	TargetCount     int64 `json:"target_count"`     // messages read back from the target
	Missing         int64 `json:"missing"`          // expected events the target does not have
	Extra           int64 `json:"extra"`            // target messages no ledger event accounts for
	Duplicates      int64 `json:"duplicates"`       // source_duplicates + target_duplicates
	OrderViolations int64 `json:"order_violations"` // per key, events that reached the target before an earlier one

	Mismatched       int64 `json:"mismatched"`        // delivered, but key, body or headers differ
	FilteredOut      int64 `json:"filtered_out"`      // ledger events --filter did not select
	Expected         int64 `json:"expected"`          // source_count - filtered_out
	Delivered        int64 `json:"delivered"`         // expected events found in the target
	SourceDuplicates int64 `json:"source_duplicates"` // a source message in the ledger more than once (redelivery)
	TargetDuplicates int64 `json:"target_duplicates"` // extra copies of one event in the target
	ExtraNoEventID   int64 `json:"extra_without_event_id"`

	From          string   `json:"from"`
	To            string   `json:"to"`
	PositionsFile string   `json:"positions_file,omitempty"`
	OK            bool     `json:"ok"` // missing == 0 && mismatched == 0
	MissingIDs    []string `json:"missing_sample,omitempty"`
	MismatchedIDs []string `json:"mismatched_sample,omitempty"`
	ExtraIDs      []string `json:"extra_sample,omitempty"`
}

// sampleSize bounds the ids listed per kind of problem in a report.
const sampleSize = 20

// digestOptions say which parts of an event are compared. Headers that a
// hop legitimately changes (the coordinates and ids each system assigns)
// are left out on both sides.
type digestOptions struct {
	exclude     func(name string) bool
	compactJSON bool // the target re-encodes JSON values (bridge:// over HTTP)
}

// perHop are headers every migration leaves out of the digest: the event
// id (compared separately), the origin coordinates each connector adds,
// and SQS's system attributes (assigned by SQS, never carried).
func perHop(name string) bool {
	switch name {
	case event.HeaderEventID, event.HeaderSource, "kafka.topic", "kafka.partition", "kafka.offset":
		return true
	}
	return strings.HasPrefix(name, "sqs.")
}

// digestOptionsFor returns the comparison rules for a target kind.
func digestOptionsFor(target Kind) digestOptions {
	o := digestOptions{exclude: perHop}
	switch target {
	case KindAMQP:
		// The AMQP sink fills the timestamp property from the event's
		// timestamp when the event had no amqp.timestamp header, so the
		// header appears on the target side.
		o.exclude = func(name string) bool { return perHop(name) || name == "amqp.timestamp" }
	case KindBridge:
		o.compactJSON = true
	}
	return o
}

// digest is sha256 over the key (a nil and an empty key are the same: not
// every system can tell them apart), the value, and the headers that are
// not excluded, sorted by name (stable, so repeated values keep their
// order), each field length-prefixed.
func digest(ev *event.Event, o digestOptions) [32]byte {
	h := sha256.New()
	var n [4]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(ev.Key)
	value := ev.Value
	if o.compactJSON && json.Valid(value) {
		var buf bytes.Buffer
		if json.Compact(&buf, value) == nil {
			value = buf.Bytes()
		}
	}
	field(value)
	hs := make([]event.Header, 0, len(ev.Headers))
	for _, hd := range ev.Headers {
		if !o.exclude(hd.Key) {
			hs = append(hs, hd)
		}
	}
	slices.SortStableFunc(hs, func(a, b event.Header) int { return strings.Compare(a.Key, b.Key) })
	for _, hd := range hs {
		field([]byte(hd.Key))
		field(hd.Value)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ledgerEntry is what verification keeps per ledger event.
type ledgerEntry struct {
	id        string
	sourceID  string
	digest    [32]byte
	keyHash   uint64
	srcKey    uint64 // hash of sourceID and digest; 0 when sourceID is ""
	partition int32  // local log partition: source order is defined within one
	filtered  bool
	srcDup    bool
	found     int32  // target copies seen
	badDigest bool   // the first copy's digest differed
	position  string // the first copy's target position
}

// orderKey groups target messages whose relative order is promised: one
// key from one local partition in one target partition.
type orderKey struct {
	keyHash   uint64
	local     int32
	partition int32
}

// verifier compares the ledger with what the target holds. Feed it every
// ledger event with addLedger (in log order per partition), then every
// target message with addTarget (in target order), then call report. It
// is not safe for concurrent use.
type verifier struct {
	opts    digestOptions
	seed    maphash.Seed
	entries []ledgerEntry
	byID    map[string]int
	sources map[uint64]bool
	last    map[orderKey]int
	rep     Report
}

func newVerifier(opts digestOptions) *verifier {
	return &verifier{opts: opts, seed: maphash.MakeSeed(), byID: map[string]int{}, sources: map[uint64]bool{}, last: map[orderKey]int{}}
}

// ledgerID is the id the route gives an event: the bridge-event-id it
// already carries, else its local coordinates.
func ledgerID(ev *event.Event) string {
	if id, ok := ev.Header(event.HeaderEventID); ok {
		return string(id)
	}
	return ev.ID()
}

// addLedger records one local log event. sourceID identifies the message
// in the source system ("" when it has none); filtered says the filter
// did not select it.
func (v *verifier) addLedger(ev *event.Event, sourceID string, filtered bool) {
	e := ledgerEntry{id: ledgerID(ev), sourceID: sourceID, partition: ev.Partition, filtered: filtered,
		digest: digest(ev, v.opts), keyHash: maphash.Bytes(v.seed, ev.Key)}
	v.rep.SourceCount++
	if sourceID != "" {
		// A redelivery has the same source id and the same content; a
		// producer reusing an id for other content is not a duplicate.
		var h maphash.Hash
		h.SetSeed(v.seed)
		h.WriteString(sourceID)
		h.Write(e.digest[:])
		e.srcKey = h.Sum64() | 1
		if v.sources[e.srcKey] {
			e.srcDup = true
			v.rep.SourceDuplicates++
		}
		v.sources[e.srcKey] = true
	}
	if filtered {
		v.rep.FilteredOut++
	}
	if _, dup := v.byID[e.id]; dup {
		// Two ledger events with one carried id: the second can never be
		// told apart in the target; count it as a source duplicate.
		if !e.srcDup {
			v.rep.SourceDuplicates++
		}
		e.srcDup = true
		v.entries = append(v.entries, e)
		return
	}
	v.byID[e.id] = len(v.entries)
	v.entries = append(v.entries, e)
}

// addTarget records one message read back from the target.
func (v *verifier) addTarget(m *targetMessage) {
	v.rep.TargetCount++
	raw, ok := m.Event.Header(event.HeaderEventID)
	if !ok {
		v.rep.Extra++
		v.rep.ExtraNoEventID++
		v.sample(&v.rep.ExtraIDs, "(no bridge-event-id) at "+m.Position)
		return
	}
	i, ok := v.byID[string(raw)]
	if !ok || v.entries[i].filtered {
		v.rep.Extra++
		v.sample(&v.rep.ExtraIDs, string(raw))
		return
	}
	e := &v.entries[i]
	e.found++
	if e.found > 1 {
		v.rep.TargetDuplicates++
		return
	}
	e.position = m.Position
	if digest(&m.Event, v.opts) != e.digest {
		e.badDigest = true
		v.rep.Mismatched++
		v.sample(&v.rep.MismatchedIDs, e.id)
	}
	k := orderKey{keyHash: e.keyHash, local: e.partition, partition: m.Partition}
	if last, seen := v.last[k]; seen && i < last {
		v.rep.OrderViolations++
	} else {
		v.last[k] = i
	}
}

func (v *verifier) sample(list *[]string, id string) {
	if len(*list) < sampleSize {
		*list = append(*list, id)
	}
}

// report finishes the comparison. missing counts expected events with no
// copy in the target; a source duplicate whose first copy arrived is not
// missing (the message did arrive), nor is its copy counted twice.
func (v *verifier) report() Report {
	r := v.rep
	delivered := map[uint64]bool{}
	for i := range v.entries {
		e := &v.entries[i]
		if e.filtered || e.found == 0 || e.srcKey == 0 {
			continue
		}
		delivered[e.srcKey] = true
	}
	for i := range v.entries {
		e := &v.entries[i]
		if e.filtered {
			continue
		}
		if e.found > 0 {
			r.Delivered++
			continue
		}
		if e.srcDup && e.srcKey != 0 && delivered[e.srcKey] {
			continue // another copy of the same source message arrived
		}
		if e.srcDup && v.byID[e.id] != i && v.entries[v.byID[e.id]].found > 0 {
			continue // same carried id, and that id arrived
		}
		r.Missing++
		name := e.id
		if e.sourceID != "" {
			name += " (source " + e.sourceID + ")"
		}
		v.sample(&r.MissingIDs, name)
	}
	r.Expected = r.SourceCount - r.FilteredOut
	r.Duplicates = r.SourceDuplicates + r.TargetDuplicates
	r.OK = r.Missing == 0 && r.Mismatched == 0
	return r
}

// position is one line of the position map.
type position struct {
	SourceID string  `json:"source_id,omitempty"`
	Seq      int     `json:"seq"`      // order in the ledger (the source's delivery order)
	EventID  string  `json:"event_id"` // bridge-event-id
	Target   *string `json:"target"`   // target position; null when not delivered
	Status   string  `json:"status"`   // delivered | mismatched | missing | filtered | duplicate
}

// positions returns the position map, one entry per ledger event.
func (v *verifier) positions(yield func(position) error) error {
	for i := range v.entries {
		e := &v.entries[i]
		p := position{SourceID: e.sourceID, Seq: i, EventID: e.id, Status: "delivered"}
		switch {
		case e.filtered:
			p.Status = "filtered"
		case e.found == 0 && e.srcDup:
			p.Status = "duplicate"
		case e.found == 0:
			p.Status = "missing"
		case e.badDigest:
			p.Status = "mismatched"
		}
		if e.found > 0 {
			pos := e.position
			p.Target = &pos
		}
		if err := yield(p); err != nil {
			return err
		}
	}
	return nil
}

// sourceIDOf names a ledger event's message in the source system, from
// the headers the source connector set: the Kafka coordinates, the SQS
// MessageId, the AMQP message_id property, or the id a bridge:// source
// gave it. "" when the source has no id for it (an AMQP message without
// message_id: its position in the ledger, Seq, is its delivery order).
func sourceIDOf(from Kind, ev *event.Event) string {
	get := func(name string) string {
		v, _ := ev.Header(name)
		return string(v)
	}
	switch from {
	case KindKafka:
		if t := get("kafka.topic"); t != "" {
			return t + "/" + get("kafka.partition") + "/" + get("kafka.offset")
		}
	case KindSQS:
		return get("sqs.MessageId")
	case KindAMQP:
		return get("amqp.message_id")
	case KindBridge:
		return get(event.HeaderEventID)
	}
	return ""
}
