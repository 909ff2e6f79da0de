package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/event"
)

// SinkConfig configures a Sink.
type SinkConfig struct {
	Client   *awssqs.Client
	QueueURL string // a URL ending in .fifo is a FIFO queue
	// RequestTimeout bounds each SendMessageBatch call (the SDK's own
	// retries included): a request nobody answers, as on a connection a
	// network partition left half-open, fails with a retryable error
	// instead of holding the route for ever. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	Name           string
	Logger         *slog.Logger
}

// Errors returned by New for unusable configurations, and by Send after Close.
var (
	ErrNoClient   = errors.New("sqs: Client is required")
	ErrNoQueueURL = errors.New("sqs: QueueURL is required")
	ErrClosed     = errors.New("sqs: sink is closed")
)

// entryAttempts is how often an entry SQS failed with a server fault is
// sent before it is reported.
const entryAttempts = 3

// Sink sends batches to one queue. It is safe for concurrent use; it holds
// no connection of its own (the client pools them).
type Sink struct {
	cfg    SinkConfig
	fifo   bool
	log    *slog.Logger
	closed atomic.Bool
}

var _ event.ParamSink = (*Sink)(nil)

// NewSink validates cfg. It does no I/O.
func NewSink(cfg SinkConfig) (*Sink, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, ErrNoClient)
	}
	if cfg.QueueURL == "" {
		errs = append(errs, ErrNoQueueURL)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{cfg: cfg, fifo: strings.HasSuffix(cfg.QueueURL, ".fifo"), log: log.With("sink", cfg.Name)}, nil
}

// Send sends batch without per-event params.
func (s *Sink) Send(ctx context.Context, batch []event.Event) error {
	return s.SendParams(ctx, batch, nil)
}

// SendParams sends batch in order (see the package doc) and returns nil once
// SQS accepted every event, else a *event.BatchError naming the failed ones.
func (s *Sink) SendParams(ctx context.Context, batch []event.Event, params []event.Params) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if params != nil && len(params) != len(batch) {
		return fmt.Errorf("sqs sink: %d params for %d events", len(params), len(batch))
	}
	var be event.BatchError
	entries := make([]entry, 0, len(batch))
	for i := range batch {
		var p event.Params
		if params != nil {
			p = params[i]
		}
		en, err := toEntry(i, &batch[i], p, s.fifo)
		if err != nil {
			be.Failed = append(be.Failed, event.ItemError{Index: i, Err: err})
			continue
		}
		entries = append(entries, en)
	}
	requests := split(entries)
	for r, req := range requests {
		failed, err := s.sendRequest(ctx, req)
		if err != nil {
			// Stop here: sending later entries could overtake these in a
			// FIFO group. Everything from this request on fails with err.
			for _, rest := range requests[r:] {
				for _, en := range rest {
					be.Failed = append(be.Failed, event.ItemError{Index: en.index, Err: err})
				}
			}
			break
		}
		be.Failed = append(be.Failed, failed...)
		if s.fifo && len(failed) > 0 && r+1 < len(requests) {
			// A FIFO group must not move past a failed message: leave the
			// rest unsent, for the caller's retry to send in order.
			notSent := errors.New("sqs: not sent: an earlier message of the FIFO batch failed")
			for _, rest := range requests[r+1:] {
				for _, en := range rest {
					be.Failed = append(be.Failed, event.ItemError{Index: en.index, Err: notSent})
				}
			}
			break
		}
	}
	if len(be.Failed) == 0 {
		return nil
	}
	sortFailed(be.Failed)
	return &be
}

// sendRequest sends one request and retries the entries that failed with a
// server fault. It returns the entries that still failed, or an error when
// the request failed as a whole.
func (s *Sink) sendRequest(ctx context.Context, entries []entry) ([]event.ItemError, error) {
	byID := make(map[string]entry, len(entries))
	for _, en := range entries {
		byID[aws.ToString(en.req.Id)] = en
	}
	pending := entries
	var failed []event.ItemError
	for attempt := 1; ; attempt++ {
		reqs := make([]types.SendMessageBatchRequestEntry, len(pending))
		for i, en := range pending {
			reqs[i] = en.req
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		out, err := s.cfg.Client.SendMessageBatch(rctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(s.cfg.QueueURL), Entries: reqs})
		cancel()
		if err != nil {
			return failed, fmt.Errorf("sqs sink %s: send batch: %w", s.cfg.Name, requestError(ctx, err, s.cfg.RequestTimeout))
		}
		var retry []entry
		for _, f := range out.Failed {
			en, ok := byID[aws.ToString(f.Id)]
			if !ok {
				continue // an id we did not send: nothing to report it against
			}
			itemErr := fmt.Errorf("sqs: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			if f.SenderFault {
				failed = append(failed, event.ItemError{Index: en.index, Err: event.Permanent(itemErr)})
				continue
			}
			if attempt < entryAttempts {
				retry = append(retry, en)
				continue
			}
			failed = append(failed, event.ItemError{Index: en.index, Err: itemErr})
		}
		if len(retry) == 0 {
			return failed, nil
		}
		s.log.Warn("sqs entries failed; retrying", "entries", len(retry), "attempt", attempt)
		pending = retry
		select {
		case <-ctx.Done():
			for _, en := range pending {
				failed = append(failed, event.ItemError{Index: en.index, Err: ctx.Err()})
			}
			return failed, nil
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

func sortFailed(items []event.ItemError) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].Index < items[j-1].Index; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}

// Close marks the sink closed; Send then fails with ErrClosed. It is
// idempotent and waits for nothing: Sends in flight finish on their own.
func (s *Sink) Close(context.Context) error {
	s.closed.Store(true)
	return nil
}
