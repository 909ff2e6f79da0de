package queue

import (
	"bytes"
	"sort"
	"time"
)

// PeekedMessage is a stored message as an operator browses it: a copy,
// taken without receiving (no receive count, visibility or receipt change).
type PeekedMessage struct {
	Seq              uint64 // position in the queue; Peek pages by it
	MessageID        string
	Body             []byte
	Attributes       []Attribute
	State            string // "visible", "in_flight", "delayed" or "moving"
	SentAt           time.Time
	ReceiveCount     int
	GroupID          string
	DeadLetterSource string    // queue it was dead-lettered from, "" if none
	Priority         int       // as sent (0..255)
	ExpiresAt        time.Time // zero when the message never expires
}

// peek describes m without copying its bytes (for match functions, which
// must not keep them). Called with q.mu held.
func (m *message) peek() PeekedMessage {
	state := "visible"
	switch m.state {
	case stateInflight:
		state = "in_flight"
	case stateDelayed:
		state = "delayed"
	case stateMoving:
		state = "moving"
	}
	return PeekedMessage{Seq: m.seq, MessageID: m.id, Body: m.body, Attributes: m.attrs, State: state,
		SentAt: time.Unix(0, m.sentAt).UTC(), ReceiveCount: int(m.receiveCount), GroupID: m.groupID,
		DeadLetterSource: m.deadLetterSource, Priority: int(m.priority), ExpiresAt: unixTime(m.expiresAt)}
}

// Peek returns copies of up to n stored messages with Seq > after, oldest
// first, and whether more follow. It changes nothing: browsing a queue must
// not count as receiving it.
func (q *Queue) Peek(after uint64, n int) ([]PeekedMessage, bool) {
	now := q.m.now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advanceLocked(now)
	first := sort.Search(q.order.len(), func(i int) bool { return q.order.at(i).seq > after })
	var out []PeekedMessage
	for i := first; i < q.order.len(); i++ {
		msg := q.order.at(i)
		if msg.state == stateGone || msg.state == stateNew {
			continue
		}
		if len(out) == n {
			return out, true
		}
		p := msg.peek()
		p.Body = bytes.Clone(p.Body)
		p.Attributes = make([]Attribute, len(msg.attrs))
		for j, a := range msg.attrs {
			p.Attributes[j] = Attribute{Name: a.Name, DataType: a.DataType, Value: bytes.Clone(a.Value)}
		}
		out = append(out, p)
	}
	return out, false
}

// Oldest returns when the oldest stored message was sent (zero when empty).
func (q *Queue) Oldest() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := 0; i < q.order.len(); i++ {
		if m := q.order.at(i); m.state != stateGone && m.state != stateNew {
			return time.Unix(0, m.sentAt).UTC()
		}
	}
	return time.Time{}
}
