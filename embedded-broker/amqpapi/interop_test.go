package amqpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitAddr is the real RabbitMQ the interop suites also run against
// (scripts/test.sh starts it), to prove they check RabbitMQ's behaviour.
const rabbitAddr = "127.0.0.1:5672"

// skipClients reports whether the environment asks to skip the suites
// that need tools outside Go; scripts/test.sh never sets it.
func skipClients(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("BRIDGE_SKIP_AMQP_CLIENTS") != "" {
		t.Skipf("BRIDGE_SKIP_AMQP_CLIENTS set: %s", why)
	}
	t.Fatalf("%s: run scripts/test.sh (scripts/ensure.d/amqp-clients.sh installs the clients) or set BRIDGE_SKIP_AMQP_CLIENTS=1", why)
}

// TestInterop runs one suite per independent client (amqp091-go, pika,
// amqplib, amqp-tools) against bridge and against the real RabbitMQ:
// publish with confirms, consume with acks and prefetch, requeue,
// mandatory returns, server-named queues, heartbeats, channel errors.
func TestInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("interop suites take ~30 s")
	}
	b := startBroker(t)
	bridgeAddr := strings.TrimSuffix(strings.TrimPrefix(b.url, "amqp://guest:guest@"), "/")
	targets := []struct{ name, addr string }{{"bridge", bridgeAddr}, {"rabbitmq", rabbitAddr}}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			if target.name == "rabbitmq" {
				if nc, err := net.DialTimeout("tcp", rabbitAddr, time.Second); err != nil {
					skipClients(t, "RabbitMQ is not listening on "+rabbitAddr)
				} else {
					nc.Close()
				}
			}
			prefix := fmt.Sprintf("interop-%d", time.Now().UnixNano())
			base := "amqp://guest:guest@" + target.addr
			t.Run("amqp091-go", func(t *testing.T) { runGoSuite(t, base+"/", prefix) })
			t.Run("pika", func(t *testing.T) {
				runScript(t, "/usr/bin/python3", []string{"testdata/interop/pika_suite.py"}, base+"/%2F", prefix,
					"/usr/bin/python3", "-c", "import pika; print('pika', pika.__version__)")
			})
			t.Run("amqplib", func(t *testing.T) {
				dir := os.Getenv("BRIDGE_AMQPLIB_DIR")
				if dir == "" {
					skipClients(t, "BRIDGE_AMQPLIB_DIR is not set")
				}
				runScript(t, "node", []string{"testdata/interop/amqplib_suite.js"}, base, prefix,
					"node", "-p", "'amqplib '+require('"+dir+"/node_modules/amqplib/package.json').version", "AMQPLIB_DIR="+dir)
			})
			t.Run("amqp-tools", func(t *testing.T) {
				runScript(t, "/bin/sh", []string{"testdata/interop/amqptools_suite.sh"}, base, prefix,
					"dpkg-query", "-W", "amqp-tools")
			})
		})
	}
}

// runScript runs a client's suite and fails with its output unless it
// exits 0. version is a command printing the client's version (logged).
func runScript(t *testing.T, interpreter string, args []string, url, prefix string, version ...string) {
	t.Helper()
	var env []string
	for len(version) > 0 && strings.Contains(version[len(version)-1], "=") {
		env = append(env, version[len(version)-1])
		version = version[:len(version)-1]
	}
	if _, err := exec.LookPath(interpreter); err != nil {
		skipClients(t, interpreter+" is not installed")
	}
	if out, err := exec.Command(version[0], version[1:]...).CombinedOutput(); err != nil {
		skipClients(t, fmt.Sprintf("client missing (%s: %v: %s)", strings.Join(version, " "), err, out))
	} else {
		t.Logf("client: %s", strings.TrimSpace(string(out)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter, args...)
	cmd.Env = append(append(os.Environ(), "AMQP_URL="+url, "PREFIX="+prefix), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("%s %s: %v", interpreter, strings.Join(args, " "), err)
	}
}

// runGoSuite is the amqp091-go client's suite: the same checks as the
// scripts.
func runGoSuite(t *testing.T, url, prefix string) {
	conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ch, err := conn.Channel()
	must(err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(err)
	if !strings.HasPrefix(q.Name, "amq.gen-") {
		t.Fatalf("server-named queue %q", q.Name)
	}
	work := prefix + "-go-work"
	_, err = ch.QueueDeclare(work, true, false, false, false, nil)
	must(err)
	defer func() {
		if c, err := conn.Channel(); err == nil {
			_, _ = c.QueueDelete(work, false, false, false)
		}
	}()
	must(ch.Confirm(false))
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	var last *amqp.DeferredConfirmation
	for i := range 20 {
		last, err = ch.PublishWithDeferredConfirm("", work, false, false, amqp.Publishing{DeliveryMode: 2, Body: []byte(fmt.Sprint(i))})
		must(err)
	}
	if !last.Wait() {
		t.Fatal("publish nacked")
	}
	if st, err := ch.QueueDeclarePassive(work, true, false, false, false, nil); err != nil || st.Messages != 20 {
		t.Fatalf("after confirms: %+v %v", st, err)
	}
	cch, err := conn.Channel()
	must(err)
	must(cch.Qos(5, 0, false))
	ds, err := cch.Consume(work, "", false, false, false, false, nil)
	must(err)
	var held []amqp.Delivery
	for range 5 {
		held = append(held, recv(t, ds, 5*time.Second))
	}
	noRecv(t, ds, 500*time.Millisecond)
	for _, d := range held {
		must(d.Ack(false))
	}
	for range 15 {
		must(recv(t, ds, 5*time.Second).Ack(false))
	}
	must(ch.Publish("", work, false, false, amqp.Publishing{Body: []byte("again")}))
	first := recv(t, ds, 5*time.Second)
	must(first.Nack(false, true))
	second := recv(t, ds, 5*time.Second)
	if first.Redelivered || !second.Redelivered || second.DeliveryTag == first.DeliveryTag || string(second.Body) != "again" {
		t.Fatalf("requeue: first %v/%d second %v/%d %q", first.Redelivered, first.DeliveryTag, second.Redelivered, second.DeliveryTag, second.Body)
	}
	must(second.Ack(false))
	dc, err := ch.PublishWithDeferredConfirm("amq.direct", prefix+"-nowhere", true, false, amqp.Publishing{Body: []byte("x")})
	must(err)
	dc.Wait()
	select {
	case r := <-returns:
		if r.ReplyCode != 312 {
			t.Fatalf("return %+v", r)
		}
	default:
		t.Fatal("no basic.return before the confirm")
	}
	time.Sleep(3500 * time.Millisecond) // heartbeats keep the idle connection
	_, err = ch.QueueDeclarePassive(work, true, false, false, false, nil)
	must(err)
	bad, err := conn.Channel()
	must(err)
	_, err = bad.QueueDeclarePassive(prefix+"-missing", true, false, false, false, nil)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound || conn.IsClosed() {
		t.Fatalf("channel error: %v (connection closed: %v)", err, conn.IsClosed())
	}
}
