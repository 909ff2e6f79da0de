package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/pipelines"
)

// amqpListener is the running AMQP API (issue 19); stop ends it.
type amqpListener struct {
	srv  *amqpapi.Server
	addr string
	done chan error
	stop context.CancelFunc
}

// startAMQP starts amqp_api.listen on the queue manager and exchanges the
// engine uses. It restores the runtime topology (bindings declared over
// AMQP, also on config exchanges) before returning, so start it before the
// engine routes. nil when amqp_api.listen is empty.
func startAMQP(cfg *pipelines.Config, qm *queue.Manager, broker *engine.Broker, log *slog.Logger) (*amqpListener, error) {
	if cfg.AMQPAPI.Listen == "" {
		return nil, nil
	}
	var exchanges []amqpapi.ConfigExchange
	for _, name := range sortedKeys(cfg.Broker.Exchanges) {
		if x, dlq, ok := broker.Exchange(name); ok {
			exchanges = append(exchanges, amqpapi.ConfigExchange{Exchange: x, UnroutableQueue: dlq})
		}
	}
	tokens := map[string]amqpapi.Role{}
	for _, t := range cfg.Auth.Tokens {
		tokens[t.Token] = amqpapi.Role(t.Role)
	}
	srv, err := amqpapi.New(amqpapi.Options{Queues: qm, Dir: filepath.Join(cfg.DataDir, "amqp"), Exchanges: exchanges,
		ConfigQueues: sortedKeys(cfg.Broker.Queues), Tokens: tokens, Logger: log.With("component", "amqpapi")})
	if err != nil {
		return nil, err
	}
	if err := srv.Load(); err != nil {
		return nil, fmt.Errorf("amqp_api: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.AMQPAPI.Listen)
	if err != nil {
		return nil, fmt.Errorf("amqp_api.listen %s: %w", cfg.AMQPAPI.Listen, err)
	}
	if cfg.AMQPAPI.TLS != nil {
		tc, err := listenerTLS(cfg.AMQPAPI.TLS)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("amqp_api.tls: %w", err)
		}
		ln = tls.NewListener(ln, tc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &amqpListener{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1), stop: cancel}
	go func() { l.done <- srv.Run(ctx, ln) }()
	log.Info("AMQP API listening", "addr", l.addr, "tls", cfg.AMQPAPI.TLS != nil, "auth", len(tokens) > 0)
	return l, nil
}

// shutdown closes every AMQP connection (unacknowledged messages go back
// to their queues) and waits, bounded by ctx.
func (l *amqpListener) shutdown(ctx context.Context, log *slog.Logger) {
	if l == nil {
		return
	}
	l.stop()
	select {
	case err := <-l.done:
		if err != nil {
			log.Error("AMQP API", "err", err)
		}
	case <-ctx.Done():
		log.Error("AMQP API did not stop in time")
	}
}
