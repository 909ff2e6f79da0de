package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bridgeio/bridge/connectors/amqp"
	"github.com/bridgeio/bridge/connectors/kafka"
	"github.com/bridgeio/bridge/connectors/sqs"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/pipelines"
)

// connectors maps configured connections, sources and targets to the
// connector packages. It is wiring only: every guarantee lives in the
// connectors and the engine.
type connectors struct {
	log *slog.Logger
}

func (c connectors) sink(t *pipelines.Target, conn *pipelines.Connection) (event.Sink, error) {
	if conn == nil {
		return nil, fmt.Errorf("connection %q is not defined", t.Connection)
	}
	log := c.log.With("connection", t.Connection)
	switch t.Kind {
	case pipelines.TargetKafka:
		sc := kafka.SinkConfig{Client: kafkaClient(conn), Topic: t.Topic, Logger: log}
		if k := t.Kafka; k != nil {
			sc.Compression, sc.Linger = k.Compression, time.Duration(k.Linger)
		}
		return kafka.NewSink(sc)
	case pipelines.TargetAMQP:
		tlsCfg, err := amqpTLS(conn)
		if err != nil {
			return nil, err
		}
		sc := amqp.SinkConfig{URL: conn.URL, TLS: tlsCfg, Exchange: t.Exchange, KeyPerEvent: t.RoutingKey != nil,
			Name: "bridge-" + t.Connection, DialTimeout: time.Duration(conn.DialTimeout), Logger: log}
		if a := t.AMQP; a != nil {
			sc.Mandatory, sc.Declare = a.Mandatory, amqpTopology(a.Declare)
		}
		return amqp.NewSink(sc)
	case pipelines.TargetSQS:
		client, err := sqsClient(conn)
		if err != nil {
			return nil, err
		}
		return sqs.NewSink(sqs.SinkConfig{Client: client, QueueURL: t.QueueURL, RequestTimeout: time.Duration(conn.RequestTimeout),
			Name: t.Connection, Logger: log})
	}
	return nil, fmt.Errorf("no connector for %s targets", t.Kind)
}

func (c connectors) source(s *pipelines.Source, conn *pipelines.Connection) (event.Source, error) {
	if conn == nil {
		return nil, fmt.Errorf("connection %q is not defined", s.Connection)
	}
	log := c.log.With("source", s.Name)
	switch s.Type {
	case "kafka":
		return kafka.NewSource(kafka.SourceConfig{Client: kafkaClient(conn), Topics: s.Topics, Group: s.Group, Name: s.Name, Logger: log})
	case "amqp":
		tlsCfg, err := amqpTLS(conn)
		if err != nil {
			return nil, err
		}
		return amqp.NewSource(amqp.SourceConfig{URL: conn.URL, TLS: tlsCfg, Queue: s.Queue, Prefetch: s.Prefetch,
			KeyFromMessageID: s.KeyFromMessageID, Declare: amqpTopology(s.Declare), Name: s.Name,
			DialTimeout: time.Duration(conn.DialTimeout), Logger: log})
	case "sqs":
		client, err := sqsClient(conn)
		if err != nil {
			return nil, err
		}
		return sqs.NewSource(sqs.SourceConfig{Client: client, QueueURL: s.QueueURL, MaxMessages: s.MaxMessages,
			WaitTime: time.Duration(s.WaitTime), Concurrency: s.Concurrency, RequestTimeout: time.Duration(conn.RequestTimeout),
			Name: s.Name, Logger: log})
	}
	return nil, fmt.Errorf("no connector for %s sources", s.Type)
}

// amqpTopology maps a declare block to the connector's topology.
func amqpTopology(d *pipelines.AMQPDeclare) *amqp.Topology {
	if d == nil {
		return nil
	}
	t := &amqp.Topology{}
	for _, x := range d.Exchanges {
		t.Exchanges = append(t.Exchanges, amqp.Exchange{Name: x.Name, Kind: x.Type})
	}
	for _, q := range d.Queues {
		t.Queues = append(t.Queues, amqp.Queue{Name: q.Name, Args: q.Arguments})
	}
	for _, b := range d.Bindings {
		t.Bindings = append(t.Bindings, amqp.Binding{Queue: b.Queue, Exchange: b.Exchange, Key: b.Key})
	}
	return t
}

func kafkaClient(conn *pipelines.Connection) kafka.ClientConfig {
	cc := kafka.ClientConfig{Brokers: conn.Brokers, ClientID: conn.ClientID,
		DialTimeout: time.Duration(conn.DialTimeout), RequestTimeout: time.Duration(conn.RequestTimeout),
		SessionTimeout: time.Duration(conn.SessionTimeout)}
	if t := conn.TLS; t != nil {
		cc.TLS = &kafka.TLSConfig{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
	}
	if s := conn.SASL; s != nil {
		cc.SASL = &kafka.SASLConfig{Mechanism: s.Mechanism, Username: s.Username, Password: s.Password}
	}
	return cc
}

func sqsClient(conn *pipelines.Connection) (*awssqs.Client, error) {
	return sqs.NewClient(context.Background(), sqs.ClientConfig{Region: conn.Region, Endpoint: conn.Endpoint,
		AccessKeyID: conn.AccessKeyID, SecretAccessKey: conn.SecretAccessKey, DialTimeout: time.Duration(conn.DialTimeout)})
}

// amqpTLS builds a client TLS config from the connection's files.
func amqpTLS(conn *pipelines.Connection) (*tls.Config, error) {
	t := conn.TLS
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls.ca_file: no certificate found")
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
