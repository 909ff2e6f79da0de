package pipelines

import (
	"strconv"
	"time"
)

// Defaults, in one place so a reader sees every implicit value at once
// (pebble's EnsureDefaults). Each follows the system users already know
// (SQS for queues, Kafka for topics) unless noted.
const (
	DefaultDataDir           = "./data"
	DefaultHTTPListen        = "127.0.0.1:8080"
	DefaultMaxRequestSize    = 16 << 20
	DefaultFsyncInterval     = 10 * time.Millisecond
	DefaultRetention         = 168 * time.Hour // Kafka's log.retention.hours
	DefaultSegmentBytes      = 128 << 20
	DefaultPartitions        = 1
	DefaultVisibilityTimeout = 30 * time.Second   // SQS
	DefaultQueueRetention    = 4 * 24 * time.Hour // SQS
	DefaultMaxMessageSize    = 256 << 10          // SQS
	DefaultMaxReceiveCount   = 10                 // the SQS console's default with a DLQ
	DefaultMaxAttempts       = 0                  // 0 = retry a retryable failure until it succeeds (SPEC §5.6: catch up after an outage)
	DefaultInitialBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff        = 30 * time.Second
	DefaultBatchSize         = 256
	DefaultMaxInFlight       = 1024
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultKafkaGroup        = "bridge"
	DefaultPrefetch          = 2000
	DefaultSQSMaxMessages    = 10
	DefaultSQSWaitTime       = 20 * time.Second
	DefaultDialTimeout       = 10 * time.Second
	DefaultRequestTimeout    = 30 * time.Second
	DefaultConcurrency       = 1
)

// applyDefaults fills every unset field. written reports whether a path
// was present in the file, for fields whose zero value is a legal choice
// (sample_ratio: 0, prometheus: false, max_attempts absent vs 0).
//
// on_error defaults to dead_letter when a dead_letter target is given and to
// stop otherwise: an event is never dropped unless the user wrote "drop".
func applyDefaults(cfg *Config, written func(path string) bool) {
	setDefault(&cfg.DataDir, DefaultDataDir)
	setDefault(&cfg.HTTP.Listen, DefaultHTTPListen)
	setDefault(&cfg.HTTP.MaxRequestSize, DefaultMaxRequestSize)
	setDefault(&cfg.Telemetry.Traces.Exporter, "none")
	if cfg.Telemetry.Traces.Exporter == "otlp" {
		setDefault(&cfg.Telemetry.Traces.Protocol, "grpc")
	}
	if !written("telemetry.traces.sample_ratio") {
		cfg.Telemetry.Traces.SampleRatio = 1
	}
	if !written("telemetry.metrics.prometheus") {
		cfg.Telemetry.Metrics.Prometheus = true
	}
	setDefault(&cfg.ShutdownTimeout, Duration(DefaultShutdownTimeout))
	applyConsoleDefaults(&cfg.Console, written)
	kafkaAPIDefaults(&cfg.KafkaAPI, written)

	b := &cfg.Backbone
	setDefault(&b.Type, "embedded")
	setDefault(&b.Fsync, "always")
	setDefault(&b.FsyncInterval, Duration(DefaultFsyncInterval))
	setDefault(&b.Retention, Duration(DefaultRetention))
	setDefault(&b.SegmentBytes, DefaultSegmentBytes)
	for name, t := range b.Topics {
		if t == nil {
			t = &Topic{}
			b.Topics[name] = t
		}
		if !written(joinKey("backbone.topics", name) + ".partitions") {
			t.Partitions = DefaultPartitions
		}
	}
	for _, c := range cfg.Connections {
		if c != nil {
			setDefault(&c.DialTimeout, Duration(DefaultDialTimeout))
			setDefault(&c.RequestTimeout, Duration(DefaultRequestTimeout))
		}
	}
	for _, s := range cfg.Sources {
		if s != nil {
			sourceDefaults(s)
		}
	}
	for name, q := range cfg.Broker.Queues {
		if q == nil {
			q = &Queue{}
			cfg.Broker.Queues[name] = q
		}
		queueDefaults(q)
	}
	for _, x := range cfg.Broker.Exchanges {
		if x != nil {
			setDefault(&x.Unroutable, "drop")
			for i := range x.Bindings {
				if x.Type == "headers" {
					setDefault(&x.Bindings[i].Match, "all")
				}
			}
		}
	}
	for i, p := range cfg.Pipelines {
		if p != nil {
			pipelineDefaults(p, func(field string) bool { return written(pipelinePath(i) + "." + field) })
		}
	}
}

func sourceDefaults(s *Source) {
	setDefault(&s.Concurrency, DefaultConcurrency)
	switch s.Type {
	case "kafka":
		setDefault(&s.Group, DefaultKafkaGroup)
	case "amqp":
		setDefault(&s.Prefetch, DefaultPrefetch)
	case "sqs":
		setDefault(&s.MaxMessages, DefaultSQSMaxMessages)
		setDefault(&s.WaitTime, Duration(DefaultSQSWaitTime))
	}
}

func queueDefaults(q *Queue) {
	setDefault(&q.VisibilityTimeout, Duration(DefaultVisibilityTimeout))
	setDefault(&q.Retention, Duration(DefaultQueueRetention))
	setDefault(&q.MaxMessageSize, DefaultMaxMessageSize)
	if q.DeadLetterQueue != "" {
		setDefault(&q.MaxReceiveCount, DefaultMaxReceiveCount)
	}
}

func pipelineDefaults(p *PipelineConfig, written func(field string) bool) {
	setDefault(&p.Start, "earliest")
	if p.DeadLetter != nil {
		setDefault(&p.OnError, "dead_letter")
	} else {
		setDefault(&p.OnError, "stop")
	}
	if !written("retry.max_attempts") {
		p.Retry.MaxAttempts = DefaultMaxAttempts
	}
	setDefault(&p.Retry.InitialBackoff, Duration(DefaultInitialBackoff))
	setDefault(&p.Retry.MaxBackoff, Duration(max(DefaultMaxBackoff, time.Duration(p.Retry.InitialBackoff))))
	// An explicit 0 is left for validation to reject, not replaced.
	if !written("batch_size") {
		p.BatchSize = DefaultBatchSize
	}
	if !written("max_in_flight") {
		p.MaxInFlight = max(DefaultMaxInFlight, p.BatchSize)
	}
}

func setDefault[T comparable](field *T, value T) {
	var zero T
	if *field == zero {
		*field = value
	}
}

func pipelinePath(i int) string { return "pipelines[" + strconv.Itoa(i) + "]" }
