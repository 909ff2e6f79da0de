package amqpapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/wire"
	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// The operations below are AMQP's exchange.* and queue.* methods on the
// topology. Each returns a *protoError carrying the reply code RabbitMQ
// gives in the same situation; the texts follow RabbitMQ's wording so
// that what users search for matches.

func errNoExchange(name string) error {
	return newError(wire.NotFound, "no exchange '%s' in vhost '/'", name)
}

func errNoQueue(name string) error {
	return newError(wire.NotFound, "no queue '%s' in vhost '/'", name)
}

func errLocked(name string) error {
	return newError(wire.ResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '/'", name)
}

func errConfigure(role Role, what string) error {
	return newError(wire.AccessRefused, "access to %s refused: role %s may not change the topology (admin only)", what, role)
}

func inequivalent(arg, kind, name string, received, current any) error {
	return newError(wire.PreconditionFailed, "inequivalent arg '%s' for %s '%s' in vhost '/': received '%v' but current is '%v'",
		arg, kind, name, received, current)
}

func (t *topology) declareExchange(c *conn, m *wire.ExchangeDeclare) error {
	if m.Exchange == defaultExchange {
		return newError(wire.AccessRefused, "operation not permitted on the default exchange")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if xe := t.exchange(m.Exchange); xe != nil {
		if m.Passive {
			return nil
		}
		switch {
		case string(xe.x.Kind()) != m.Type:
			return inequivalent("type", "exchange", m.Exchange, m.Type, xe.x.Kind())
		case xe.durable != m.Durable:
			return inequivalent("durable", "exchange", m.Exchange, m.Durable, xe.durable)
		case xe.autoDelete != m.AutoDelete:
			return inequivalent("auto_delete", "exchange", m.Exchange, m.AutoDelete, xe.autoDelete)
		case xe.internal != m.Internal:
			return inequivalent("internal", "exchange", m.Exchange, m.Internal, xe.internal)
		}
		return nil
	}
	switch {
	case m.Passive:
		return errNoExchange(m.Exchange)
	case reservedName(m.Exchange):
		return newError(wire.AccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", m.Exchange)
	case !c.role.canConfigure():
		return errConfigure(c.role, "exchange '"+m.Exchange+"'")
	}
	switch exchange.Kind(m.Type) {
	case exchange.Direct, exchange.Topic, exchange.Fanout, exchange.Headers:
	default:
		return newError(wire.CommandInvalid, "invalid exchange type '%s' (bridge has direct, topic, fanout and headers)", m.Type)
	}
	if _, ok := m.Arguments.Get("alternate-exchange"); ok {
		return newError(wire.PreconditionFailed, "exchange argument 'alternate-exchange' is not supported by bridge")
	}
	x, err := exchange.New(m.Exchange, exchange.Kind(m.Type), nil)
	if err != nil {
		return newError(wire.PreconditionFailed, "%v", err)
	}
	t.editExchanges(func(xs map[string]*xentry) {
		xs[m.Exchange] = &xentry{name: m.Exchange, x: x, origin: originRuntime, durable: m.Durable, autoDelete: m.AutoDelete, internal: m.Internal}
	})
	if m.Durable {
		return t.saveOrUndo(func() { t.editExchanges(func(xs map[string]*xentry) { delete(xs, m.Exchange) }) })
	}
	return nil
}

// saveOrUndo saves the store; when that fails it undoes the in-memory
// change, so that what clients see never runs ahead of what survives.
func (t *topology) saveOrUndo(undo func()) error {
	if err := t.saveLocked(); err != nil {
		undo()
		return newError(wire.InternalError, "%v", err)
	}
	return nil
}

func (t *topology) deleteExchange(c *conn, m *wire.ExchangeDelete) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	xe := t.exchange(m.Exchange)
	switch {
	case m.Exchange == defaultExchange || reservedName(m.Exchange):
		return newError(wire.AccessRefused, "exchange '%s' is built in and cannot be deleted", m.Exchange)
	case xe == nil:
		return errNoExchange(m.Exchange)
	case xe.origin == originConfig:
		return newError(wire.AccessRefused, "exchange '%s' is declared in the config file and cannot be deleted over AMQP", m.Exchange)
	case !c.role.canConfigure():
		return errConfigure(c.role, "exchange '"+m.Exchange+"'")
	case m.IfUnused && len(xe.x.Bindings()) > 0:
		return newError(wire.PreconditionFailed, "exchange '%s' in vhost '/' in use", m.Exchange)
	}
	t.removeExchangeLocked(xe)
	return t.saveAfterRemove()
}

// saveAfterRemove saves after a removal; a removal is not undone (the
// resources are gone already), so a failed save is reported and the
// stale entries are dropped at the next start.
func (t *topology) saveAfterRemove() error {
	if err := t.saveLocked(); err != nil {
		return newError(wire.InternalError, "%v", err)
	}
	return nil
}

func (t *topology) removeExchangeLocked(xe *xentry) {
	t.editExchanges(func(xs map[string]*xentry) { delete(xs, xe.name) })
	t.bindings = slices.DeleteFunc(t.bindings, func(b storedBinding) bool { return b.Exchange == xe.name })
}

// queueDeclared is queue.declare's answer.
type queueDeclared struct {
	name      string
	messages  uint32
	consumers uint32
}

func (t *topology) declareQueue(c *conn, m *wire.QueueDeclare) (queueDeclared, error) {
	name := m.Queue
	generated := name == ""
	if generated {
		name = serverQueueName()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var args queueArgs
	if !m.Passive { // a passive declare's arguments are not looked at
		var err error
		if args, err = parseQueueArguments(name, m.Arguments); err != nil {
			return queueDeclared{}, err
		}
	}
	if q, err := t.qm.Get(name); err == nil {
		return t.redeclareLocked(c, m, name, q, args)
	}
	switch {
	case m.Passive:
		return queueDeclared{}, errNoQueue(name)
	case !generated && reservedName(name):
		return queueDeclared{}, newError(wire.AccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", name)
	case !c.role.canConfigure():
		return queueDeclared{}, errConfigure(c.role, "queue '"+name+"'")
	case strings.HasSuffix(name, ".fifo"):
		return queueDeclared{}, newError(wire.PreconditionFailed, "queue '%s': FIFO queues (.fifo) are declared in the config file or over the SQS API", name)
	}
	entry := &qentry{durable: m.Durable, exclusive: m.Exclusive, autoDelete: m.AutoDelete}
	if m.Exclusive {
		entry.owner = c
	}
	// Store the flags first: a crash between the two steps then leaves a
	// flag entry without a queue (dropped at startup), never a transient
	// queue that would survive as a durable one.
	t.queues[name] = entry
	if err := t.saveOrUndo(func() { delete(t.queues, name) }); err != nil {
		return queueDeclared{}, err
	}
	cfg := queue.Config{Name: name, MaxMessageSize: queue.MaxMaxMessageSize}
	args.apply(&cfg)
	if _, err := t.qm.Create(cfg); err != nil {
		delete(t.queues, name)
		_ = t.saveLocked()
		if errors.Is(err, queue.ErrInvalidParameter) {
			return queueDeclared{}, newError(wire.PreconditionFailed, "%v", err)
		}
		return queueDeclared{}, newError(wire.InternalError, "%v", err)
	}
	if m.Exclusive {
		c.addExclusive(name)
	}
	return queueDeclared{name: name}, nil
}

// redeclareLocked answers queue.declare for a queue that exists: passive,
// or with the same flags as it has.
func (t *topology) redeclareLocked(c *conn, m *wire.QueueDeclare, name string, q *queue.Queue, args queueArgs) (queueDeclared, error) {
	entry := t.queues[name]
	declaredOverAMQP := entry != nil
	if entry == nil {
		entry = &qentry{durable: true} // created by the config file or the SQS API
	}
	if entry.exclusive && entry.owner != c {
		return queueDeclared{}, errLocked(name)
	}
	if !m.Passive {
		switch {
		case entry.durable != m.Durable:
			return queueDeclared{}, inequivalent("durable", "queue", name, m.Durable, entry.durable)
		case entry.exclusive != m.Exclusive:
			return queueDeclared{}, inequivalent("exclusive", "queue", name, m.Exclusive, entry.exclusive)
		case entry.autoDelete != m.AutoDelete:
			return queueDeclared{}, inequivalent("auto_delete", "queue", name, m.AutoDelete, entry.autoDelete)
		}
		if err := args.checkEquivalent(name, q.Config(), declaredOverAMQP); err != nil {
			return queueDeclared{}, err
		}
	}
	q.Touch() // a redeclare is a use of a temporary (x-expires) queue
	out := queueDeclared{name: name, messages: uint32(q.Stats().Visible)}
	if qc := t.consumers[name]; qc != nil {
		out.consumers = uint32(qc.n)
	}
	return out, nil
}

// bindingFromArgs maps an AMQP binding to the exchange package's. Only a
// headers exchange uses the arguments: x-match and the header values,
// rendered as text (the exchange compares values as strings).
func bindingFromArgs(kind exchange.Kind, queueName, key string, args wire.Table) exchange.Binding {
	b := exchange.Binding{Queue: queueName, Key: key}
	if kind != exchange.Headers {
		return b
	}
	b.Headers = map[string]string{}
	for _, f := range args {
		if f.Name == "x-match" {
			b.Match = renderValue(f.Value)
			continue
		}
		b.Headers[f.Name] = renderValue(f.Value)
	}
	return b
}

// lookupQueueLocked resolves a queue for an operation by c: 404 when it
// does not exist, 405 when another connection holds it exclusively.
func (t *topology) lookupQueueLocked(c *conn, name string) (*queue.Queue, error) {
	q, err := t.qm.Get(name)
	if err != nil {
		return nil, errNoQueue(name)
	}
	if e := t.queues[name]; e != nil && e.exclusive && e.owner != c {
		return nil, errLocked(name)
	}
	return q, nil
}

// bindingLocked resolves and checks queue.bind and queue.unbind: the
// exchange (not the default one), the queue, the role; it returns the
// binding in the exchange package's form and in the store's.
func (t *topology) bindingLocked(c *conn, queueName, exchangeName, key string, args wire.Table) (*xentry, exchange.Binding, storedBinding, error) {
	if exchangeName == defaultExchange {
		return nil, exchange.Binding{}, storedBinding{}, newError(wire.AccessRefused, "operation not permitted on the default exchange")
	}
	xe := t.exchange(exchangeName)
	if xe == nil {
		return nil, exchange.Binding{}, storedBinding{}, errNoExchange(exchangeName)
	}
	if _, err := t.lookupQueueLocked(c, queueName); err != nil {
		return nil, exchange.Binding{}, storedBinding{}, err
	}
	if !c.role.canConfigure() {
		return nil, exchange.Binding{}, storedBinding{}, errConfigure(c.role, "exchange '"+exchangeName+"'")
	}
	b := bindingFromArgs(xe.x.Kind(), queueName, key, args)
	return xe, b, storedBinding{Exchange: exchangeName, Queue: queueName, Key: b.Key, Headers: b.Headers, Match: b.Match}, nil
}

func (t *topology) bindQueue(c *conn, queueName, exchangeName, key string, args wire.Table) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	xe, b, sb, err := t.bindingLocked(c, queueName, exchangeName, key, args)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(t.bindings, sb.equal) {
		return nil
	}
	if err := xe.x.Bind(b); err != nil {
		return newError(wire.PreconditionFailed, "%v", err)
	}
	t.bindings = append(t.bindings, sb)
	return t.saveOrUndo(func() {
		xe.x.Unbind(b)
		t.bindings = t.bindings[:len(t.bindings)-1]
	})
}

func (t *topology) unbindQueue(c *conn, queueName, exchangeName, key string, args wire.Table) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	xe, b, sb, err := t.bindingLocked(c, queueName, exchangeName, key, args)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(t.bindings, sb.equal)
	if i < 0 {
		for _, cb := range xe.configBindings {
			if cb.Queue == b.Queue && cb.Key == b.Key && cb.Match == b.Match && mapsEqual(cb.Headers, b.Headers) {
				return newError(wire.AccessRefused, "the binding of queue '%s' to exchange '%s' is declared in the config file", queueName, exchangeName)
			}
		}
		return nil // unbinding what is not bound is a no-op, as in RabbitMQ
	}
	xe.x.Unbind(b)
	t.bindings = slices.Delete(t.bindings, i, i+1)
	t.autoDeleteExchangeLocked(xe)
	return t.saveAfterRemove()
}

// autoDeleteExchangeLocked deletes an auto-delete exchange that lost its
// last binding.
func (t *topology) autoDeleteExchangeLocked(xe *xentry) {
	if xe.origin == originRuntime && xe.autoDelete && len(xe.x.Bindings()) == 0 {
		t.removeExchangeLocked(xe)
	}
}

func (t *topology) purgeQueue(c *conn, name string) (*queue.Queue, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	q, err := t.lookupQueueLocked(c, name)
	if err != nil {
		return nil, err
	}
	if !c.role.canConfigure() {
		return nil, errConfigure(c.role, "queue '"+name+"'")
	}
	return q, nil
}

func (t *topology) deleteQueue(c *conn, m *wire.QueueDelete, name string) (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	q, err := t.lookupQueueLocked(c, name)
	if err != nil {
		var pe *protoError
		if errors.As(err, &pe) && pe.code == wire.NotFound {
			return 0, nil // deleting what does not exist succeeds, as in RabbitMQ
		}
		return 0, err
	}
	switch {
	case t.configQueues[name]:
		return 0, newError(wire.AccessRefused, "queue '%s' is declared in the config file and cannot be deleted over AMQP", name)
	case !c.role.canConfigure():
		return 0, errConfigure(c.role, "queue '"+name+"'")
	case m.IfUnused && t.consumers[name] != nil && t.consumers[name].n > 0:
		return 0, newError(wire.PreconditionFailed, "queue '%s' in vhost '/' in use", name)
	}
	visible := q.Stats().Visible
	if m.IfEmpty && visible > 0 {
		return 0, newError(wire.PreconditionFailed, "queue '%s' in vhost '/' is not empty", name)
	}
	if err := t.removeQueueLocked(name); err != nil {
		return 0, newError(wire.InternalError, "%v", err)
	}
	return uint32(visible), nil
}

// removeQueueLocked deletes a queue with its bindings and flags. Its
// consumers see the queue closed and are cancelled by their loops.
func (t *topology) removeQueueLocked(name string) error {
	err := t.qm.Delete(name)
	if err != nil && !errors.Is(err, queue.ErrNoSuchQueue) {
		return fmt.Errorf("delete queue %s: %w", name, err)
	}
	for _, xe := range *t.exchanges.Load() {
		if xe.x == nil {
			continue
		}
		for _, b := range xe.x.Bindings() {
			if b.Queue == name {
				xe.x.Unbind(b)
			}
		}
		t.autoDeleteExchangeLocked(xe)
	}
	t.bindings = slices.DeleteFunc(t.bindings, func(b storedBinding) bool { return b.Queue == name })
	delete(t.queues, name)
	return t.saveLocked()
}

// addConsumer registers a consumer of name for c, enforcing exclusive
// queues (405) and exclusive consumers (403).
func (t *topology) addConsumer(c *conn, name string, exclusive bool) (*queue.Queue, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	q, err := t.lookupQueueLocked(c, name)
	if err != nil {
		return nil, err
	}
	qc := t.consumers[name]
	if qc == nil {
		qc = &qconsumers{}
		t.consumers[name] = qc
	}
	if qc.exclusive || exclusive && qc.n > 0 {
		return nil, newError(wire.AccessRefused, "queue '%s' in vhost '/' in exclusive use", name)
	}
	qc.n++
	qc.exclusive = exclusive
	return q, nil
}

// removeConsumer unregisters a consumer; an auto-delete queue whose last
// consumer left is deleted, as in RabbitMQ.
func (t *topology) removeConsumer(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	qc := t.consumers[name]
	if qc == nil {
		return
	}
	qc.n--
	qc.exclusive = false
	if qc.n > 0 {
		return
	}
	delete(t.consumers, name)
	if e := t.queues[name]; e != nil && e.autoDelete {
		if err := t.removeQueueLocked(name); err != nil {
			t.log.Warn("auto-delete queue", "queue", name, "err", err)
		}
	}
}

// dropExclusive deletes the exclusive queues c owned, when c closes.
func (t *topology) dropExclusive(c *conn, names []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, name := range names {
		if e := t.queues[name]; e != nil && e.exclusive && e.owner == c {
			if err := t.removeQueueLocked(name); err != nil {
				t.log.Warn("delete exclusive queue", "queue", name, "err", err)
			}
		}
	}
}

// addConfig makes exchanges and queues that a config reload added visible
// over AMQP, with the same protections as those of the starting config
// (they cannot be deleted or redeclared differently over AMQP). An
// exchange of the same name declared over AMQP is left as it is and
// reported.
func (t *topology) addConfig(exchanges []ConfigExchange, queues []string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, name := range queues {
		t.configQueues[name] = true
	}
	var errs []error
	for _, ce := range exchanges {
		if ce.Exchange == nil {
			errs = append(errs, errors.New("amqpapi: a ConfigExchange without an Exchange"))
			continue
		}
		name := ce.Exchange.Name()
		if cur := t.exchange(name); cur != nil && cur.origin != originConfig {
			errs = append(errs, fmt.Errorf("amqpapi: exchange %q was declared over AMQP; the config's exchange of that name is not visible to AMQP clients", name))
			continue
		}
		t.editExchanges(func(xs map[string]*xentry) {
			xs[name] = &xentry{name: name, x: ce.Exchange, origin: originConfig, durable: true,
				unroutable: ce.UnroutableQueue, configBindings: ce.Exchange.Bindings()}
		})
	}
	return errors.Join(errs...)
}
