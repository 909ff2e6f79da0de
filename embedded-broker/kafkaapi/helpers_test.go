package kafkaapi

import (
	"context"
	"errors"
	"hash/crc32"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testServer is a Server on an ephemeral port over a log in a temp dir.
type testServer struct {
	t    testing.TB
	srv  *Server
	log  *commitlog.Log
	addr string
	dir  string
	done chan error
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("KAFKAAPI_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// startServer opens a log in dir (a new temp dir when empty) and serves it.
func startServer(t testing.TB, dir string, tweak func(*Options)) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	l, err := commitlog.Open(commitlog.Options{Dir: dir, Fsync: commitlog.FsyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Log: l, Logger: testLogger(t)}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, srv: srv, log: l, addr: ln.Addr().String(), dir: dir, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(ts.stop)
	return ts
}

var stopped atomic.Int64

// stop closes the server and the log; idempotent.
func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ts.srv.Close()
	select {
	case err := <-ts.done:
		if err != nil {
			ts.t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		ts.t.Errorf("server did not stop")
	}
	if err := ts.log.Close(); err != nil {
		ts.t.Errorf("close log: %v", err)
	}
	ts.srv = nil
	stopped.Add(1)
}

func (ts *testServer) topic(name string, partitions int) {
	ts.t.Helper()
	if err := ts.log.CreateTopic(name, partitions); err != nil {
		ts.t.Fatal(err)
	}
}

func (ts *testServer) client(opts ...kgo.Opt) *kgo.Client {
	ts.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ts.addr), kgo.RetryTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(cl.Close)
	return cl
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// consume polls cl until n records arrived or the time is up.
func consume(t testing.TB, cl *kgo.Client, n int, d time.Duration) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t, d)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), n)
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
			}
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
