package amqp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
)

// SinkConfig configures a Sink.
type SinkConfig struct {
	URL        string      // amqp://user:pass@host:port/vhost; the password never reaches logs or errors
	TLS        *tls.Config // for amqps:// URLs
	Exchange   string      // target exchange; "" is the default exchange (routing key = queue name)
	RoutingKey string      // used when an event has no Params.RoutingKey
	// KeyPerEvent says every event brings its routing key in its
	// Params (SendParams), so an empty Exchange with no RoutingKey is a
	// valid target: the default exchange, routed by each event's key.
	KeyPerEvent bool
	// Mandatory makes an unroutable message a permanent failure of its
	// item instead of a silent drop. Nil means true.
	Mandatory *bool
	Declare   *Topology // declared on every connection when set
	Name      string    // the connection name shown by RabbitMQ
	// DialTimeout bounds the TCP connect and the AMQP handshake. Default 10s.
	DialTimeout time.Duration
	Logger      *slog.Logger
}

// Sink publishes batches to one exchange with publisher confirms. It is
// safe for concurrent use. See the package doc for guarantees.
type Sink struct {
	cfg       SinkConfig
	mandatory bool
	log       *slog.Logger

	mu      sync.Mutex // held for a whole Send; guards the fields below
	conn    *amqp091.Connection
	ch      *amqp091.Channel
	closes  chan *amqp091.Error // the channel's close notification
	returns chan amqp091.Return
	closed  bool
}

var _ event.ParamSink = (*Sink)(nil)

// returnsBuffer holds basic.returns that arrive while Send waits on a
// confirm. amqp091 gives up on a full listener after 5s, which would lose
// a return, so the buffer is sized for a burst of unroutable messages.
const returnsBuffer = 1024

// NewSink validates cfg. It does no I/O: the first Send connects.
func NewSink(cfg SinkConfig) (*Sink, error) {
	var errs []error
	if cfg.URL == "" {
		errs = append(errs, ErrNoURL)
	}
	if cfg.Exchange == "" && cfg.RoutingKey == "" && !cfg.KeyPerEvent {
		errs = append(errs, ErrNoTarget)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mandatory := cfg.Mandatory == nil || *cfg.Mandatory
	return &Sink{cfg: cfg, mandatory: mandatory, log: log.With("sink", cfg.Name, "exchange", cfg.Exchange)}, nil
}

// Send publishes batch with the configured routing key.
func (s *Sink) Send(ctx context.Context, batch []event.Event) error {
	return s.SendParams(ctx, batch, nil)
}

// SendParams publishes batch, event i with routing key params[i].RoutingKey
// (cfg.RoutingKey when empty or when params is nil), and returns when every
// message was confirmed. Failed items are reported in a *event.BatchError;
// an error that is not a BatchError means no item was published.
func (s *Sink) SendParams(ctx context.Context, batch []event.Event, params []event.Params) error {
	if params != nil && len(params) != len(batch) {
		return fmt.Errorf("amqp sink: %d params for %d events", len(params), len(batch))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if len(batch) == 0 {
		return nil
	}
	if s.ch != nil && s.ch.IsClosed() {
		s.dropLocked() // lost while idle
	}
	if s.ch == nil {
		if err := s.connectLocked(); err != nil {
			return fmt.Errorf("amqp sink %s: %w", s.cfg.Name, err)
		}
	}
	confirms := make([]*amqp091.DeferredConfirmation, len(batch))
	for i := range batch {
		key := s.cfg.RoutingKey
		if params != nil && params[i].RoutingKey != "" {
			key = params[i].RoutingKey
		}
		msg := toPublishing(&batch[i])
		dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, s.cfg.Exchange, key, s.mandatory, false, msg)
		if err != nil {
			// Everything from i on is unpublished; what came before may
			// still be confirmed, so wait for it before reporting. The
			// channel is unusable after a failed publish.
			defer s.dropLocked()
			return s.finishLocked(ctx, batch, params, confirms[:i], classify(err), len(batch))
		}
		confirms[i] = dc
	}
	return s.finishLocked(ctx, batch, params, confirms, nil, len(batch))
}

// finishLocked waits for the confirms of the published prefix and builds
// the result. publishErr, when set, fails the items from len(confirms) to n.
func (s *Sink) finishLocked(ctx context.Context, batch []event.Event, params []event.Params,
	confirms []*amqp091.DeferredConfirmation, publishErr error, n int) error {
	var returned []amqp091.Return
	var lost error // the channel closed before every confirm arrived
	// Local copies: dropLocked forgets the channel's notifications, but the
	// returns already buffered belong to this batch. amqp091 closes both
	// channels when the AMQP channel shuts down; a closed one is set to nil
	// here, since receiving from it would yield zero Returns forever.
	returns, closes := s.returns, s.closes
	for _, dc := range confirms {
		for waiting := true; waiting; {
			select {
			case <-dc.Done():
				waiting = false
			case r, ok := <-returns:
				if !ok {
					returns = nil
					continue
				}
				returned = append(returned, r)
			case amqpErr, ok := <-closes:
				if ok || lost == nil {
					lost = closeError(amqpErr)
				}
				closes = nil
				// amqp091 nacks every outstanding confirm on close, so
				// the loop ends; the channel is re-opened by the next Send.
				s.dropLocked()
				waiting = false
			case <-ctx.Done():
				// The confirms of this batch are unknown: drop the channel
				// so that no stale confirm or return reaches a later Send.
				s.dropLocked()
				lost = ctx.Err()
				waiting = false
			}
		}
	}
	// A return precedes its message's confirm on the wire and amqp091 hands
	// it over first, so every return of this batch is buffered now.
	for returns != nil {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			returned = append(returned, r)
		default:
			returns = nil
		}
	}
	var be event.BatchError
	matched := make([]bool, n)
	for _, r := range returned {
		if i := matchReturn(batch, params, s.cfg.RoutingKey, matched, &r); i >= 0 {
			matched[i] = true
			be.Failed = append(be.Failed, event.ItemError{Index: i, Err: event.Permanent(
				fmt.Errorf("amqp: unroutable: exchange %q routing key %q: %d %s", r.Exchange, r.RoutingKey, r.ReplyCode, r.ReplyText))})
		}
	}
	for i, dc := range confirms {
		if matched[i] {
			continue
		}
		switch {
		case lost != nil && !dc.Acked():
			be.Failed = append(be.Failed, event.ItemError{Index: i, Err: fmt.Errorf("amqp: no confirm: %w", lost)})
		case !dc.Acked():
			be.Failed = append(be.Failed, event.ItemError{Index: i, Err: errors.New("amqp: broker nacked the message")})
		}
	}
	for i := len(confirms); i < n; i++ {
		be.Failed = append(be.Failed, event.ItemError{Index: i, Err: fmt.Errorf("amqp: publish: %w", publishErr)})
	}
	if len(be.Failed) == 0 {
		return nil
	}
	if len(be.Failed) == n && lost != nil {
		s.log.Warn("amqp channel lost during send", "err", lost)
	}
	sortFailed(be.Failed)
	return &be
}

// matchReturn finds the item a basic.return belongs to: the first not yet
// matched item with the same routing key, body and headers. Identical
// messages sent with the same routing key share their routing fate, so
// picking the first is exact enough.
func matchReturn(batch []event.Event, params []event.Params, defaultKey string, matched []bool, r *amqp091.Return) int {
	for i := range batch {
		if matched[i] {
			continue
		}
		key := defaultKey
		if params != nil && params[i].RoutingKey != "" {
			key = params[i].RoutingKey
		}
		if key != r.RoutingKey || !bytes.Equal(batch[i].Value, r.Body) {
			continue
		}
		if id, ok := batch[i].Header(event.HeaderEventID); ok {
			if v, _ := r.Headers[event.HeaderEventID].(string); v != string(id) {
				continue
			}
		}
		return i
	}
	return -1
}

func sortFailed(items []event.ItemError) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].Index < items[j-1].Index; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}

func (s *Sink) connectLocked() error {
	conn, err := dial(s.cfg.URL, s.cfg.TLS, s.cfg.Name, s.cfg.DialTimeout)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = declare(ch, s.cfg.Declare)
	}
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		_ = conn.Close() // the error that matters is err
		return classify(err)
	}
	s.conn, s.ch = conn, ch
	s.closes = ch.NotifyClose(make(chan *amqp091.Error, 1))
	s.returns = ch.NotifyReturn(make(chan amqp091.Return, returnsBuffer))
	return nil
}

// dropLocked closes the connection so that the next Send opens a new one.
func (s *Sink) dropLocked() {
	if s.conn == nil {
		return
	}
	conn := s.conn
	s.conn, s.ch, s.closes, s.returns = nil, nil, nil, nil
	// Best effort: the connection is being discarded. A return still in
	// flight for it finds a buffered channel or is abandoned by amqp091
	// after its notify timeout; nothing waits on it.
	_ = conn.CloseDeadline(time.Now().Add(time.Second))
}

// Close closes the connection. It is idempotent; ctx bounds the wait for
// RabbitMQ's close-ok.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.conn == nil {
		return nil
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	conn := s.conn
	s.conn, s.ch, s.closes, s.returns = nil, nil, nil, nil
	if err := conn.CloseDeadline(deadline); err != nil && !errors.Is(err, amqp091.ErrClosed) {
		return fmt.Errorf("amqp sink %s: close: %w", s.cfg.Name, err)
	}
	return nil
}
