package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/connectors/kafka"
	"github.com/bridgeio/bridge/event"
)

// kafkaSystem is a Kafka topic. As a source it is read by a consumer
// group (default bridge-migrate-<hash>), so a rerun resumes from the
// group's commits and the topic itself is left intact.
type kafkaSystem struct {
	ep    *Endpoint
	name  string
	group string
	log   *slog.Logger

	mu    sync.Mutex // guards admin
	admin *kadm.Client
	cl    *kgo.Client
}

func newKafkaSystem(e *Endpoint, name string, log *slog.Logger) (*kafkaSystem, error) {
	group := e.Group
	if group == "" {
		group = name
	}
	return &kafkaSystem{ep: e, name: name, group: group, log: log}, nil
}

func (s *kafkaSystem) clientConfig() kafka.ClientConfig {
	return kafka.ClientConfig{Brokers: s.ep.Brokers, ClientID: s.name}
}

func (s *kafkaSystem) source(maxBatch int) (event.Source, error) {
	return kafka.NewSource(kafka.SourceConfig{Client: s.clientConfig(), Topics: []string{s.ep.Topic}, Group: s.group,
		Name: s.name + "-source", MaxBatch: maxBatch, Logger: s.log})
}

func (s *kafkaSystem) sink() (event.Sink, error) {
	return kafka.NewSink(kafka.SinkConfig{Client: s.clientConfig(), Topic: s.ep.Topic, Logger: s.log})
}

// adm returns the shared admin client, built on first use.
func (s *kafkaSystem) adm() (*kadm.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin != nil {
		return s.admin, nil
	}
	opts, err := s.clientConfig().Options()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	s.cl, s.admin = cl, kadm.NewClient(cl)
	return s.admin, nil
}

func (s *kafkaSystem) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		s.cl.Close()
		s.cl, s.admin = nil, nil
	}
}

// partitions returns the topic's partition count, 0 when it does not exist.
func (s *kafkaSystem) partitions(ctx context.Context) (int, error) {
	adm, err := s.adm()
	if err != nil {
		return 0, err
	}
	details, err := adm.ListTopics(ctx, s.ep.Topic)
	if err != nil {
		return 0, fmt.Errorf("kafka metadata: %w", err)
	}
	d, ok := details[s.ep.Topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if d.Err != nil {
		return 0, fmt.Errorf("topic %s: %w", s.ep.Topic, d.Err)
	}
	return len(d.Partitions), nil
}

func (s *kafkaSystem) checkSource(ctx context.Context) error {
	n, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("source topic %q does not exist on %s", s.ep.Topic, s.ep)
	}
	return nil
}

// prepareTarget creates the topic with the local log's partition count
// when it does not exist (the broker's default replication). Create it
// beforehand for another layout.
func (s *kafkaSystem) prepareTarget(ctx context.Context, partitions int) error {
	n, err := s.partitions(ctx)
	if err != nil || n > 0 {
		return err
	}
	adm, err := s.adm()
	if err != nil {
		return err
	}
	if _, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, s.ep.Topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create target topic %s: %w", s.ep.Topic, err)
	}
	s.log.Info("created target topic", "topic", s.ep.Topic, "partitions", partitions)
	return nil
}

// depth is the group's lag: end offsets minus committed offsets (the
// start offset where the group has not committed yet).
func (s *kafkaSystem) depth(ctx context.Context) (int64, bool, error) {
	adm, err := s.adm()
	if err != nil {
		return 0, false, err
	}
	ends, err := adm.ListEndOffsets(ctx, s.ep.Topic)
	if err != nil {
		return 0, false, err
	}
	starts, err := adm.ListStartOffsets(ctx, s.ep.Topic)
	if err != nil {
		return 0, false, err
	}
	committed, err := adm.FetchOffsetsForTopics(ctx, s.group, s.ep.Topic)
	if err != nil {
		return 0, false, err
	}
	var lag int64
	var failed error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			failed = o.Err
			return
		}
		from := int64(0)
		if st, ok := starts.Lookup(o.Topic, o.Partition); ok {
			from = st.Offset
		}
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			from = max(from, c.At)
		}
		lag += max(o.Offset-from, 0)
	})
	if failed != nil {
		return 0, false, failed
	}
	return lag, true, nil
}

// mark is the topic's end offsets (empty when it does not exist yet).
func (s *kafkaSystem) mark(ctx context.Context) (map[int32]int64, error) {
	adm, err := s.adm()
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, s.ep.Topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	return out, nil
}

// readBack consumes every partition from the offset recorded at the
// migration's start (0 for partitions that did not exist) to the end
// offset it has now, with a plain consumer that commits nothing.
func (s *kafkaSystem) readBack(ctx context.Context, from map[int32]int64, fn func(targetMessage)) error {
	end, err := s.mark(ctx)
	if err != nil {
		return err
	}
	offsets := map[int32]kgo.Offset{}
	remaining := 0
	for p, e := range end {
		start := from[p]
		if e > start {
			offsets[p] = kgo.NewOffset().At(start)
			remaining++
		}
	}
	if remaining == 0 {
		return nil
	}
	opts, err := s.clientConfig().Options()
	if err != nil {
		return err
	}
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.ep.Topic: offsets}),
		kgo.FetchMaxBytes(64<<20))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	// A partition is done at its last offset; should that offset never
	// come (a transaction marker, compaction), a quiet period ends the read.
	quiet := 0
	for remaining > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fetches.NumRecords() == 0 {
			if quiet++; quiet >= 10 {
				s.log.Warn("read-back ended by a quiet period before every partition's last offset", "partitions_left", remaining)
				return nil
			}
			continue
		}
		quiet = 0
		var ferr error
		fetches.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("read back partition %d: %w", p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return
			}
			ev := event.Event{Key: r.Key, Value: r.Value, Headers: make([]event.Header, len(r.Headers))}
			for i, h := range r.Headers {
				ev.Headers[i] = event.Header{Key: h.Key, Value: h.Value}
			}
			fn(targetMessage{Event: ev, Partition: r.Partition,
				Position: s.ep.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)})
			if r.Offset >= end[r.Partition]-1 {
				remaining--
			}
		})
	}
	return nil
}
