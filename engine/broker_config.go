package engine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/exchange"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/pipelines"
)

// DeclareBroker creates the configured queues (dead-letter queues first, so
// that redrive policies name existing queues) and exchanges. A queue an
// earlier run stored takes the config's settings.
func DeclareBroker(cfg *pipelines.Config, qm *queue.Manager) (*Broker, error) {
	if err := declareQueues(cfg, qm, sortedNames(cfg.Broker.Queues)); err != nil {
		return nil, err
	}
	b := NewBroker(qm)
	for _, name := range sortedNames(cfg.Broker.Exchanges) {
		x, dlq, err := newExchange(name, cfg.Broker.Exchanges[name])
		if err != nil {
			return nil, err
		}
		b.AddExchange(x, dlq)
	}
	return b, nil
}

func declareQueues(cfg *pipelines.Config, qm *queue.Manager, names []string) error {
	sort.SliceStable(names, func(i, j int) bool {
		return cfg.Broker.Queues[names[i]].DeadLetterQueue == "" && cfg.Broker.Queues[names[j]].DeadLetterQueue != ""
	})
	for _, name := range names {
		q := cfg.Broker.Queues[name]
		qc := queue.Config{Name: name, FIFO: q.FIFO, ContentBasedDeduplication: q.ContentBasedDeduplication,
			VisibilityTimeout: time.Duration(q.VisibilityTimeout), Delay: time.Duration(q.Delay),
			Retention: time.Duration(q.Retention), MaxMessageSize: int(q.MaxMessageSize),
			ReceiveWait: time.Duration(q.ReceiveWait), DeadLetterQueue: q.DeadLetterQueue, MaxReceiveCount: q.MaxReceiveCount,
			MaxPriority: q.MaxPriority, PriorityAging: time.Duration(q.PriorityAging), MessageTTL: time.Duration(q.MessageTTL)}
		if existing, err := qm.Get(name); err == nil {
			// Config wins over what an earlier run stored.
			if err := existing.SetConfig(qc); err != nil {
				return fmt.Errorf("queue %s: %w", name, err)
			}
			continue
		}
		if _, err := qm.Create(qc); err != nil {
			return fmt.Errorf("queue %s: %w", name, err)
		}
	}
	return nil
}

func newExchange(name string, xc *pipelines.Exchange) (*exchange.Exchange, string, error) {
	x, err := exchange.New(name, exchange.Kind(xc.Type), bindingsOf(xc))
	if err != nil {
		return nil, "", fmt.Errorf("exchange %s: %w", name, err)
	}
	dlq := ""
	if xc.Unroutable == "dead_letter" {
		dlq = xc.DeadLetterQueue
	}
	return x, dlq, nil
}

func bindingsOf(xc *pipelines.Exchange) []exchange.Binding {
	var out []exchange.Binding
	for _, bc := range xc.Bindings {
		out = append(out, exchange.Binding{Queue: bc.Queue, Key: bc.Key, Headers: bc.Headers, Match: bc.Match})
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ErrQueueNotEmpty refuses to remove a queue that holds messages without
// force.
var ErrQueueNotEmpty = errors.New("engine: queue holds messages")

// CheckBrokerChange refuses what a reload cannot do to the broker: remove
// a queue that holds messages (unless force) or change an exchange's type.
func (b *Broker) CheckBrokerChange(old, cfg *pipelines.Config, diff *pipelines.PlanDiff, force bool) error {
	var errs []error
	for _, name := range diff.QueuesRemoved {
		q, err := b.Queues.Get(name)
		if err != nil {
			continue
		}
		st := q.Stats()
		if n := st.Visible + st.InFlight + st.Delayed; n > 0 && !force {
			errs = append(errs, fmt.Errorf("%w: removing queue %s would delete its %d messages; drain it first or reload with --force", ErrQueueNotEmpty, name, n))
		}
	}
	for _, name := range diff.ExchangesChanged {
		if old.Broker.Exchanges[name].Type != cfg.Broker.Exchanges[name].Type {
			errs = append(errs, fmt.Errorf("exchange %s: its type changes from %s to %s: that needs a restart (bindings can change on reload)",
				name, old.Broker.Exchanges[name].Type, cfg.Broker.Exchanges[name].Type))
		}
	}
	for _, name := range diff.QueuesChanged {
		if old.Broker.Queues[name].FIFO != cfg.Broker.Queues[name].FIFO {
			errs = append(errs, fmt.Errorf("queue %s: fifo cannot change on a queue that exists", name))
		}
	}
	return errors.Join(errs...)
}

// ApplyAdditions creates added queues, applies changed queue settings,
// adds exchanges and changes bindings in place (so bindings declared over
// the AMQP API on a config exchange stay). Run it before the routes swap.
func (b *Broker) ApplyAdditions(old, cfg *pipelines.Config, diff *pipelines.PlanDiff) error {
	if err := declareQueues(cfg, b.Queues, append(slices.Clone(diff.QueuesAdded), diff.QueuesChanged...)); err != nil {
		return err
	}
	for _, name := range diff.ExchangesAdded {
		x, dlq, err := newExchange(name, cfg.Broker.Exchanges[name])
		if err != nil {
			return err
		}
		b.AddExchange(x, dlq)
	}
	for _, name := range diff.ExchangesChanged {
		rt, ok := b.exchange(name)
		if !ok {
			continue
		}
		oldB, newB := bindingsOf(old.Broker.Exchanges[name]), bindingsOf(cfg.Broker.Exchanges[name])
		for _, bd := range newB {
			if err := rt.x.Bind(bd); err != nil {
				return fmt.Errorf("exchange %s: %w", name, err)
			}
		}
		for _, bd := range oldB {
			if !slices.ContainsFunc(newB, func(n exchange.Binding) bool { return sameBinding(n, bd) }) {
				rt.x.Unbind(bd)
			}
		}
		dlq := ""
		if xc := cfg.Broker.Exchanges[name]; xc.Unroutable == "dead_letter" {
			dlq = xc.DeadLetterQueue
		}
		rt.deadLetter.Store(&dlq)
	}
	return nil
}

func sameBinding(a, b exchange.Binding) bool {
	if a.Queue != b.Queue || a.Key != b.Key || a.Match != b.Match || len(a.Headers) != len(b.Headers) {
		return false
	}
	for k, v := range a.Headers {
		if b.Headers[k] != v {
			return false
		}
	}
	return true
}

// ApplyRemovals removes the exchanges and queues the new config dropped.
// Run it after the routes swapped (no route sends to them any more).
func (b *Broker) ApplyRemovals(diff *pipelines.PlanDiff) error {
	b.mu.Lock()
	for _, name := range diff.ExchangesRemoved {
		delete(b.exchanges, name)
	}
	b.mu.Unlock()
	var errs []error
	for _, name := range diff.QueuesRemoved {
		if err := b.Queues.Delete(name); err != nil && !errors.Is(err, queue.ErrNoSuchQueue) {
			errs = append(errs, fmt.Errorf("remove queue %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
