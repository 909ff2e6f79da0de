package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/event"
)

// Topology is what a source or sink declares on each (re)connection. All
// exchanges and queues are durable and not auto-deleted; declaring one that
// exists with other settings is a permanent error (406 PRECONDITION_FAILED).
type Topology struct {
	Exchanges []Exchange
	Queues    []Queue
	Bindings  []Binding
}

// Exchange is an exchange declaration.
type Exchange struct {
	Name string
	Kind string // direct, topic, fanout or headers; empty means direct
}

// Queue is a queue declaration. Args are RabbitMQ's x-arguments
// (x-queue-type: quorum, x-dead-letter-exchange, ...).
type Queue struct {
	Name string
	Args map[string]any
}

// Binding binds Queue to Exchange with the routing key Key.
type Binding struct {
	Queue    string
	Exchange string
	Key      string
}

// Errors returned by New when a configuration is unusable.
var (
	ErrNoURL    = errors.New("amqp: URL is required")
	ErrNoQueue  = errors.New("amqp: Queue is required")
	ErrNoTarget = errors.New("amqp: Exchange or RoutingKey is required")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("amqp: sink is closed")
)

const (
	heartbeat = 10 * time.Second
	// dialTimeout bounds the TCP connect and the AMQP handshake when a
	// config leaves DialTimeout zero (docs/configuration.md: 10s).
	dialTimeout    = 10 * time.Second
	backoffInitial = 100 * time.Millisecond
	backoffMax     = 5 * time.Second
)

func dial(rawURL string, tlsConfig *tls.Config, name string, timeout time.Duration) (*amqp091.Connection, error) {
	if timeout <= 0 {
		timeout = dialTimeout
	}
	props := amqp091.NewConnectionProperties()
	if name != "" {
		props.SetClientConnectionName(name)
	}
	conn, err := amqp091.DialConfig(rawURL, amqp091.Config{
		Heartbeat:       heartbeat,
		TLSClientConfig: tlsConfig,
		Properties:      props,
		Dial:            amqp091.DefaultDial(timeout),
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", redact(rawURL), classify(err))
	}
	return conn, nil
}

// redact hides the password of an AMQP URL, so that it never reaches a log
// or an error.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable amqp url)"
	}
	return u.Redacted()
}

// classify marks the errors that retrying cannot fix as event.ErrPermanent:
// the server refused access (403), a named entity does not exist (404),
// a declaration conflicts (406), the vhost is not allowed (530), or the
// credentials were rejected. Everything else (refused or closed
// connections, 320 CONNECTION_FORCED, timeouts) stays retryable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, amqp091.ErrCredentials) || errors.Is(err, amqp091.ErrSASL) || errors.Is(err, amqp091.ErrVhost) {
		return event.Permanent(err)
	}
	var ae *amqp091.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp091.AccessRefused, amqp091.NotFound, amqp091.PreconditionFailed, amqp091.NotAllowed:
			return event.Permanent(err)
		}
	}
	return err
}

func declare(ch *amqp091.Channel, top *Topology) error {
	if top == nil {
		return nil
	}
	for _, x := range top.Exchanges {
		kind := x.Kind
		if kind == "" {
			kind = amqp091.ExchangeDirect
		}
		if err := ch.ExchangeDeclare(x.Name, kind, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", x.Name, classify(err))
		}
	}
	for _, q := range top.Queues {
		if _, err := ch.QueueDeclare(q.Name, true, false, false, false, amqp091.Table(q.Args)); err != nil {
			return fmt.Errorf("declare queue %s: %w", q.Name, classify(err))
		}
	}
	for _, b := range top.Bindings {
		if err := ch.QueueBind(b.Queue, b.Key, b.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s (%q): %w", b.Queue, b.Exchange, b.Key, classify(err))
		}
	}
	return nil
}

// backoff is exponential with full jitter in [d/2, d), so that many
// bridges cut off by one broker restart do not reconnect in lockstep.
type backoff struct{ next time.Duration }

func (b *backoff) reset() { b.next = 0 }

func (b *backoff) wait(ctx context.Context) error {
	if b.next == 0 {
		b.next = backoffInitial
	}
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, backoffMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
