// Command sqs-rpc is request-reply (RPC) over bridge's SQS API with an
// unmodified AWS SDK, as RabbitMQ's direct reply-to allows over AMQP.
//
// The server consumes a request queue and answers each request on the
// queue its bridge-reply-to attribute names, with the request's
// bridge-correlation-id. The client creates one temporary reply queue
// (CreateQueue with the tag bridge-temporary), sends requests carrying both
// attributes, and matches replies to calls by correlation id. bridge
// deletes the reply queue once the client stopped using it, so clients
// that come and go leave nothing behind.
//
// With a bridge whose sqs_api listens on 127.0.0.1:9324:
//
//	go run ./docs/examples/sqs-rpc server
//	go run ./docs/examples/sqs-rpc client hello world
//
// The server uppercases what it is sent. main_test.go runs both against
// an in-process SQS API.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sqs-rpc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "server" && args[0] != "client" {
		return fmt.Errorf("usage: sqs-rpc server|client [--endpoint URL] [--queue NAME] [REQUEST...]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:9324", "bridge's SQS API")
	queueName := fs.String("queue", "rpc-requests", "the request queue (created if absent)")
	idle := fs.Duration("idle", time.Minute, "client: delete the reply queue after this long unused")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	client := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(*endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: queueName})
	if err != nil {
		return fmt.Errorf("create %s: %w", *queueName, err)
	}
	requests := aws.ToString(out.QueueUrl)
	if args[0] == "server" {
		s := &Server{SQS: client, Requests: requests, Log: slog.Default(), Handle: func(_ context.Context, req string) (string, error) {
			return strings.ToUpper(req), nil
		}}
		return s.Serve(ctx)
	}
	c, err := NewClient(ctx, client, requests, *idle)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, req := range fs.Args() {
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		reply, err := c.Call(callCtx, req)
		cancel()
		if err != nil {
			return fmt.Errorf("call %q: %w", req, err)
		}
		fmt.Printf("%s -> %s\n", req, reply)
	}
	return nil
}
