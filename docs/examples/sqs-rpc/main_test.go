package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/embedded-broker/sqsapi"
)

// TestRPC runs the example's server and two clients against bridge's SQS
// API in process: 100 concurrent calls each, every reply reaches the call
// that made it, and each client's temporary reply queue is deleted once the
// client has gone; a late reply to it is dropped by the server.
func TestRPC(t *testing.T) {
	m, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "interval"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hs := httptest.NewUnstartedServer(nil)
	api := sqsapi.New(m, sqsapi.Options{Addr: hs.Listener.Addr().String()})
	hs.Config.Handler = api
	hs.Start()
	defer hs.Close()
	defer api.Close(context.Background())
	client := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(hs.URL),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("rpc-requests")})
	if err != nil {
		t.Fatal(err)
	}
	requests := aws.ToString(out.QueueUrl)
	server := &Server{SQS: client, Requests: requests, Log: slog.New(slog.DiscardHandler),
		Handle: func(_ context.Context, req string) (string, error) { return strings.ToUpper(req), nil }}
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- server.Serve(ctx) })

	var replyQueues []string
	for n := range 2 {
		c, err := NewClient(ctx, client, requests, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		replyQueues = append(replyQueues, c.ReplyQueue())
		var calls sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			calls.Go(func() {
				callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				req := fmt.Sprintf("client %d call %d", n, i)
				reply, err := c.Call(callCtx, req)
				if err == nil && reply != strings.ToUpper(req) {
					err = fmt.Errorf("call %q got %q", req, reply)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		calls.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		c.Close()
	}
	// The clients are gone: their reply queues go after a second idle.
	for _, url := range replyQueues {
		name := url[strings.LastIndexByte(url, '/')+1:]
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
			var gone *types.QueueDoesNotExist
			if errors.As(err, &gone) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reply queue %s still there: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// A request whose client is gone is answered into nothing and deleted.
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(requests), MessageBody: aws.String("late"),
		MessageAttributes: map[string]types.MessageAttributeValue{
			attrReplyTo:       {DataType: aws.String("String"), StringValue: aws.String(replyQueues[0])},
			attrCorrelationID: {DataType: aws.String("String"), StringValue: aws.String("x")},
		}}); err != nil {
		t.Fatal(err)
	}
	q, _ := m.Get("rpc-requests")
	deadline := time.Now().Add(10 * time.Second)
	for st := q.Stats(); st.Visible+st.InFlight > 0; st = q.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the late request is still queued: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if err := <-serveErr; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
