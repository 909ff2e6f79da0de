package queue

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// Attribute is a message attribute. DataType is "String", "Number", "Binary",
// or one of them with a custom suffix ("String.x").
type Attribute struct {
	Name, DataType string
	Value          []byte
}

// SendInput is one message to send.
type SendInput struct {
	Body             []byte
	Attributes       []Attribute // at most 10 (SQS rule; checked by the API layer, not here)
	SystemAttributes []Attribute // e.g. AWSTraceHeader
	// Delay is used when HasDelay; else the queue's Delay. FIFO queues
	// reject a per-message delay. A standard queue takes delays past
	// MaxDelay (SQS's 15 minutes), up to below its Retention: scheduled
	// work.
	Delay    time.Duration
	HasDelay bool
	GroupID  string // required for FIFO
	DedupID  string // FIFO: required unless ContentBasedDeduplication (then SHA-256 of body)
	// Priority is 0..255 (0 = RabbitMQ's default, the lowest). A priority
	// queue delivers higher priorities first; above the queue's
	// MaxPriority it counts as MaxPriority; other queues keep it but
	// ignore it.
	Priority int
	// TTL expires the message if it is not delivered within TTL after it
	// becomes visible (0 = only the queue's MessageTTL; the lower wins).
	TTL time.Duration
}

// SendResult is the outcome of one SendInput.
type SendResult struct {
	MessageID      string
	SequenceNumber string // FIFO only
	Err            error  // per-entry failure (ErrMessageTooLarge, ErrInvalidParameter, ...)
}

// Message is one delivery returned by Receive. Body and attribute values
// alias the queue's copy: read them, do not modify them.
type Message struct {
	MessageID        string
	ReceiptHandle    string // opaque; encodes the message and its delivery generation
	Body             []byte
	MD5OfBody        string
	Attributes       []Attribute
	SystemAttributes []Attribute
	ReceiveCount     int       // ApproximateReceiveCount, including this receive
	SentAt           time.Time // SentTimestamp
	FirstReceivedAt  time.Time // ApproximateFirstReceiveTimestamp
	GroupID          string
	DedupID          string
	SequenceNumber   string
	DeadLetterSource string    // queue it was dead-lettered from, "" if none
	Priority         int       // as sent (0..255)
	ExpiresAt        time.Time // zero when the message never expires
}

// Stats are a queue's depths (SQS's Approximate* attributes), timestamps,
// and what expired since Open (counters, not journaled).
type Stats struct {
	Visible, InFlight, Delayed int
	CreatedAt, ModifiedAt      time.Time
	// ExpiredDropped counts messages whose TTL passed on a queue without
	// a dead-letter queue; ExpiredDeadLettered those moved to it.
	ExpiredDropped, ExpiredDeadLettered int64
}

type msgState uint8

const (
	stateNew      msgState = iota // not yet inserted; not counted
	stateDelayed                  // never received, visibleAt in the future
	stateVisible                  // receivable
	stateInflight                 // received, invisible until visibleAt
	stateMoving                   // being moved to another queue; owned by the mover
	stateGone                     // deleted, purged, expired or moved
	numStates
)

// message is the queue's record of one message. Times are unix nanoseconds.
type message struct {
	seq              uint64
	id               string
	body             []byte
	attrs, sysAttrs  []Attribute
	groupID          string
	dedupID          string
	deadLetterSource string
	sentAt           int64
	firstRecvAt      int64 // 0 = never received
	visibleAt        int64
	receiveCount     uint32 // also the delivery generation in receipts
	epoch            uint32 // queue epoch of the latest delivery
	state            msgState
	tick             uint32 // bumped whenever heap or ready entries must go stale
	group            *group // FIFO only
	priority         uint8  // as sent; the ready level is min(priority, MaxPriority)
	// expiresAt is when the TTL ends (0 = never); expiryQueued says the
	// expiry heap holds an entry for m (see expireDueLocked).
	expiresAt    int64
	expiryQueued bool
	moveReason   moveReason // why m is moving, for the copy's bridge-error
}

// moveReason says why a message is being moved to another queue.
type moveReason uint8

const (
	moveOther   moveReason = iota // redrive, max receive count, AMQP reject
	moveExpired                   // TTL passed: the copy gets bridge-error: expired
)

// size is what counts against MaxMessageSize: body plus attribute names,
// types and values, as SQS counts it.
func messageSize(body []byte, attrs []Attribute) int {
	n := len(body)
	for _, a := range attrs {
		n += len(a.Name) + len(a.DataType) + len(a.Value)
	}
	return n
}

// liveSize estimates the journal bytes m costs, to decide when to compact.
func (m *message) liveSize() int64 {
	return int64(64 + len(m.id) + len(m.groupID) + len(m.dedupID) + messageSize(m.body, m.attrs) + messageSize(nil, m.sysAttrs))
}

func (m *message) sequenceNumber() string {
	if m.group == nil {
		return ""
	}
	return formatSequence(m.seq)
}

// formatSequence renders a FIFO sequence number: zero-padded to 20 digits
// so that string order equals numeric order, as SQS's are.
func formatSequence(seq uint64) string {
	var buf [20]byte
	s := strconv.AppendUint(buf[:0], seq, 10)
	out := make([]byte, 20)
	for i := range out {
		out[i] = '0'
	}
	copy(out[20-len(s):], s)
	return string(out)
}

// messageID renders a UUID-shaped id from a per-open random prefix and the
// sequence: unique without a random read per message. The variant bits
// overwrite the top two bits of the sequence, so ids stay unique below 2^62
// sends per open.
func messageID(prefix uint64, seq uint64) string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], prefix)
	binary.BigEndian.PutUint64(raw[8:], seq)
	raw[6] = raw[6]&0x0f | 0x40 // version 4 layout
	raw[8] = raw[8]&0x3f | 0x80 // variant bits
	var out [36]byte
	hex.Encode(out[0:8], raw[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], raw[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], raw[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], raw[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], raw[10:16])
	return string(out[:])
}

// receipt is a decoded receipt handle: which queue incarnation, which
// message, which delivery. A handle from an earlier delivery (another epoch
// or receive count) cannot delete or extend a later one.
type receipt struct {
	queueID uint64
	epoch   uint32
	seq     uint64
	gen     uint32
}

const receiptLength = 24

func (r receipt) encode() string {
	var raw [receiptLength]byte
	binary.BigEndian.PutUint64(raw[0:], r.queueID)
	binary.BigEndian.PutUint32(raw[8:], r.epoch)
	binary.BigEndian.PutUint64(raw[12:], r.seq)
	binary.BigEndian.PutUint32(raw[20:], r.gen)
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func decodeReceipt(handle string) (receipt, bool) {
	var raw [receiptLength]byte
	if base64.RawURLEncoding.EncodedLen(receiptLength) != len(handle) {
		return receipt{}, false
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(handle)); err != nil || n != receiptLength {
		return receipt{}, false
	}
	return receipt{
		queueID: binary.BigEndian.Uint64(raw[0:]),
		epoch:   binary.BigEndian.Uint32(raw[8:]),
		seq:     binary.BigEndian.Uint64(raw[12:]),
		gen:     binary.BigEndian.Uint32(raw[20:]),
	}, true
}

func md5Hex(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

func unixTime(nanos int64) time.Time {
	if nanos == 0 {
		return time.Time{}
	}
	return time.Unix(0, nanos)
}
