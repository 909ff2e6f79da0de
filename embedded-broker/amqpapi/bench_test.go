package amqpapi

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The AMQP API against the real RabbitMQ, side by side in one run, with
// the same amqp091-go client code: publish 100-byte persistent messages
// with confirms (a window of outstanding confirms), then consume them with
// manual acks (one ack per message). Targets: bridge under each fsync
// policy (in process, loopback TCP) and RabbitMQ on 127.0.0.1:5672 with a
// classic and a quorum queue.
//
//	go test -run '^$' -bench 'BenchmarkAMQP' -benchtime 3x ./embedded-broker/amqpapi/
//
// BRIDGE_AMQP_BENCH_N sets the messages per iteration (default 100000),
// BRIDGE_AMQP_BENCH_WINDOW the confirm window (default 1000) and the
// consumer's prefetch.

func benchN() int { return envInt("BRIDGE_AMQP_BENCH_N", 100000) }

func benchWindow() int { return envInt("BRIDGE_AMQP_BENCH_WINDOW", 1000) }

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

type benchTarget struct {
	name  string
	url   func(b *testing.B) string
	queue amqp.Table // declare arguments
}

func benchTargets() []benchTarget {
	bridge := func(fsync string) func(b *testing.B) string {
		return func(b *testing.B) string { return startBrokerWith(b, b.TempDir(), fsync).url }
	}
	rabbit := func(b *testing.B) string {
		nc, err := net.DialTimeout("tcp", rabbitAddr, time.Second)
		if err != nil {
			b.Skipf("RabbitMQ not listening on %s", rabbitAddr)
		}
		nc.Close()
		return "amqp://guest:guest@" + rabbitAddr + "/"
	}
	return []benchTarget{
		{name: "bridge/fsync=always", url: bridge("always")},
		{name: "bridge/fsync=interval", url: bridge("interval")},
		{name: "bridge/fsync=never", url: bridge("never")},
		{name: "rabbitmq/classic", url: rabbit, queue: amqp.Table{"x-queue-type": "classic"}},
		{name: "rabbitmq/quorum", url: rabbit, queue: amqp.Table{"x-queue-type": "quorum"}},
	}
}

func BenchmarkAMQPPublishConfirm(b *testing.B) {
	for _, target := range benchTargets() {
		b.Run(target.name, func(b *testing.B) {
			url := target.url(b)
			n, window := benchN(), benchWindow()
			conn, ch, queueName := benchSetup(b, url, target.queue)
			defer conn.Close()
			var elapsed time.Duration
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				lat = append(lat, publishConfirmed(b, ch, queueName, n, window)...)
				elapsed += time.Since(start)
				b.StopTimer()
				if _, err := ch.QueuePurge(queueName, false); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-confirm-µs")
		})
	}
}

func BenchmarkAMQPConsumeAck(b *testing.B) {
	for _, target := range benchTargets() {
		b.Run(target.name, func(b *testing.B) {
			url := target.url(b)
			n, window := benchN(), benchWindow()
			conn, ch, queueName := benchSetup(b, url, target.queue)
			defer conn.Close()
			var elapsed time.Duration
			for b.Loop() {
				b.StopTimer()
				publishConfirmed(b, ch, queueName, n, window)
				b.StartTimer()
				start := time.Now()
				consumeAcked(b, conn, queueName, n, window)
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

func benchSetup(b *testing.B, url string, args amqp.Table) (*amqp.Connection, *amqp.Channel, string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if c, err := amqp.Dial(url); err == nil {
			if ch, err := c.Channel(); err == nil {
				_, _ = ch.QueueDelete(name, false, false, false)
			}
			c.Close()
		}
	})
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	return conn, ch, name
}

// publishConfirmed publishes n messages keeping at most window
// unconfirmed, and returns each message's publish-to-confirm latency.
func publishConfirmed(b *testing.B, ch *amqp.Channel, queueName string, n, window int) []time.Duration {
	body := make([]byte, 100)
	type pending struct {
		dc *amqp.DeferredConfirmation
		at time.Time
	}
	inflight := make([]pending, 0, window)
	lat := make([]time.Duration, 0, n)
	wait := func(p pending) {
		if !p.dc.Wait() {
			b.Fatal("nacked")
		}
		lat = append(lat, time.Since(p.at))
	}
	for i := range n {
		if len(inflight) == window {
			wait(inflight[0])
			inflight = inflight[1:]
		}
		dc, err := ch.PublishWithDeferredConfirm("", queueName, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
		if err != nil {
			b.Fatalf("publish %d: %v", i, err)
		}
		inflight = append(inflight, pending{dc, time.Now()})
	}
	for _, p := range inflight {
		wait(p)
	}
	return lat
}

// consumeAcked consumes n messages with prefetch window, acking each.
func consumeAcked(b *testing.B, conn *amqp.Connection, queueName string, n, window int) {
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Qos(window, 0, false); err != nil {
		b.Fatal(err)
	}
	ds, err := ch.Consume(queueName, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		select {
		case d := <-ds:
			if err := d.Ack(false); err != nil {
				b.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			b.Fatalf("consumed %d of %d", i, n)
		}
	}
}
