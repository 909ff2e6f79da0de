package migrate

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Kind names the system an endpoint lives on.
type Kind string

// Endpoint kinds (SPEC §8 URL table).
const (
	KindAMQP   Kind = "amqp"
	KindKafka  Kind = "kafka"
	KindSQS    Kind = "sqs"
	KindBridge Kind = "bridge"
)

// ErrURL is wrapped by every error ParseURL returns.
var ErrURL = errors.New("migrate: invalid URL")

// Endpoint is one side of a migration, parsed from its URL. Which fields
// apply depends on Kind. String renders it with the password redacted;
// the password is only ever held in AMQPURL (and in SQS's static keys when
// the URL carries them as user:secret).
type Endpoint struct {
	Kind Kind

	// AMQP: AMQPURL is scheme://user:pass@host:port/vhost without the
	// query, ready for the connector. Queue is the queue to consume (source)
	// or to read back when verifying (target); Exchange and RoutingKey are
	// where a target publishes. A target with only a queue publishes through
	// the default exchange with the queue's name as routing key.
	AMQPURL    string
	VHost      string
	Queue      string
	Exchange   string
	RoutingKey string

	// Kafka: seed brokers and the topic. Group is the consumer group of a
	// source (empty: a name derived from the migration).
	Brokers []string
	Topic   string // also the bridge:// topic
	Group   string

	// SQS: QueueURL is set when the URL was a queue URL; QueueName always.
	// Endpoint overrides the service endpoint (a local SQS); Region
	// defaults to us-east-1 for local endpoints.
	QueueName       string
	QueueURL        string
	SQSEndpoint     string
	Region          string
	AccessKeyID     string
	SecretAccessKey string

	// bridge://TOPIC: Addr is the running bridge's HTTP API.
	Addr string

	redacted string // String()
	secret   string // the password, to scrub from errors
}

// String is the URL with its password replaced by "xxxxx".
func (e *Endpoint) String() string { return e.redacted }

// FIFO reports whether an SQS endpoint names a FIFO queue.
func (e *Endpoint) FIFO() bool { return e.Kind == KindSQS && strings.HasSuffix(e.QueueName, ".fifo") }

var (
	kafkaTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	sqsName    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}(\.fifo)?$`)
	// bridgeTopic follows the commitlog's topic names.
	bridgeTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	awsHost     = regexp.MustCompile(`^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)
)

// ParseURL parses a migration endpoint (SPEC §8):
//
//	amqp://USER:PASS@HOST:PORT/VHOST?queue=NAME                 (amqps:// for TLS)
//	amqp://USER:PASS@HOST:PORT/VHOST?exchange=NAME&routing_key=KEY[&queue=NAME]
//	kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?group=NAME]
//	sqs://QUEUE_NAME[?endpoint=http://HOST:PORT][&region=REGION]
//	https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE_NAME           (an SQS queue URL; http:// for a local SQS)
//	bridge://TOPIC[?addr=http://127.0.0.1:8080]
//
// Errors wrap ErrURL and never contain the password.
func ParseURL(raw string) (*Endpoint, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("%w: %q has no scheme (amqp://, kafka://, sqs://, https://, bridge://)", ErrURL, redactRaw(raw))
	}
	var (
		e   *Endpoint
		err error
	)
	switch strings.ToLower(scheme) {
	case "amqp", "amqps":
		e, err = parseAMQP(raw)
	case "kafka":
		e, err = parseKafka(raw)
	case "sqs":
		e, err = parseSQSName(raw)
	case "http", "https":
		e, err = parseSQSQueueURL(raw)
	case "bridge":
		e, err = parseBridge(raw)
	default:
		return nil, fmt.Errorf("%w: unknown scheme %q (amqp, amqps, kafka, sqs, http(s) for SQS queue URLs, bridge)", ErrURL, redactRaw(scheme))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrURL, redactRaw(raw), err)
	}
	return e, nil
}

// redactRaw hides what could be a password in a URL that did not parse:
// everything between "://" and the last "@" of the authority.
func redactRaw(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		rest = raw
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	prefix := raw[:len(raw)-len(rest)]
	user, _, _ := strings.Cut(rest[:at], ":")
	return prefix + user + ":xxxxx" + rest[at:]
}

// query parses a URL query, allowing only the named keys, each once.
func query(u *url.URL, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("query: %v", err)
	}
	for k, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return nil, fmt.Errorf("unknown parameter %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("parameter %q given %d times", k, len(vs))
		}
	}
	return q, nil
}

func parseAMQP(raw string) (*Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, errors.New("host required (amqp://USER:PASS@HOST:PORT/VHOST?queue=NAME)")
	}
	if u.Fragment != "" {
		return nil, errors.New("fragments (#...) are not allowed")
	}
	if _, port, err := net.SplitHostPort(u.Host); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("port %q is not a number in 1..65535", port)
		}
	}
	q, err := query(u, "queue", "exchange", "routing_key")
	if err != nil {
		return nil, err
	}
	if strings.Contains(strings.TrimPrefix(u.EscapedPath(), "/"), "/") {
		return nil, errors.New("the path is the vhost: one segment (write %2F for a slash)")
	}
	vhost := strings.TrimPrefix(u.Path, "/")
	if vhost == "" {
		vhost = "/"
	}
	e := &Endpoint{Kind: KindAMQP, VHost: vhost, Queue: q.Get("queue"), Exchange: q.Get("exchange"), RoutingKey: q.Get("routing_key")}
	if e.Queue == "" && e.Exchange == "" && e.RoutingKey == "" {
		return nil, errors.New("set ?queue=NAME (source, or target queue) or ?exchange=NAME&routing_key=KEY (target)")
	}
	base := *u
	base.RawQuery, base.Fragment = "", ""
	e.AMQPURL = base.String()
	e.secret, _ = u.User.Password()
	e.redacted = redactedURL(u)
	return e, nil
}

// redactedURL is u.Redacted() with its query kept in the order written.
func redactedURL(u *url.URL) string {
	r := *u
	if _, has := r.User.Password(); has {
		r.User = url.UserPassword(r.User.Username(), "xxxxx")
	}
	return r.String()
}

func parseKafka(raw string) (*Endpoint, error) {
	rest := raw[len("kafka://"):]
	rest, rawQuery, _ := strings.Cut(rest, "?")
	hosts, topic, ok := strings.Cut(rest, "/")
	if !ok || topic == "" {
		return nil, errors.New("topic required (kafka://HOST:PORT[,HOST:PORT]/TOPIC)")
	}
	if !kafkaTopic.MatchString(topic) {
		return nil, fmt.Errorf("topic %q: use 1 to 249 of a-z A-Z 0-9 . _ -", topic)
	}
	e := &Endpoint{Kind: KindKafka, Topic: topic}
	for h := range strings.SplitSeq(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return nil, fmt.Errorf("broker %q: want HOST:PORT", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("broker %q: port is not a number in 1..65535", h)
		}
		if strings.ContainsAny(host, "@ \t/\\") {
			return nil, fmt.Errorf("broker %q: not a host name", h)
		}
		e.Brokers = append(e.Brokers, h)
	}
	q, err := query(&url.URL{RawQuery: rawQuery}, "group")
	if err != nil {
		return nil, err
	}
	e.Group = q.Get("group")
	e.redacted = "kafka://" + strings.Join(e.Brokers, ",") + "/" + topic
	if e.Group != "" {
		e.redacted += "?group=" + url.QueryEscape(e.Group)
	}
	return e, nil
}

func parseSQSName(raw string) (*Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("the queue name goes in the host part: sqs://QUEUE_NAME?endpoint=URL&region=REGION")
	}
	e := &Endpoint{Kind: KindSQS, QueueName: u.Host}
	if err := sqsOptions(e, u); err != nil {
		return nil, err
	}
	if e.Region == "" {
		e.Region = "us-east-1"
	}
	e.redacted = redactedURL(u)
	return e, nil
}

// sqsOptions applies the query and static keys of an SQS URL.
func sqsOptions(e *Endpoint, u *url.URL) error {
	if u.Fragment != "" {
		return errors.New("fragments (#...) are not allowed")
	}
	if !sqsName.MatchString(e.QueueName) {
		return fmt.Errorf("queue name %q: use 1 to 80 of a-z A-Z 0-9 _ - (and .fifo)", e.QueueName)
	}
	q, err := query(u, "endpoint", "region")
	if err != nil {
		return err
	}
	e.Region = q.Get("region")
	if ep := q.Get("endpoint"); ep != "" {
		pu, err := url.Parse(ep)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil {
			return errors.New("endpoint must be http(s)://HOST:PORT")
		}
		e.SQSEndpoint = ep
	}
	if u.User != nil {
		secret, ok := u.User.Password()
		if !ok || u.User.Username() == "" || secret == "" {
			return errors.New("credentials in the URL are ACCESS_KEY_ID:SECRET@")
		}
		e.AccessKeyID, e.SecretAccessKey, e.secret = u.User.Username(), secret, secret
	}
	return nil
}

// parseSQSQueueURL takes a queue URL as SQS prints it
// (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) or as a local SQS does
// (http://127.0.0.1:9324/000000000000/NAME, whose host is the endpoint).
func parseSQSQueueURL(raw string) (*Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if u.Host == "" || len(parts) != 2 || parts[0] == "" {
		return nil, errors.New("an SQS queue URL is SCHEME://HOST/ACCOUNT/QUEUE_NAME")
	}
	e := &Endpoint{Kind: KindSQS, QueueName: parts[1]}
	if err := sqsOptions(e, u); err != nil {
		return nil, err
	}
	base := *u
	base.User, base.RawQuery, base.Fragment = nil, "", ""
	e.QueueURL = base.String()
	if m := awsHost.FindStringSubmatch(strings.ToLower(u.Hostname())); m != nil {
		if e.Region == "" {
			e.Region = m[1]
		}
	} else if e.SQSEndpoint == "" {
		e.SQSEndpoint = u.Scheme + "://" + u.Host
	}
	if e.Region == "" {
		e.Region = "us-east-1"
	}
	e.redacted = redactedURL(u)
	return e, nil
}

func parseBridge(raw string) (*Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, errors.New("want bridge://TOPIC?addr=http://HOST:PORT")
	}
	if !bridgeTopic.MatchString(u.Host) {
		return nil, fmt.Errorf("topic %q: use 1 to 249 of a-z A-Z 0-9 . _ -", u.Host)
	}
	q, err := query(u, "addr")
	if err != nil {
		return nil, err
	}
	e := &Endpoint{Kind: KindBridge, Topic: u.Host, Addr: q.Get("addr")}
	if e.Addr == "" {
		e.Addr = "http://127.0.0.1:8080"
	}
	au, err := url.Parse(e.Addr)
	if err != nil || (au.Scheme != "http" && au.Scheme != "https") || au.Host == "" || au.User != nil {
		return nil, errors.New("addr must be http(s)://HOST:PORT")
	}
	e.Addr = strings.TrimRight(e.Addr, "/")
	e.redacted = "bridge://" + e.Topic + "?addr=" + url.QueryEscape(e.Addr)
	return e, nil
}

// scrub replaces the endpoint's password in err's text, for errors of
// libraries that might quote a URL.
func scrub(err error, e *Endpoint) error {
	if err == nil || e.secret == "" || !strings.Contains(err.Error(), e.secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), e.secret, "xxxxx"))
}
