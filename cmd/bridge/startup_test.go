package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/bridgeio/bridge/pipelines"
)

// TestConnectionLogHasNoSecrets: the startup line per connection names it
// and never prints a password or secret key.
func TestConnectionLogHasNoSecrets(t *testing.T) {
	t.Parallel()
	cfg := &pipelines.Config{Connections: map[string]*pipelines.Connection{
		"k": {Type: "kafka", Brokers: []string{"b1:9092"}, SASL: &pipelines.SASL{Mechanism: "PLAIN", Username: "u", Password: "kafka-secret"}},
		"r": {Type: "amqp", URL: "amqp://guest:amqp-secret@rabbit:5672/"},
		"s": {Type: "sqs", Region: "eu-west-1", AccessKeyID: "AKID", SecretAccessKey: "sqs-secret"},
	}}
	var buf bytes.Buffer
	logConnections(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	out := buf.String()
	for _, want := range []string{"connection=k", "connection=r", "connection=s", "b1:9092", "rabbit:5672", "eu-west-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{"kafka-secret", "amqp-secret", "sqs-secret"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log shows secret %s:\n%s", secret, out)
		}
	}
	if strings.Count(out, `msg="connection configured"`) != 3 {
		t.Fatalf("want one line per connection:\n%s", out)
	}
}
