package amqpapi

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/event"
)

type exchangeOrigin uint8

const (
	originBuiltin exchangeOrigin = iota // "" and amq.*
	originConfig                        // the config file's broker.exchanges
	originRuntime                       // declared over AMQP
)

// xentry is one exchange as the listener knows it.
type xentry struct {
	name       string
	x          *exchange.Exchange // nil for the default exchange
	origin     exchangeOrigin
	durable    bool
	autoDelete bool
	internal   bool
	// unroutable is the config's dead-letter queue for messages no
	// binding matches (unroutable: dead_letter), "" to drop them.
	unroutable string
	// configBindings are the bindings the config file declares; they
	// cannot be removed over AMQP.
	configBindings []exchange.Binding
}

// qentry holds the flags of a queue declared over AMQP. Queues created by
// the config file or the SQS API have none: they count as durable,
// neither exclusive nor auto-delete.
type qentry struct {
	durable    bool
	exclusive  bool
	autoDelete bool
	owner      *conn // the exclusive queue's connection
}

// qconsumers counts the consumers of one queue, over all connections.
type qconsumers struct {
	n         int
	exclusive bool
}

// topology is the registry of exchanges, AMQP-declared queue flags,
// consumers and runtime bindings, with the durable store behind it.
//
// Lock: mu serializes every change and the store write that makes it
// durable (declarations are rare; publishing never takes mu: it reads the
// exchange map through an atomic pointer, copy-on-write). mu is taken
// before any queue's locks and never while a channel's lock is held.
type topology struct {
	qm           *queue.Manager
	dir          string
	log          *slog.Logger
	configQueues map[string]bool

	exchanges atomic.Pointer[map[string]*xentry]

	mu        sync.Mutex
	queues    map[string]*qentry
	consumers map[string]*qconsumers
	bindings  []storedBinding // runtime bindings, as stored
}

// defaultExchange is "": every queue is bound to it by its name.
const defaultExchange = ""

func newTopology(qm *queue.Manager, dir string, config []ConfigExchange, configQueues []string, log *slog.Logger) (*topology, error) {
	t := &topology{qm: qm, dir: dir, log: log, configQueues: map[string]bool{},
		queues: map[string]*qentry{}, consumers: map[string]*qconsumers{}}
	for _, name := range configQueues {
		t.configQueues[name] = true
	}
	xs := map[string]*xentry{defaultExchange: {name: defaultExchange, origin: originBuiltin, durable: true}}
	for _, b := range []struct {
		name string
		kind exchange.Kind
	}{{"amq.direct", exchange.Direct}, {"amq.fanout", exchange.Fanout}, {"amq.topic", exchange.Topic},
		{"amq.headers", exchange.Headers}, {"amq.match", exchange.Headers}} {
		x, err := exchange.New(b.name, b.kind, nil)
		if err != nil {
			return nil, err
		}
		xs[b.name] = &xentry{name: b.name, x: x, origin: originBuiltin, durable: true}
	}
	for _, ce := range config {
		if ce.Exchange == nil {
			return nil, errors.New("amqpapi: a ConfigExchange without an Exchange")
		}
		name := ce.Exchange.Name()
		if _, dup := xs[name]; dup {
			return nil, fmt.Errorf("amqpapi: exchange %q is declared twice (or shadows a built-in one)", name)
		}
		xs[name] = &xentry{name: name, x: ce.Exchange, origin: originConfig, durable: true,
			unroutable: ce.UnroutableQueue, configBindings: ce.Exchange.Bindings()}
	}
	t.exchanges.Store(&xs)
	return t, nil
}

func (t *topology) exchange(name string) *xentry { return (*t.exchanges.Load())[name] }

func (t *topology) editExchanges(edit func(map[string]*xentry)) {
	next := maps.Clone(*t.exchanges.Load())
	edit(next)
	t.exchanges.Store(&next)
}

// load restores the stored topology: it deletes the queues that must not
// survive a restart (transient or exclusive), recreates durable runtime
// exchanges, and rebinds every stored binding whose exchange and queue
// still exist. It then rewrites the store without what it dropped.
func (t *topology) load() error {
	st, err := loadTopology(t.dir)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, q := range st.Queues {
		if !q.Durable || q.Exclusive {
			if err := t.qm.Delete(q.Name); err != nil && !errors.Is(err, queue.ErrNoSuchQueue) {
				return fmt.Errorf("delete transient queue %s: %w", q.Name, err)
			}
			t.log.Info("deleted a transient AMQP queue at startup", "queue", q.Name, "durable", q.Durable, "exclusive", q.Exclusive)
			continue
		}
		if _, err := t.qm.Get(q.Name); err == nil {
			t.queues[q.Name] = &qentry{durable: true, autoDelete: q.AutoDelete}
		}
	}
	var restoreErr error
	t.editExchanges(func(xs map[string]*xentry) {
		for _, se := range st.Exchanges {
			if _, taken := xs[se.Name]; taken {
				t.log.Warn("a stored AMQP exchange is now declared by the config file; the config wins", "exchange", se.Name)
				continue
			}
			x, err := exchange.New(se.Name, exchange.Kind(se.Type), nil)
			if err != nil {
				restoreErr = errors.Join(restoreErr, err)
				continue
			}
			xs[se.Name] = &xentry{name: se.Name, x: x, origin: originRuntime, durable: true, autoDelete: se.AutoDelete, internal: se.Internal}
		}
	})
	if restoreErr != nil {
		return fmt.Errorf("restore AMQP exchanges: %w", restoreErr)
	}
	for _, b := range st.Bindings {
		xe := t.exchange(b.Exchange)
		if xe == nil || xe.x == nil {
			continue
		}
		if _, err := t.qm.Get(b.Queue); err != nil {
			continue
		}
		if err := xe.x.Bind(exchange.Binding{Queue: b.Queue, Key: b.Key, Headers: b.Headers, Match: b.Match}); err != nil {
			t.log.Warn("dropped a stored binding that no longer validates", "exchange", b.Exchange, "queue", b.Queue, "err", err)
			continue
		}
		t.bindings = append(t.bindings, b)
	}
	return t.saveLocked()
}

// saveLocked writes the current runtime topology durably.
func (t *topology) saveLocked() error {
	st := storedTopology{Version: 1, Bindings: slices.Clone(t.bindings)}
	for _, xe := range *t.exchanges.Load() {
		if xe.origin == originRuntime && xe.durable {
			st.Exchanges = append(st.Exchanges, storedExchange{Name: xe.name, Type: string(xe.x.Kind()), AutoDelete: xe.autoDelete, Internal: xe.internal})
		}
	}
	for name, q := range t.queues {
		st.Queues = append(st.Queues, storedQueue{Name: name, Durable: q.durable, Exclusive: q.exclusive, AutoDelete: q.autoDelete})
	}
	// Bindings whose exchange is transient die with it at a restart.
	st.Bindings = slices.DeleteFunc(st.Bindings, func(b storedBinding) bool {
		xe := t.exchange(b.Exchange)
		return xe == nil || !xe.durable
	})
	return saveTopology(t.dir, st)
}

// route appends to dst the queues a message published to xe with this key
// and these headers goes to. The default exchange routes to the queue
// named by the key, if it exists. It takes no lock.
func (t *topology) route(xe *xentry, key string, headers func() []event.Header, dst []string) []string {
	if xe.x == nil {
		if _, err := t.qm.Get(key); err == nil {
			dst = append(dst, key)
		}
		return dst
	}
	var hs []event.Header
	if xe.x.Kind() == exchange.Headers {
		hs = headers()
	}
	return xe.x.Route(key, hs, dst)
}

// serverQueueName makes a name for queue.declare with an empty name, in
// RabbitMQ's shape.
func serverQueueName() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "amq.gen-" + base64.RawURLEncoding.EncodeToString(raw[:])
}

// reservedName reports whether a client may not create name ("amq." is
// the server's prefix, as in RabbitMQ).
func reservedName(name string) bool { return strings.HasPrefix(name, "amq.") }
