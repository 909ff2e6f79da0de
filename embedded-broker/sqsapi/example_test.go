package sqsapi_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/embedded-broker/sqsapi"
)

// An unmodified AWS SDK client talks to the embedded queues.
func Example() {
	dir, err := os.MkdirTemp("", "sqsapi-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	queues, err := queue.Open(queue.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer queues.Close()

	hs := httptest.NewUnstartedServer(nil)
	server := sqsapi.New(queues, sqsapi.Options{Addr: hs.Listener.Addr().String()})
	defer server.Close(context.Background())
	hs.Config.Handler = server
	hs.Start()
	defer hs.Close()

	ctx := context.Background()
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(hs.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
	})
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders")})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: created.QueueUrl, MessageBody: aws.String("order 1")}); err != nil {
		log.Fatal(err)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: created.QueueUrl, WaitTimeSeconds: 1})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range out.Messages {
		fmt.Println(aws.ToString(m.Body))
		if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: created.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
			log.Fatal(err)
		}
	}
	// Output: order 1
}
