package kafkaapi

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dropListener wraps a server's listener so that chosen produce responses
// are lost: the connection closes instead of carrying the answer, after
// the server appended the batch. An idempotent client then retries the same
// batch with the same sequence, and the server must not append it twice.
// It wraps the server side, so it works for bridge (Serve) and kfake
// (ListenFn) alike, and clients reach the server at its own address.
type dropListener struct {
	net.Listener
	produces atomic.Int64 // produce requests seen
	dropped  atomic.Int64
	dropEach int64 // drop every dropEach-th produce response
	maxDrops int64
}

func (l *dropListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &dropConn{Conn: c, l: l, doomed: map[int32]bool{}}, nil
}

type dropConn struct {
	net.Conn
	l      *dropListener
	mu     sync.Mutex
	in     []byte // unparsed request bytes
	doomed map[int32]bool
}

func (c *dropConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in = append(c.in, p[:n]...)
	for len(c.in) >= 12 {
		size := int(binary.BigEndian.Uint32(c.in))
		if len(c.in) < 4+size {
			break
		}
		key := int16(binary.BigEndian.Uint16(c.in[4:]))
		corr := int32(binary.BigEndian.Uint32(c.in[8:]))
		if key == 0 {
			if seen := c.l.produces.Add(1); seen%c.l.dropEach == 0 && c.l.dropped.Load() < c.l.maxDrops {
				c.l.dropped.Add(1)
				c.doomed[corr] = true
			}
		}
		c.in = c.in[4+size:]
	}
	c.mu.Unlock()
	return n, err
}

// Write checks the frames of each write (both servers write whole frames).
func (c *dropConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for rest := p; len(rest) >= 8; {
		size := int(binary.BigEndian.Uint32(rest))
		if c.doomed[int32(binary.BigEndian.Uint32(rest[4:]))] {
			c.mu.Unlock()
			c.Conn.Close()
			return 0, net.ErrClosed
		}
		if len(rest) < 4+size {
			break
		}
		rest = rest[4+size:]
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func retryTargets(t *testing.T) []target {
	ts := startServer(t, "", nil)
	// A second server on a dropping listener, over the same log.
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bridgeDrops := &dropListener{Listener: inner, dropEach: 3, maxDrops: 4}
	srv, err := New(Options{Log: ts.log, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), bridgeDrops) }()
	t.Cleanup(func() { srv.Close(); <-done })

	kfakeDrops := &dropListener{dropEach: 3, maxDrops: 4}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		kfakeDrops.Listener = ln
		return kfakeDrops, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	createKfake := func(t *testing.T, topic string, partitions int) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadmClient(cl).CreateTopic(ctxT(t, 10*time.Second), int32(partitions), 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	return []target{
		{name: "bridge", addr: inner.Addr().String(), create: func(t *testing.T, topic string, n int) { ts.topic(topic, n) }, drops: &bridgeDrops.dropped},
		{name: "kfake", addr: c.ListenAddrs()[0], create: createKfake, drops: &kfakeDrops.dropped},
	}
}

// TestInteropIdempotentRetries: franz-go, rdkafka_performance and kafkajs
// produce idempotently while some produce responses are lost; every record
// is stored exactly once, on bridge as on kfake.
func TestInteropIdempotentRetries(t *testing.T) {
	t.Parallel()
	tl := tools(t)
	for _, tg := range retryTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			before := tg.drops.Load()
			// franz-go
			tg.create(t, "retry-franz", 1)
			cl, err := kgo.NewClient(kgo.SeedBrokers(tg.addr), kgo.DefaultProduceTopic("retry-franz"), kgo.RequestRetries(20))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 30 {
				if err := cl.ProduceSync(ctxT(t, 20*time.Second), &kgo.Record{Value: fmt.Appendf(nil, "f-%d", i)}).FirstErr(); err != nil {
					t.Fatalf("franz-go produce %d: %v", i, err)
				}
			}
			cl.Close()
			got, _ := readValues(t, tg.addr, "retry-franz", 30)
			sameStrings(t, "franz-go", got, expected("f", 30))
			assertEnd(t, tg.addr, "retry-franz", 30)

			tg.create(t, "retry-js", 1)
			runClient(t, tl, nil, tl.node, script("kafkajs.js"), "produce", tg.addr, "retry-js", "200", "gzip", "js", "idempotent")
			got, _ = readValues(t, tg.addr, "retry-js", 200)
			sameStrings(t, "kafkajs", got, expected("js", 200))
			assertEnd(t, tg.addr, "retry-js", 200)

			tg.create(t, "retry-rd", 1)
			runClient(t, tl, nil, tl.rdkafkaPerf, "-P", "-t", "retry-rd", "-p", "0", "-b", tg.addr, "-s", "100", "-c", "3000",
				"-z", "lz4", "-X", "enable.idempotence=true", "-X", "linger.ms=2", "-X", "batch.num.messages=100")
			assertEnd(t, tg.addr, "retry-rd", 3000)
			if tg.drops.Load()-before < 3 {
				t.Fatalf("only %d responses were dropped: the retry path was not exercised", tg.drops.Load()-before)
			}
		})
	}
}

// assertEnd checks a one-partition topic holds exactly n records.
func assertEnd(t *testing.T, addr, topic string, n int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadmClient(cl).ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup(topic, 0); o.Offset != n {
		t.Fatalf("%s holds %d records, want exactly %d (duplicates or losses on retry)", topic, o.Offset, n)
	}
}

func kadmClient(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }
