package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bridgeio/bridge/bench/internal/canned"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/embedded-broker/sqsapi"
	"github.com/bridgeio/bridge/internal/leanhttp"
)

// BenchmarkSQSServerCPU is issue 14's server figure as a Go benchmark: the
// SQS server runs in this process, the AWS SDK loop of cmd/sqsload (batches
// of 10, 200-byte bodies, 4 producers + 4 consumers) in another, and the
// figure is this process's CPU time (getrusage: user + system) per message
// moved, reported as server-µs/msg. Four servers, side by side in one run:
// bridge's SQS API (fsync "interval") and the canned floor (answers with
// fixed bytes, no queue), each on internal/leanhttp (what bridge runs) and
// on net/http. Goal of the issue: bridge ≤ 17 µs/msg; the canned floor
// shows what HTTP alone costs for this request stream on the machine.
// scripts/sqs-server-cpu.sh measures the same from outside, with fauxqs.
//
//	go test -run '^$' -bench SQSServerCPU -benchtime 1x -count 3 .
//
// SQS_CPU_MESSAGES sets the messages per iteration (default 10000).
func BenchmarkSQSServerCPU(b *testing.B) {
	load := sqsloadBinary(b)
	messages := 10000
	if v, err := strconv.Atoi(os.Getenv("SQS_CPU_MESSAGES")); err == nil && v > 0 {
		messages = v / 10 * 10
	}
	for _, server := range []string{"bridge", "canned"} {
		for _, httpServer := range []string{"leanhttp", "net-http"} {
			b.Run("server="+server+"/http="+httpServer, func(b *testing.B) {
				var h http.Handler
				if server == "bridge" {
					h = bridgeSQS(b)
				} else {
					h = canned.Handler(200)
				}
				endpoint := serveHTTP(b, h, httpServer == "leanhttp")
				var cpu time.Duration
				moved := 0
				for b.Loop() {
					before := processCPU()
					out, err := exec.Command(load, "-endpoint", endpoint, "-messages", strconv.Itoa(messages)).CombinedOutput()
					if err != nil {
						b.Fatalf("sqsload: %v\n%s", err, out)
					}
					cpu += processCPU() - before
					moved += messages
				}
				b.ReportMetric(float64(cpu.Microseconds())/float64(moved), "server-µs/msg")
			})
		}
	}
}

var sqsload struct {
	once sync.Once
	path string
	err  error
}

// sqsloadBinary builds cmd/sqsload once per test binary run.
func sqsloadBinary(b *testing.B) string {
	sqsload.once.Do(func() {
		dir, err := os.MkdirTemp("", "sqsload")
		if err != nil {
			sqsload.err = err
			return
		}
		sqsload.path = filepath.Join(dir, "sqsload")
		out, err := exec.Command("go", "build", "-o", sqsload.path, "./cmd/sqsload").CombinedOutput()
		if err != nil {
			sqsload.err = errors.New(err.Error() + ": " + string(out))
		}
	})
	if sqsload.err != nil {
		b.Fatalf("build sqsload: %v", sqsload.err)
	}
	return sqsload.path
}

// bridgeSQS is bridge's SQS API over real queues, fsync "interval".
func bridgeSQS(b *testing.B) http.Handler {
	m, err := queue.Open(queue.Options{Dir: b.TempDir(), Fsync: "interval"})
	if err != nil {
		b.Fatal(err)
	}
	s := sqsapi.New(m, sqsapi.Options{Addr: "127.0.0.1:1"})
	b.Cleanup(func() {
		_ = s.Close(context.Background())
		_ = m.Close()
	})
	return s
}

// serveHTTP serves h on loopback with leanhttp (as bridge does) or net/http
// (as bridge did), with bridge's settings.
func serveHTTP(b *testing.B, h http.Handler, lean bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	if lean {
		s := &leanhttp.Server{Handler: h, MaxHeaderBytes: 16 << 10, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, WriteTimeout: time.Minute}
		go func() { _ = s.Serve(ln); close(done) }()
		b.Cleanup(func() { _ = s.Close(); <-done })
	} else {
		s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() { _ = s.Serve(ln); close(done) }()
		b.Cleanup(func() { _ = s.Close(); <-done })
	}
	return "http://" + ln.Addr().String()
}
