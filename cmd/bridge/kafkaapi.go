package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/embedded-broker/kafkaapi"
	"github.com/bridgeio/bridge/pipelines"
)

// kafkaListener is the running Kafka-protocol listener (kafka_api:).
type kafkaListener struct {
	srv    *kafkaapi.Server
	cancel context.CancelFunc
	done   chan error
	log    *slog.Logger
}

// startKafkaAPI serves the embedded log over the Kafka protocol when
// kafka_api.listen is set (validation refuses it with a Kafka backbone).
// SASL credentials are the auth tokens: username = role, password = token.
func startKafkaAPI(cfg *pipelines.Config, lg *commitlog.Log, log *slog.Logger) (*kafkaListener, error) {
	k := cfg.KafkaAPI
	if k.Listen == "" {
		return nil, nil
	}
	if lg == nil {
		return nil, errors.New("kafka_api: needs the embedded backbone")
	}
	opts := kafkaapi.Options{Log: lg, AdvertisedAddr: k.AdvertisedAddress, AutoCreateTopics: k.AutoCreateTopics,
		DefaultPartitions: k.DefaultPartitions, Logger: log.With("component", "kafkaapi")}
	for _, t := range cfg.Auth.Tokens {
		opts.Credentials = append(opts.Credentials, kafkaapi.Credential{Username: t.Role, Password: t.Token, Role: kafkaapi.Role(t.Role)})
	}
	if k.SASL != nil {
		opts.Mechanisms = k.SASL.Mechanisms
	}
	if k.TLS != nil {
		tc, err := listenerTLS(k.TLS)
		if err != nil {
			return nil, fmt.Errorf("kafka_api.tls: %w", err)
		}
		opts.TLS = tc
	}
	srv, err := kafkaapi.New(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", k.Listen)
	if err != nil {
		return nil, fmt.Errorf("kafka_api.listen %s: %w", k.Listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	kl := &kafkaListener{srv: srv, cancel: cancel, done: make(chan error, 1), log: log}
	go func() { kl.done <- srv.Serve(ctx, ln) }()
	log.Info("Kafka API listening", "addr", ln.Addr().String(), "advertised", k.AdvertisedAddress, "tls", k.TLS != nil,
		"sasl", len(opts.Credentials) > 0, "auto_create_topics", k.AutoCreateTopics)
	return kl, nil
}

// stop closes the listener and its connections and waits for them. Safe on
// a nil listener (kafka_api disabled).
func (k *kafkaListener) stop() {
	if k == nil {
		return
	}
	k.cancel()
	if err := <-k.done; err != nil {
		k.log.Error("Kafka API stopped", "err", err)
	}
}
