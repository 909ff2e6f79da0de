package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/event"
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("kafka: sink closed")

// Compression codecs accepted by SinkConfig.Compression.
const (
	CompressionNone   = "none"
	CompressionSnappy = "snappy"
	CompressionLZ4    = "lz4"
	CompressionZstd   = "zstd"
)

// Sink defaults.
const (
	// DefaultLinger is 0: Send hands a whole batch to the client at once,
	// so batches fill without waiting; a linger would only add latency.
	DefaultLinger = 0
	// DefaultDeliveryTimeout bounds how long a record may stay unacknowledged
	// (Kafka's delivery.timeout.ms) before Send reports it as a retryable
	// failure, so that an outage turns into pipeline retries with backoff
	// instead of a Send that never returns.
	DefaultDeliveryTimeout = 30 * time.Second
)

// SinkConfig configures a producer sink.
type SinkConfig struct {
	Client ClientConfig
	Topic  string // required
	// Compression is none (default, as Kafka's producer), snappy, lz4 or zstd.
	Compression string
	// Linger is how long a partition's batch waits for more records; default 0.
	Linger time.Duration
	// DeliveryTimeout bounds a Send, retries included: records not yet in a
	// request when it passes fail with a retryable error. Default 30s.
	DeliveryTimeout time.Duration
	Logger          *slog.Logger
}

// Sink produces events to one topic with an idempotent, acks=all producer.
// Send and Close are safe for concurrent use.
type Sink struct {
	cfg SinkConfig
	log *slog.Logger

	// extraOpts are appended to the client options; tests use it to shorten
	// franz-go's metadata backoffs.
	extraOpts []kgo.Opt

	mu     sync.Mutex // guards client and closed
	client *kgo.Client
	closed bool
}

// NewSink validates cfg and applies defaults. It does no I/O and starts no
// goroutine: the client is built by the first Send.
func NewSink(cfg SinkConfig) (*Sink, error) {
	errs := []error{cfg.Client.Validate()}
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if cfg.Topic == "" {
		fail("topic: required")
	}
	switch cfg.Compression {
	case "", CompressionNone, CompressionSnappy, CompressionLZ4, CompressionZstd:
	default:
		fail("compression: %q is not one of none, snappy, lz4, zstd", cfg.Compression)
	}
	if cfg.Linger < 0 || cfg.Linger > time.Minute {
		fail("linger: %s is outside 0..1m", cfg.Linger)
	}
	if cfg.DeliveryTimeout < 0 {
		fail("delivery_timeout: negative duration %s", cfg.DeliveryTimeout)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Compression == "" {
		cfg.Compression = CompressionNone
	}
	if cfg.DeliveryTimeout == 0 {
		cfg.DeliveryTimeout = DefaultDeliveryTimeout
	}
	log := orDiscard(cfg.Logger).With("sink", "kafka", "topic", cfg.Topic)
	return &Sink{cfg: cfg, log: log}, nil
}

var _ event.Sink = (*Sink)(nil)

func (s *Sink) options() ([]kgo.Opt, error) {
	opts, err := s.cfg.Client.Options()
	if err != nil {
		return nil, err
	}
	var codec kgo.CompressionCodec
	switch s.cfg.Compression {
	case CompressionSnappy:
		codec = kgo.SnappyCompression()
	case CompressionLZ4:
		codec = kgo.Lz4Compression()
	case CompressionZstd:
		codec = kgo.ZstdCompression()
	default:
		codec = kgo.NoCompression()
	}
	opts = append(opts,
		kgo.WithLogger(slogLogger{s.log}),
		kgo.DefaultProduceTopic(s.cfg.Topic),
		// Idempotence is franz-go's default; acks=all is what it requires and
		// what "acknowledged" means here. With idempotence the client allows
		// up to 5 requests in flight per broker and the broker's sequence
		// checks keep them in order, so MaxProduceRequestsInflightPerBroker
		// is left alone (franz-go rejects it with idempotence).
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(s.cfg.Linger),
	)
	if s.cfg.Client.RequestTimeout > 0 {
		opts = append(opts, kgo.ProduceRequestTimeout(s.cfg.Client.RequestTimeout))
	}
	return append(opts, s.extraOpts...), nil
}

// clientLocked returns the client, building it on first use.
func (s *Sink) clientLocked() (*kgo.Client, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if s.client != nil {
		return s.client, nil
	}
	opts, err := s.options()
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", s.cfg.Topic, err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", s.cfg.Topic, err)
	}
	s.client = cl
	return cl, nil
}

// Send produces batch to the topic and waits until Kafka acknowledged every
// record (acks=all). It returns nil if all were acknowledged, a
// *event.BatchError naming the records that failed otherwise (each wrapping
// event.ErrPermanent when retrying cannot help), or an error for the whole
// batch if the client cannot be built. The key is Event.Key (nil: no key,
// partitioned like Kafka's Java client); every header is copied, and
// bridge-event-id is added when the event has backbone coordinates but no
// such header. Cancelling ctx fails the records not yet sent to a broker;
// records already in a request are waited for, because cancelling them
// would break the idempotent producer's ordering.
func (s *Sink) Send(ctx context.Context, batch []event.Event) error {
	if len(batch) == 0 {
		return nil
	}
	s.mu.Lock()
	cl, err := s.clientLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	// DeliveryTimeout is enforced through the context and not through
	// kgo.RecordDeliveryTimeout, which measures from the record timestamp:
	// events keep their original timestamps, so a migrated record would be
	// "timed out" before its first attempt.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
	defer cancel()
	rb := recordBufs.Get().(*recordBuf)
	defer rb.release() // after wg.Wait: franz-go is done with every record
	records := toRecords(rb, batch, s.cfg.Topic)
	// One promise for the whole batch: a closure per record cost a
	// measurable share of the sink's CPU. A failure is recorded by record
	// pointer and mapped back to its index once, after the wait.
	var (
		wg       sync.WaitGroup
		failedMu sync.Mutex
		failed   []failedRecord
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			failedMu.Lock()
			failed = append(failed, failedRecord{r, err})
			failedMu.Unlock()
		}
		wg.Done()
	}
	// The WaitGroup counts promises, which franz-go calls from its own
	// goroutine, so Add and Done cannot live in one wg.Go call here.
	wg.Add(len(records))
	for i := range records {
		cl.Produce(ctx, &records[i], promise)
	}
	wg.Wait()
	if len(failed) == 0 {
		return nil
	}
	return s.batchError(records, failed)
}

type failedRecord struct {
	record *kgo.Record
	err    error
}

func (s *Sink) batchError(records []kgo.Record, failed []failedRecord) error {
	index := make(map[*kgo.Record]int, len(records))
	for i := range records {
		index[&records[i]] = i
	}
	items := make([]event.ItemError, len(failed))
	for i, f := range failed {
		items[i] = event.ItemError{Index: index[f.record], Err: classify(s.cfg.Topic, f.err)}
	}
	slices.SortFunc(items, func(a, b event.ItemError) int { return a.Index - b.Index })
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("produce failed", "failed", len(items), "of", len(records), "err", items[0].Err)
	}
	return &event.BatchError{Failed: items}
}

// permanentCodes are Kafka errors that retrying the same record cannot fix.
// UnknownTopicOrPartition is retriable for Kafka, but franz-go reports it
// only after its own retries (UnknownTopicRetries), so here it means the
// topic does not exist.
var permanentCodes = []error{
	kerr.MessageTooLarge,
	kerr.RecordListTooLarge,
	kerr.InvalidRecord,
	kerr.InvalidTopicException,
	kerr.TopicAuthorizationFailed,
	kerr.UnknownTopicOrPartition,
}

// classify wraps a produce error with the topic and marks it permanent when
// it is one of permanentCodes or a non-retriable Kafka error. Everything else
// (timeouts, a closed client, a cancelled context, retriable broker errors)
// stays retryable.
func classify(topic string, err error) error {
	err = fmt.Errorf("produce to %s: %w", topic, err)
	for _, code := range permanentCodes {
		if errors.Is(err, code) {
			return event.Permanent(err)
		}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && !ke.Retriable {
		return event.Permanent(err)
	}
	return err
}

func hasEventID(headers []event.Header) bool {
	for _, h := range headers {
		if h.Key == event.HeaderEventID {
			return true
		}
	}
	return false
}

// The conversion below compiles only while kgo.RecordHeader and
// event.Header have identical underlying types (same field names, types and
// order), which is what makes asRecordHeaders' reinterpretation sound. If
// franz-go ever changes RecordHeader, this line stops the build.
var _ = kgo.RecordHeader(event.Header{})

// asRecordHeaders views event headers as record headers without copying.
// Copying them was a third of the sink's own CPU in BenchmarkKafkaToKafka
// (a cache miss per header on events built by another goroutine). franz-go
// only reads record headers, and the event's slice outlives the Send.
func asRecordHeaders(hs []event.Header) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	return unsafe.Slice((*kgo.RecordHeader)(unsafe.Pointer(unsafe.SliceData(hs))), len(hs))
}

// recordBuf holds the records of one Send and their headers. Sends reuse
// them through recordBufs: allocating and zeroing ~200 bytes per record for
// every batch was the largest cost the sink added over a bare client.
type recordBuf struct {
	records []kgo.Record
	headers []kgo.RecordHeader
}

var recordBufs = sync.Pool{New: func() any { return new(recordBuf) }}

// release clears the buffers, so a pooled buffer does not keep a batch's
// payloads alive, and returns it to the pool.
func (rb *recordBuf) release() {
	clear(rb.records)
	clear(rb.headers)
	recordBufs.Put(rb)
}

// toRecords fills rb with the records of batch. Keys, values and header
// values alias the events; franz-go does not modify them.
func toRecords(rb *recordBuf, batch []event.Event, topic string) []kgo.Record {
	records := slices.Grow(rb.records[:0], len(batch))[:len(batch)]
	headers := rb.headers[:0] // only for events that need bridge-event-id added
	for i := range batch {
		ev := &batch[i]
		var recordHeaders []kgo.RecordHeader
		if ev.Topic == "" || hasEventID(ev.Headers) {
			recordHeaders = asRecordHeaders(ev.Headers)
		} else {
			start := len(headers)
			for _, h := range ev.Headers {
				headers = append(headers, kgo.RecordHeader(h))
			}
			headers = append(headers, kgo.RecordHeader{Key: event.HeaderEventID, Value: []byte(ev.ID())})
			recordHeaders = headers[start:len(headers):len(headers)]
		}
		records[i] = kgo.Record{
			Topic:     topic,
			Key:       ev.Key,
			Value:     ev.Value,
			Headers:   recordHeaders,
			Timestamp: ev.Timestamp,
		}
	}
	rb.records, rb.headers = records, headers
	return records
}

// Close flushes buffered records, bounded by ctx, and closes the client.
// Records still unacknowledged when ctx ends fail their Send with a
// retryable error. Close is idempotent; later calls return nil.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	cl := s.client
	already := s.closed
	s.closed = true
	s.client = nil
	s.mu.Unlock()
	if already || cl == nil {
		return nil
	}
	err := cl.Flush(ctx)
	cl.Close()
	if err != nil {
		return fmt.Errorf("kafka sink %s: flush: %w", s.cfg.Topic, err)
	}
	return nil
}
