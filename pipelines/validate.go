package pipelines

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validator checks a decoded, defaulted Config and collects every problem
// with its position. Methods never stop at the first error: each check is
// independent, so one run reports the whole file.
type validator struct {
	ix   *index
	cfg  *Config
	errs []*FieldError
}

func (v *validator) fail(path string, kind error, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Pos: v.ix.pos(path), Field: path, Err: errf(kind, format, args...)})
}

// failKey reports at the key of path (a name that is wrong as a name).
func (v *validator) failKey(path string, kind error, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Pos: v.ix.keyPos(path), Field: path, Err: errf(kind, format, args...)})
}

func (v *validator) required(path, value string) bool {
	if strings.TrimSpace(value) == "" {
		v.fail(path, ErrRequired, "required")
		return false
	}
	return true
}

func (v *validator) oneOf(path, value string, allowed ...string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	v.fail(path, ErrInvalid, "%q is not one of %s%s", value, strings.Join(allowed, ", "), suggest(value, allowed))
	return false
}

// ref checks that name is one of the defined things of kind ("queue").
func (v *validator) ref(path, kind, name string, defined []string) bool {
	if !v.required(path, name) {
		return false
	}
	if slices.Contains(defined, name) {
		return true
	}
	v.fail(path, ErrNotFound, "%s %q is not defined%s", kind, name, suggest(name, defined))
	return false
}

func (v *validator) positive(path string, n int64) {
	if n <= 0 {
		v.fail(path, ErrInvalid, "must be greater than 0")
	}
}

func (v *validator) between(path string, d Duration, lo, hi time.Duration) {
	if time.Duration(d) < lo || time.Duration(d) > hi {
		v.fail(path, ErrInvalid, "%s is outside %s..%s", d, lo, hi)
	}
}

// unused reports fields set on a block of another kind, so a misplaced
// setting never goes silently unused.
func (v *validator) unused(base, owner string, set map[string]bool) {
	for _, f := range slices.Sorted(maps.Keys(set)) {
		if set[f] {
			v.fail(base+"."+f, ErrConflict, "%s is not used by %s", f, owner)
		}
	}
}

var (
	topicName    = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`) // Kafka's rule
	queueName    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,75}(\.fifo)?$`)
	exchangeName = regexp.MustCompile(`^[a-zA-Z0-9._:-]{1,255}$`) // RabbitMQ's rule
)

func (v *validator) run() *Plan {
	v.global()
	v.kafkaAPI()
	v.backbone()
	v.connections()
	v.sources()
	v.broker()
	v.console()
	return v.pipelines()
}

func (v *validator) global() {
	c := v.cfg
	v.required("data_dir", c.DataDir)
	v.listen("http.listen", c.HTTP.Listen)
	v.positive("http.max_request_size", int64(c.HTTP.MaxRequestSize))
	if c.HTTP.TLS != nil {
		v.required("http.tls.cert_file", c.HTTP.TLS.CertFile)
		v.required("http.tls.key_file", c.HTTP.TLS.KeyFile)
		if c.HTTP.TLS.InsecureSkipVerify {
			v.fail("http.tls.insecure_skip_verify", ErrConflict, "insecure_skip_verify applies to clients, not to a listener")
		}
	}
	if c.SQSAPI.Listen != "" {
		v.listen("sqs_api.listen", c.SQSAPI.Listen)
	}
	if c.SQSAPI.TLS != nil {
		v.required("sqs_api.tls.cert_file", c.SQSAPI.TLS.CertFile)
		v.required("sqs_api.tls.key_file", c.SQSAPI.TLS.KeyFile)
		if c.SQSAPI.TLS.InsecureSkipVerify {
			v.fail("sqs_api.tls.insecure_skip_verify", ErrConflict, "insecure_skip_verify applies to clients, not to a listener")
		}
	}
	v.amqpAPI()
	for i, cr := range c.SQSAPI.Credentials {
		p := "sqs_api.credentials[" + strconv.Itoa(i) + "]"
		v.required(p+".access_key_id", cr.AccessKeyID)
		v.required(p+".secret_access_key", cr.SecretAccessKey)
	}
	tokens := map[string]int{}
	for i, t := range c.Auth.Tokens {
		p := "auth.tokens[" + strconv.Itoa(i) + "]"
		if v.required(p+".token", t.Token) {
			if first, dup := tokens[t.Token]; dup {
				// The token itself is a secret: name the other entry instead.
				v.fail(p+".token", ErrDuplicate, "same token as auth.tokens[%d]", first)
			}
			tokens[t.Token] = i
		}
		if v.required(p+".role", t.Role) {
			v.oneOf(p+".role", t.Role, "admin", "producer", "consumer")
		}
	}
	tr := c.Telemetry.Traces
	if v.oneOf("telemetry.traces.exporter", tr.Exporter, "none", "stdout", "otlp") {
		if tr.Exporter == "otlp" {
			v.required("telemetry.traces.endpoint", tr.Endpoint)
			v.oneOf("telemetry.traces.protocol", tr.Protocol, "grpc", "http")
		} else {
			v.unused("telemetry.traces", "exporter "+tr.Exporter, map[string]bool{"endpoint": tr.Endpoint != "", "protocol": tr.Protocol != ""})
		}
	}
	if !(tr.SampleRatio >= 0 && tr.SampleRatio <= 1) { // written this way so NaN fails too
		v.fail("telemetry.traces.sample_ratio", ErrInvalid, "must be between 0 and 1")
	}
	v.positive("shutdown_timeout", int64(c.ShutdownTimeout))
}

func (v *validator) listen(path, addr string) {
	if !v.required(path, addr) {
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(path, ErrInvalid, "%q is not host:port", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail(path, ErrInvalid, "port %q is not a number between 0 and 65535", port)
	}
}

func (v *validator) backbone() {
	b := v.cfg.Backbone
	if v.oneOf("backbone.type", b.Type, "embedded", "kafka") {
		if b.Type == "kafka" {
			v.connectionRef("backbone.connection", b.Connection, "kafka")
		} else if b.Connection != "" {
			v.fail("backbone.connection", ErrConflict, "connection is only used with type kafka")
		}
	}
	v.oneOf("backbone.fsync", b.Fsync, "always", "interval", "never")
	v.positive("backbone.fsync_interval", int64(b.FsyncInterval))
	v.positive("backbone.retention", int64(b.Retention))
	if b.RetentionBytes < 0 {
		v.fail("backbone.retention_bytes", ErrInvalid, "must not be negative")
	}
	v.positive("backbone.segment_bytes", int64(b.SegmentBytes))
	for _, name := range slices.Sorted(maps.Keys(b.Topics)) {
		p := joinKey("backbone.topics", name)
		if !topicName.MatchString(name) {
			v.failKey(p, ErrInvalid, "topic name %q: use 1 to 249 of a-z A-Z 0-9 . _ -", name)
		}
		if n := b.Topics[name].Partitions; n < 1 || n > 10000 {
			v.fail(p+".partitions", ErrInvalid, "must be between 1 and 10000")
		}
	}
}

func (v *validator) topicNames() []string      { return slices.Sorted(maps.Keys(v.cfg.Backbone.Topics)) }
func (v *validator) queueNames() []string      { return slices.Sorted(maps.Keys(v.cfg.Broker.Queues)) }
func (v *validator) exchangeNames() []string   { return slices.Sorted(maps.Keys(v.cfg.Broker.Exchanges)) }
func (v *validator) connectionNames() []string { return slices.Sorted(maps.Keys(v.cfg.Connections)) }

// connectionRef checks that name is a connection of type typ.
func (v *validator) connectionRef(path, name, typ string) bool {
	if !v.ref(path, "connection", name, v.connectionNames()) {
		return false
	}
	if c := v.cfg.Connections[name]; c != nil && c.Type != typ && c.Type != "" {
		v.fail(path, ErrInvalid, "connection %q is of type %s, need %s", name, c.Type, typ)
		return false
	}
	return true
}

func (v *validator) connections() {
	for _, name := range v.connectionNames() {
		p := joinKey("connections", name)
		c := v.cfg.Connections[name]
		if c == nil {
			v.fail(p+".type", ErrRequired, "required")
			continue
		}
		if !v.required(p+".type", c.Type) || !v.oneOf(p+".type", c.Type, "kafka", "amqp", "sqs") {
			continue
		}
		v.positive(p+".dial_timeout", int64(c.DialTimeout))
		v.positive(p+".request_timeout", int64(c.RequestTimeout))
		kafka := map[string]bool{"brokers": len(c.Brokers) > 0, "client_id": c.ClientID != "", "sasl": c.SASL != nil,
			"session_timeout": c.SessionTimeout != 0}
		amqp := map[string]bool{"url": c.URL != ""}
		sqs := map[string]bool{"region": c.Region != "", "endpoint": c.Endpoint != "",
			"access_key_id": c.AccessKeyID != "", "secret_access_key": c.SecretAccessKey != ""}
		owner := article(c.Type + " connection")
		switch c.Type {
		case "kafka":
			v.kafkaConnection(p, c)
			v.unused(p, owner, amqp)
			v.unused(p, owner, sqs)
		case "amqp":
			if v.required(p+".url", c.URL) {
				if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
					v.fail(p+".url", ErrInvalid, "must be an amqp:// or amqps:// URL")
				}
			}
			v.unused(p, owner, kafka)
			v.unused(p, owner, sqs)
		case "sqs":
			v.required(p+".region", c.Region)
			if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
				v.fail(p+".access_key_id", ErrConflict, "access_key_id and secret_access_key go together")
			}
			if c.TLS != nil {
				v.fail(p+".tls", ErrConflict, "tls is not used by an sqs connection (use an https endpoint)")
			}
			v.unused(p, owner, kafka)
			v.unused(p, owner, amqp)
		}
	}
}

func (v *validator) kafkaConnection(p string, c *Connection) {
	if len(c.Brokers) == 0 {
		v.fail(p+".brokers", ErrRequired, "required: at least one host:port")
	}
	for i, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			v.fail(p+".brokers["+strconv.Itoa(i)+"]", ErrInvalid, "%q is not host:port", b)
		}
	}
	if c.SASL != nil {
		v.oneOf(p+".sasl.mechanism", c.SASL.Mechanism, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
		v.required(p+".sasl.username", c.SASL.Username)
		v.required(p+".sasl.password", c.SASL.Password)
	}
}

func (v *validator) sources() {
	first := map[string]int{}
	for i, s := range v.cfg.Sources {
		p := "sources[" + strconv.Itoa(i) + "]"
		if s == nil {
			v.fail(p, ErrRequired, "empty source")
			continue
		}
		if v.required(p+".name", s.Name) {
			if j, dup := first[s.Name]; dup {
				v.fail(p+".name", ErrDuplicate, "source name %q is already used by sources[%d]", s.Name, j)
			} else if s.Name == "http" {
				v.fail(p+".name", ErrInvalid, `"http" is reserved for HTTP ingest`)
			}
			first[s.Name] = i
		}
		v.ref(p+".topic", "backbone topic", s.Topic, v.topicNames())
		v.positive(p+".concurrency", int64(s.Concurrency))
		if !v.required(p+".type", s.Type) || !v.oneOf(p+".type", s.Type, "kafka", "amqp", "sqs") {
			continue
		}
		v.connectionRef(p+".connection", s.Connection, s.Type)
		kafka := map[string]bool{"topics": len(s.Topics) > 0, "group": s.Group != ""}
		amqp := map[string]bool{"queue": s.Queue != "", "prefetch": s.Prefetch != 0,
			"key_from_message_id": s.KeyFromMessageID, "declare": s.Declare != nil}
		sqs := map[string]bool{"queue_url": s.QueueURL != "", "max_messages": s.MaxMessages != 0, "wait_time": s.WaitTime != 0}
		owner := article(s.Type + " source")
		switch s.Type {
		case "kafka":
			if len(s.Topics) == 0 {
				v.fail(p+".topics", ErrRequired, "required: the Kafka topics to read")
			}
			v.unused(p, owner, amqp)
			v.unused(p, owner, sqs)
		case "amqp":
			v.required(p+".queue", s.Queue)
			v.positive(p+".prefetch", int64(s.Prefetch))
			v.amqpDeclare(p+".declare", s.Declare)
			v.unused(p, owner, kafka)
			v.unused(p, owner, sqs)
		case "sqs":
			v.required(p+".queue_url", s.QueueURL)
			if s.MaxMessages < 1 || s.MaxMessages > 10 {
				v.fail(p+".max_messages", ErrInvalid, "must be between 1 and 10 (SQS's limit)")
			}
			v.between(p+".wait_time", s.WaitTime, 0, 20*time.Second)
			v.unused(p, owner, kafka)
			v.unused(p, owner, amqp)
		}
	}
}

// amqpDeclare checks a RabbitMQ topology block: names present, exchange
// types RabbitMQ knows.
func (v *validator) amqpDeclare(p string, d *AMQPDeclare) {
	if d == nil {
		return
	}
	for i, x := range d.Exchanges {
		xp := p + ".exchanges[" + strconv.Itoa(i) + "]"
		v.required(xp+".name", x.Name)
		if x.Type != "" {
			v.oneOf(xp+".type", x.Type, "direct", "topic", "fanout", "headers")
		}
	}
	for i, q := range d.Queues {
		v.required(p+".queues["+strconv.Itoa(i)+"].name", q.Name)
	}
	for i, b := range d.Bindings {
		bp := p + ".bindings[" + strconv.Itoa(i) + "]"
		v.required(bp+".queue", b.Queue)
		v.required(bp+".exchange", b.Exchange)
	}
}

func (v *validator) broker() {
	queues := v.cfg.Broker.Queues
	for _, name := range v.queueNames() {
		p := joinKey("broker.queues", name)
		q := queues[name]
		if !queueName.MatchString(name) {
			v.failKey(p, ErrInvalid, "queue name %q: use 1 to 80 of a-z A-Z 0-9 _ - (FIFO queues end in .fifo)", name)
		}
		if q.FIFO != strings.HasSuffix(name, ".fifo") {
			v.failKey(p, ErrInvalid, "a queue is FIFO exactly when its name ends in .fifo (fifo: %t)", q.FIFO)
		}
		if q.ContentBasedDeduplication && !q.FIFO {
			v.fail(p+".content_based_deduplication", ErrConflict, "content_based_deduplication needs fifo: true")
		}
		v.between(p+".visibility_timeout", q.VisibilityTimeout, 0, 12*time.Hour)
		v.between(p+".retention", q.Retention, time.Minute, 14*24*time.Hour)
		v.between(p+".delay", q.Delay, 0, 15*time.Minute)
		v.between(p+".receive_wait", q.ReceiveWait, 0, 20*time.Second)
		v.positive(p+".max_message_size", int64(q.MaxMessageSize))
		v.queueExtensions(p, q)
		if q.MaxReceiveCount < 0 {
			v.fail(p+".max_receive_count", ErrInvalid, "must not be negative")
		}
		if q.DeadLetterQueue == "" {
			if q.MaxReceiveCount > 0 {
				v.fail(p+".max_receive_count", ErrConflict, "max_receive_count needs a dead_letter_queue")
			}
			continue
		}
		if !v.ref(p+".dead_letter_queue", "queue", q.DeadLetterQueue, v.queueNames()) {
			continue
		}
		if q.DeadLetterQueue == name {
			v.fail(p+".dead_letter_queue", ErrInvalid, "a queue cannot be its own dead-letter queue")
		} else if dlq := queues[q.DeadLetterQueue]; dlq.FIFO != q.FIFO {
			v.fail(p+".dead_letter_queue", ErrInvalid, "the dead-letter queue of a %s queue must also be %s", fifoWord(q.FIFO), fifoWord(q.FIFO))
		}
	}
	for _, name := range v.exchangeNames() {
		v.exchange(joinKey("broker.exchanges", name), name, v.cfg.Broker.Exchanges[name])
	}
}

func fifoWord(fifo bool) string {
	if fifo {
		return "FIFO"
	}
	return "standard"
}

func (v *validator) exchange(p, name string, x *Exchange) {
	if !exchangeName.MatchString(name) {
		v.failKey(p, ErrInvalid, "exchange name %q: use a-z A-Z 0-9 . _ : -", name)
	}
	if x == nil {
		v.fail(p+".type", ErrRequired, "required")
		return
	}
	typeOK := v.required(p+".type", x.Type) && v.oneOf(p+".type", x.Type, "direct", "topic", "fanout", "headers")
	if v.oneOf(p+".unroutable", x.Unroutable, "drop", "dead_letter") && x.Unroutable == "dead_letter" {
		v.ref(p+".dead_letter_queue", "queue", x.DeadLetterQueue, v.queueNames())
	} else if x.DeadLetterQueue != "" {
		v.fail(p+".dead_letter_queue", ErrConflict, "dead_letter_queue needs unroutable: dead_letter")
	}
	for i, b := range x.Bindings {
		bp := p + ".bindings[" + strconv.Itoa(i) + "]"
		v.ref(bp+".queue", "queue", b.Queue, v.queueNames())
		if !typeOK {
			continue
		}
		switch x.Type {
		case "direct":
			v.required(bp+".key", b.Key)
		case "topic":
			if v.required(bp+".key", b.Key) {
				if msg := checkTopicPattern(b.Key); msg != "" {
					v.fail(bp+".key", ErrInvalid, "%s", msg)
				}
			}
		case "headers":
			if len(b.Headers) == 0 {
				v.fail(bp+".headers", ErrRequired, "required: the headers to match")
			}
			v.oneOf(bp+".match", b.Match, "all", "any")
		}
		if x.Type != "headers" {
			v.unused(bp, article(x.Type+" exchange"), map[string]bool{"headers": len(b.Headers) > 0, "match": b.Match != ""})
		}
		if x.Type == "fanout" || x.Type == "headers" {
			v.unused(bp, article(x.Type+" exchange"), map[string]bool{"key": b.Key != ""})
		}
	}
}

// checkTopicPattern checks an AMQP topic binding key: dot-separated words,
// where "*" and "#" must be whole words. RabbitMQ would accept "a.b*" and
// treat "*" literally; that is almost always a mistake, so we reject it.
func checkTopicPattern(key string) string {
	for _, w := range strings.Split(key, ".") {
		if w == "" {
			return fmt.Sprintf("topic key %q has an empty word", key)
		}
		if w != "*" && w != "#" && strings.ContainsAny(w, "*#") {
			return fmt.Sprintf("topic key %q: * and # must be whole words between dots", key)
		}
	}
	return ""
}

// article prefixes a noun phrase with "a" or "an" for messages.
func article(phrase string) string {
	if phrase != "" && strings.ContainsRune("aeiou", rune(phrase[0])) {
		return "an " + phrase
	}
	return "a " + phrase
}
