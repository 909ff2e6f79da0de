package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bridgeio/bridge/event"
)

// BackboneConfig configures Kafka as bridge's backbone (backbone.type: kafka).
type BackboneConfig struct {
	Client ClientConfig
	// Topics are created with this many partitions when absent; existing
	// topics keep theirs.
	Topics map[string]int
	// ReplicationFactor of created topics; 0 or -1 = the broker default.
	ReplicationFactor int16
	Logger            *slog.Logger
}

// Backbone is a Kafka cluster used as the log of bridge: events are
// produced with an idempotent acks=all producer (Kafka's partitioner, so a
// key lands where a Java client would put it), pipelines read partitions
// directly, and each route's checkpoint is its consumer group's committed
// offset. Several bridge processes on one cluster share a route's
// partitions through the group (Join), which is how bridge outgrows one
// machine.
//
// Readers: each (topic, partition, position) being read has its own
// direct-consume client, found by the offset the caller asks for; a reader
// idle for a minute is closed. Offsets of a partition whose records were
// deleted by retention are reset to the log start, as Kafka consumers do
// with auto.offset.reset=earliest.
type Backbone struct {
	cfg      BackboneConfig
	log      *slog.Logger
	base     []kgo.Opt
	producer *kgo.Client
	admin    *kadm.Client

	mu         sync.Mutex // guards the maps below
	partitions map[string]int
	readers    map[readerKey][]*reader
	members    map[string]*kgo.Client // group -> the member client of this process
	offsets    map[string]offsetCache
	closed     bool
}

type readerKey struct {
	topic     string
	partition int32
}

// reader is one direct consumer of a partition positioned at next.
type reader struct {
	cl       *kgo.Client
	next     int64
	busy     bool
	lastUsed time.Time
	buf      []*kgo.Record // polled but not yet returned
}

type offsetCache struct {
	start, end []int64
	at         time.Time
}

// NewBackbone connects, creates the configured topics that are missing and
// loads partition counts.
func NewBackbone(ctx context.Context, cfg BackboneConfig) (*Backbone, error) {
	base, err := cfg.Client.Options()
	if err != nil {
		return nil, err
	}
	b := &Backbone{cfg: cfg, log: orDiscard(cfg.Logger), base: base, partitions: map[string]int{},
		readers: map[readerKey][]*reader{}, members: map[string]*kgo.Client{}, offsets: map[string]offsetCache{}}
	popts := append(slices.Clone(base), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if b.producer, err = kgo.NewClient(popts...); err != nil {
		return nil, fmt.Errorf("kafka backbone: %w", err)
	}
	b.admin = kadm.NewClient(b.producer)
	if err := b.ensureTopics(ctx); err != nil {
		b.producer.Close()
		return nil, err
	}
	return b, nil
}

func (b *Backbone) ensureTopics(ctx context.Context) error {
	names := make([]string, 0, len(b.cfg.Topics))
	for name := range b.cfg.Topics {
		names = append(names, name)
	}
	slices.Sort(names)
	rf := b.cfg.ReplicationFactor
	if rf == 0 {
		rf = -1
	}
	for _, name := range names {
		resp, err := b.admin.CreateTopics(ctx, int32(b.cfg.Topics[name]), rf, nil, name)
		if err != nil {
			return fmt.Errorf("kafka backbone: create topic %s: %w", name, err)
		}
		if r, ok := resp[name]; ok && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka backbone: create topic %s: %w", name, r.Err)
		}
	}
	if len(names) == 0 {
		return nil
	}
	md, err := b.admin.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("kafka backbone: metadata: %w", err)
	}
	for _, name := range names {
		td, ok := md[name]
		if !ok || td.Err != nil {
			return fmt.Errorf("kafka backbone: topic %s: %v", name, td.Err)
		}
		b.partitions[name] = len(td.Partitions)
	}
	return nil
}

// Append produces evs and returns once Kafka acknowledged all of them
// (acks=all, idempotent producer).
func (b *Backbone) Append(ctx context.Context, topic string, evs []event.Event) ([]event.Position, error) {
	if _, err := b.Partitions(topic); err != nil {
		return nil, err
	}
	records := make([]*kgo.Record, len(evs))
	for i := range evs {
		ev := &evs[i]
		hs := asRecordHeaders(ev.Headers)
		if ev.Source != "" {
			hs = append(hs, kgo.RecordHeader{Key: event.HeaderSource, Value: []byte(ev.Source)})
		}
		records[i] = &kgo.Record{Topic: topic, Key: ev.Key, Value: ev.Value, Headers: hs, Timestamp: ev.Timestamp}
	}
	results := b.producer.ProduceSync(ctx, records...)
	pos := make([]event.Position, len(records))
	for i, r := range results {
		if r.Err != nil {
			return nil, fmt.Errorf("kafka backbone: produce to %s: %w", topic, r.Err)
		}
		pos[i] = event.Position{Partition: r.Record.Partition, Offset: r.Record.Offset}
	}
	return pos, nil
}

// Partitions returns the partition count of a backbone topic.
func (b *Backbone) Partitions(topic string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.partitions[topic]
	if !ok {
		return 0, fmt.Errorf("kafka backbone: unknown topic %s", topic)
	}
	return n, nil
}

// Topics lists the backbone topics, sorted.
func (b *Backbone) Topics() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.partitions))
	for n := range b.partitions {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Fetch returns events from offset from, waiting until there is at least
// one or ctx is done.
func (b *Backbone) Fetch(ctx context.Context, topic string, partition int32, from int64, maxEvents, _ int) ([]event.Event, error) {
	r, err := b.takeReader(topic, partition, from)
	if err != nil {
		return nil, err
	}
	defer b.returnReader(topic, partition, r)
	for len(r.buf) == 0 {
		fs := r.cl.PollRecords(ctx, maxEvents)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errs := fs.Errors(); len(errs) > 0 {
			for _, fe := range errs {
				if !errors.Is(fe.Err, context.Canceled) && !errors.Is(fe.Err, context.DeadlineExceeded) {
					return nil, fmt.Errorf("kafka backbone: fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
				}
			}
		}
		for _, rec := range fs.Records() {
			if rec.Offset >= r.next {
				r.buf = append(r.buf, rec)
			}
		}
	}
	n := min(len(r.buf), maxEvents)
	out := make([]event.Event, n)
	for i, rec := range r.buf[:n] {
		out[i] = fromRecord(rec)
	}
	r.buf = r.buf[n:]
	r.next = out[n-1].Offset + 1
	return out, nil
}

// fromRecord maps a backbone record back to an event.
func fromRecord(rec *kgo.Record) event.Event {
	ev := event.Event{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key,
		Value: rec.Value, Timestamp: rec.Timestamp}
	for _, h := range rec.Headers {
		ev.Headers = append(ev.Headers, event.Header{Key: h.Key, Value: h.Value})
	}
	if n := len(ev.Headers); n > 0 && ev.Headers[n-1].Key == event.HeaderSource {
		ev.Source = string(ev.Headers[n-1].Value)
		ev.Headers = ev.Headers[:n-1]
	}
	return ev
}

// Read is Fetch with a short wait: Kafka has no "what is there now" read,
// so it polls for up to 200 ms.
func (b *Backbone) Read(topic string, partition int32, from int64, maxEvents, maxBytes int) ([]event.Event, error) {
	_, end, err := b.Offsets(topic, partition)
	if err == nil && from >= end {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	evs, err := b.Fetch(ctx, topic, partition, from, maxEvents, maxBytes)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, nil
	}
	return evs, err
}

// takeReader finds an idle reader positioned at from, or makes one.
func (b *Backbone) takeReader(topic string, partition int32, from int64) (*reader, error) {
	key := readerKey{topic, partition}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errors.New("kafka backbone: closed")
	}
	var idle []*reader
	for _, r := range b.readers[key] {
		if r.busy {
			continue
		}
		if r.next == from {
			r.busy = true
			b.mu.Unlock()
			return r, nil
		}
		idle = append(idle, r)
	}
	b.mu.Unlock()
	// Idle readers that missed for a minute are closed; a new reader
	// starts exactly at from.
	b.reap(key, idle)
	opts := append(slices.Clone(b.base),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka backbone: reader: %w", err)
	}
	r := &reader{cl: cl, next: from, busy: true}
	b.mu.Lock()
	b.readers[key] = append(b.readers[key], r)
	b.mu.Unlock()
	return r, nil
}

func (b *Backbone) returnReader(topic string, partition int32, r *reader) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r.busy = false
	r.lastUsed = time.Now()
}

func (b *Backbone) reap(key readerKey, idle []*reader) {
	var gone []*reader
	b.mu.Lock()
	for _, r := range idle {
		if !r.busy && time.Since(r.lastUsed) > time.Minute {
			r.busy = true
			gone = append(gone, r)
		}
	}
	b.readers[key] = slices.DeleteFunc(b.readers[key], func(r *reader) bool { return slices.Contains(gone, r) })
	b.mu.Unlock()
	for _, r := range gone {
		r.cl.Close()
	}
}

// Offsets returns the first offset and the next offset to be written.
// Answers are cached for half a second: status pages ask per cursor.
func (b *Backbone) Offsets(topic string, partition int32) (int64, int64, error) {
	b.mu.Lock()
	c, ok := b.offsets[topic]
	b.mu.Unlock()
	if !ok || time.Since(c.at) > 500*time.Millisecond {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := b.Partitions(topic)
		if err != nil {
			return 0, 0, err
		}
		starts, err := b.admin.ListStartOffsets(ctx, topic)
		if err != nil {
			return 0, 0, err
		}
		ends, err := b.admin.ListEndOffsets(ctx, topic)
		if err != nil {
			return 0, 0, err
		}
		c = offsetCache{start: make([]int64, n), end: make([]int64, n), at: time.Now()}
		for p := range n {
			if s, ok := starts.Lookup(topic, int32(p)); ok && s.Err == nil {
				c.start[p] = s.Offset
			}
			if e, ok := ends.Lookup(topic, int32(p)); ok && e.Err == nil {
				c.end[p] = e.Offset
			}
		}
		b.mu.Lock()
		b.offsets[topic] = c
		b.mu.Unlock()
	}
	if int(partition) >= len(c.start) || partition < 0 {
		return 0, 0, fmt.Errorf("kafka backbone: %s has no partition %d", topic, partition)
	}
	return c.start[partition], c.end[partition], nil
}

// OffsetForTime returns the first offset whose timestamp is at or after t.
func (b *Backbone) OffsetForTime(topic string, partition int32, t time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo, err := b.admin.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
	if err != nil {
		return 0, err
	}
	o, ok := lo.Lookup(topic, partition)
	if !ok || o.Err != nil {
		return 0, fmt.Errorf("kafka backbone: offset for time %s/%d: %v", topic, partition, o.Err)
	}
	if o.Offset < 0 {
		_, end, err := b.Offsets(topic, partition)
		return end, err
	}
	return o.Offset, nil
}

// Commit stores next as group's committed offset. While this process is
// a member of group (Join), the commit goes through the member, with its
// generation, as Kafka requires of an active group; otherwise it is an
// admin commit (e.g. a replay while the pipeline is not running).
func (b *Backbone) Commit(ctx context.Context, group, topic string, partition int32, next int64) error {
	b.mu.Lock()
	member := b.members[group]
	b.mu.Unlock()
	if member != nil {
		var cerr error
		done := make(chan struct{})
		member.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {partition: {Epoch: -1, Offset: next}}},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				cerr = err
				if err == nil {
					cerr = commitResponseError(resp)
				}
				close(done)
			})
		<-done
		return cerr
	}
	var os kadm.Offsets
	os.AddOffset(topic, partition, next, -1)
	resp, err := b.admin.CommitOffsets(ctx, group, os)
	if err != nil {
		return err
	}
	return resp.Error()
}

// Committed reads group's committed offset.
func (b *Backbone) Committed(ctx context.Context, group, topic string, partition int32) (int64, bool, error) {
	resp, err := b.admin.FetchOffsetsForTopics(ctx, group, topic)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return 0, false, nil // a group that never committed
	}
	if err != nil {
		return 0, false, err
	}
	o, ok := resp.Lookup(topic, partition)
	if !ok || o.Err != nil || o.At < 0 {
		return 0, false, nil
	}
	return o.At, true, nil
}

// OutOfRange never matches: readers reset to the log start instead (see
// the type doc).
func (b *Backbone) OutOfRange(error) (int64, int64, bool) { return 0, 0, false }

// Join is a member of group for topic until ctx is done: assigned and
// revoked follow the group's decisions. The member fetches nothing (reads
// go through the direct readers); it exists to split partitions between
// bridge processes and to commit with the group's generation.
func (b *Backbone) Join(ctx context.Context, group, topic string, assigned, revoked func([]int32)) error {
	lost := make(chan error, 1)
	// A killed process's partitions move after the session timeout (see
	// ClientConfig.SessionTimeout).
	opts := append(slices.Clone(b.base), b.cfg.Client.groupOptions()...)
	opts = append(opts,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if ps := m[topic]; len(ps) > 0 {
				assigned(sortedPartitions(ps))
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if ps := m[topic]; len(ps) > 0 {
				revoked(sortedPartitions(ps))
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if ps := m[topic]; len(ps) > 0 {
				revoked(sortedPartitions(ps))
			}
			select {
			case lost <- errors.New("kafka backbone: group membership lost"):
			default:
			}
		}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka backbone: join %s: %w", group, err)
	}
	cl.PauseFetchTopics(topic)
	b.mu.Lock()
	b.members[group] = cl
	b.mu.Unlock()
	defer func() {
		// Close leaves the group; leaving revokes every owned partition
		// first, through OnPartitionsRevoked, which commits through cl, so
		// the member is unregistered only afterwards.
		cl.Close()
		b.mu.Lock()
		if b.members[group] == cl {
			delete(b.members, group)
		}
		b.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-lost:
		return err
	}
}

// commitResponseError returns the first per-partition error of a commit.
func commitResponseError(resp *kmsg.OffsetCommitResponse) error {
	if resp == nil {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("kafka backbone: commit %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

func sortedPartitions(ps []int32) []int32 {
	out := slices.Clone(ps)
	slices.Sort(out)
	return out
}

// Close closes every client.
func (b *Backbone) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	var all []*reader
	for _, rs := range b.readers {
		all = append(all, rs...)
	}
	b.readers = map[readerKey][]*reader{}
	b.mu.Unlock()
	for _, r := range all {
		r.cl.Close()
	}
	b.producer.Close()
	return nil
}
