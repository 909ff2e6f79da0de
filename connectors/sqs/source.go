package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/event"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	Client   *awssqs.Client
	QueueURL string // a URL ending in .fifo is a FIFO queue
	// MaxMessages per ReceiveMessage, 1 to 10. Default 10.
	MaxMessages int
	// WaitTime is the long-poll wait, 0 to 20s in whole seconds. Default 20s.
	WaitTime time.Duration
	// Concurrency is the number of pollers of a standard queue. Default 4.
	// A FIFO queue always has one, to keep group order.
	Concurrency int
	// RetryBackoffMax caps the delay before messages whose deliver failed
	// are received again (it starts at 1s and doubles). Default 60s.
	RetryBackoffMax time.Duration
	// RequestTimeout bounds each call beyond its own wait (a long poll gets
	// WaitTime plus RequestTimeout): a request nobody answers, as on a
	// connection a network partition left half-open, is abandoned and
	// retried instead of stopping the poller for ever. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	Name           string // event.Source of every event
	Logger         *slog.Logger
}

// Source long-polls one queue. See the package doc for guarantees.
type Source struct {
	cfg  SourceConfig
	fifo bool
	log  *slog.Logger
}

var _ event.Source = (*Source)(nil)

// Backoffs for a failed deliver (as the messages' visibility) and for a
// failed receive.
const (
	retryVisibilityInitial = time.Second
	retryVisibilityMax     = 60 * time.Second
	receiveBackoffMax      = 10 * time.Second
	// cleanupTimeout bounds the calls made after ctx ended (making
	// messages visible again), which use a detached context.
	cleanupTimeout = 5 * time.Second
)

// NewSource validates cfg and applies defaults. It does no I/O.
func NewSource(cfg SourceConfig) (*Source, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, ErrNoClient)
	}
	if cfg.QueueURL == "" {
		errs = append(errs, ErrNoQueueURL)
	}
	if cfg.MaxMessages < 0 || cfg.MaxMessages > 10 {
		errs = append(errs, fmt.Errorf("sqs: MaxMessages %d is not in 1..10", cfg.MaxMessages))
	}
	if cfg.WaitTime < 0 || cfg.WaitTime > 20*time.Second {
		errs = append(errs, fmt.Errorf("sqs: WaitTime %v is not in 0..20s", cfg.WaitTime))
	}
	if cfg.Concurrency < 0 {
		errs = append(errs, errors.New("sqs: Concurrency must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxMessages == 0 {
		cfg.MaxMessages = 10
	}
	if cfg.WaitTime == 0 {
		cfg.WaitTime = 20 * time.Second
	}
	fifo := strings.HasSuffix(cfg.QueueURL, ".fifo")
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	if cfg.RetryBackoffMax < time.Second {
		cfg.RetryBackoffMax = retryVisibilityMax
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if fifo {
		cfg.Concurrency = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, fifo: fifo, log: log.With("source", cfg.Name, "queue_url", cfg.QueueURL)}, nil
}

// Run polls until ctx is cancelled (then returns nil) or a permanent
// failure. It owns its pollers and waits for them before returning.
func (s *Source) Run(ctx context.Context, deliver event.DeliverFunc) error {
	visibility, err := s.visibilityTimeout(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.log.Info("sqs source polling", "pollers", s.cfg.Concurrency, "visibility_timeout", visibility)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Go(func() {
			p := poller{src: s, visibility: visibility, deliver: deliver}
			if err := p.run(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	// The cause is a poller's failure, or the caller's cancel or deadline
	// (a clean stop either way).
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sqs source %s: %w", s.cfg.Name, err)
	}
	return nil
}

// visibilityTimeout reads the queue's VisibilityTimeout, retrying
// transient failures.
func (s *Source) visibilityTimeout(ctx context.Context) (time.Duration, error) {
	backoff := 100 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		out, err := s.cfg.Client.GetQueueAttributes(rctx, &awssqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(s.cfg.QueueURL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
		})
		cancel()
		if err == nil {
			secs, perr := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
			if perr != nil {
				return 0, event.Permanent(fmt.Errorf("sqs source %s: queue has no valid VisibilityTimeout: %w", s.cfg.Name, perr))
			}
			return time.Duration(secs) * time.Second, nil
		}
		if err = requestError(ctx, err, s.cfg.RequestTimeout); errors.Is(err, event.ErrPermanent) {
			return 0, fmt.Errorf("sqs source %s: get queue attributes: %w", s.cfg.Name, err)
		}
		s.log.Warn("sqs get queue attributes failed; retrying", "err", err)
		if sleep(ctx, backoff) != nil {
			return 0, ctx.Err()
		}
		backoff = min(2*backoff, receiveBackoffMax)
	}
}

// poller is one receive → deliver → delete loop.
type poller struct {
	src        *Source
	visibility time.Duration
	deliver    event.DeliverFunc
	failures   int // consecutive failed delivers of this poller
}

func (p *poller) run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, p.src.cfg.WaitTime+p.src.cfg.RequestTimeout)
		out, err := p.src.cfg.Client.ReceiveMessage(rctx, &awssqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(p.src.cfg.QueueURL),
			MaxNumberOfMessages:         int32(p.src.cfg.MaxMessages),
			WaitTimeSeconds:             int32(p.src.cfg.WaitTime / time.Second),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if err = requestError(ctx, err, p.src.cfg.WaitTime+p.src.cfg.RequestTimeout); errors.Is(err, event.ErrPermanent) {
				return fmt.Errorf("receive: %w", err)
			}
			p.src.log.Warn("sqs receive failed; retrying", "err", err)
			if sleep(ctx, backoff) != nil {
				return nil
			}
			backoff = min(2*backoff, receiveBackoffMax)
			continue
		}
		backoff = 100 * time.Millisecond
		if len(out.Messages) > 0 {
			p.handle(ctx, out.Messages)
		}
	}
	return nil
}

// handle delivers one received batch and settles it: delete on success,
// visible again after a backoff on failure, visible at once on stop.
func (p *poller) handle(ctx context.Context, msgs []types.Message) {
	batch := make([]event.Event, len(msgs))
	now := time.Now()
	for i := range msgs {
		e, err := fromMessage(&msgs[i], p.src.fifo, p.src.cfg.Name, now)
		if err != nil {
			p.src.log.Warn("sqs message has a malformed attribute; kept as a plain header", "err", err)
		}
		batch[i] = e
	}
	stop := p.extendWhile(ctx, msgs)
	err := p.deliver(ctx, batch)
	stop()
	if err == nil {
		p.failures = 0
		p.delete(ctx, msgs)
		return
	}
	if ctx.Err() != nil {
		// Stopping: hand the messages to the next consumer now rather
		// than after the visibility timeout.
		p.changeVisibility(context.WithoutCancel(ctx), msgs, 0)
		return
	}
	p.failures++
	// The backoff follows the messages' own receive count, so that it
	// keeps growing whichever poller (or bridge) receives them next.
	attempts := p.failures
	for _, m := range msgs {
		if n, perr := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); perr == nil {
			attempts = max(attempts, n)
		}
	}
	delay := min(retryVisibilityInitial<<min(attempts-1, 10), p.src.cfg.RetryBackoffMax)
	p.src.log.Warn("deliver failed; messages visible again after a backoff", "messages", len(msgs), "backoff", delay, "err", err)
	p.changeVisibility(ctx, msgs, delay)
	// Keep this poller from receiving (other groups' or) other messages
	// in a hot loop while the backbone is failing.
	_ = sleep(ctx, min(delay, time.Second))
}

// extendWhile extends the messages' visibility at 2/3 of the queue's
// VisibilityTimeout until the returned stop is called. stop waits for the
// extender to finish.
func (p *poller) extendWhile(ctx context.Context, msgs []types.Message) (stop func()) {
	period := p.visibility * 2 / 3
	if period <= 0 {
		return func() {} // a zero timeout cannot be extended meaningfully
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				p.changeVisibility(ctx, msgs, p.visibility)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// changeVisibility sets the visibility of msgs to d. Failures are logged:
// the worst outcome is that a message reappears when its current timeout
// ends (or later than asked), which at-least-once allows.
func (p *poller) changeVisibility(ctx context.Context, msgs []types.Message, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: int32(d / time.Second),
		}
	}
	out, err := p.src.cfg.Client.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{
		QueueUrl: aws.String(p.src.cfg.QueueURL), Entries: entries,
	})
	if err != nil {
		p.src.log.Warn("sqs change visibility failed", "messages", len(msgs), "err", err)
		return
	}
	if len(out.Failed) > 0 {
		p.src.log.Warn("sqs change visibility failed for some messages", "failed", len(out.Failed),
			"code", aws.ToString(out.Failed[0].Code))
	}
}

// delete removes delivered messages, retrying failed entries. A receipt
// that is no longer valid means the message became visible again and
// will be delivered twice; that is logged, not retried.
func (p *poller) delete(ctx context.Context, msgs []types.Message) {
	// Deleting must outlive a stop: the events are already durable.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	pending := make([]types.DeleteMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		pending[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		out, err := p.src.cfg.Client.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{
			QueueUrl: aws.String(p.src.cfg.QueueURL), Entries: pending,
		})
		if err == nil {
			pending = p.retryableDeletes(pending, out.Failed)
		} else {
			p.src.log.Warn("sqs delete failed", "messages", len(pending), "attempt", attempt, "err", err)
		}
		if len(pending) == 0 {
			return
		}
		if attempt == entryAttempts {
			p.src.log.Warn("sqs delete gave up; the messages will be delivered again", "messages", len(pending))
			return
		}
		if sleep(ctx, time.Duration(attempt)*100*time.Millisecond) != nil {
			return
		}
	}
}

func (p *poller) retryableDeletes(sent []types.DeleteMessageBatchRequestEntry, failed []types.BatchResultErrorEntry) []types.DeleteMessageBatchRequestEntry {
	if len(failed) == 0 {
		return nil
	}
	byID := make(map[string]types.DeleteMessageBatchRequestEntry, len(sent))
	for _, e := range sent {
		byID[aws.ToString(e.Id)] = e
	}
	var retry []types.DeleteMessageBatchRequestEntry
	for _, f := range failed {
		if f.SenderFault {
			// ReceiptHandleIsInvalid and friends: the receipt expired.
			p.src.log.Warn("sqs delete rejected; the message will be delivered again", "code", aws.ToString(f.Code))
			continue
		}
		if e, ok := byID[aws.ToString(f.Id)]; ok {
			retry = append(retry, e)
		}
	}
	return retry
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
