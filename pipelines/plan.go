package pipelines

import (
	"errors"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/rules"
)

// Plan is what the engine runs: the validated config (defaults applied) and
// every pipeline with its rules compiled. A Plan is immutable once built and
// safe to share between goroutines; rules.Program evaluation state lives in
// a per-goroutine rules.Env.
type Plan struct {
	Config    *Config
	Sources   []*SourcePlan
	Pipelines []*Pipeline
}

// SourcePlan is a source with its key rule compiled.
type SourcePlan struct {
	Config *Source
	Key    *rules.Program // nil: keep the upstream key
}

// Pipeline is one pipeline ready to run.
type Pipeline struct {
	Name  string
	From  string // backbone topic
	Start string // earliest | latest, first run only
	// Filter selects the events the pipeline handles; nil selects all.
	Filter *rules.Program
	// Transform reshapes each selected event for every route; nil keeps
	// events as they are. Routes' when and everything after see its output.
	Transform *rules.Transform
	// Routes are in file order; names are unique within the pipeline and
	// stable across restarts, since each route checkpoints under its name.
	Routes []*Route
	// OnError is what a run-time rule error or an exhausted/permanent send
	// failure does: dead_letter, drop or stop.
	OnError string
	// DeadLetter is where failed events go (Kind TargetTopic or
	// TargetQueue); nil when the pipeline has none.
	DeadLetter   *Target
	Retry        Retry
	RetryIf      *rules.Program // nil: retry exactly the failures the sink calls retryable
	DeadLetterIf *rules.Program // nil: dead-letter exactly the permanent failures
	BatchSize    int
	MaxInFlight  int
}

// Retry is the backoff policy for retryable failures.
type Retry struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// Route sends the events its When selects to one target.
type Route struct {
	// Name is the `name:` written in the file or a default derived from the
	// target ("exchange:orders", "topic:audit", "kafka:main-kafka/big-orders").
	Name string
	When *rules.Program // nil: every event that passed the filter
	// Transform runs on what When selected; nil keeps it as it is.
	Transform *rules.Transform
	To        Target
}

// TargetKind says which of Target's fields apply.
type TargetKind int

// Target kinds, one per key of a route's `to:`.
const (
	TargetTopic    TargetKind = iota + 1 // Topic (+ Key): a backbone topic
	TargetExchange                       // Exchange + RoutingKey: an embedded exchange
	TargetQueue                          // Queue + GroupID + DedupID: an embedded queue
	TargetKafka                          // Connection + Topic + Key
	TargetAMQP                           // Connection + Exchange + RoutingKey
	TargetSQS                            // Connection + QueueURL + GroupID + DedupID
)

var targetKindNames = [...]string{"", "topic", "exchange", "queue", "kafka", "amqp", "sqs"}

func (k TargetKind) String() string {
	if k > 0 && int(k) < len(targetKindNames) {
		return targetKindNames[k]
	}
	return "TargetKind(" + strconv.Itoa(int(k)) + ")"
}

// Target is one destination. The string fields name things; the programs
// compute per-event values and are nil when not configured (the sink then
// uses its default, e.g. the event's own key).
type Target struct {
	Kind                   TargetKind
	Topic, Exchange, Queue string
	Connection, QueueURL   string
	Key, RoutingKey        *rules.Program
	GroupID, DedupID       *rules.Program
	// Queue and exchange targets: priority (Int), ttl and delay
	// (Duration), reply_to and correlation_id (String).
	Priority, TTL, Delay   *rules.Program
	ReplyTo, CorrelationID *rules.Program
	// Kafka and AMQP are the target's settings as written, for the
	// connector options that are not rules (compression, declare, ...).
	Kafka *KafkaTarget
	AMQP  *AMQPTarget
}

func (v *validator) pipelines() *Plan {
	plan := &Plan{Config: v.cfg}
	for i, s := range v.cfg.Sources {
		if s != nil {
			key := v.compile("sources["+strconv.Itoa(i)+"].key", s.Key, rules.String)
			plan.Sources = append(plan.Sources, &SourcePlan{Config: s, Key: key})
		}
	}
	first := map[string]int{}
	for i, pc := range v.cfg.Pipelines {
		p := pipelinePath(i)
		if pc == nil {
			v.fail(p, ErrRequired, "empty pipeline")
			continue
		}
		if v.name(p+".name", "pipeline", pc.Name) {
			if j, dup := first[pc.Name]; dup {
				v.fail(p+".name", ErrDuplicate, "pipeline name %q is already used by pipelines[%d]", pc.Name, j)
			} else {
				first[pc.Name] = i
			}
		}
		plan.Pipelines = append(plan.Pipelines, v.pipeline(p, pc))
	}
	return plan
}

// name checks a name used in checkpoints, metrics and URLs.
func (v *validator) name(p, what, name string) bool {
	if !v.required(p, name) {
		return false
	}
	if !exchangeName.MatchString(name) {
		v.fail(p, ErrInvalid, "%s name %q: use a-z A-Z 0-9 . _ : -", what, name)
		return false
	}
	return true
}

func (v *validator) pipeline(p string, pc *PipelineConfig) *Pipeline {
	pl := &Pipeline{
		Name: pc.Name, From: pc.From, Start: pc.Start, OnError: pc.OnError,
		Filter:       v.compile(p+".filter", pc.Filter, rules.Bool),
		Transform:    v.transform(p+".transform", pc.Transform, "pipeline"),
		RetryIf:      v.compileErrorRule(p+".retry_if", pc.RetryIf),
		DeadLetterIf: v.compileErrorRule(p+".dead_letter_if", pc.DeadLetterIf),
		Retry: Retry{MaxAttempts: pc.Retry.MaxAttempts,
			InitialBackoff: time.Duration(pc.Retry.InitialBackoff), MaxBackoff: time.Duration(pc.Retry.MaxBackoff)},
		BatchSize: pc.BatchSize, MaxInFlight: pc.MaxInFlight,
	}
	v.ref(p+".from", "backbone topic", pc.From, v.topicNames())
	v.oneOf(p+".start", pc.Start, "earliest", "latest")
	if v.oneOf(p+".on_error", pc.OnError, "dead_letter", "drop", "stop") && pc.OnError == "dead_letter" && pc.DeadLetter == nil {
		v.fail(p+".on_error", ErrRequired, "on_error: dead_letter needs a dead_letter target (queue or topic)")
	}
	if pc.DeadLetter != nil {
		pl.DeadLetter = v.deadLetter(p+".dead_letter", pc)
	}
	if pc.Retry.MaxAttempts < 0 {
		v.fail(p+".retry.max_attempts", ErrInvalid, "must be 0 (retry until delivered) or more")
	}
	v.positive(p+".retry.initial_backoff", int64(pc.Retry.InitialBackoff))
	if pc.Retry.MaxBackoff < pc.Retry.InitialBackoff {
		v.fail(p+".retry.max_backoff", ErrInvalid, "max_backoff %s is below initial_backoff %s", pc.Retry.MaxBackoff, pc.Retry.InitialBackoff)
	}
	v.positive(p+".batch_size", int64(pc.BatchSize))
	if pc.MaxInFlight < pc.BatchSize {
		v.fail(p+".max_in_flight", ErrInvalid, "max_in_flight %d is below batch_size %d", pc.MaxInFlight, pc.BatchSize)
	}
	if len(pc.Routes) == 0 {
		v.fail(p+".routes", ErrRequired, "required: at least one route")
	}
	names := map[string]int{}
	for j, rc := range pc.Routes {
		rp := p + ".routes[" + strconv.Itoa(j) + "]"
		if rc == nil {
			v.fail(rp, ErrRequired, "empty route")
			continue
		}
		r := &Route{Name: rc.Name, When: v.compile(rp+".when", rc.When, rules.Bool)}
		if ok := v.target(rp+".to", &rc.To, &r.To); ok && r.Name == "" {
			r.Name = defaultRouteName(&r.To)
		}
		r.Transform = v.transform(rp+".transform", rc.Transform, "route "+r.Name)
		if rc.Name != "" {
			v.name(rp+".name", "route", rc.Name)
		}
		if k, dup := names[r.Name]; dup && r.Name != "" {
			v.fail(rp, ErrDuplicate, "route name %q is already used by routes[%d]; give one of them a distinct name:", r.Name, k)
		} else {
			names[r.Name] = j
		}
		pl.Routes = append(pl.Routes, r)
	}
	return pl
}

// deadLetter checks a dead_letter block: a queue or a backbone topic, with
// no per-event expressions (a dead letter keeps the original key).
func (v *validator) deadLetter(p string, pc *PipelineConfig) *Target {
	tc := pc.DeadLetter
	var t Target
	switch {
	case tc.Topic != "" && tc.Queue != "":
		v.fail(p, ErrConflict, "set queue or topic, not both")
		return nil
	case tc.Topic != "":
		t = Target{Kind: TargetTopic, Topic: tc.Topic}
		if v.ref(p+".topic", "backbone topic", tc.Topic, v.topicNames()) && tc.Topic == pc.From {
			v.fail(p+".topic", ErrInvalid, "dead letters cannot go back to the pipeline's own topic %q", pc.From)
		}
	case tc.Queue != "":
		t = Target{Kind: TargetQueue, Queue: tc.Queue}
		v.ref(p+".queue", "queue", tc.Queue, v.queueNames())
	default:
		v.fail(p, ErrRequired, "set queue or topic")
		return nil
	}
	unused := map[string]bool{"key": tc.Key != "", "exchange": tc.Exchange != "",
		"routing_key": tc.RoutingKey != "", "group_id": tc.GroupID != "", "dedup_id": tc.DedupID != "",
		"kafka": tc.Kafka != nil, "amqp": tc.AMQP != nil, "sqs": tc.SQS != nil}
	for name, set := range tc.messageFields() {
		unused[name] = set
	}
	v.unused(p, "dead_letter", unused)
	return &t
}

// target checks a route's `to:` and fills t. It reports false when the kind
// could not be determined (none or several set).
func (v *validator) target(p string, tc *TargetConfig, t *Target) bool {
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"topic", tc.Topic != ""}, {"exchange", tc.Exchange != ""}, {"queue", tc.Queue != ""},
		{"kafka", tc.Kafka != nil}, {"amqp", tc.AMQP != nil}, {"sqs", tc.SQS != nil}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		v.fail(p, ErrRequired, "set one target: topic, exchange, queue, kafka, amqp or sqs")
		return false
	case 1:
	default:
		v.fail(p, ErrConflict, "sets %s: a route has exactly one target (write one route per target)", strings.Join(kinds, " and "))
		return false
	}
	exprs := map[string]bool{"key": tc.Key != "", "routing_key": tc.RoutingKey != "", "group_id": tc.GroupID != "", "dedup_id": tc.DedupID != ""}
	for name, set := range tc.messageFields() {
		exprs[name] = set
	}
	used := func(names ...string) {
		for _, n := range names {
			delete(exprs, n)
		}
		v.unused(p, article(kinds[0]+" target"), exprs)
	}
	switch kinds[0] {
	case "topic":
		*t = Target{Kind: TargetTopic, Topic: tc.Topic, Key: v.compile(p+".key", tc.Key, rules.String)}
		v.ref(p+".topic", "backbone topic", tc.Topic, v.topicNames())
		used("key")
	case "exchange":
		*t = Target{Kind: TargetExchange, Exchange: tc.Exchange, RoutingKey: v.compile(p+".routing_key", tc.RoutingKey, rules.String)}
		if v.ref(p+".exchange", "exchange", tc.Exchange, v.exchangeNames()) {
			if x := v.cfg.Broker.Exchanges[tc.Exchange]; x != nil && (x.Type == "direct" || x.Type == "topic") {
				v.required(p+".routing_key", tc.RoutingKey)
			}
		}
		v.messageRules(p, tc, t, nil)
		used(append([]string{"routing_key"}, messageFieldNames...)...)
	case "queue":
		*t = Target{Kind: TargetQueue, Queue: tc.Queue,
			GroupID: v.compile(p+".group_id", tc.GroupID, rules.String), DedupID: v.compile(p+".dedup_id", tc.DedupID, rules.String)}
		var q *Queue
		if v.ref(p+".queue", "queue", tc.Queue, v.queueNames()) {
			q = v.cfg.Broker.Queues[tc.Queue]
			v.fifoKeys(p, q.FIFO, tc.GroupID, tc.DedupID)
		}
		v.messageRules(p, tc, t, q)
		used(append([]string{"group_id", "dedup_id"}, messageFieldNames...)...)
	case "kafka":
		v.kafkaTarget(p+".kafka", tc.Kafka, t)
		used()
	case "amqp":
		v.amqpTarget(p+".amqp", tc.AMQP, t)
		used()
	case "sqs":
		v.sqsTarget(p+".sqs", tc.SQS, t)
		used()
	}
	return true
}

// fifoKeys applies SQS's rules: a FIFO queue needs a message group id, and
// only FIFO queues take a deduplication id. Without dedup_id the engine
// deduplicates by the event id (bridge-event-id), which is what makes
// redelivery after a crash idempotent.
func (v *validator) fifoKeys(p string, fifo bool, groupID, dedupID string) {
	if fifo {
		v.required(p+".group_id", groupID)
	} else if dedupID != "" {
		v.fail(p+".dedup_id", ErrConflict, "dedup_id needs a FIFO queue")
	}
}

func (v *validator) kafkaTarget(p string, k *KafkaTarget, t *Target) {
	*t = Target{Kind: TargetKafka, Connection: k.Connection, Topic: k.Topic, Key: v.compile(p+".key", k.Key, rules.String), Kafka: k}
	v.connectionRef(p+".connection", k.Connection, "kafka")
	if k.Compression != "" {
		v.oneOf(p+".compression", k.Compression, "none", "snappy", "lz4", "zstd")
	}
	if v.required(p+".topic", k.Topic) && !topicName.MatchString(k.Topic) {
		v.fail(p+".topic", ErrInvalid, "topic name %q: use 1 to 249 of a-z A-Z 0-9 . _ -", k.Topic)
	}
}

func (v *validator) amqpTarget(p string, a *AMQPTarget, t *Target) {
	*t = Target{Kind: TargetAMQP, Connection: a.Connection, Exchange: a.Exchange, RoutingKey: v.compile(p+".routing_key", a.RoutingKey, rules.String), AMQP: a}
	v.connectionRef(p+".connection", a.Connection, "amqp")
	v.amqpDeclare(p+".declare", a.Declare)
	if a.Exchange == "" && a.RoutingKey == "" {
		v.fail(p+".exchange", ErrRequired, "required (or a routing_key naming the queue, for the default exchange)")
	}
}

func (v *validator) sqsTarget(p string, s *SQSTarget, t *Target) {
	*t = Target{Kind: TargetSQS, Connection: s.Connection, QueueURL: s.QueueURL,
		GroupID: v.compile(p+".group_id", s.GroupID, rules.String), DedupID: v.compile(p+".dedup_id", s.DedupID, rules.String)}
	v.connectionRef(p+".connection", s.Connection, "sqs")
	if v.required(p+".queue_url", s.QueueURL) {
		if u, err := url.Parse(s.QueueURL); err != nil || u.Scheme == "" || u.Host == "" {
			v.fail(p+".queue_url", ErrInvalid, "%q is not an absolute URL", s.QueueURL)
		} else {
			v.fifoKeys(p, strings.HasSuffix(u.Path, ".fifo"), s.GroupID, s.DedupID)
		}
	}
}

func defaultRouteName(t *Target) string {
	switch t.Kind {
	case TargetTopic:
		return "topic:" + t.Topic
	case TargetExchange:
		return "exchange:" + t.Exchange
	case TargetQueue:
		return "queue:" + t.Queue
	case TargetKafka:
		return "kafka:" + t.Connection + "/" + t.Topic
	case TargetAMQP:
		return "amqp:" + t.Connection + "/" + t.Exchange
	case TargetSQS:
		// The queue name is the URL's last path element; an unparsable URL
		// (already reported) still gets a name.
		name := t.QueueURL
		if u, err := url.Parse(t.QueueURL); err == nil {
			name = u.Path
		}
		return "sqs:" + t.Connection + "/" + path.Base(name)
	}
	return ""
}

// compile compiles src as a rule of kind and reports a failure at the
// position inside the YAML scalar where the rule goes wrong. Empty src is
// "not configured" and yields nil.
func (v *validator) compile(p, src string, kind rules.Kind) *rules.Program {
	if src == "" {
		return nil
	}
	prog, err := rules.Compile(src, kind)
	if err != nil {
		v.ruleError(p, err)
		return nil
	}
	return prog
}

// compileIn is compile for a transform's rules, which may see item and
// index (scope).
func (v *validator) compileIn(p, src string, kind rules.Kind, scope rules.Scope) *rules.Program {
	if src == "" {
		return nil
	}
	prog, err := rules.CompileIn(src, kind, scope)
	if err != nil {
		v.ruleError(p, err)
		return nil
	}
	return prog
}

func (v *validator) compileErrorRule(p, src string) *rules.Program {
	if src == "" {
		return nil
	}
	prog, err := rules.CompileErrorRule(src)
	if err != nil {
		v.ruleError(p, err)
		return nil
	}
	return prog
}

func (v *validator) ruleError(p string, err error) {
	var ce *rules.CompileError
	if !errors.As(err, &ce) {
		v.fail(p, ErrRule, "%v", err)
		return
	}
	// ce.Error() is the message plus "(did you mean X?)"; the position goes
	// in front, translated from the rule's text to the file's.
	v.errs = append(v.errs, &FieldError{Pos: v.ix.exprPos(p, ce.Line, ce.Column), Field: p, Err: errf(ErrRule, "%s", ce.Error())})
}
