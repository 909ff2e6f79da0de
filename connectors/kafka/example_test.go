package kafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bridgeio/bridge/connectors/kafka"
	"github.com/bridgeio/bridge/event"
)

// A source that hands each batch to the backbone; its offsets are committed
// only after deliver returned nil.
func ExampleNewSource() {
	src, err := kafka.NewSource(kafka.SourceConfig{
		Client: kafka.ClientConfig{Brokers: []string{"127.0.0.1:1"}}, // nothing listens: the example only stops
		Topics: []string{"clicks"},
		Group:  "bridge",
		Name:   "clicks",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	// Run blocks until ctx ends; with nothing listening it just retries.
	_ = src.Run(ctx, func(ctx context.Context, batch []event.Event) error {
		return nil // append batch to the backbone here
	})
	fmt.Println("stopped")
	// Output: stopped
}

// A sink with SASL/SCRAM and zstd; the password never shows when the
// config is printed.
func ExampleNewSink() {
	cfg := kafka.SinkConfig{
		Client: kafka.ClientConfig{
			Brokers: []string{"broker-1:9093"},
			TLS:     &kafka.TLSConfig{},
			SASL:    &kafka.SASLConfig{Mechanism: kafka.MechanismSCRAMSHA512, Username: "bridge", Password: "hunter2"},
		},
		Topic:       "orders",
		Compression: kafka.CompressionZstd,
	}
	sink, err := kafka.NewSink(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close(context.Background())
	fmt.Println(*cfg.Client.SASL)
	// Output: {Mechanism:SCRAM-SHA-512 Username:bridge Password:[redacted]}
}
