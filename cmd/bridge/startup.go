package main

import (
	"log/slog"
	"net/url"

	"github.com/bridgeio/bridge/pipelines"
)

// connectionAttrs describes a configured connection for the startup log,
// without secrets: an AMQP URL's password is redacted, SQS keys and SASL
// passwords are never printed.
func connectionAttrs(name string, c *pipelines.Connection) []any {
	attrs := []any{"connection", name, "type", c.Type, "tls", c.TLS != nil}
	switch c.Type {
	case "kafka":
		attrs = append(attrs, "brokers", c.Brokers, "sasl", c.SASL != nil)
	case "amqp":
		redacted := "(unparsable url)"
		if u, err := url.Parse(c.URL); err == nil {
			redacted = u.Redacted()
		}
		attrs = append(attrs, "url", redacted)
	case "sqs":
		attrs = append(attrs, "region", c.Region, "endpoint", c.Endpoint, "static_keys", c.AccessKeyID != "")
	}
	return attrs
}

// logConnections writes one startup line per configured connection.
// Connections are dialed lazily by their sources and sinks, so this says
// what is configured, not that it is reachable; failures are logged by the
// connectors as they retry.
func logConnections(cfg *pipelines.Config, log *slog.Logger) {
	for _, name := range sortedKeys(cfg.Connections) {
		log.Info("connection configured", connectionAttrs(name, cfg.Connections[name])...)
	}
}
