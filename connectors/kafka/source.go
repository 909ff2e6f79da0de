package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/event"
)

// Headers the source adds to every event: the record's coordinates in the
// origin cluster, for migration verification and debugging (SPEC §8 carries
// system properties as headers with the system's prefix).
const (
	HeaderTopic     = "kafka.topic"
	HeaderPartition = "kafka.partition" // decimal
	HeaderOffset    = "kafka.offset"    // decimal
)

// Source defaults.
const (
	DefaultMaxBatch       = 1000
	DefaultInitialBackoff = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	// shutdownTimeout bounds the final commit and the group leave when Run
	// stops, so that an unreachable cluster cannot hang a shutdown.
	shutdownTimeout = 10 * time.Second
)

// SourceConfig configures a consumer-group source.
type SourceConfig struct {
	Client ClientConfig
	Topics []string // required
	Group  string   // consumer group id; required
	Name   string   // source name, copied into Event.Source; required
	// MaxBatch bounds the records handed to one deliver call; default 1000.
	MaxBatch int
	// InitialBackoff and MaxBackoff bound the wait before a failed batch is
	// fetched and delivered again (doubling per attempt); defaults 100ms, 10s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// NoOriginHeaders leaves out the kafka.topic, kafka.partition and
	// kafka.offset headers. They add ~55 bytes per record, which cost ~20%
	// of Kafka→Kafka throughput with 200-byte records in
	// BenchmarkKafkaToKafka; set it when nothing needs the origin.
	NoOriginHeaders bool
	Logger          *slog.Logger
}

// Source consumes Kafka topics as a member of a consumer group and commits
// offsets only for records whose deliver call returned nil. See the package
// doc for the guarantees.
type Source struct {
	cfg SourceConfig
	log *slog.Logger
	// marks is reset by every Run; a Run is one group member.
	marks *delivered
}

// NewSource validates cfg and applies defaults. It does no I/O and starts no
// goroutine; TLS files are read when Run starts.
func NewSource(cfg SourceConfig) (*Source, error) {
	errs := []error{cfg.Client.Validate()}
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if len(cfg.Topics) == 0 {
		fail("topics: at least one topic is required")
	}
	if cfg.Group == "" {
		fail("group: required")
	}
	if cfg.Name == "" {
		fail("name: required")
	}
	if cfg.MaxBatch < 0 || cfg.InitialBackoff < 0 || cfg.MaxBackoff < 0 {
		fail("max_batch and backoffs must not be negative")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff = DefaultInitialBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.InitialBackoff)
	log := orDiscard(cfg.Logger).With("source", cfg.Name, "group", cfg.Group)
	return &Source{cfg: cfg, log: log}, nil
}

var _ event.Source = (*Source)(nil)

// Run joins the group and delivers batches until ctx is cancelled, then
// commits what was delivered, leaves the group and returns nil. It returns an
// error only if the client cannot be built. Run may be called again after it
// returned; each call is a new group member. Run is not safe for concurrent
// use on one Source.
func (s *Source) Run(ctx context.Context, deliver event.DeliverFunc) error {
	s.marks = &delivered{}
	cl, err := s.newClient()
	if err != nil {
		return err
	}
	s.log.Info("kafka source started", "topics", s.cfg.Topics)
	defer s.shutdown(ctx, cl)

	deliverFailures, commitFailures, fetchFailures := 0, 0, 0
	for ctx.Err() == nil {
		records, fetchErr := s.poll(ctx, cl, commitFailures)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			break
		}
		if len(records) == 0 {
			// A commit that failed is retried while idle too, so that the
			// last delivered batch gets committed even if nothing else
			// arrives (poll returns empty after a backoff for this).
			if commitFailures > 0 {
				commitFailures = s.commit(ctx, cl, commitFailures)
			}
			cl.AllowRebalance()
			if fetchErr {
				// Errors franz-go does not retry itself come back at once;
				// back off so that they neither spin nor flood the log.
				sleep(ctx, backoff(s.cfg.InitialBackoff, s.cfg.MaxBackoff, fetchFailures))
				fetchFailures++
			}
			continue
		}
		fetchFailures = 0
		if err := deliver(ctx, toEvents(records, s.cfg.Name, !s.cfg.NoOriginHeaders)); err != nil {
			// Rewind before allowing the rebalance, so that either this member
			// fetches the same records again or the next owner starts from the
			// last commit, which is before them. Nothing is skipped.
			rewind(cl, records)
			cl.AllowRebalance()
			if ctx.Err() != nil {
				break
			}
			wait := backoff(s.cfg.InitialBackoff, s.cfg.MaxBackoff, deliverFailures)
			deliverFailures++
			s.log.Warn("deliver failed; will fetch and deliver the batch again",
				"records", len(records), "attempt", deliverFailures, "backoff", wait, "err", err)
			sleep(ctx, wait)
			continue
		}
		deliverFailures = 0
		s.marks.mark(records)
		commitFailures = s.commit(ctx, cl, commitFailures)
		cl.AllowRebalance()
	}
	return nil
}

func (s *Source) newClient() (*kgo.Client, error) {
	opts, err := s.cfg.Client.Options()
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", s.cfg.Name, err)
	}
	opts = append(opts,
		kgo.WithLogger(slogLogger{s.log}),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(s.cfg.Topics...),
		// A new group starts at the beginning: starting at the end would
		// silently skip what was produced before the first run.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Only offsets of delivered records are committed, by this source
		// (see delivered); franz-go must never commit what it merely fetched.
		kgo.DisableAutoCommit(),
		// A rebalance waits while a polled batch is in deliver, so a batch
		// is never split between two owners and a commit never lands on a
		// partition this member no longer owns. The cost: deliver must
		// finish within the rebalance timeout (60s), which holds for an
		// append to the backbone; a failing deliver does not hold the
		// rebalance during its backoff (Run rewinds and allows it first).
		kgo.BlockRebalanceOnPoll(),
	)
	// A killed process's partitions move after the session timeout (see
	// ClientConfig.SessionTimeout).
	opts = append(opts, s.cfg.Client.groupOptions()...)
	opts = append(opts,
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			s.log.Info("kafka partitions assigned", "partitions", assigned)
		}),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			// Nothing can be committed for lost partitions; their next owner
			// starts from the last commit (at-least-once).
			s.marks.forget(lost)
			s.log.Warn("kafka partitions lost", "partitions", lost)
		}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", s.cfg.Name, err)
	}
	return cl, nil
}

// onRevoked commits what was delivered before the partitions go to another
// member. With BlockRebalanceOnPoll it runs only between batches, so the
// marks are exactly the delivered records.
func (s *Source) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	err := s.marks.commit(ctx, cl)
	s.marks.forget(revoked)
	if err != nil {
		s.log.Warn("commit on revoke failed; the next owner redelivers from the previous commit",
			"partitions", revoked, "err", err)
		return
	}
	s.log.Info("kafka partitions revoked", "partitions", revoked)
}

// commit commits the delivered offsets and returns the updated count of
// consecutive commit failures (0 on success).
func (s *Source) commit(ctx context.Context, cl *kgo.Client, failures int) int {
	err := s.marks.commit(ctx, cl)
	if err == nil {
		return 0
	}
	if ctx.Err() == nil {
		s.log.Warn("offset commit failed; will retry", "failures", failures+1, "err", err)
	}
	return failures + 1
}

// poll returns the next records. PollRecords blocks until records arrive,
// so while a commit is pending it is bounded by the commit backoff, after
// which it returns no records and Run retries the commit.
func (s *Source) poll(ctx context.Context, cl *kgo.Client, commitFailures int) ([]*kgo.Record, bool) {
	pollCtx := ctx
	if commitFailures > 0 {
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithTimeout(ctx, backoff(s.cfg.InitialBackoff, s.cfg.MaxBackoff, commitFailures-1))
		defer cancel()
	}
	fetches := cl.PollRecords(pollCtx, s.cfg.MaxBatch)
	return fetches.Records(), s.fetchErrors(fetches)
}

// fetchErrors logs fetch errors and reports whether there was one. franz-go
// retries retriable errors itself; what reaches here (authorization, a
// deleted topic) needs a human, but the source keeps polling so that it
// recovers once the cause is fixed.
func (s *Source) fetchErrors(fetches kgo.Fetches) bool {
	found := false
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		found = true
		s.log.Error("kafka fetch failed", "topic", topic, "partition", partition, "err", err)
	})
	return found
}

// shutdown commits delivered records and leaves the group, bounded by
// shutdownTimeout even though ctx is already cancelled.
func (s *Source) shutdown(ctx context.Context, cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := s.marks.commit(ctx, cl); err != nil {
		s.log.Warn("final offset commit failed; delivered records will be redelivered", "err", err)
	}
	cl.AllowRebalance()
	if err := cl.LeaveGroupContext(ctx); err != nil {
		s.log.Warn("leave group failed", "err", err)
	}
	cl.Close()
	s.log.Info("kafka source stopped")
}

// rewind sets each partition's fetch position back to the first record of
// the batch, so the next poll returns the same records again.
func rewind(cl *kgo.Client, records []*kgo.Record) {
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	for _, r := range records {
		parts := offsets[r.Topic]
		if parts == nil {
			parts = make(map[int32]kgo.EpochOffset)
			offsets[r.Topic] = parts
		}
		if cur, ok := parts[r.Partition]; !ok || r.Offset < cur.Offset {
			parts[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
		}
	}
	cl.SetOffsets(offsets)
}

// toEvents converts polled records, keeping their order (which is offset
// order within each partition). The per-batch allocations are one events
// slice, one header slice and one byte arena for the coordinate headers;
// key, value and original header values alias the record buffers, which
// franz-go never reuses.
func toEvents(records []*kgo.Record, source string, origin bool) []event.Event {
	nHeaders, nBytes := 0, 0
	for _, r := range records {
		nHeaders += len(r.Headers)
		if origin {
			nHeaders += 3
			nBytes += len(r.Topic) + 2*20
		}
	}
	events := make([]event.Event, len(records))
	headers := make([]event.Header, 0, nHeaders)
	arena := make([]byte, 0, nBytes)
	for i, r := range records {
		start := len(headers)
		for _, h := range r.Headers {
			headers = append(headers, event.Header{Key: h.Key, Value: h.Value})
		}
		if origin {
			headers, arena = appendOrigin(headers, arena, r)
		}
		events[i] = event.Event{
			Key:       r.Key,
			Value:     r.Value,
			Headers:   headers[start:len(headers):len(headers)],
			Timestamp: r.Timestamp,
			Source:    source,
		}
	}
	return events
}

// appendOrigin appends the kafka.* origin headers of r, their values
// carved from arena. Each value's capacity ends at its length, so an append
// to one header value can never overwrite the next.
func appendOrigin(headers []event.Header, arena []byte, r *kgo.Record) ([]event.Header, []byte) {
	mark := len(arena)
	arena = append(arena, r.Topic...)
	topic := arena[mark:len(arena):len(arena)]
	mark = len(arena)
	arena = strconv.AppendInt(arena, int64(r.Partition), 10)
	partition := arena[mark:len(arena):len(arena)]
	mark = len(arena)
	arena = strconv.AppendInt(arena, r.Offset, 10)
	offset := arena[mark:len(arena):len(arena)]
	headers = append(headers,
		event.Header{Key: HeaderTopic, Value: topic},
		event.Header{Key: HeaderPartition, Value: partition},
		event.Header{Key: HeaderOffset, Value: offset})
	return headers, arena
}

func backoff(initial, maxWait time.Duration, attempt int) time.Duration {
	wait := initial
	for range attempt {
		wait *= 2
		if wait >= maxWait {
			return maxWait
		}
	}
	return wait
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
