// Command sqsload drives an SQS endpoint with the AWS SDK for Go v2 (JSON
// 1.0 protocol): producers send batches of 10 messages, consumers receive up
// to 10 (long polling) and delete them with DeleteMessageBatch, until every
// message sent was deleted. scripts/sqs-server-cpu.sh runs it against bridge
// and fauxqs to measure each server's CPU time per message from outside.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func main() {
	endpoint := flag.String("endpoint", "", "SQS endpoint, e.g. http://127.0.0.1:9324")
	messages := flag.Int("messages", 30000, "messages to move (a multiple of 10)")
	producers := flag.Int("producers", 4, "concurrent SendMessageBatch loops")
	consumers := flag.Int("consumers", 4, "concurrent ReceiveMessage + DeleteMessageBatch loops")
	bodyBytes := flag.Int("body-bytes", 200, "message body size")
	flag.Parse()
	if err := run(*endpoint, *messages, *producers, *consumers, *bodyBytes); err != nil {
		fmt.Fprintln(os.Stderr, "sqsload:", err)
		os.Exit(1)
	}
}

func run(endpoint string, messages, producers, consumers, bodyBytes int) error {
	if endpoint == "" || messages%10 != 0 || messages <= 0 {
		return errors.New("need -endpoint and -messages as a positive multiple of 10")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	client := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
	name := fmt.Sprintf("sqsload-%d", time.Now().UnixNano())
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	defer func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: created.QueueUrl})
	}()
	body := aws.String(strings.Repeat("x", bodyBytes))
	var sent, deleted, failures atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup
	batches := int64(messages / 10)
	var next atomic.Int64
	for range producers {
		wg.Go(func() {
			entries := make([]types.SendMessageBatchRequestEntry, 10)
			for i := range entries {
				entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("m", i)), MessageBody: body}
			}
			for next.Add(1) <= batches {
				for runCtx.Err() == nil {
					out, err := client.SendMessageBatch(runCtx, &sqs.SendMessageBatchInput{QueueUrl: created.QueueUrl, Entries: entries})
					if err == nil && len(out.Failed) == 0 {
						sent.Add(10)
						break
					}
					failures.Add(1)
				}
			}
		})
	}
	for range consumers {
		wg.Go(func() {
			del := make([]types.DeleteMessageBatchRequestEntry, 0, 10)
			for runCtx.Err() == nil {
				out, err := client.ReceiveMessage(runCtx, &sqs.ReceiveMessageInput{QueueUrl: created.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				if err != nil || len(out.Messages) == 0 {
					if err != nil && runCtx.Err() == nil {
						failures.Add(1)
					}
					continue
				}
				del = del[:0]
				for i, m := range out.Messages {
					del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("d", i)), ReceiptHandle: m.ReceiptHandle})
				}
				res, err := client.DeleteMessageBatch(runCtx, &sqs.DeleteMessageBatchInput{QueueUrl: created.QueueUrl, Entries: del})
				if err != nil {
					failures.Add(1)
					continue
				}
				if deleted.Add(int64(len(res.Successful))) >= int64(messages) {
					stop()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if deleted.Load() < int64(messages) {
		return fmt.Errorf("only %d of %d messages deleted (%d failed calls)", deleted.Load(), messages, failures.Load())
	}
	fmt.Printf("messages=%d sent=%d deleted=%d failed_calls=%d seconds=%.2f msgs_per_s=%.0f\n",
		messages, sent.Load(), deleted.Load(), failures.Load(), elapsed.Seconds(), float64(messages)/elapsed.Seconds())
	return nil
}
