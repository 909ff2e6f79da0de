package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

const amqpAPIConfig = `
data_dir: ${DATA}
http:     { listen: ${HTTP} }
sqs_api:  { listen: ${SQS} }
amqp_api: { listen: ${AMQP} }
backbone:
  fsync: always
  topics: { orders: { partitions: 2 } }
broker:
  queues:
    shared: { visibility_timeout: 30s }
  exchanges:
    orders:
      type: topic
      bindings: [ { queue: shared, key: "order.*.us" } ]
pipelines:
  - name: to-exchange
    from: orders
    start: earliest
    routes:
      - to: { exchange: orders, routing_key: '"order.created." + body.region' }
`

// TestAMQPAPI runs bridge with amqp_api next to sqs_api and a pipeline:
// unmodified clients of both protocols see each other's messages on one
// queue; a queue declared and bound over AMQP to an exchange of the config
// file receives the pipeline's events; declarations and confirmed
// messages survive kill -9.
func TestAMQPAPI(t *testing.T) {
	data := t.TempDir()
	amqpAddr := freeAddr(t)
	cfg, httpAddr, sqsAddr := writeConfig(t, data, strings.ReplaceAll(amqpAPIConfig, "${AMQP}", amqpAddr))
	in := start(t, cfg, httpAddr, sqsAddr, data)
	url := "amqp://guest:guest@" + amqpAddr + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.Confirm(false))
	client := sqsClient(in.sqsURL)
	qurl, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("shared")})
	must(err)

	// AMQP → SQS: body, headers and properties arrive as message attributes.
	dc, err := ch.PublishWithDeferredConfirm("", "shared", false, false, amqp091.Publishing{ContentType: "text/plain",
		MessageId: "m-1", Headers: amqp091.Table{"tenant": "acme", "attempt": int32(3)}, Body: []byte("from amqp")})
	must(err)
	if !dc.Wait() {
		t.Fatal("nacked")
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: qurl.QueueUrl, WaitTimeSeconds: 5,
		MessageAttributeNames: []string{"All"}})
	must(err)
	if len(out.Messages) != 1 || *out.Messages[0].Body != "from amqp" {
		t.Fatalf("SQS received %+v", out.Messages)
	}
	attrs := out.Messages[0].MessageAttributes
	if aws.ToString(attrs["tenant"].StringValue) != "acme" || aws.ToString(attrs["attempt"].StringValue) != "3" ||
		aws.ToString(attrs["attempt"].DataType) != "Number" || aws.ToString(attrs["amqp.content_type"].StringValue) != "text/plain" ||
		aws.ToString(attrs["amqp.message_id"].StringValue) != "m-1" {
		t.Fatalf("attributes %v", attrs)
	}
	_, err = client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: qurl.QueueUrl, ReceiptHandle: out.Messages[0].ReceiptHandle})
	must(err)

	// SQS → AMQP: attributes arrive as headers, amqp.* as properties.
	_, err = client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl.QueueUrl, MessageBody: aws.String("from sqs"),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"tenant":              {DataType: aws.String("String"), StringValue: aws.String("globex")},
			"amqp.correlation_id": {DataType: aws.String("String"), StringValue: aws.String("c-9")},
		}})
	must(err)
	cch, err := conn.Channel()
	must(err)
	ds, err := cch.Consume("shared", "", false, false, false, false, nil)
	must(err)
	d := recvE2E(t, ds)
	if string(d.Body) != "from sqs" || d.Headers["tenant"] != "globex" || d.CorrelationId != "c-9" || d.RoutingKey != "shared" || d.Redelivered {
		t.Fatalf("AMQP received %+v", d)
	}
	must(d.Ack(false))

	// A queue declared over AMQP and bound to the config's exchange gets
	// the pipeline's events.
	_, err = ch.QueueDeclare("eu-workers", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("eu-workers", "order.*.eu", "orders", false, nil))
	code, body, err := postEvents(ctx, in.httpURL, "orders", []map[string]any{
		{"key": "o-1", "value": map[string]any{"region": "eu", "id": 1}},
		{"key": "o-2", "value": map[string]any{"region": "us", "id": 2}}})
	if err != nil || code != 200 {
		t.Fatalf("post: %d %v %v", code, body, err)
	}
	eu, err := cch.Consume("eu-workers", "", false, false, false, false, nil)
	must(err)
	d = recvE2E(t, eu)
	if !strings.Contains(string(d.Body), `"region":"eu"`) || d.Headers["bridge-key"] != "o-1" {
		t.Fatalf("pipeline event over AMQP: %q %v", d.Body, d.Headers)
	}
	must(d.Ack(false))

	// Durable declarations and confirmed messages survive kill -9.
	must(ch.ExchangeDeclare("audit", "fanout", true, false, false, false, nil))
	_, err = ch.QueueDeclare("audit-log", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("audit-log", "", "audit", false, nil))
	const n = 200
	var last *amqp091.DeferredConfirmation
	for i := range n {
		last, err = ch.PublishWithDeferredConfirm("audit", "", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte(fmt.Sprint(i))})
		must(err)
	}
	if !last.Wait() {
		t.Fatal("nacked")
	}
	conn.Close()
	in.kill()
	in = start(t, cfg, httpAddr, sqsAddr, data)
	conn, err = amqp091.Dial(url)
	must(err)
	defer conn.Close()
	ch, err = conn.Channel()
	must(err)
	must(ch.Confirm(false))
	dc, err = ch.PublishWithDeferredConfirm("audit", "", false, false, amqp091.Publishing{Body: []byte("after restart")})
	must(err)
	if !dc.Wait() {
		t.Fatal("nacked after restart")
	}
	ds, err = ch.Consume("audit-log", "", true, false, false, false, nil)
	must(err)
	for range n + 1 {
		recvE2E(t, ds)
	}
	in.stop()
}

func recvE2E(t *testing.T, ds <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("deliveries closed")
		}
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30s")
	}
	return amqp091.Delivery{}
}

// TestAMQPAPITLS serves amqp_api over TLS: amqp091-go and Debian's
// amqp-tools (librabbitmq with OpenSSL) verify the certificate, publish
// and consume; a plain-TCP client gets nowhere.
func TestAMQPAPITLS(t *testing.T) {
	data := t.TempDir()
	_, certFile, keyFile := selfSigned(t, t.TempDir())
	amqpAddr := freeAddr(t)
	config := strings.ReplaceAll(amqpAPIConfig, "amqp_api: { listen: ${AMQP} }",
		"amqp_api: { listen: "+amqpAddr+", tls: { cert_file: "+certFile+", key_file: "+keyFile+" } }")
	cfg, httpAddr, sqsAddr := writeConfig(t, data, config)
	in := start(t, cfg, httpAddr, sqsAddr, data)
	if !strings.Contains(in.stderr.String(), `msg="AMQP API listening"`) || !strings.Contains(in.stderr.String(), "tls=true") {
		t.Fatalf("startup log does not say the AMQP API uses TLS:\n%s", in.stderr.String())
	}
	pool := x509.NewCertPool()
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(certPEM)
	conn, err := amqp091.DialTLS("amqps://guest:guest@"+amqpAddr+"/", &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("", "shared", false, false, amqp091.Publishing{Body: []byte("over tls")})
	if err != nil || !dc.Wait() {
		t.Fatalf("publish over TLS: %v", err)
	}
	if _, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/"); err == nil {
		t.Fatal("a plain-TCP client connected to the TLS listener")
	}
	if _, err := exec.LookPath("amqp-get"); err != nil {
		if os.Getenv("BRIDGE_SKIP_AMQP_CLIENTS") == "" {
			t.Fatal("amqp-tools missing: run scripts/test.sh (scripts/ensure.d/amqp-clients.sh) or set BRIDGE_SKIP_AMQP_CLIENTS=1")
		}
		return
	}
	// librabbitmq verifies the host name as a DNS name: connect to localhost.
	localhost := "localhost:" + amqpAddr[strings.LastIndex(amqpAddr, ":")+1:]
	out, err := exec.Command("amqp-get", "-u", "amqps://guest:guest@"+localhost, "--cacert="+certFile, "-q", "shared").CombinedOutput()
	if err != nil || string(out) != "over tls" {
		t.Fatalf("amqp-get over TLS: %v: %s", err, out)
	}
}
