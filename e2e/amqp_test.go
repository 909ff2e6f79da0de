package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// amqpE2EConfig: a RabbitMQ queue is the source of the backbone topic
// orders (fsync always); a pipeline keeps 4 events in 5 and publishes them
// to a RabbitMQ topic exchange with a routing key computed from the body.
const amqpE2EConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
connections:
  rabbit: { type: amqp, url: "${AMQP_URL}" }
backbone:
  type: embedded
  fsync: always
  topics:
    orders: { partitions: 4 }
sources:
  - { name: legacy, type: amqp, connection: rabbit, queue: "${IN_QUEUE}", topic: orders, key: 'headers["customer"]' }
pipelines:
  - name: relay
    from: orders
    filter: 'body.n % 5 != 0'
    routes:
      - name: rabbit-out
        to: { amqp: { connection: rabbit, exchange: "${OUT_EXCHANGE}", routing_key: '"orders." + body.region' } }
    retry: { initial_backoff: 50ms, max_backoff: 1s }
`

// rabbitVhost creates a vhost of its own for the test, so that forcing
// every connection of it closed touches no other test or user of the
// shared RabbitMQ, and deletes it (with its queues and exchanges) at the
// end. It returns the vhost's AMQP URL.
func rabbitVhost(t *testing.T) string {
	t.Helper()
	vhost := fmt.Sprintf("bridge-e2e-%016x", rand.Uint64())
	ctl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("rabbitmqctl", args...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ctl("add_vhost", vhost)
	t.Cleanup(func() { _ = exec.Command("rabbitmqctl", "delete_vhost", vhost).Run() })
	ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
	return "amqp://guest:guest@127.0.0.1:5672/" + url.PathEscape(vhost)
}

// closeVhostConnections makes RabbitMQ close every connection of the
// vhost of amqpURL (a URL from rabbitVhost), as a broker restart would.
func closeVhostConnections(t *testing.T, amqpURL string) {
	t.Helper()
	vhost, err := url.PathUnescape(amqpURL[strings.LastIndex(amqpURL, "/")+1:])
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("rabbitmqctl", "close_all_connections", "--vhost", vhost, "bridge e2e: forced disconnect").CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl close_all_connections: %v: %s", err, out)
	}
}

// queueDepth returns the number of ready messages in queue, on a
// connection of its own (the tests force-close connections).
func queueDepth(amqpURL, queue string) (int, error) {
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}

const amqpE2ECustomers = 50

// amqpE2ETimestamp is message n's timestamp property (whole seconds, as
// AMQP carries it).
func amqpE2ETimestamp(n int) time.Time { return time.Unix(1_700_000_000+int64(n), 0) }

// amqpE2EMessage is input message n: every property SPEC §8 maps, and
// headers of each AMQP field type.
func amqpE2EMessage(n int) amqp091.Publishing {
	region := []string{"eu", "us", "apac"}[n%3]
	return amqp091.Publishing{
		DeliveryMode:  amqp091.Persistent,
		ContentType:   "application/json",
		MessageId:     "m-" + strconv.Itoa(n),
		CorrelationId: "c-" + strconv.Itoa(n),
		ReplyTo:       "replies",
		Type:          "order.created",
		AppId:         "bridge-e2e",
		Priority:      uint8(n % 10),
		Timestamp:     amqpE2ETimestamp(n),
		Headers: amqp091.Table{
			"customer": "cust-" + strconv.Itoa(n%amqpE2ECustomers),
			"seq":      int64(n),
			"attempt":  int32(3),
			"vip":      n%2 == 0,
			"ratio":    0.25,
			"created":  time.Unix(1_600_000_000, 0).UTC(),
			"tags":     []any{"a", int32(1)},
			"raw":      []byte("bytes-" + strconv.Itoa(n)),
		},
		Body: fmt.Appendf(nil, `{"n":%d,"region":%q}`, n, region),
	}
}

// amqpE2EWantHeaders is how input message n's headers must look on the
// output: SPEC §8 renders non-string values as text.
func amqpE2EWantHeaders(n int) map[string]string {
	customer := "cust-" + strconv.Itoa(n%amqpE2ECustomers)
	return map[string]string{
		"bridge-key": customer,
		"customer":   customer,
		"seq":        strconv.Itoa(n),
		"attempt":    "3",
		"vip":        strconv.FormatBool(n%2 == 0),
		"ratio":      "0.25",
		"created":    "2020-09-13T12:26:40Z",
		"tags":       `["a",1]`,
		"raw":        "bytes-" + strconv.Itoa(n),
	}
}

// TestAMQPQueueToExchange is issue 6 item 5 over the real binary: a
// RabbitMQ queue → bridge source → backbone (fsync always) → pipeline
// (filter, routing key rule) → another RabbitMQ exchange. RabbitMQ closes
// every connection of the test's vhost a quarter of the way through, and
// bridge is SIGKILLed halfway. The output queue then holds every
// selected message at least once (duplicates counted), none of the others,
// each with its properties and headers as SPEC §8 maps them, and the first
// occurrences of each key in input order.
func TestAMQPQueueToExchange(t *testing.T) {
	total := 50_000
	if testing.Short() {
		total = 10_000
	}
	amqpURL := rabbitVhost(t)
	id := strconv.FormatUint(rand.Uint64(), 36)
	inQueue, outExchange, outQueue := "legacy.orders."+id, "orders.out."+id, "orders.fulfil."+id

	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Fatalf("RabbitMQ at 127.0.0.1:5672: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{inQueue, outQueue} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.ExchangeDeclare(outExchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(outQueue, "orders.#", outExchange, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	selected := 0
	for n := range total {
		if n%5 != 0 {
			selected++
		}
	}
	tmpl := strings.NewReplacer("${AMQP_URL}", amqpURL, "${IN_QUEUE}", inQueue, "${OUT_EXCHANGE}", outExchange).Replace(amqpE2EConfig)
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, tmpl)
	started := time.Now()
	in := start(t, cfg, httpAddr, sqsAddr, data)

	// The legacy producer keeps publishing at a steady pace (about 10 s
	// of traffic, 4 s under -short) while RabbitMQ drops connections and
	// bridge is killed; bridge can never be ahead of it, so both faults
	// land mid-stream.
	pub := &amqpE2EPublisher{url: amqpURL, queue: inQueue, total: total, rate: 5000}
	if testing.Short() {
		pub.rate = 2500
	}
	var published sync.WaitGroup
	published.Go(func() { pub.run(t) })

	depth := func() int {
		n, err := queueDepth(amqpURL, outQueue)
		if err != nil {
			return -1
		}
		return n
	}
	waitDepth := func(min int) int {
		var d int
		waitFor(t, 90*time.Second, func() error {
			if d = depth(); d < min {
				return fmt.Errorf("output queue holds %d, waiting for %d", d, min)
			}
			return nil
		})
		return d
	}
	// A quarter of the way: RabbitMQ drops every connection of the vhost
	// (bridge's source and sink and the producer alike), as a broker
	// restart would.
	d := waitDepth(selected / 4)
	closeVhostConnections(t, amqpURL)
	if pub.done.Load() {
		t.Fatal("the producer finished before the forced disconnect: not mid-stream")
	}
	t.Logf("closed all connections with %d of %d selected in the output queue", d, selected)
	waitFor(t, 30*time.Second, func() error {
		if !strings.Contains(in.stderr.String(), "amqp connection lost, reconnecting") {
			return fmt.Errorf("bridge's source did not see the connection close")
		}
		return nil
	})
	// Halfway: SIGKILL, then a restart on the same data dir.
	d = waitDepth(selected / 2)
	in.kill()
	if pub.done.Load() {
		t.Fatal("the producer finished before the SIGKILL: not mid-stream")
	}
	t.Logf("SIGKILL with %d of %d selected in the output queue", d, selected)
	in = start(t, cfg, httpAddr, sqsAddr, data)
	published.Wait()
	t.Logf("producer: %d messages at %d/s, %d reconnects, %d republished after an unconfirmed publish",
		total, pub.rate, pub.reconnects, pub.republished)

	// Done when the source queue is empty, the route has no lag, and the
	// output holds at least every selected message.
	waitFor(t, 90*time.Second, func() error {
		if n, err := queueDepth(amqpURL, inQueue); err != nil || n != 0 {
			return fmt.Errorf("input queue holds %d (%v)", n, err)
		}
		var st struct {
			Routes []struct {
				Lag int64 `json:"lag"`
			} `json:"routes"`
		}
		getJSON(t, in.httpURL+"/v1/pipelines/relay", &st)
		if len(st.Routes) != 1 || st.Routes[0].Lag != 0 {
			return fmt.Errorf("route lag %+v", st.Routes)
		}
		if d := depth(); d < selected {
			return fmt.Errorf("output queue holds %d of %d", d, selected)
		}
		return nil
	})
	elapsed := time.Since(started)
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	got := amqpE2EDrain(t, amqpURL, outQueue, depth())
	seen := map[int]int{}
	lastSeq := map[string]int{}
	checked := 0
	for _, d := range got {
		n, err := strconv.Atoi(strings.TrimPrefix(d.MessageId, "m-"))
		if err != nil {
			t.Fatalf("output message without a known message_id: %+v", d)
		}
		seen[n]++
		if seen[n] > 1 {
			continue
		}
		if n%5 == 0 {
			t.Errorf("message %d passed the filter", n)
			continue
		}
		if problem := amqpE2ECheck(n, &d); problem != "" {
			if checked < 10 {
				t.Error(problem)
			}
			checked++
		}
		key := "cust-" + strconv.Itoa(n%amqpE2ECustomers)
		if prev, ok := lastSeq[key]; ok && n < prev {
			t.Errorf("key %s: message %d arrived after %d", key, n, prev)
		}
		lastSeq[key] = n
	}
	dups := 0
	for n := range total {
		switch {
		case n%5 == 0:
		case seen[n] == 0:
			t.Fatalf("selected message %d is missing from the output (%d distinct of %d)", n, len(seen), selected)
		default:
			dups += seen[n] - 1
		}
	}
	t.Logf("%d messages in, %d selected, all delivered with properties and headers, %d duplicates "+
		"(of which up to %d from the producer's republishing), per-key order kept; 1 forced disconnect + 1 SIGKILL; %v",
		total, selected, dups, pub.republished, elapsed.Round(time.Millisecond))
}

// amqpE2EPublisher publishes messages 0..total-1 to queue at rate per
// second with publisher confirms, as a careful producer does: when the
// connection is lost, it redials and republishes every message of the
// chunk that was not confirmed (at-least-once from the producer too).
type amqpE2EPublisher struct {
	url, queue  string
	total, rate int

	reconnects, republished int // read after run returns
	done                    atomic.Bool
}

func (p *amqpE2EPublisher) run(t *testing.T) {
	defer p.done.Store(true)
	const chunk = 250
	ctx := t.Context()
	begin := time.Now()
	var conn *amqp091.Connection
	var ch *amqp091.Channel
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for from := 0; from < p.total; {
		if conn == nil || conn.IsClosed() {
			if conn != nil {
				p.reconnects++
			}
			var err error
			if conn, ch, err = amqpE2EConfirmChannel(p.url); err != nil {
				if time.Since(begin) > time.Minute {
					t.Errorf("producer: %v", err)
					return
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		to := min(from+chunk, p.total)
		if err := amqpE2EPublishChunk(ctx, ch, p.queue, from, to); err != nil {
			if ctx.Err() != nil {
				return
			}
			_ = conn.Close()
			p.republished += to - from
			continue
		}
		from = to
		if ahead := time.Duration(from)*time.Second/time.Duration(p.rate) - time.Since(begin); ahead > 0 {
			time.Sleep(ahead)
		}
	}
}

func amqpE2EConfirmChannel(url string) (*amqp091.Connection, *amqp091.Channel, error) {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, ch, nil
}

// amqpE2EPublishChunk publishes messages from..to-1 and waits for every
// confirm; any failure means the chunk must be published again.
func amqpE2EPublishChunk(ctx context.Context, ch *amqp091.Channel, queue string, from, to int) error {
	pending := make([]*amqp091.DeferredConfirmation, 0, to-from)
	for n := from; n < to; n++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqpE2EMessage(n))
		if err != nil {
			return err
		}
		pending = append(pending, dc)
	}
	for _, dc := range pending {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := dc.WaitContext(wctx)
		cancel()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("publish %d..%d nacked", from, to)
		}
	}
	return nil
}

// amqpE2EDrain consumes at least want messages from queue (with acks) and
// then until it stays empty for a second.
func amqpE2EDrain(t *testing.T, amqpURL, queue string, want int) []amqp091.Delivery {
	t.Helper()
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(2000, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []amqp091.Delivery
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case d := <-deliveries:
			out = append(out, d)
			if len(out)%1000 == 0 {
				if err := d.Ack(true); err != nil {
					t.Fatal(err)
				}
			}
		case <-time.After(time.Second):
			if len(out) >= want {
				if len(out) > 0 {
					_ = out[len(out)-1].Ack(true)
				}
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("drained %d of %d", len(out), want)
			}
		}
	}
}

// amqpE2ECheck compares output message n with what SPEC §8 promises: every
// property as published, every header rendered as text, the key in
// bridge-key, the origin in bridge-event-id, the routing key from the rule.
func amqpE2ECheck(n int, d *amqp091.Delivery) string {
	in := amqpE2EMessage(n)
	type prop struct {
		name      string
		got, want any
	}
	for _, p := range []prop{
		{"content_type", d.ContentType, in.ContentType}, {"correlation_id", d.CorrelationId, in.CorrelationId},
		{"reply_to", d.ReplyTo, in.ReplyTo}, {"type", d.Type, in.Type}, {"app_id", d.AppId, in.AppId},
		{"priority", d.Priority, in.Priority}, {"timestamp", d.Timestamp.Unix(), in.Timestamp.Unix()},
		{"delivery_mode", d.DeliveryMode, uint8(amqp091.Persistent)}, {"body", string(d.Body), string(in.Body)},
	} {
		if p.got != p.want {
			return fmt.Sprintf("message %d: %s %v, want %v", n, p.name, p.got, p.want)
		}
	}
	var body struct{ Region string }
	_ = json.Unmarshal(in.Body, &body)
	if d.RoutingKey != "orders."+body.Region {
		return fmt.Sprintf("message %d: routing key %q", n, d.RoutingKey)
	}
	for name, want := range amqpE2EWantHeaders(n) {
		if got, _ := d.Headers[name].(string); got != want {
			return fmt.Sprintf("message %d: header %s = %#v, want %q (all: %v)", n, name, d.Headers[name], want, d.Headers)
		}
	}
	if id, _ := d.Headers["bridge-event-id"].(string); !strings.HasPrefix(id, "orders/") {
		return fmt.Sprintf("message %d: bridge-event-id %q", n, id)
	}
	return ""
}
