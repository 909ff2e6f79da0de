package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/bridgeio/bridge/connectors/sqsattr"
	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
)

// Broker is the embedded broker as the engine uses it: queues and the
// exchanges that route into them. It also serves the HTTP API's queue
// endpoints.
type Broker struct {
	Queues *queue.Manager
	// mu guards exchanges: a reload adds and removes exchanges
	// (broker_config.go).
	mu        sync.RWMutex
	exchanges map[string]*exchangeRT
}

// exchangeRT is an exchange with its unroutable policy and counter.
type exchangeRT struct {
	x          *exchange.Exchange
	deadLetter atomic.Pointer[string] // queue for unroutable events; "" = drop
	unroutable atomic.Int64
}

func (x *exchangeRT) deadLetterQueue() string { return *x.deadLetter.Load() }

// exchange finds a registered exchange.
func (b *Broker) exchange(name string) (*exchangeRT, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	x, ok := b.exchanges[name]
	return x, ok
}

// exchangeList is a snapshot of the exchanges by name.
func (b *Broker) exchangeList() map[string]*exchangeRT {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return maps.Clone(b.exchanges)
}

// NewBroker wraps a queue manager; exchanges are added with AddExchange.
func NewBroker(m *queue.Manager) *Broker {
	return &Broker{Queues: m, exchanges: map[string]*exchangeRT{}}
}

// AddExchange registers an exchange. deadLetterQueue, when set, receives
// events no binding matched; otherwise they are dropped and counted.
func (b *Broker) AddExchange(x *exchange.Exchange, deadLetterQueue string) {
	rt := &exchangeRT{x: x}
	rt.deadLetter.Store(&deadLetterQueue)
	b.mu.Lock()
	b.exchanges[x.Name()] = rt
	b.mu.Unlock()
}

// Exchange returns a registered exchange and the queue its unroutable
// events go to ("" = dropped), for listeners that share it (the AMQP API).
func (b *Broker) Exchange(name string) (*exchange.Exchange, string, bool) {
	x, ok := b.exchange(name)
	if !ok {
		return nil, "", false
	}
	return x.x, x.deadLetterQueue(), true
}

// QueueDepth is one queue's depths.
type QueueDepth struct {
	Name            string `json:"name"`
	FIFO            bool   `json:"fifo"`
	Visible         int    `json:"visible"`
	InFlight        int    `json:"in_flight"`
	Delayed         int    `json:"delayed"`
	DeadLetterQueue string `json:"dead_letter_queue,omitempty"`
	// Beyond SQS (docs/queues.md): the queue's settings, and messages whose
	// TTL ended since the process started.
	MaxPriority         int    `json:"max_priority,omitempty"`
	MessageTTL          string `json:"message_ttl,omitempty"`
	IdleTimeout         string `json:"idle_timeout,omitempty"` // a temporary queue
	ExpiredDropped      int64  `json:"expired_dropped"`
	ExpiredDeadLettered int64  `json:"expired_dead_lettered"`
}

// ErrUnknownQueue is returned by Redrive for a queue that does not exist.
var ErrUnknownQueue = errors.New("engine: unknown queue")

// QueueDepths lists every queue's depths, sorted by name.
func (b *Broker) QueueDepths() []QueueDepth {
	names := b.Queues.List("")
	out := make([]QueueDepth, 0, len(names))
	for _, n := range names {
		q, err := b.Queues.Get(n)
		if err != nil {
			continue // deleted meanwhile
		}
		st, cfg := q.Stats(), q.Config()
		d := QueueDepth{Name: n, FIFO: cfg.FIFO, Visible: st.Visible, InFlight: st.InFlight,
			Delayed: st.Delayed, DeadLetterQueue: cfg.DeadLetterQueue, MaxPriority: cfg.MaxPriority,
			ExpiredDropped: st.ExpiredDropped, ExpiredDeadLettered: st.ExpiredDeadLettered}
		if cfg.MessageTTL > 0 {
			d.MessageTTL = cfg.MessageTTL.String()
		}
		if cfg.IdleTimeout > 0 {
			d.IdleTimeout = cfg.IdleTimeout.String()
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Redrive moves dead letters back (Manager.Redrive), mapping a missing queue to ErrUnknownQueue.
func (b *Broker) Redrive(ctx context.Context, dlq, dest string, max, perSecond int) (int, error) {
	n, err := b.Queues.Redrive(ctx, dlq, dest, max, perSecond)
	if errors.Is(err, queue.ErrNoSuchQueue) {
		return n, fmt.Errorf("%w: %v", ErrUnknownQueue, err)
	}
	return n, err
}

// queueSink sends events to one embedded queue (SPEC §8, SQS column): the
// body is the event value, the key and headers become message attributes.
type queueSink struct {
	q    *queue.Queue
	name string
	fifo bool
}

func newQueueSink(m *queue.Manager, name string) (*queueSink, error) {
	q, err := m.Get(name)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", name, err)
	}
	return &queueSink{q: q, name: name, fifo: q.Config().FIFO}, nil
}

func (s *queueSink) Name() string                { return "queue:" + s.name }
func (s *queueSink) Close(context.Context) error { return nil }

func (s *queueSink) Send(ctx context.Context, batch []event.Event) error {
	return s.SendParams(ctx, batch, nil)
}

func (s *queueSink) SendParams(ctx context.Context, batch []event.Event, params []event.Params) error {
	in := make([]queue.SendInput, len(batch))
	for i := range batch {
		var p event.Params
		if params != nil {
			p = params[i]
		}
		in[i] = toSendInput(&batch[i], p, s.fifo)
	}
	return sendQueue(ctx, s.q, in, identity(len(batch)))
}

// toSendInput maps an event to a queue message. FIFO group: group_id rule,
// else the event key, else the backbone partition (which keeps the order
// the partition had). Dedup id: dedup_id rule, else bridge-event-id.
func toSendInput(ev *event.Event, p event.Params, fifo bool) queue.SendInput {
	attrs := sqsattr.ToAttributes(ev.Key, ev.Headers)
	in := queue.SendInput{Body: ev.Value, Attributes: make([]queue.Attribute, len(attrs))}
	for i, a := range attrs {
		in.Attributes[i] = queue.Attribute{Name: a.Name, DataType: "String", Value: []byte(a.Value)}
	}
	if fifo {
		in.GroupID = p.GroupID
		if in.GroupID == "" && len(ev.Key) > 0 {
			in.GroupID = string(ev.Key)
		}
		if in.GroupID == "" {
			in.GroupID = "partition-" + strconv.Itoa(int(ev.Partition))
		}
		in.DedupID = p.DedupID
		if in.DedupID == "" {
			if id, ok := ev.Header(event.HeaderEventID); ok {
				in.DedupID = string(id)
			}
		}
	}
	applyMessageParams(&in, ev, &p)
	return in
}

func identity(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// sendQueue sends and turns per-entry failures into a *BatchError whose
// indexes are origin[i]. Too large and invalid messages are permanent.
func sendQueue(ctx context.Context, q *queue.Queue, in []queue.SendInput, origin []int) error {
	res, err := q.Send(ctx, in)
	if err != nil {
		return err
	}
	var be event.BatchError
	for i, r := range res {
		if r.Err == nil {
			continue
		}
		e := r.Err
		if errors.Is(e, queue.ErrMessageTooLarge) || errors.Is(e, queue.ErrInvalidParameter) {
			e = event.Permanent(e)
		}
		be.Failed = append(be.Failed, event.ItemError{Index: origin[i], Err: e})
	}
	if len(be.Failed) > 0 {
		sort.Slice(be.Failed, func(i, j int) bool { return be.Failed[i].Index < be.Failed[j].Index })
		return &be
	}
	return nil
}

// exchangeSink routes each event through an exchange into the queues its
// bindings select, each queue once. An event is acknowledged when every
// queue it goes to has stored it.
type exchangeSink struct {
	b    *Broker
	name string
}

// ErrUnroutable marks an event that no binding of an exchange matched.
var ErrUnroutable = errors.New("engine: no binding matched the event")

func newExchangeSink(b *Broker, name string) (*exchangeSink, error) {
	if _, ok := b.exchange(name); !ok {
		return nil, fmt.Errorf("exchange %s does not exist", name)
	}
	return &exchangeSink{b: b, name: name}, nil
}

func (s *exchangeSink) Name() string                { return "exchange:" + s.name }
func (s *exchangeSink) Close(context.Context) error { return nil }

func (s *exchangeSink) Send(ctx context.Context, batch []event.Event) error {
	return s.SendParams(ctx, batch, nil)
}

func (s *exchangeSink) SendParams(ctx context.Context, batch []event.Event, params []event.Params) error {
	type perQueue struct {
		in     []queue.SendInput
		origin []int
	}
	// The exchange is looked up per batch: a reload changes its bindings
	// in place or removes it (broker_config.go).
	x, ok := s.b.exchange(s.name)
	if !ok {
		return event.Permanent(fmt.Errorf("exchange %s does not exist (removed by a reload)", s.name))
	}
	deadLetter := x.deadLetterQueue()
	byQueue := map[string]*perQueue{}
	var order []string
	var be event.BatchError
	// One sink serves every partition cursor of a route at once: scratch
	// space is per call, never on the sink.
	var routes []string
	for i := range batch {
		var p event.Params
		if params != nil {
			p = params[i]
		}
		routes = x.x.Route(p.RoutingKey, batch[i].Headers, routes[:0])
		targets := routes
		if len(targets) == 0 {
			x.unroutable.Add(1)
			if deadLetter == "" {
				continue // dropped, as RabbitMQ drops unroutable messages; counted
			}
			targets = []string{deadLetter}
		}
		for _, qn := range targets {
			pq, ok := byQueue[qn]
			if !ok {
				pq = &perQueue{}
				byQueue[qn] = pq
				order = append(order, qn)
			}
			q, err := s.b.Queues.Get(qn)
			if err != nil {
				be.Failed = append(be.Failed, event.ItemError{Index: i, Err: event.Permanent(err)})
				continue
			}
			pq.in = append(pq.in, toSendInput(&batch[i], p, q.Config().FIFO))
			pq.origin = append(pq.origin, i)
		}
	}
	var errs []error
	for _, qn := range order {
		pq := byQueue[qn]
		if len(pq.in) == 0 {
			continue
		}
		q, err := s.b.Queues.Get(qn)
		if err != nil {
			continue // reported above
		}
		if err := sendQueue(ctx, q, pq.in, pq.origin); err != nil {
			var qbe *event.BatchError
			if errors.As(err, &qbe) {
				be.Failed = append(be.Failed, qbe.Failed...)
				continue
			}
			errs = append(errs, fmt.Errorf("queue %s: %w", qn, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(be.Failed) > 0 {
		return mergeFailures(be.Failed)
	}
	return nil
}

// mergeFailures sorts item failures and keeps one per event index.
func mergeFailures(items []event.ItemError) error {
	sort.SliceStable(items, func(i, j int) bool { return items[i].Index < items[j].Index })
	out := items[:0]
	for _, it := range items {
		if len(out) > 0 && out[len(out)-1].Index == it.Index {
			continue
		}
		out = append(out, it)
	}
	return &event.BatchError{Failed: out}
}

// Unroutable returns how many events an exchange could not route.
func (b *Broker) Unroutable(name string) int64 {
	if x, ok := b.exchange(name); ok {
		return x.unroutable.Load()
	}
	return 0
}
