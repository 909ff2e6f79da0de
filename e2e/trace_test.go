package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// callerTraceParent is the trace context a client sends; every test below
// follows its trace id through the bridge.
const (
	callerTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerTraceParent = "00-" + callerTraceID + "-00f067aa0ba902b7-01"
)

const traceConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
sqs_api: { listen: "${SQS}" }
telemetry:
  traces: { exporter: stdout }
backbone:
  type: embedded
  topics:
    orders: { partitions: 2 }
broker:
  queues:
    work: { visibility_timeout: 30s }
  exchanges:
    orders:
      type: topic
      bindings:
        - { queue: work, key: "order.#" }
pipelines:
  - name: route
    from: orders
    routes:
      - name: fulfillment
        to: { exchange: orders, routing_key: '"order." + body.region' }
`

// TestTraceHTTPToSQSConsumer: one trace id flows from an HTTP POST with a
// traceparent header through the backbone, the pipeline, the exchange and
// the queue to an SQS SDK consumer, which receives it in the traceparent
// message attribute; the stdout exporter shows the bridge's spans in that
// trace; /metrics counts what happened.
func TestTraceHTTPToSQSConsumer(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, traceConfig)
	in := start(t, cfg, httpAddr, sqsAddr, data)

	req, _ := http.NewRequest("POST", in.httpURL+"/v1/topics/orders/events",
		strings.NewReader(`[{"key":"o1","value":{"region":"eu"}},{"key":"o2","value":{"region":"us"}}]`))
	req.Header.Set("traceparent", callerTraceParent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}

	client := sqsClient(in.sqsURL)
	url := in.sqsURL + "/000000000000/work"
	got := 0
	waitFor(t, 20*time.Second, func() error {
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			return err
		}
		for _, m := range out.Messages {
			tp := aws.ToString(m.MessageAttributes["traceparent"].StringValue)
			if len(tp) != 55 || tp[3:35] != callerTraceID {
				t.Fatalf("consumer received traceparent %q, want trace %s", tp, callerTraceID)
			}
			if tp == callerTraceParent {
				t.Fatalf("traceparent unchanged: the pipeline hop is not a child span")
			}
			if _, err := client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
			got++
		}
		if got < 2 {
			return fmt.Errorf("received %d of 2", got)
		}
		return nil
	})

	metrics := httpGet(t, http.DefaultClient, in.httpURL+"/metrics")
	for _, want := range []string{
		`messaging_client_consumed_messages_total{bridge_source="http",messaging_destination_name="orders",messaging_system="bridge"} 2`,
		`messaging_client_sent_messages_total{bridge_pipeline="route",bridge_route="fulfillment",messaging_destination_name="exchange:orders",messaging_system="bridge"} 2`,
		`bridge_queue_messages{bridge_queue="work",bridge_state="visible",messaging_system="bridge"} 0`,
		`bridge_pipeline_lag{bridge_partition="1",bridge_pipeline="route",bridge_route="fulfillment",messaging_system="bridge"} 0`,
		`bridge_log_segments{bridge_partition="0",bridge_topic="orders",messaging_system="bridge"}`,
		`messaging_client_operation_duration_seconds_count{bridge_pipeline="route"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Spans are exported in batches; a clean stop flushes them to stdout.
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	out := in.stderr.String()
	for _, name := range []string{`"Name":"ingest orders"`, `"Name":"process route/fulfillment"`,
		`"Name":"send exchange:orders"`, `"Name":"receive work"`} {
		i := strings.Index(out, name)
		if i < 0 {
			t.Fatalf("stdout exporter output lacks span %s", name)
		}
		// The span's trace id follows its name within the same JSON object.
		if !strings.Contains(out[i:min(len(out), i+400)], callerTraceID) {
			t.Fatalf("span %s is not in trace %s:\n%s", name, callerTraceID, out[i:min(len(out), i+400)])
		}
	}
}

func httpGet(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

const kafkaRabbitConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
connections:
  k: { type: kafka, brokers: [${BROKERS}] }
  r: { type: amqp, url: "amqp://guest:guest@127.0.0.1:5672/" }
backbone:
  type: embedded
  topics:
    events: { partitions: 1 }
sources:
  - { name: kin, type: kafka, connection: k, topics: [in], group: trace-e2e, topic: events }
pipelines:
  - name: relay
    from: events
    routes:
      - name: rabbit
        to: { amqp: { connection: r, exchange: ${EXCHANGE}, routing_key: '"trace"' } }
`

// TestTraceKafkaToRabbitMQ: a Kafka record's traceparent header keeps its
// trace id through the bridge into the AMQP message's headers.
func TestTraceKafkaToRabbitMQ(t *testing.T) {
	t.Parallel()
	conn, err := amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		t.Fatalf("RabbitMQ at 127.0.0.1:5672: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	exchange := "bridge-trace-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := ch.ExchangeDeclare(exchange, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	tmpl := strings.NewReplacer("${BROKERS}", `"`+strings.Join(cluster.ListenAddrs(), `","`)+`"`, "${EXCHANGE}", exchange).Replace(kafkaRabbitConfig)
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, tmpl)
	start(t, cfg, httpAddr, sqsAddr, data)

	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	rec := &kgo.Record{Topic: "in", Value: []byte(`{"n":1}`), Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(callerTraceParent)}}}
	if err := producer.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-deliveries:
		tp, _ := d.Headers["traceparent"].(string)
		if len(tp) != 55 || tp[3:35] != callerTraceID {
			t.Fatalf("RabbitMQ message traceparent %q (headers %v), want trace %s", tp, d.Headers, callerTraceID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no message reached RabbitMQ within 30s")
	}
}

const tlsConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}", tls: { cert_file: "${CERT}", key_file: "${KEY}" } }
sqs_api: { listen: "${SQS}", tls: { cert_file: "${CERT}", key_file: "${KEY}" } }
backbone:
  type: embedded
  topics:
    t: { partitions: 1 }
broker:
  queues:
    q: {}
pipelines:
  - name: p
    from: t
    routes:
      - to: { queue: q }
`

// TestTLSListeners: with tls configured, the HTTP API and the SQS API serve
// HTTPS only (a plain-HTTP request fails), and clients trusting the
// certificate work end to end.
func TestTLSListeners(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPEM, certFile, keyFile := selfSigned(t, dir)
	data := t.TempDir()
	tmpl := strings.NewReplacer("${CERT}", certFile, "${KEY}", keyFile).Replace(tlsConfig)
	cfg, httpAddr, sqsAddr := writeConfig(t, data, tmpl)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}

	cmd := exec.Command(binary, "run", "-c", cfg)
	var stderr lockedBuffer
	cmd.Stderr, cmd.Stdout = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 60*time.Second, func() error {
		resp, err := client.Get("https://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	for _, tc := range []struct{ name, addr string }{{"http api", httpAddr}, {"sqs api", sqsAddr}} {
		t.Run(tc.name+" refuses plain http", func(t *testing.T) {
			resp, err := http.Post("http://"+tc.addr+"/", "text/plain", nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("plain HTTP got %d, want 400 (client sent HTTP to an HTTPS server)", resp.StatusCode)
				}
			}
		})
	}
	if code, _, err := postTLS(client, "https://"+httpAddr, "t", `{"value":"hello"}`); err != nil || code != 200 {
		t.Fatalf("POST over TLS: %d %v", code, err)
	}
	sqsc := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + sqsAddr), HTTPClient: client,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	waitFor(t, 20*time.Second, func() error {
		out, err := sqsc.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String("https://" + sqsAddr + "/000000000000/q"), WaitTimeSeconds: 1})
		if err != nil {
			return err
		}
		if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "hello" {
			return fmt.Errorf("received %d messages", len(out.Messages))
		}
		return nil
	})
	if !strings.Contains(stderr.String(), `msg="SQS API listening"`) || !strings.Contains(stderr.String(), "tls=true") {
		t.Fatalf("startup log does not say the SQS API uses TLS:\n%s", stderr.String())
	}
}

func postTLS(c *http.Client, base, topic, body string) (int, string, error) {
	resp, err := c.Post(base+"/v1/topics/"+topic+"/events", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// (librabbitmq checks the host name as a DNS name) and its key.
func selfSigned(t *testing.T, dir string) (certPEM []byte, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bridge-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM, certFile, keyFile
}
