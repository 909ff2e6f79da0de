package sqsapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/internal/leanhttp"
)

// testHTTP is the SQS listener of a test: the same HTTP server as bridge's
// (internal/leanhttp) on a loopback port.
type testHTTP struct {
	URL  string
	Addr string
	ln   net.Listener
	srv  *leanhttp.Server
	done chan error
}

// newTestHTTP listens on a loopback port; Start serves h on it.
func newTestHTTP(t testing.TB) *testHTTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return &testHTTP{URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), ln: ln, done: make(chan error, 1)}
}

func (h *testHTTP) Start(handler http.Handler) {
	h.srv = &leanhttp.Server{Handler: handler, MaxHeaderBytes: 16 << 10, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, WriteTimeout: time.Minute}
	go func() { h.done <- h.srv.Serve(h.ln) }()
}

// Close closes the listener and every connection and waits for them.
func (h *testHTTP) Close() {
	if h.srv == nil {
		_ = h.ln.Close()
		return
	}
	_ = h.srv.Close()
	<-h.done
}

// testEnv is a server over a real queue.Manager in a temporary directory,
// listening on loopback, with an SDK client pointed at it.
type testEnv struct {
	t       *testing.T
	manager *queue.Manager
	server  *Server
	http    *testHTTP
	client  *sqs.Client
}

type envOption func(*Options)

func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	m, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
	if err != nil {
		t.Fatalf("open queues: %v", err)
	}
	hs := newTestHTTP(t)
	o := Options{Addr: hs.Addr}
	for _, opt := range opts {
		opt(&o)
	}
	s := New(m, o)
	hs.Start(s)
	e := &testEnv{t: t, manager: m, server: s, http: hs}
	e.client = e.newClient("x", "x")
	t.Cleanup(func() {
		hs.Close()
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close server: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("close queues: %v", err)
		}
	})
	return e
}

func (e *testEnv) newClient(accessKey, secret string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.http.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
		// A test wants the server's first answer, not the retryer's last.
		RetryMaxAttempts: 1,
	})
}

// createQueue creates a queue through the API and returns its URL.
func (e *testEnv) createQueue(name string, attrs map[string]string) string {
	e.t.Helper()
	out, err := e.client.CreateQueue(e.t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		e.t.Fatalf("create queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

func (e *testEnv) arn(name string) string { return "arn:aws:sqs:us-east-1:000000000000:" + name }

// errorCode returns the API error code of err, or "" when err is not an API error.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// waitFor polls cond until it returns nil or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func body(n int) string { return strings.Repeat("b", n) }
