// Package event holds the canonical event of bridge and the contracts every
// source, sink and backbone speaks: types and interfaces only, no logic beyond
// tiny accessors, and no dependency outside the standard library.
//
// An Event is a Kafka-shaped record. Once it is in the backbone it also has
// coordinates (Topic, Partition, Offset); its id "TOPIC/PARTITION/OFFSET"
// travels to every sink in the header HeaderEventID so consumers can
// deduplicate.
package event

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Header is one record header. Names may repeat and order is kept, as in Kafka.
type Header struct {
	Key   string
	Value []byte
}

// Event is the canonical record.
//
// Key nil means "no key" (Kafka's null key); an empty non-nil key is a key.
// Byte slices handed out by the backbone may alias its read buffers: a
// consumer that keeps an event beyond the next read must copy what it keeps.
type Event struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
	// Source is the name of the source that produced the event ("http" for
	// HTTP ingest). It is carried in the header HeaderSource on the backbone.
	Source string
}

// ID is the event's backbone id TOPIC/PARTITION/OFFSET.
func (e *Event) ID() string {
	return e.Topic + "/" + strconv.FormatInt(int64(e.Partition), 10) + "/" + strconv.FormatInt(e.Offset, 10)
}

// Header returns the last value of the named header and whether it exists.
func (e *Event) Header(name string) ([]byte, bool) {
	for i := len(e.Headers) - 1; i >= 0; i-- {
		if e.Headers[i].Key == name {
			return e.Headers[i].Value, true
		}
	}
	return nil, false
}

// Position is where an appended event landed.
type Position struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// Well-known header names (SPEC §4, §5, §8).
const (
	HeaderEventID     = "bridge-event-id"
	HeaderSource      = "bridge-source"
	HeaderError       = "bridge-error"
	HeaderErrorClass  = "bridge-error-class"
	HeaderPipeline    = "bridge-pipeline"
	HeaderRoute       = "bridge-route"
	HeaderAttempts    = "bridge-attempts"
	HeaderKey         = "bridge-key"
	HeaderOverflow    = "bridge-headers"
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// DeliverFunc hands a batch to the backbone. It returns nil only once every
// event in batch is durable under the backbone's fsync policy; the source may
// then acknowledge upstream (AMQP ack, SQS delete, Kafka commit, HTTP 200).
type DeliverFunc func(ctx context.Context, batch []Event) error

// Source reads from an outside system. Run blocks until ctx is cancelled, then
// returns nil, or until the source fails for good.
type Source interface {
	Run(ctx context.Context, deliver DeliverFunc) error
}

// Sink writes batches to a target.
type Sink interface {
	// Send returns nil once the target acknowledged every event in batch.
	// If only some events failed it returns a *BatchError naming them; any
	// other error applies to the whole batch. Failures that will never
	// succeed on retry wrap ErrPermanent. The events' byte slices belong to
	// the caller again once Send returns (the engine reuses them for the
	// next batch): a sink copies what it keeps.
	Send(ctx context.Context, batch []Event) error
	// Close flushes and releases resources. ctx bounds how long it may wait.
	// Close is idempotent.
	Close(ctx context.Context) error
}

// Failure classes. A connector classifies an error once, at the edge; the
// pipeline's retry policy reads the class with errors.Is.
var (
	// ErrPermanent marks a failure that retrying cannot fix (a rejected
	// message, an oversize payload, an unroutable event): dead-letter it.
	ErrPermanent = errors.New("permanent failure")
	// ErrCorruption marks data that failed an integrity check. It stops the
	// partition and is reported; it is never retried.
	ErrCorruption = errors.New("corruption")
)

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// BatchError reports a Send in which some events failed and the rest were
// acknowledged.
type BatchError struct {
	Failed []ItemError // sorted by Index
}

// ItemError is the failure of one event of a batch.
type ItemError struct {
	Index int // position in the batch passed to Send
	Err   error
}

func (e *BatchError) Error() string {
	if len(e.Failed) == 0 {
		return "batch: no failures"
	}
	return "batch: " + strconv.Itoa(len(e.Failed)) + " events failed, first at index " +
		strconv.Itoa(e.Failed[0].Index) + ": " + e.Failed[0].Err.Error()
}

// Unwrap returns every item's error, so errors.Is sees ErrPermanent when an
// item is permanent.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// Params are per-event values a pipeline's rules computed for one route:
// the routing key of an exchange or AMQP publish, and the FIFO group and
// deduplication ids of a queue or SQS send. Empty means "not set".
type Params struct {
	RoutingKey string
	GroupID    string
	DedupID    string
	// Message values of embedded queue and exchange targets
	// (docs/queues.md), from a route's priority, ttl, delay, reply_to and
	// correlation_id rules. Zero values and false flags mean "not set".
	Priority      int // 0..255, when HasPriority
	HasPriority   bool
	TTL           time.Duration
	Delay         time.Duration // when HasDelay
	HasDelay      bool
	ReplyTo       string
	CorrelationID string
}

// ParamSink is a Sink that takes per-event Params. The engine calls SendParams
// (with len(params) == len(batch)) instead of Send when the sink implements it.
type ParamSink interface {
	Sink
	SendParams(ctx context.Context, batch []Event, params []Params) error
}
