package sqs

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bridgeio/bridge/event"
)

// silentFront is a TCP front of fauxqs whose first `silent` connections
// are accepted and then never answered nor closed, as a connection that a
// network partition left half-open; later connections reach fauxqs.
type silentFront struct {
	ln     net.Listener
	silent int32
	taken  atomic.Int32
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newSilentFront(t *testing.T, upstream string, silent int32) *silentFront {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &silentFront{ln: ln, silent: silent}
	f.wg.Go(func() { f.accept(upstream) })
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *silentFront) accept(upstream string) {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		if f.taken.Add(1) <= f.silent {
			f.wg.Go(func() { _, _ = io.Copy(io.Discard, c) }) // swallow, never answer
			continue
		}
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, up)
		f.mu.Unlock()
		f.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
		f.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
	}
}

func (f *silentFront) url() string { return "http://" + f.ln.Addr().String() }

// TestSilentPeerTimesOut is the regression test of a route that hung for
// ever: a SendMessageBatch or ReceiveMessage on a connection nobody
// answers (a half-open connection after a network partition) waited
// without any bound, since neither the SDK's default client nor the
// connectors set one, so the route or poller never retried, even after
// the network healed (found by e2e/TestChaosSQS with Toxiproxy). Now each
// call is bounded by RequestTimeout and fails retryably; the next call
// opens a new connection and succeeds.
func TestSilentPeerTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	direct := newSDKClient(fauxqsURL)
	url := createQueue(t, direct, false, 30*time.Second)

	t.Run("sink", func(t *testing.T) {
		front := newSilentFront(t, strings.TrimPrefix(fauxqsURL, "http://"), 1)
		sink, err := NewSink(SinkConfig{Client: newSDKClient(front.url()), QueueURL: url, Name: "test", RequestTimeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		batch := []event.Event{{Value: []byte("after the partition")}}
		began := time.Now()
		err = withDeadline(t, 10*time.Second, "Send to a silent peer", func() error { return sink.Send(ctx, batch) })
		if err == nil || errors.Is(err, event.ErrPermanent) || !strings.Contains(err.Error(), "request timeout") {
			t.Fatalf("Send to a silent peer: %v, want a retryable request-timeout error", err)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Fatalf("Send took %v with a %v request timeout", took, timeout)
		}
		if err := sink.Send(ctx, batch); err != nil {
			t.Fatalf("second Send (new connection): %v", err)
		}
		out, err := direct.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 2})
		if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "after the partition" {
			t.Fatalf("receive after the retry: %v %+v", err, out)
		}
		if _, err := direct.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("source", func(t *testing.T) {
		if _, err := direct.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("polled")}); err != nil {
			t.Fatal(err)
		}
		front := newSilentFront(t, strings.TrimPrefix(fauxqsURL, "http://"), 1)
		src, err := NewSource(SourceConfig{Client: newSDKClient(front.url()), QueueURL: url, Name: "test",
			Concurrency: 1, WaitTime: time.Second, RequestTimeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		rctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			_ = src.Run(rctx, func(_ context.Context, evs []event.Event) error {
				select {
				case got <- string(evs[0].Value):
				default:
				}
				return nil
			})
		})
		defer func() { stop(); wg.Wait() }()
		select {
		case v := <-got:
			if v != "polled" {
				t.Fatalf("delivered %q", v)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the source's first call went to a silent peer and it never polled again")
		}
	})
}

// withDeadline runs f and fails the test if it has not returned after d.
func withDeadline(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s still blocked after %v", what, d)
		return nil
	}
}
