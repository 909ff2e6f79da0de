package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The attributes and tag bridge's SQS API reads (docs/queues.md).
const (
	attrReplyTo       = "bridge-reply-to"
	attrCorrelationID = "bridge-correlation-id"
	tagTemporary      = "bridge-temporary"
)

// Server answers requests from one queue: handle's result goes to the queue
// each request's bridge-reply-to names, with its bridge-correlation-id.
type Server struct {
	SQS      *sqs.Client
	Requests string // the request queue's URL
	Handle   func(ctx context.Context, request string) (string, error)
	Log      *slog.Logger
}

// Serve receives and answers requests until ctx is cancelled. A request
// is deleted once its reply is sent, or once it is clear the reply cannot
// be (its client and its temporary reply queue are gone): at-least-once,
// so a client may see a reply twice after a server crash and drops the
// second by its correlation id.
func (s *Server) Serve(ctx context.Context) error {
	for ctx.Err() == nil {
		out, err := s.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.Requests),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 20, MessageAttributeNames: []string{attrReplyTo, attrCorrelationID}})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("receive requests: %w", err)
		}
		for _, msg := range out.Messages {
			if err := s.answer(ctx, msg); err != nil {
				s.Log.Warn("request not answered; it comes back after its visibility timeout", "error", err)
				continue
			}
			if _, err := s.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.Requests), ReceiptHandle: msg.ReceiptHandle}); err != nil && ctx.Err() == nil {
				s.Log.Warn("delete request", "error", err)
			}
		}
	}
	return nil
}

func (s *Server) answer(ctx context.Context, msg types.Message) error {
	replyTo := aws.ToString(msg.MessageAttributes[attrReplyTo].StringValue)
	id := msg.MessageAttributes[attrCorrelationID]
	if replyTo == "" {
		s.Log.Warn("request without bridge-reply-to; dropped", "message_id", aws.ToString(msg.MessageId))
		return nil
	}
	result, err := s.Handle(ctx, aws.ToString(msg.Body))
	if err != nil {
		result = "error: " + err.Error()
	}
	_, err = s.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(replyTo), MessageBody: aws.String(result),
		MessageAttributes: map[string]types.MessageAttributeValue{attrCorrelationID: id}})
	var gone *types.QueueDoesNotExist
	if errors.As(err, &gone) {
		// The client went away and its temporary queue with it: nobody
		// waits for this reply.
		s.Log.Info("reply queue gone; reply dropped", "reply_to", replyTo)
		return nil
	}
	return err
}

// Client makes calls through one temporary reply queue, which bridge
// deletes once the client stops using it (the bridge-temporary tag).
type Client struct {
	sqs      *sqs.Client
	requests string
	replies  string

	mu      sync.Mutex
	pending map[string]chan string // correlation id → the caller waiting
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

// NewClient creates the client's reply queue (deleted by bridge after
// idle of no use) and starts receiving replies. Close stops it.
func NewClient(ctx context.Context, client *sqs.Client, requests string, idle time.Duration) (*Client, error) {
	name := "reply-" + randomID()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name),
		Tags: map[string]string{tagTemporary: idle.String()}})
	if err != nil {
		return nil, fmt.Errorf("create reply queue: %w", err)
	}
	c := &Client{sqs: client, requests: requests, replies: aws.ToString(out.QueueUrl), pending: map[string]chan string{}}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.wg.Go(func() { c.receiveReplies(loopCtx) })
	return c, nil
}

// ReplyQueue returns the URL of the client's temporary reply queue.
func (c *Client) ReplyQueue() string { return c.replies }

// Call sends request and waits for its reply, or for ctx.
func (c *Client) Call(ctx context.Context, request string) (string, error) {
	id := randomID()
	ch := make(chan string, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	_, err := c.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(c.requests), MessageBody: aws.String(request),
		MessageAttributes: map[string]types.MessageAttributeValue{
			attrReplyTo:       {DataType: aws.String("String"), StringValue: aws.String(c.replies)},
			attrCorrelationID: {DataType: aws.String("String"), StringValue: aws.String(id)},
		}})
	if err != nil {
		return "", fmt.Errorf("send request: %w", err)
	}
	select {
	case reply := <-ch:
		return reply, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// receiveReplies long-polls the reply queue and hands each reply to the
// caller waiting for its correlation id; a reply nobody waits for (a
// duplicate, or a call that timed out) is dropped.
func (c *Client) receiveReplies(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := c.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(c.replies),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 20, MessageAttributeNames: []string{attrCorrelationID}})
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond) // back off, then poll again
			}
			continue
		}
		entries := make([]types.DeleteMessageBatchRequestEntry, 0, len(out.Messages))
		for i, msg := range out.Messages {
			id := aws.ToString(msg.MessageAttributes[attrCorrelationID].StringValue)
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- aws.ToString(msg.Body) // capacity 1, one reply per id
			}
			entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: msg.ReceiptHandle})
		}
		if len(entries) > 0 {
			_, _ = c.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(c.replies), Entries: entries})
		}
	}
}

// Close stops receiving replies. The reply queue is left to bridge, which
// deletes it once idle; DeleteQueue would do it at once.
func (c *Client) Close() {
	c.cancel()
	c.wg.Wait()
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
