package migrate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rabbitURL is the local RabbitMQ (PEERS.md).
func rabbitURL() string {
	if u := os.Getenv("BRIDGE_TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

func uniqueName(what string) string {
	return fmt.Sprintf("bridge-migrate-test-%s-%x", what, rand.Uint64())
}

// newQueue declares a durable queue deleted when the test ends.
func newQueue(tb testing.TB) string {
	tb.Helper()
	name := uniqueName("q")
	conn, err := amqp091.Dial(rabbitURL())
	if err != nil {
		tb.Fatalf("RabbitMQ at 127.0.0.1:5672: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := amqp091.Dial(rabbitURL())
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(name, false, false, false)
		}
	})
	return name
}

// publish sends n persistent messages with confirms: body size bytes,
// message_id m-I, header seq=I and bridge-key k-(I%keys).
func publish(tb testing.TB, queue string, n, size, keys int) {
	tb.Helper()
	conn, err := amqp091.Dial(rabbitURL())
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		tb.Fatal(err)
	}
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	ctx := context.Background()
	const window = 500
	var pending []*amqp091.DeferredConfirmation
	for i := range n {
		copy(body, fmt.Sprintf("%08d", i))
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp091.Publishing{
			DeliveryMode: amqp091.Persistent, Body: append([]byte(nil), body...), MessageId: "m-" + strconv.Itoa(i),
			ContentType: "text/plain",
			Headers:     amqp091.Table{"seq": strconv.Itoa(i), "bridge-key": "k-" + strconv.Itoa(i%keys)},
		})
		if err != nil {
			tb.Fatal(err)
		}
		pending = append(pending, dc)
		if len(pending) == window || i == n-1 {
			for _, d := range pending {
				if ok, err := d.WaitContext(ctx); err != nil || !ok {
					tb.Fatalf("publish not confirmed: %v", err)
				}
			}
			pending = pending[:0]
		}
	}
}

// newKafka starts an in-process Kafka (kfake) for the test.
func newKafka(tb testing.TB) *kfake.Cluster {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// consumeAll reads every record of topic from the start until n arrived.
func consumeAll(tb testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("got %d of %d records", len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}
