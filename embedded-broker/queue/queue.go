package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

// Queue is one durable queue. All methods are safe for concurrent use.
type Queue struct {
	m    *Manager
	name string
	fifo bool

	// mu guards everything below up to the journal block. It is the only
	// lock held while state changes; it is never held during I/O, while
	// waiting, or together with another queue's mu.
	mu        sync.Mutex
	cfg       Config
	meta      queueMeta
	closedErr error // non-nil once the queue is deleted or the manager closed
	nextSeq   uint64
	epoch     uint32
	idPrefix  uint64
	msgs      map[uint64]*message
	order     ring[*message] // every stored message in seq order (gone ones are dropped lazily)
	// ready holds the visible messages of a standard queue, one ring per
	// priority level (one level unless MaxPriority is set); readyBits
	// marks the levels whose ring is not empty (priority.go).
	ready     []ring[readyEntry]
	readyBits [4]uint64
	groups    map[string]*group
	readyGrp  ring[*group]
	deadlines deadlineHeap
	// expiries holds the TTL ends of messages with a TTL (expiry.go);
	// expiredMoves are expired messages marked moving, waiting for a
	// caller that can take the dead-letter queue's lock.
	expiries     deadlineHeap
	expiredMoves []*message
	counts       [numStates]int
	dedup        map[string]dedupEntry
	dedupExp     ring[dedupExpiry]
	waiters      []*waiter
	liveBytes    int64

	// pending holds encoded journal records not yet written; pendingBase is
	// the logical journal offset of pending[0]. Both are guarded by mu.
	pending     []byte
	pendingBase uint64

	// The journal block is guarded by flushMu, which is taken before mu
	// (never after it): one flusher at a time takes all of pending, writes
	// it and syncs it, and every sender whose records were included is done.
	flushMu    sync.Mutex
	file       vfs.File
	fileSize   int64
	spare      []byte
	writtenEnd uint64 // logical offset written to the file
	ioErr      error  // sticky: after a failed sync, or a failed write that could not be truncated away

	// lastUsed is when a sender or receiver last used the queue (unix
	// nanoseconds), for IdleTimeout. expiredDropped and expiredMoved
	// count expiries (Stats).
	lastUsed       atomic.Int64
	expiredDropped atomic.Int64
	expiredMoved   atomic.Int64

	// syncedEnd is the logical offset made durable. The interval policy's
	// fsync runs outside flushMu (under syncMu) so that senders keep
	// writing while the disk syncs; hence an atomic. Lock order: flushMu,
	// then syncMu; the background sync never holds both.
	syncedEnd atomic.Uint64
	syncMu    sync.Mutex
}

type readyEntry struct {
	m    *message
	tick uint32
}

// group is a FIFO message group: its stored messages in seq order. It is
// receivable when nothing of it is in flight and its head is visible.
type group struct {
	id       string
	msgs     []*message
	inflight int
	queued   bool // in readyGrp
}

type dedupEntry struct {
	id        string
	seq       uint64
	expiresAt int64
}

type dedupExpiry struct {
	key       string
	expiresAt int64
}

// waiter is a parked receiver: ch has room for one wake-up, and max is how
// many messages its Receive asked for.
type waiter struct {
	ch  chan struct{}
	max int
}

// queueMeta is what the config record holds.
type queueMeta struct {
	Config     Config    `json:"config"`
	QueueID    uint64    `json:"queue_id"`
	CreatedAt  time.Time `json:"created_at"`
	ModifiedAt time.Time `json:"modified_at"`
}

func newQueue(m *Manager, meta queueMeta) *Queue {
	q := &Queue{
		m:        m,
		name:     meta.Config.Name,
		fifo:     meta.Config.FIFO,
		cfg:      meta.Config,
		meta:     meta,
		nextSeq:  1,
		msgs:     map[uint64]*message{},
		groups:   map[string]*group{},
		dedup:    map[string]dedupEntry{},
		idPrefix: m.random64(),
		ready:    make([]ring[readyEntry], meta.Config.MaxPriority+1),
	}
	q.lastUsed.Store(m.now().UnixNano())
	return q
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// Config returns the queue's attributes, defaults applied.
func (q *Queue) Config() Config {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cfg
}

// Stats returns the current depths. It applies due deadlines first, so a
// message whose visibility timeout passed counts as visible.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advanceLocked(q.m.now().UnixNano())
	return Stats{
		Visible:             q.counts[stateVisible],
		InFlight:            q.counts[stateInflight] + q.counts[stateMoving],
		Delayed:             q.counts[stateDelayed],
		CreatedAt:           q.meta.CreatedAt,
		ModifiedAt:          q.meta.ModifiedAt,
		ExpiredDropped:      q.expiredDropped.Load(),
		ExpiredDeadLettered: q.expiredMoved.Load(),
	}
}

// SetConfig replaces the queue's attributes (zero fields take defaults).
// Name and FIFO cannot change. It returns once the change is durable.
// Config reports a stored zero visibility timeout as 0, which SetConfig
// reads as "default": pass a negative VisibilityTimeout to keep zero.
func (q *Queue) SetConfig(cfg Config) error {
	cfg = cfg.withDefaults()
	if cfg.Name != q.name || cfg.FIFO != q.fifo {
		return fmt.Errorf("set config of %s: %w: name and FIFO cannot change", q.name, ErrInvalidParameter)
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("set config of %s: %w", q.name, err)
	}
	q.mu.Lock()
	if q.closedErr != nil {
		q.mu.Unlock()
		return q.closedErr
	}
	relevel := cfg.MaxPriority != q.cfg.MaxPriority
	q.cfg = cfg
	q.meta.Config = cfg
	q.meta.ModifiedAt = q.m.now()
	if relevel {
		q.rebuildReadyLocked()
	}
	q.pending = appendConfigRecord(q.pending, q.m.encodeMeta(q.meta))
	end := q.endLocked()
	q.mu.Unlock()
	return q.commit(end, true)
}

// Send appends the inputs and returns once they are durable under the
// fsync policy (always: fsynced, sharing the fsync with concurrent callers;
// interval and never: written to the file). Entries are independent: a bad
// entry fails alone in its SendResult.Err. FIFO duplicates within
// DedupWindow return the original MessageID and are not enqueued again.
// The error is for the whole call (ErrClosed, an I/O failure, ctx). Send
// copies what it keeps: the caller may reuse the inputs once it returns.
func (q *Queue) Send(ctx context.Context, in []SendInput) ([]SendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	results := make([]SendResult, len(in))
	// Hash outside the lock: content-based deduplication costs a SHA-256
	// per message, the most expensive step of a send.
	var hashes []string
	if q.fifo {
		hashes = make([]string, len(in))
		for i := range in {
			if in[i].DedupID == "" {
				sum := sha256.Sum256(in[i].Body)
				hashes[i] = hex.EncodeToString(sum[:])
			}
		}
	}
	now := q.m.now().UnixNano()
	q.lastUsed.Store(now)
	q.mu.Lock()
	if q.closedErr != nil {
		q.mu.Unlock()
		return nil, q.closedErr
	}
	added := 0
	for i := range in {
		hash := ""
		if hashes != nil {
			hash = hashes[i]
		}
		if q.sendOneLocked(&in[i], hash, now, &results[i]) {
			added++
		}
	}
	end := q.endLocked()
	wake := q.takeWaitersLocked(added)
	q.mu.Unlock()
	wakeAll(wake)
	if err := q.commit(end, q.m.syncAlways); err != nil {
		return nil, err
	}
	return results, nil
}

// sendOneLocked validates and enqueues one input; it reports whether a new
// message became visible or delayed.
func (q *Queue) sendOneLocked(in *SendInput, hash string, now int64, res *SendResult) bool {
	delay, ttl, dedupID, err := q.checkSendLocked(in, hash)
	if err != nil {
		res.Err = fmt.Errorf("send to %s: %w", q.name, err)
		return false
	}
	if q.fifo {
		q.pruneDedupLocked(now)
		if prev, ok := q.dedup[dedupID]; ok {
			res.MessageID, res.SequenceNumber = prev.id, formatSequence(prev.seq)
			return false
		}
	}
	body, attrs, sysAttrs := copyPayload(in)
	m := &message{
		seq:       q.nextSeq,
		body:      body,
		attrs:     attrs,
		sysAttrs:  sysAttrs,
		dedupID:   dedupID,
		sentAt:    now,
		visibleAt: now + int64(delay),
		priority:  uint8(in.Priority),
	}
	if ttl > 0 {
		// The TTL runs from when the message becomes visible, so a
		// scheduled message (a long delay) gets its whole TTL at its time.
		m.expiresAt = m.visibleAt + int64(ttl)
	}
	if q.fifo {
		m.groupID = in.GroupID
	}
	q.nextSeq++
	m.id = messageID(q.idPrefix, m.seq)
	if q.fifo {
		q.rememberDedupLocked(dedupID, m.id, m.seq, now+int64(DedupWindow))
	}
	q.pending = appendPut(q.pending, m)
	q.insertLocked(m, now)
	res.MessageID, res.SequenceNumber = m.id, m.sequenceNumber()
	return true
}

// checkSendLocked validates one input against the queue's config and
// returns its delay, its TTL (the lower of the message's and the queue's;
// 0 = none) and deduplication id (hash under content-based deduplication).
func (q *Queue) checkSendLocked(in *SendInput, hash string) (time.Duration, time.Duration, string, error) {
	cfg := &q.cfg
	fail := func(err error) (time.Duration, time.Duration, string, error) { return 0, 0, "", err }
	if len(in.Body) == 0 {
		return fail(fmt.Errorf("%w: empty body", ErrInvalidParameter))
	}
	size := messageSize(in.Body, in.Attributes)
	if size > cfg.MaxMessageSize {
		return fail(fmt.Errorf("%w: %d bytes > %d", ErrMessageTooLarge, size, cfg.MaxMessageSize))
	}
	// System attributes do not count toward MaxMessageSize (as in SQS), but
	// the journal bounds a record; an over-long one would read back as
	// corruption, so refuse it here.
	if size+messageSize(nil, in.SystemAttributes)+len(in.GroupID)+len(in.DedupID)+recordSlack > maxRecordLength {
		return fail(fmt.Errorf("%w: message with system attributes exceeds %d bytes", ErrMessageTooLarge, maxRecordLength-recordSlack))
	}
	if in.Priority < 0 || in.Priority > MaxMaxPriority {
		return fail(fmt.Errorf("%w: priority %d outside 0..%d", ErrInvalidParameter, in.Priority, MaxMaxPriority))
	}
	ttl, err := effectiveTTL(in.TTL, cfg.MessageTTL)
	if err != nil {
		return fail(err)
	}
	delay := cfg.Delay
	if in.HasDelay {
		switch {
		case q.fifo && in.Delay != 0:
			return fail(fmt.Errorf("%w: FIFO queues take no per-message delay", ErrInvalidParameter))
		case in.Delay < 0 || in.Delay >= cfg.Retention:
			return fail(fmt.Errorf("%w: delay %v outside 0..%v (below the retention)", ErrInvalidParameter, in.Delay, cfg.Retention))
		case !q.fifo:
			delay = in.Delay
		}
	}
	if !q.fifo {
		if in.DedupID != "" {
			return fail(fmt.Errorf("%w: deduplication ids need a FIFO queue", ErrInvalidParameter))
		}
		return delay, ttl, "", nil
	}
	if in.GroupID == "" {
		return fail(fmt.Errorf("%w: a FIFO queue needs a message group id", ErrInvalidParameter))
	}
	if in.DedupID != "" {
		return delay, ttl, in.DedupID, nil
	}
	if !cfg.ContentBasedDeduplication {
		return fail(fmt.Errorf("%w: a deduplication id is required without content-based deduplication", ErrInvalidParameter))
	}
	return delay, ttl, hash, nil
}

// effectiveTTL is the lower of a message's TTL and its queue's (0 = none),
// as RabbitMQ picks; a TTL below MinTTL counts as MinTTL.
func effectiveTTL(message, queue time.Duration) (time.Duration, error) {
	if message < 0 {
		return 0, fmt.Errorf("%w: TTL %v is negative", ErrInvalidParameter, message)
	}
	ttl := message
	if ttl == 0 || queue > 0 && queue < ttl {
		ttl = queue
	}
	if ttl > 0 && ttl < MinTTL {
		ttl = MinTTL
	}
	return ttl, nil
}

// copyPayload copies a message's bytes into one allocation: callers (the
// engine) pass slices that alias buffers they reuse, and a queue keeps
// messages for days.
func copyPayload(in *SendInput) ([]byte, []Attribute, []Attribute) {
	size := len(in.Body)
	for _, a := range in.Attributes {
		size += len(a.Value)
	}
	for _, a := range in.SystemAttributes {
		size += len(a.Value)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, in.Body...)
	body := buf[:len(buf):len(buf)]
	copyAttrs := func(src []Attribute) []Attribute {
		if len(src) == 0 {
			return nil
		}
		out := make([]Attribute, len(src))
		for i, a := range src {
			start := len(buf)
			buf = append(buf, a.Value...)
			out[i] = Attribute{Name: a.Name, DataType: a.DataType, Value: buf[start:len(buf):len(buf)]}
		}
		return out
	}
	return body, copyAttrs(in.Attributes), copyAttrs(in.SystemAttributes)
}

// insertLocked adds a stored message to the in-memory structures in the
// state its visibleAt and receiveCount give at now.
func (q *Queue) insertLocked(m *message, now int64) {
	q.msgs[m.seq] = m
	q.order.push(m)
	q.liveBytes += m.liveSize()
	if m.expiresAt != 0 {
		q.queueExpiryLocked(m)
	}
	if q.fifo {
		g := q.groups[m.groupID]
		if g == nil {
			g = &group{id: m.groupID}
			q.groups[m.groupID] = g
		}
		g.msgs = append(g.msgs, m)
		m.group = g
	}
	switch {
	case m.visibleAt > now && m.receiveCount > 0:
		q.setStateLocked(m, stateInflight)
		if m.group != nil {
			m.group.inflight++
		}
		q.scheduleLocked(m)
	case m.visibleAt > now:
		q.setStateLocked(m, stateDelayed)
		q.scheduleLocked(m)
	default:
		q.makeVisibleLocked(m)
	}
}

func (q *Queue) setStateLocked(m *message, s msgState) {
	if m.state != stateNew && m.state != stateGone {
		q.counts[m.state]--
	}
	if s != stateGone {
		q.counts[s]++
	}
	m.state = s
}

// scheduleLocked pushes m's deadline; older entries of m go stale.
func (q *Queue) scheduleLocked(m *message) {
	m.tick++
	q.deadlines.push(deadline{at: m.visibleAt, m: m, tick: m.tick})
	live := q.counts[stateDelayed] + q.counts[stateInflight]
	if len(q.deadlines) > 2*live+1024 {
		q.rebuildDeadlinesLocked()
	}
}

// rebuildDeadlinesLocked drops stale heap entries. Deleted messages leave
// their entries behind (lazy deletion); without this, a 12h visibility
// timeout would pin every deleted message's memory for 12h.
func (q *Queue) rebuildDeadlinesLocked() {
	old := q.deadlines
	q.deadlines = make(deadlineHeap, 0, len(old)/2+16)
	for _, d := range old {
		if d.tick == d.m.tick && (d.m.state == stateDelayed || d.m.state == stateInflight) {
			q.deadlines.push(d)
		}
	}
}

// makeVisibleLocked turns m visible and queues it (or its group) for
// receive. A message with a TTL whose expiry entry was dropped while it was
// in flight gets one again, so an expiry that passed meanwhile is seen.
func (q *Queue) makeVisibleLocked(m *message) {
	q.setStateLocked(m, stateVisible)
	m.tick++
	if m.expiresAt != 0 && !m.expiryQueued {
		q.queueExpiryLocked(m)
	}
	if g := m.group; g != nil {
		q.queueGroupLocked(g)
		return
	}
	q.pushReadyLocked(m)
}

// queueGroupLocked puts g on the ready list if it can be received from.
func (q *Queue) queueGroupLocked(g *group) {
	if g.queued || g.inflight > 0 || len(g.msgs) == 0 || g.msgs[0].state != stateVisible {
		return
	}
	g.queued = true
	q.readyGrp.push(g)
}

// removeLocked deletes m from every structure (heap and ready entries go
// stale through the tick).
func (q *Queue) removeLocked(m *message) {
	wasInflight := m.state == stateInflight || m.state == stateMoving
	q.setStateLocked(m, stateGone)
	m.tick++
	delete(q.msgs, m.seq)
	q.liveBytes -= m.liveSize()
	if g := m.group; g != nil {
		for i, other := range g.msgs {
			if other == m {
				g.msgs = append(g.msgs[:i], g.msgs[i+1:]...)
				break
			}
		}
		if wasInflight {
			g.inflight--
		}
		if len(g.msgs) == 0 {
			delete(q.groups, g.id)
		} else {
			q.queueGroupLocked(g)
		}
	}
	// Release the payload now: the order ring and stale heap entries may
	// still point at m for a while.
	m.body, m.attrs, m.sysAttrs = nil, nil, nil
	if q.order.len() > 2*len(q.msgs)+1024 {
		q.rebuildOrderLocked()
	}
}

func (q *Queue) rebuildOrderLocked() {
	var fresh ring[*message]
	for i := 0; i < q.order.len(); i++ {
		if m := q.order.at(i); m.state != stateGone {
			fresh.push(m)
		}
	}
	q.order = fresh
}

// advanceLocked applies every deadline due at now and drops messages past
// their retention. It is called by every operation that reads state, so no
// background goroutine is needed for timeouts.
func (q *Queue) advanceLocked(now int64) {
	for len(q.deadlines) > 0 && q.deadlines[0].at <= now {
		d := q.deadlines.pop()
		m := d.m
		if d.tick != m.tick {
			continue
		}
		switch m.state {
		case stateDelayed:
			q.makeVisibleLocked(m)
		case stateInflight:
			if g := m.group; g != nil {
				g.inflight--
			}
			q.makeVisibleLocked(m)
		}
	}
	q.expireDueLocked(now)
	retention := int64(q.cfg.Retention)
	for q.order.len() > 0 {
		m := q.order.front()
		if m.state == stateGone {
			q.order.pop()
			continue
		}
		if m.sentAt+retention > now || m.state == stateMoving {
			break
		}
		q.order.pop()
		q.removeLocked(m)
	}
}

// nextDeadlineLocked returns the earliest live deadline, or 0.
func (q *Queue) nextDeadlineLocked() int64 {
	for len(q.deadlines) > 0 {
		d := q.deadlines[0]
		if d.tick == d.m.tick && (d.m.state == stateDelayed || d.m.state == stateInflight) {
			return d.at
		}
		q.deadlines.pop()
	}
	return 0
}

func (q *Queue) pruneDedupLocked(now int64) {
	for q.dedupExp.len() > 0 && q.dedupExp.front().expiresAt <= now {
		e := q.dedupExp.pop()
		if cur, ok := q.dedup[e.key]; ok && cur.expiresAt == e.expiresAt {
			delete(q.dedup, e.key)
		}
	}
}

func (q *Queue) rememberDedupLocked(key, id string, seq uint64, expiresAt int64) {
	if _, ok := q.dedup[key]; ok {
		return
	}
	q.dedup[key] = dedupEntry{id: id, seq: seq, expiresAt: expiresAt}
	q.dedupExp.push(dedupExpiry{key: key, expiresAt: expiresAt})
}

func (q *Queue) endLocked() uint64 { return q.pendingBase + uint64(len(q.pending)) }

// takeWaitersLocked removes, oldest first, the waiters that together asked
// for at least n messages (all when n < 0) for waking outside the lock.
// Waking by demand, not one waiter per message, matters for batches: ten
// messages sent at once go to one receiver that asked for ten, instead of
// waking every parked receiver for two or three each, which multiplied the
// receives, the deletes and their requests per message (four SDK consumers
// on the SQS API paid it in server CPU per message).
func (q *Queue) takeWaitersLocked(n int) []*waiter {
	if n == 0 || len(q.waiters) == 0 {
		return nil
	}
	count := len(q.waiters)
	if n > 0 {
		count = 0
		for covered := 0; count < len(q.waiters) && covered < n; count++ {
			covered += max(q.waiters[count].max, 1)
		}
	}
	out := make([]*waiter, count)
	copy(out, q.waiters)
	q.waiters = append(q.waiters[:0], q.waiters[count:]...)
	return out
}

func (q *Queue) removeWaiterLocked(w *waiter) bool {
	for i, other := range q.waiters {
		if other == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// wakeAll signals waiters; each channel has room for one signal, so the
// send never blocks.
func wakeAll(ws []*waiter) {
	for _, w := range ws {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

// close marks the queue closed with err and wakes every receiver.
func (q *Queue) close(err error) {
	q.mu.Lock()
	if q.closedErr == nil {
		q.closedErr = err
	}
	wake := q.takeWaitersLocked(-1)
	q.mu.Unlock()
	wakeAll(wake)
}
