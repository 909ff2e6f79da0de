package migrate

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, raw string
		want      Endpoint // redacted and secret are checked through String
		str       string
		err       string
	}{
		{name: "amqp source", raw: "amqp://guest:s3cret@127.0.0.1:5672/?queue=orders",
			want: Endpoint{Kind: KindAMQP, AMQPURL: "amqp://guest:s3cret@127.0.0.1:5672/", VHost: "/", Queue: "orders"},
			str:  "amqp://guest:xxxxx@127.0.0.1:5672/?queue=orders"},
		{name: "amqp empty vhost", raw: "amqp://u:p@h:5672?queue=q",
			want: Endpoint{Kind: KindAMQP, AMQPURL: "amqp://u:p@h:5672", VHost: "/", Queue: "q"}, str: "amqp://u:xxxxx@h:5672?queue=q"},
		{name: "amqp vhost", raw: "amqp://u:p@h:5672/prod?queue=q",
			want: Endpoint{Kind: KindAMQP, AMQPURL: "amqp://u:p@h:5672/prod", VHost: "prod", Queue: "q"}, str: "amqp://u:xxxxx@h:5672/prod?queue=q"},
		{name: "amqp escaped slash vhost", raw: "amqp://u:p@h/%2Fa?queue=q",
			want: Endpoint{Kind: KindAMQP, AMQPURL: "amqp://u:p@h/%2Fa", VHost: "/a", Queue: "q"}, str: "amqp://u:xxxxx@h/%2Fa?queue=q"},
		{name: "amqp target", raw: "amqps://u:p@h:5671/?exchange=audit&routing_key=orders.new",
			want: Endpoint{Kind: KindAMQP, AMQPURL: "amqps://u:p@h:5671/", VHost: "/", Exchange: "audit", RoutingKey: "orders.new"},
			str:  "amqps://u:xxxxx@h:5671/?exchange=audit&routing_key=orders.new"},
		{name: "amqp no queue", raw: "amqp://u:p@h:5672/", err: "set ?queue=NAME"},
		{name: "amqp unknown param", raw: "amqp://u:p@h:5672/?queue=q&prefetch=5", err: `unknown parameter "prefetch"`},
		{name: "amqp repeated param", raw: "amqp://u:p@h:5672/?queue=q&queue=r", err: `given 2 times`},
		{name: "amqp bad port", raw: "amqp://u:p@h:99999/?queue=q", err: "port"},
		{name: "amqp no host", raw: "amqp:///?queue=q", err: "host required"},
		{name: "kafka one broker", raw: "kafka://127.0.0.1:9092/orders",
			want: Endpoint{Kind: KindKafka, Brokers: []string{"127.0.0.1:9092"}, Topic: "orders"}, str: "kafka://127.0.0.1:9092/orders"},
		{name: "kafka brokers and group", raw: "kafka://a:1,b:2/t.x-y?group=g",
			want: Endpoint{Kind: KindKafka, Brokers: []string{"a:1", "b:2"}, Topic: "t.x-y", Group: "g"}, str: "kafka://a:1,b:2/t.x-y?group=g"},
		{name: "kafka no topic", raw: "kafka://a:1/", err: "topic required"},
		{name: "kafka bad topic", raw: "kafka://a:1/t/u", err: "topic"},
		{name: "kafka no port", raw: "kafka://a/t", err: "want HOST:PORT"},
		{name: "kafka empty broker", raw: "kafka://a:1,,b:2/t", err: "want HOST:PORT"},
		{name: "sqs name", raw: "sqs://orders?endpoint=http://127.0.0.1:9324&region=eu-west-1",
			want: Endpoint{Kind: KindSQS, QueueName: "orders", SQSEndpoint: "http://127.0.0.1:9324", Region: "eu-west-1"},
			str:  "sqs://orders?endpoint=http://127.0.0.1:9324&region=eu-west-1"},
		{name: "sqs name default region", raw: "sqs://jobs.fifo",
			want: Endpoint{Kind: KindSQS, QueueName: "jobs.fifo", Region: "us-east-1"}, str: "sqs://jobs.fifo"},
		{name: "sqs static keys", raw: "sqs://AKID:topsecret@q?endpoint=http://h:1",
			want: Endpoint{Kind: KindSQS, QueueName: "q", SQSEndpoint: "http://h:1", Region: "us-east-1", AccessKeyID: "AKID", SecretAccessKey: "topsecret"},
			str:  "sqs://AKID:xxxxx@q?endpoint=http://h:1"},
		{name: "sqs bad name", raw: "sqs://a.b", err: "queue name"},
		{name: "sqs bad endpoint", raw: "sqs://q?endpoint=ftp://h", err: "endpoint must be"},
		{name: "aws queue url", raw: "https://sqs.eu-central-1.amazonaws.com/123456789012/orders",
			want: Endpoint{Kind: KindSQS, QueueName: "orders", QueueURL: "https://sqs.eu-central-1.amazonaws.com/123456789012/orders", Region: "eu-central-1"},
			str:  "https://sqs.eu-central-1.amazonaws.com/123456789012/orders"},
		{name: "local queue url", raw: "http://127.0.0.1:9324/000000000000/orders",
			want: Endpoint{Kind: KindSQS, QueueName: "orders", QueueURL: "http://127.0.0.1:9324/000000000000/orders",
				SQSEndpoint: "http://127.0.0.1:9324", Region: "us-east-1"},
			str: "http://127.0.0.1:9324/000000000000/orders"},
		{name: "queue url without account", raw: "https://sqs.us-east-1.amazonaws.com/orders", err: "ACCOUNT/QUEUE_NAME"},
		{name: "bridge default addr", raw: "bridge://orders",
			want: Endpoint{Kind: KindBridge, Topic: "orders", Addr: "http://127.0.0.1:8080"}, str: "bridge://orders?addr=http%3A%2F%2F127.0.0.1%3A8080"},
		{name: "bridge addr", raw: "bridge://orders?addr=http://10.0.0.1:9000/",
			want: Endpoint{Kind: KindBridge, Topic: "orders", Addr: "http://10.0.0.1:9000"}, str: "bridge://orders?addr=http%3A%2F%2F10.0.0.1%3A9000"},
		{name: "bridge bad addr", raw: "bridge://orders?addr=10.0.0.1", err: "addr must be"},
		{name: "no scheme", raw: "orders", err: "no scheme"},
		{name: "unknown scheme", raw: "nats://h:4222/x", err: "unknown scheme"},
		{name: "unparsable keeps password out", raw: "amqp://u:hunter2@h:5672/%zz?queue=q", err: "xxxxx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseURL(tc.raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrURL) {
					t.Fatalf("ParseURL(%q) = %v, want an ErrURL containing %q", tc.raw, err, tc.err)
				}
				for _, secret := range []string{"hunter2", "s3cret", "topsecret"} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error %q shows the password", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.raw, err)
			}
			if got.String() != tc.str {
				t.Errorf("String() = %q, want %q", got.String(), tc.str)
			}
			got.redacted, got.secret = "", ""
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("ParseURL(%q) =\n%+v\nwant\n%+v", tc.raw, *got, tc.want)
			}
		})
	}
}

// FuzzParseURL checks ParseURL's invariants on any input: it never
// panics; a failure wraps ErrURL and never shows a password; a success
// renders a String without the password that parses again to the same
// endpoint (but for the password).
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"amqp://guest:guest@127.0.0.1:5672/?queue=q", "amqps://u:p@h/%2F?exchange=x&routing_key=k&queue=q",
		"kafka://a:1,b:2/t?group=g", "sqs://q.fifo?endpoint=http://h:1&region=r", "sqs://k:s@q",
		"https://sqs.us-east-1.amazonaws.com/1/q", "http://127.0.0.1:9324/000000000000/q", "bridge://t?addr=http://h:1",
		"amqp://u:p@[::1]:5672/v?queue=q", "", "://", "amqp://:@/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrURL) {
				t.Fatalf("error %v does not wrap ErrURL", err)
			}
			return
		}
		s := e.String()
		if e.secret != "" && strings.Contains(s, ":"+e.secret+"@") {
			t.Fatalf("String() %q shows the password", s)
		}
		again, err := ParseURL(s)
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", s, raw, err)
		}
		if again.String() != s {
			t.Fatalf("String() is not stable: %q then %q", s, again.String())
		}
		a, b := *e, *again
		a.AMQPURL, b.AMQPURL, a.secret, b.secret, a.SecretAccessKey, b.SecretAccessKey = "", "", "", "", "", ""
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("reparsing %q changed the endpoint:\n%+v\n%+v", s, a, b)
		}
	})
}
