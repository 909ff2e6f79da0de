package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bridgeio/bridge/connectors/amqp"
	"github.com/bridgeio/bridge/event"
)

// amqpSystem is a RabbitMQ queue (source) or exchange/queue (target).
type amqpSystem struct {
	ep   *Endpoint
	name string
	log  *slog.Logger

	mu   sync.Mutex // guards conn, the connection used for depth checks
	conn *amqp091.Connection
}

func (s *amqpSystem) source(maxBatch int) (event.Source, error) {
	if s.ep.Queue == "" {
		return nil, errors.New("an AMQP source needs ?queue=NAME")
	}
	return amqp.NewSource(amqp.SourceConfig{URL: s.ep.AMQPURL, Queue: s.ep.Queue, BatchSize: maxBatch,
		Name: s.name + "-source", Logger: s.log})
}

func (s *amqpSystem) sink() (event.Sink, error) {
	rk := s.ep.RoutingKey
	if s.ep.Exchange == "" && rk == "" {
		rk = s.ep.Queue // the default exchange routes by queue name
	}
	return amqp.NewSink(amqp.SinkConfig{URL: s.ep.AMQPURL, Exchange: s.ep.Exchange, RoutingKey: rk,
		Name: s.name + "-sink", Logger: s.log})
}

// dial opens a short-lived management connection (preflight, depth,
// read-back); the data path uses the connectors' own connections.
func (s *amqpSystem) dial() (*amqp091.Connection, error) {
	props := amqp091.NewConnectionProperties()
	props.SetClientConnectionName(s.name + "-control")
	conn, err := amqp091.DialConfig(s.ep.AMQPURL, amqp091.Config{Properties: props, Heartbeat: 10 * time.Second,
		Dial: amqp091.DefaultDial(10 * time.Second)})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.ep, scrub(err, s.ep))
	}
	return conn, nil
}

// inspect declares queue passively on a fresh channel of conn and returns
// its ready message count.
func inspect(conn *amqp091.Connection, queue string) (int, error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}

func (s *amqpSystem) checkSource(context.Context) error {
	if s.ep.Queue == "" {
		return errors.New("an AMQP source needs ?queue=NAME")
	}
	conn, err := s.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := inspect(conn, s.ep.Queue); err != nil {
		return fmt.Errorf("source queue %q on %s: %w", s.ep.Queue, s.ep, err)
	}
	return nil
}

// prepareTarget checks that the exchange exists and declares the target
// queue (durable, classic) when it is named and absent. An existing queue
// is used as it is, whatever its arguments.
func (s *amqpSystem) prepareTarget(context.Context, int) error {
	conn, err := s.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.ep.Exchange != "" {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		err = ch.ExchangeDeclarePassive(s.ep.Exchange, "direct", true, false, false, false, nil)
		_ = ch.Close()
		if err != nil {
			return fmt.Errorf("target exchange %q on %s: %w", s.ep.Exchange, s.ep, err)
		}
	}
	if s.ep.Queue == "" {
		return nil
	}
	if _, err := inspect(conn, s.ep.Queue); err == nil {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(s.ep.Queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare target queue %q: %w", s.ep.Queue, err)
	}
	if s.ep.Exchange != "" {
		if err := ch.QueueBind(s.ep.Queue, s.ep.RoutingKey, s.ep.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind target queue %q to %q: %w", s.ep.Queue, s.ep.Exchange, err)
		}
	}
	return nil
}

// depth is the queue's ready count. Deliveries the source holds unacked
// are not in it; the drain check's idle period covers them.
func (s *amqpSystem) depth(context.Context) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || s.conn.IsClosed() {
		conn, err := s.dial()
		if err != nil {
			return 0, false, err
		}
		s.conn = conn
	}
	n, err := inspect(s.conn, s.ep.Queue)
	if err != nil {
		_ = s.conn.Close()
		s.conn = nil
		return 0, false, err
	}
	return int64(n), true, nil
}

func (s *amqpSystem) mark(context.Context) (map[int32]int64, error) { return nil, nil }

func (s *amqpSystem) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// amqpReadIdle ends a read-back that stopped receiving before it saw the
// count the queue reported.
const amqpReadIdle = 2 * time.Second

// readBack consumes the target queue without acknowledging anything and
// closes the channel at the end, which hands every message back to the
// queue in its original position (RabbitMQ requeues unacked deliveries on
// channel close). Messages are marked redelivered, which is the visible
// trace a verification leaves.
func (s *amqpSystem) readBack(ctx context.Context, _ map[int32]int64, fn func(targetMessage)) error {
	if s.ep.Queue == "" {
		return errors.New("verifying an AMQP target needs the queue to read back: add &queue=NAME to --to")
	}
	conn, err := s.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	want, err := inspect(conn, s.ep.Queue)
	if err != nil {
		return fmt.Errorf("target queue %q: %w", s.ep.Queue, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close() // requeues everything read
	if err := ch.Qos(0, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(s.ep.Queue, s.name+"-verify", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("read back %q: %w", s.ep.Queue, err)
	}
	idle := time.NewTimer(amqpReadIdle)
	defer idle.Stop()
	for n := 0; n < want; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle.C:
			s.log.Warn("read-back stopped early: the queue delivered fewer messages than it counted", "read", n, "counted", want)
			return nil
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("read back: channel closed")
			}
			fn(targetMessage{Event: amqp.FromDelivery(&d), Position: s.ep.Queue + "#" + strconv.Itoa(n)})
			n++
			idle.Reset(amqpReadIdle)
		}
	}
	return nil
}
