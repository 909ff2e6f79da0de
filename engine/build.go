package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
)

// Deps are the runtime parts a plan runs on.
type Deps struct {
	Backbone Backbone
	// Broker is the embedded broker; nil when the plan uses no queue or exchange.
	Broker *Broker
	// External builds sinks for targets on external systems (kafka, amqp,
	// sqs). nil: such targets are refused.
	External func(t *pipelines.Target, conn *pipelines.Connection) (event.Sink, error)
	// Source builds the reader of a configured source. nil: sources are refused.
	Source  func(s *pipelines.Source, conn *pipelines.Connection) (event.Source, error)
	Options Options
}

// ErrUnsupportedTarget is returned for a target kind this build cannot serve.
var ErrUnsupportedTarget = errors.New("engine: target not supported")

// Build turns a validated plan into an engine. It opens no connection and
// starts no goroutine; Run does.
func Build(plan *pipelines.Plan, deps Deps) (*Engine, error) {
	opts := deps.Options
	if opts.ShutdownTimeout <= 0 && plan.Config != nil {
		opts.ShutdownTimeout = time.Duration(plan.Config.ShutdownTimeout)
	}
	e := newEngine(deps.Backbone, opts)
	e.deps, e.plan = deps, plan
	if deps.Broker != nil {
		e.replays.queues = deps.Broker.Queues
	}
	var errs []error
	for _, p := range plan.Pipelines {
		routes, err := buildRoutes(plan, p, deps, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", p.Name, err))
			continue
		}
		labelRoutes(routes, opts.Version)
		if err := e.addPipeline(p.Name, p.From, routes); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sp := range plan.Sources {
		if deps.Source == nil {
			errs = append(errs, fmt.Errorf("source %s: %w: %s sources", sp.Config.Name, ErrUnsupportedTarget, sp.Config.Type))
			continue
		}
		var conn *pipelines.Connection
		if plan.Config != nil {
			conn = plan.Config.Connections[sp.Config.Connection]
		}
		src, err := deps.Source(sp.Config, conn)
		if err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", sp.Config.Name, err))
			continue
		}
		e.addSource(sp.Config.Name, sp.Config.Topic, src, sp.Key)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

func buildRoutes(plan *pipelines.Plan, p *pipelines.Pipeline, deps Deps, e *Engine) ([]*route, error) {
	var deadLetter event.Sink
	if p.DeadLetter != nil {
		s, err := buildSink(plan, p.DeadLetter, deps, e)
		if err != nil {
			return nil, fmt.Errorf("dead_letter: %w", err)
		}
		deadLetter = s
	}
	var routes []*route
	for _, rp := range p.Routes {
		sink, err := buildSink(plan, &rp.To, deps, e)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", rp.Name, err)
		}
		r := &route{
			pipeline: p.Name, name: rp.Name, topic: p.From, start: p.Start,
			filter: p.Filter, transform: p.Transform, when: rp.When, routeTransform: rp.Transform,
			key: rp.To.Key, routingKey: rp.To.RoutingKey, groupID: rp.To.GroupID, dedupID: rp.To.DedupID,
			sink: sink, deadLetter: deadLetter, onError: p.OnError,
			retry:   RetryPolicy{MaxAttempts: p.Retry.MaxAttempts, InitialBackoff: p.Retry.InitialBackoff, MaxBackoff: p.Retry.MaxBackoff}.withDefaults(),
			retryIf: p.RetryIf, deadLetterIf: p.DeadLetterIf,
			batchSize: max(p.BatchSize, 1), maxBytes: 8 << 20,
		}
		if rp.To.HasMessageRules() {
			r.message = &rp.To
		}
		if r.onError == OnErrorDeadLetter && deadLetter == nil {
			return nil, errors.New("on_error: dead_letter without a dead_letter target")
		}
		routes = append(routes, r)
	}
	return routes, nil
}

func buildSink(plan *pipelines.Plan, t *pipelines.Target, deps Deps, e *Engine) (event.Sink, error) {
	switch t.Kind {
	case pipelines.TargetTopic:
		return &topicSink{backbone: deps.Backbone, topic: t.Topic}, nil
	case pipelines.TargetQueue:
		if deps.Broker == nil {
			return nil, fmt.Errorf("%w: no embedded broker for queue %s", ErrUnsupportedTarget, t.Queue)
		}
		return newQueueSink(deps.Broker.Queues, t.Queue)
	case pipelines.TargetExchange:
		if deps.Broker == nil {
			return nil, fmt.Errorf("%w: no embedded broker for exchange %s", ErrUnsupportedTarget, t.Exchange)
		}
		return newExchangeSink(deps.Broker, t.Exchange)
	default:
		if deps.External == nil {
			return nil, fmt.Errorf("%w: %s targets", ErrUnsupportedTarget, t.Kind)
		}
		var conn *pipelines.Connection
		if plan.Config != nil {
			conn = plan.Config.Connections[t.Connection]
		}
		// Route versions with the same target and connection share a sink
		// (reload.go); it is closed when none uses it, or at the end of Run.
		key := sinkKey(t, conn)
		e.mu.Lock()
		shared, ok := e.sinks[key]
		e.mu.Unlock()
		if ok {
			return shared.sink, nil
		}
		s, err := deps.External(t, conn)
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		e.sinks[key] = &externalSink{sink: s}
		e.mu.Unlock()
		return s, nil
	}
}
