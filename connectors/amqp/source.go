package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	URL   string      // amqp://user:pass@host:port/vhost; the password never reaches logs or errors
	TLS   *tls.Config // for amqps:// URLs; nil uses the defaults
	Queue string      // the queue to consume
	// Prefetch is the basic.qos prefetch count: how many unacknowledged
	// deliveries RabbitMQ may push ahead. It should be at least twice
	// BatchSize so that the next batch streams in while one is delivered.
	// Default 2000.
	Prefetch int
	Declare  *Topology // declared on every connection when set
	// BatchSize caps the events handed to one deliver call. Default 500.
	BatchSize int
	// BatchWait is how long a batch waits for more deliveries after its
	// first. Default 5ms.
	BatchWait time.Duration
	// KeyFromMessageID uses the message_id property as the key when the
	// message has no bridge-key header.
	KeyFromMessageID bool
	Name             string // event.Source of every event, and the connection name shown by RabbitMQ
	// DialTimeout bounds the TCP connect and the AMQP handshake. Default 10s.
	DialTimeout time.Duration
	Logger      *slog.Logger
}

// Source consumes one RabbitMQ queue. See the package doc for guarantees.
type Source struct {
	cfg SourceConfig
	log *slog.Logger
}

var _ event.Source = (*Source)(nil)

// NewSource validates cfg and applies defaults. It does no I/O.
func NewSource(cfg SourceConfig) (*Source, error) {
	var errs []error
	if cfg.URL == "" {
		errs = append(errs, ErrNoURL)
	}
	if cfg.Queue == "" {
		errs = append(errs, ErrNoQueue)
	}
	if cfg.Prefetch < 0 || cfg.BatchSize < 0 || cfg.BatchWait < 0 {
		errs = append(errs, errors.New("amqp: Prefetch, BatchSize and BatchWait must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 500
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = max(2000, 2*cfg.BatchSize)
	}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = 5 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, log: log.With("source", cfg.Name, "queue", cfg.Queue)}, nil
}

// Run consumes until ctx is cancelled (then returns nil) or a permanent
// failure (access refused, no such queue). A lost connection is re-opened
// with backoff. Run may be called again after it returned.
func (s *Source) Run(ctx context.Context, deliver event.DeliverFunc) error {
	var bo backoff
	for {
		consumed, err := s.session(ctx, deliver)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, event.ErrPermanent) {
			return fmt.Errorf("amqp source %s: %w", s.cfg.Name, err)
		}
		if consumed {
			bo.reset() // the connection worked: start the backoff over
		}
		s.log.Warn("amqp connection lost, reconnecting", "err", err)
		if bo.wait(ctx) != nil {
			return nil
		}
	}
}

// session runs one connection: it returns when the connection or channel
// closes, or ctx ends. consumed reports whether any batch was acknowledged.
func (s *Source) session(ctx context.Context, deliver event.DeliverFunc) (consumed bool, err error) {
	conn, err := dial(s.cfg.URL, s.cfg.TLS, s.cfg.Name, s.cfg.DialTimeout)
	if err != nil {
		return false, err
	}
	// Closing the connection requeues every unacknowledged delivery and
	// ends amqp091's goroutines for it; the deliveries channel is closed
	// by amqp091 too.
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return false, classify(err)
	}
	if err := declare(ch, s.cfg.Declare); err != nil {
		return false, err
	}
	if err := ch.Qos(s.cfg.Prefetch, 0, false); err != nil {
		return false, classify(err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	c := consumer{src: s, ch: ch, closed: closed, tag: fmt.Sprintf("bridge-%s-%016x", s.cfg.Name, rand.Uint64())}
	if err := c.consume(); err != nil {
		return false, err
	}
	s.log.Info("amqp source consuming", "prefetch", s.cfg.Prefetch)
	return c.loop(ctx, deliver)
}

// consumer is the state of one session's consume loop.
type consumer struct {
	src        *Source
	ch         *amqp091.Channel
	tag        string // the consumer tag, to cancel it
	deliveries <-chan amqp091.Delivery
	closed     <-chan *amqp091.Error
	failures   backoff // between a failed deliver and its nack
	batch      []event.Event
	timer      *time.Timer
}

func (c *consumer) loop(ctx context.Context, deliver event.DeliverFunc) (consumed bool, err error) {
	c.timer = time.NewTimer(time.Hour)
	c.timer.Stop()
	defer c.timer.Stop()
	for {
		lastTag, err := c.gather(ctx)
		if err != nil {
			return consumed, err
		}
		if derr := deliver(ctx, c.batch); derr != nil {
			if ctx.Err() != nil {
				return consumed, ctx.Err() // the deferred Close requeues the batch
			}
			c.src.log.Warn("deliver failed; batch will be requeued", "events", len(c.batch), "err", derr)
			if err := c.requeue(ctx, lastTag); err != nil {
				return consumed, err
			}
			continue
		}
		if err := c.ch.Ack(lastTag, true); err != nil {
			// The batch is durable in the backbone but RabbitMQ will
			// redeliver it: a duplicate, which at-least-once allows.
			return consumed, fmt.Errorf("ack: %w", classify(err))
		}
		consumed = true
		c.failures.reset()
	}
}

// gather waits for a first delivery, then adds deliveries until BatchSize
// or until BatchWait passed. It returns the last delivery tag of the batch.
func (c *consumer) gather(ctx context.Context) (lastTag uint64, err error) {
	clear(c.batch)
	c.batch = c.batch[:0]
	var d amqp091.Delivery
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case amqpErr := <-c.closed:
		return 0, closeError(amqpErr)
	case dd, ok := <-c.deliveries:
		if !ok {
			return 0, closeError(nil)
		}
		d = dd
	}
	c.add(&d)
	lastTag = d.DeliveryTag
	c.timer.Reset(c.src.cfg.BatchWait)
	defer c.timer.Stop()
	for len(c.batch) < c.src.cfg.BatchSize {
		// Take what is already buffered without touching the timer.
		select {
		case dd, ok := <-c.deliveries:
			if !ok {
				return 0, closeError(nil)
			}
			c.add(&dd)
			lastTag = dd.DeliveryTag
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case dd, ok := <-c.deliveries:
			if !ok {
				return 0, closeError(nil)
			}
			c.add(&dd)
			lastTag = dd.DeliveryTag
		case <-c.timer.C:
			return lastTag, nil
		}
	}
	return lastTag, nil
}

func (c *consumer) add(d *amqp091.Delivery) {
	c.batch = append(c.batch, fromDelivery(d, c.src.cfg.KeyFromMessageID, c.src.cfg.Name, time.Now()))
}

// consume starts (or restarts) the consumer on the channel.
func (c *consumer) consume() error {
	deliveries, err := c.ch.Consume(c.src.cfg.Queue, c.tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.src.cfg.Queue, classify(err))
	}
	c.deliveries = deliveries
	return nil
}

// requeue waits for the failure backoff, then returns the batch and every
// delivery behind it to the queue together and in order, and consumes
// again. RabbitMQ keeps pushing deliveries (up to the prefetch) until the
// consumer is cancelled, and amqp091 may hold some it has not handed over
// yet: nacking what the channel happens to hold lets a delivery that
// arrives after the nack overtake the requeued batch (found by the soak,
// a full disk making deliver fail: events of one key entered the backbone
// out of order). So the consumer is cancelled first, every delivery up to
// the cancel-ok is drained, and all of them are nacked with one
// multiple-requeue.
func (c *consumer) requeue(ctx context.Context, lastTag uint64) error {
	if err := c.failures.wait(ctx); err != nil {
		return err
	}
	if err := c.ch.Cancel(c.tag, false); err != nil {
		return fmt.Errorf("cancel: %w", classify(err))
	}
	for d := range c.deliveries { // closed by amqp091 after the cancel-ok
		lastTag = d.DeliveryTag
	}
	if c.ch.IsClosed() {
		return closeError(nil) // closing requeued them all, in order
	}
	if err := c.ch.Nack(lastTag, true, true); err != nil {
		return fmt.Errorf("nack: %w", classify(err))
	}
	return c.consume()
}

func closeError(e *amqp091.Error) error {
	if e == nil {
		return errors.New("amqp: channel closed")
	}
	return fmt.Errorf("amqp: channel closed: %w", classify(e))
}
