package pipelines

// The config types mirror SPEC §3 field for field: the yaml tags are the
// contract. They are plain structs on purpose (STYLE.md "Config"): no custom
// UnmarshalYAML, so yaml.v3's KnownFields(true) sees every nested key, and
// positions come from a separate yaml.Node walk (positions.go) instead of
// being stored in the types. Optional sub-blocks are pointers only where
// "absent" differs from "empty" (tls, sasl, dead_letter); everything else is
// a value whose zero is replaced by applyDefaults.

// Config is the whole bridge configuration file.
type Config struct {
	DataDir         string                 `yaml:"data_dir"`
	HTTP            HTTP                   `yaml:"http"`
	SQSAPI          SQSAPI                 `yaml:"sqs_api"`
	AMQPAPI         AMQPAPI                `yaml:"amqp_api"`
	KafkaAPI        KafkaAPI               `yaml:"kafka_api"`
	Auth            Auth                   `yaml:"auth"`
	Telemetry       Telemetry              `yaml:"telemetry"`
	Backbone        Backbone               `yaml:"backbone"`
	Connections     map[string]*Connection `yaml:"connections"`
	Sources         []*Source              `yaml:"sources"`
	Broker          Broker                 `yaml:"broker"`
	Pipelines       []*PipelineConfig      `yaml:"pipelines"`
	ShutdownTimeout Duration               `yaml:"shutdown_timeout"`
	Console         Console                `yaml:"console"` // console.go
}

// HTTP is the ingest + admin API listener (SPEC §6).
type HTTP struct {
	Listen         string   `yaml:"listen"`
	MaxRequestSize ByteSize `yaml:"max_request_size"`
	// TLS, when set, serves HTTPS with cert_file/key_file; ca_file enables
	// client certificate verification.
	TLS *TLS `yaml:"tls"`
}

// SQSAPI is the SQS-compatible endpoint of the embedded queues (SPEC §7).
// An empty Listen disables it.
type SQSAPI struct {
	Listen string `yaml:"listen"`
	// Credentials, when non-empty, are the only access keys whose SigV4
	// signatures are accepted; empty accepts any signature.
	Credentials []SQSCredential `yaml:"credentials"`
	// TLS, when set, serves the SQS API over HTTPS (cert_file, key_file).
	TLS *TLS `yaml:"tls"`
}

// AMQPAPI is the AMQP 0-9-1 listener of the embedded broker (issue 19,
// docs/amqp-api.md). An empty Listen disables it. Logins are checked
// against auth.tokens.
type AMQPAPI struct {
	Listen string `yaml:"listen"`
	// TLS, when set, serves AMQPS (cert_file, key_file; ca_file requires
	// client certificates signed by it).
	TLS *TLS `yaml:"tls"`
}

// SQSCredential is one access key accepted by the SQS API.
type SQSCredential struct {
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
}

// Auth lists bearer tokens for the HTTP API. No tokens means no auth.
type Auth struct {
	Tokens []Token `yaml:"tokens"`
}

// Token is one bearer token and its role: admin, producer or consumer.
type Token struct {
	Token string `yaml:"token"`
	Role  string `yaml:"role"`
}

// Telemetry configures traces and metrics.
type Telemetry struct {
	Traces  Traces  `yaml:"traces"`
	Metrics Metrics `yaml:"metrics"`
}

// Traces configures the trace exporter.
type Traces struct {
	Exporter    string  `yaml:"exporter"` // none | stdout | otlp
	Endpoint    string  `yaml:"endpoint"` // otlp only
	Protocol    string  `yaml:"protocol"` // otlp only: grpc | http
	SampleRatio float64 `yaml:"sample_ratio"`
}

// Metrics configures metric export.
type Metrics struct {
	// Prometheus serves /metrics on the HTTP listener. Default true.
	Prometheus bool `yaml:"prometheus"`
}

// Backbone is the log every event is appended to.
type Backbone struct {
	Type           string            `yaml:"type"`       // embedded | kafka
	Connection     string            `yaml:"connection"` // kafka only: a connection of type kafka
	Fsync          string            `yaml:"fsync"`      // always | interval | never
	FsyncInterval  Duration          `yaml:"fsync_interval"`
	Retention      Duration          `yaml:"retention"`
	RetentionBytes ByteSize          `yaml:"retention_bytes"` // per partition; 0 = no size limit
	SegmentBytes   ByteSize          `yaml:"segment_bytes"`
	Topics         map[string]*Topic `yaml:"topics"`
}

// Topic is one backbone topic.
type Topic struct {
	Partitions int `yaml:"partitions"`
}

// Connection is a named external system. Which fields apply depends on Type;
// a field of another type is a validation error, so a misplaced setting
// never goes silently unused.
type Connection struct {
	Type string `yaml:"type"` // kafka | amqp | sqs

	// kafka
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	SASL     *SASL    `yaml:"sasl"`

	// kafka and amqp
	TLS *TLS `yaml:"tls"`

	// amqp
	URL string `yaml:"url"`

	// sqs
	Region          string `yaml:"region"`
	Endpoint        string `yaml:"endpoint"` // optional override, e.g. a local SQS
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`

	// kafka: consumer group session timeout (sources, backbone)
	SessionTimeout Duration `yaml:"session_timeout"`

	// all types
	DialTimeout    Duration `yaml:"dial_timeout"`
	RequestTimeout Duration `yaml:"request_timeout"`
}

// TLS holds TLS files. For a client, ca_file replaces the system roots.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL is Kafka SASL authentication.
type SASL struct {
	Mechanism string `yaml:"mechanism"` // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// Source reads an external system into a backbone topic.
type Source struct {
	Name       string `yaml:"name"`
	Type       string `yaml:"type"`       // kafka | amqp | sqs
	Connection string `yaml:"connection"` // of the same type
	Topic      string `yaml:"topic"`      // backbone topic the events land in
	// Key is an expression (String) computing the backbone key; empty keeps
	// the upstream key (Kafka) or none.
	Key         string `yaml:"key"`
	Concurrency int    `yaml:"concurrency"`

	// amqp
	Queue    string `yaml:"queue"`
	Prefetch int    `yaml:"prefetch"`
	// KeyFromMessageID uses the message_id property as the key of a
	// message that has no bridge-key header (SPEC §8).
	KeyFromMessageID bool         `yaml:"key_from_message_id"`
	Declare          *AMQPDeclare `yaml:"declare"`

	// sqs
	QueueURL    string   `yaml:"queue_url"`
	MaxMessages int      `yaml:"max_messages"` // per ReceiveMessage, 1..10
	WaitTime    Duration `yaml:"wait_time"`    // long poll, 0..20s

	// kafka
	Topics []string `yaml:"topics"`
	Group  string   `yaml:"group"`
}

// Broker is the embedded broker: SQS-style queues behind RabbitMQ-style
// exchanges.
type Broker struct {
	Queues    map[string]*Queue    `yaml:"queues"`
	Exchanges map[string]*Exchange `yaml:"exchanges"`
}

// Queue is one embedded queue, with SQS semantics and limits.
type Queue struct {
	VisibilityTimeout         Duration `yaml:"visibility_timeout"`
	MaxReceiveCount           int      `yaml:"max_receive_count"`
	DeadLetterQueue           string   `yaml:"dead_letter_queue"`
	Retention                 Duration `yaml:"retention"`
	Delay                     Duration `yaml:"delay"`
	MaxMessageSize            ByteSize `yaml:"max_message_size"`
	ReceiveWait               Duration `yaml:"receive_wait"`
	FIFO                      bool     `yaml:"fifo"`
	ContentBasedDeduplication bool     `yaml:"content_based_deduplication"`
	// MaxPriority makes a priority queue (1..255, RabbitMQ's
	// x-max-priority); PriorityAging raises a waiting message one level per
	// interval; MessageTTL expires undelivered messages (docs/queues.md).
	MaxPriority   int      `yaml:"max_priority"`
	PriorityAging Duration `yaml:"priority_aging"`
	MessageTTL    Duration `yaml:"message_ttl"`
}

// Exchange routes published events to queues through bindings.
type Exchange struct {
	Type     string    `yaml:"type"` // direct | topic | fanout | headers
	Bindings []Binding `yaml:"bindings"`
	// Unroutable says what happens to an event no binding matches:
	// "drop" (default, RabbitMQ's behaviour; counted in metrics) or
	// "dead_letter" (sent to DeadLetterQueue).
	Unroutable      string `yaml:"unroutable"`
	DeadLetterQueue string `yaml:"dead_letter_queue"`
}

// Binding connects an exchange to a queue.
type Binding struct {
	Queue string `yaml:"queue"`
	// Key is the binding key: exact for direct, a pattern with "*" (one
	// word) and "#" (zero or more words) for topic; unused otherwise.
	Key string `yaml:"key"`
	// Headers and Match apply to headers exchanges: all (default) or any of
	// Headers must equal the event's headers.
	Headers map[string]string `yaml:"headers"`
	Match   string            `yaml:"match"`
}

// PipelineConfig is one pipeline as written in YAML. Parse turns it into a
// *Pipeline with compiled rules.
type PipelineConfig struct {
	Name   string `yaml:"name"`
	From   string `yaml:"from"`
	Start  string `yaml:"start"` // earliest | latest
	Filter string `yaml:"filter"`
	// Transform reshapes the events the filter selected, for every route.
	Transform    *TransformConfig `yaml:"transform"`
	Routes       []*RouteConfig   `yaml:"routes"`
	OnError      string           `yaml:"on_error"` // dead_letter | drop | stop
	DeadLetter   *TargetConfig    `yaml:"dead_letter"`
	Retry        RetryConfig      `yaml:"retry"`
	RetryIf      string           `yaml:"retry_if"`
	DeadLetterIf string           `yaml:"dead_letter_if"`
	BatchSize    int              `yaml:"batch_size"`
	MaxInFlight  int              `yaml:"max_in_flight"`
}

// RetryConfig is the backoff policy for retryable failures, as written.
type RetryConfig struct {
	MaxAttempts    int      `yaml:"max_attempts"`
	InitialBackoff Duration `yaml:"initial_backoff"`
	MaxBackoff     Duration `yaml:"max_backoff"`
}

// RouteConfig is one route as written in YAML.
type RouteConfig struct {
	Name string `yaml:"name"`
	When string `yaml:"when"`
	// Transform runs after the pipeline's transform and the route's when,
	// for this route only.
	Transform *TransformConfig `yaml:"transform"`
	To        TargetConfig     `yaml:"to"`
}

// TransformConfig is a transform step as written (docs/transforms.md):
// every field is an expression, except the header names.
type TransformConfig struct {
	Split   string           `yaml:"split"`   // an array: one output per element (item, index)
	DropIf  string           `yaml:"drop_if"` // bool: drop this output
	Value   string           `yaml:"value"`   // the new value (map/array/scalar → JSON, string → text, bytes → raw)
	Key     string           `yaml:"key"`     // the new key
	Headers TransformHeaders `yaml:"headers"`
}

// TransformHeaders sets and removes headers. Remove applies first.
type TransformHeaders struct {
	Set    map[string]string `yaml:"set"` // name → expression
	Remove []string          `yaml:"remove"`
}

// TargetConfig is where a route (or a dead letter) sends. Exactly one kind
// is set: topic, exchange, queue, kafka, amqp or sqs.
type TargetConfig struct {
	Topic string `yaml:"topic"`
	// Key (topic only) is an expression for the written key; empty keeps the
	// event's key.
	Key string `yaml:"key"`

	Exchange   string `yaml:"exchange"`
	RoutingKey string `yaml:"routing_key"`

	Queue   string `yaml:"queue"`
	GroupID string `yaml:"group_id"`
	DedupID string `yaml:"dedup_id"`

	// Queue and exchange targets (docs/queues.md): the message's priority
	// (integer), TTL and delay (durations), and request-reply attributes
	// (bridge-reply-to, bridge-correlation-id).
	Priority      string `yaml:"priority"`
	TTL           string `yaml:"ttl"`
	Delay         string `yaml:"delay"`
	ReplyTo       string `yaml:"reply_to"`
	CorrelationID string `yaml:"correlation_id"`

	Kafka *KafkaTarget `yaml:"kafka"`
	AMQP  *AMQPTarget  `yaml:"amqp"`
	SQS   *SQSTarget   `yaml:"sqs"`
}

// KafkaTarget produces to a topic of an external Kafka.
type KafkaTarget struct {
	Connection string `yaml:"connection"`
	Topic      string `yaml:"topic"`
	Key        string `yaml:"key"`
	// Compression of produced batches: none (default), snappy, lz4, zstd.
	Compression string `yaml:"compression"`
	// Linger is how long a partition's batch waits for more records.
	Linger Duration `yaml:"linger"`
}

// AMQPTarget publishes to an exchange of an external RabbitMQ. An empty
// Exchange is AMQP's default exchange (routing_key = queue name).
type AMQPTarget struct {
	Connection string `yaml:"connection"`
	Exchange   string `yaml:"exchange"`
	RoutingKey string `yaml:"routing_key"`
	// Mandatory (default true) makes a message no queue is bound for a
	// failed send (handled by retry/dead-letter) instead of a silent drop.
	Mandatory *bool        `yaml:"mandatory"`
	Declare   *AMQPDeclare `yaml:"declare"`
}

// AMQPDeclare is RabbitMQ topology an amqp source or target declares on
// every (re)connection: durable exchanges and queues, and bindings.
type AMQPDeclare struct {
	Exchanges []AMQPExchange `yaml:"exchanges"`
	Queues    []AMQPQueue    `yaml:"queues"`
	Bindings  []AMQPBinding  `yaml:"bindings"`
}

// AMQPExchange declares a durable exchange.
type AMQPExchange struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // direct (default) | topic | fanout | headers
}

// AMQPQueue declares a durable queue; arguments are RabbitMQ's x-arguments
// (x-queue-type: quorum, x-dead-letter-exchange, ...).
type AMQPQueue struct {
	Name      string         `yaml:"name"`
	Arguments map[string]any `yaml:"arguments"`
}

// AMQPBinding binds a queue to an exchange with a routing key.
type AMQPBinding struct {
	Queue    string `yaml:"queue"`
	Exchange string `yaml:"exchange"`
	Key      string `yaml:"key"`
}

// SQSTarget sends to an external SQS queue.
type SQSTarget struct {
	Connection string `yaml:"connection"`
	QueueURL   string `yaml:"queue_url"`
	GroupID    string `yaml:"group_id"`
	DedupID    string `yaml:"dedup_id"`
}
