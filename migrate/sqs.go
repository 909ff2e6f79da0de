package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/connectors/sqs"
	"github.com/bridgeio/bridge/connectors/sqsattr"
	"github.com/bridgeio/bridge/event"
)

// sqsSystem is an SQS queue (AWS, the embedded SQS API, or any emulator
// speaking the JSON protocol).
type sqsSystem struct {
	ep     *Endpoint
	name   string
	log    *slog.Logger
	client *awssqs.Client

	mu       sync.Mutex // guards queueURL
	queueURL string
}

func newSQSSystem(e *Endpoint, name string, log *slog.Logger) (*sqsSystem, error) {
	keyID, secret := e.AccessKeyID, e.SecretAccessKey
	if keyID == "" && e.SQSEndpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		// A local SQS (the embedded API without credentials, an emulator)
		// takes any signature; without this the SDK would look for AWS
		// credentials (and the EC2 metadata service) first.
		keyID, secret = "bridge", "bridge"
	}
	client, err := sqs.NewClient(context.Background(), sqs.ClientConfig{Region: e.Region, Endpoint: e.SQSEndpoint,
		AccessKeyID: keyID, SecretAccessKey: secret})
	if err != nil {
		return nil, err
	}
	return &sqsSystem{ep: e, name: name, log: log, client: client, queueURL: e.QueueURL}, nil
}

// url resolves the queue URL (GetQueueUrl for sqs://NAME); create makes
// the queue when it does not exist.
func (s *sqsSystem) url(ctx context.Context, create bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queueURL != "" && !create {
		return s.queueURL, nil
	}
	out, err := s.client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(s.ep.QueueName)})
	if err == nil {
		if s.queueURL == "" {
			s.queueURL = aws.ToString(out.QueueUrl)
		}
		return s.queueURL, nil
	}
	var missing *types.QueueDoesNotExist
	if !create || !errors.As(err, &missing) {
		return "", fmt.Errorf("queue %q on %s: %w", s.ep.QueueName, s.ep, err)
	}
	in := &awssqs.CreateQueueInput{QueueName: aws.String(s.ep.QueueName)}
	if s.ep.FIFO() {
		in.Attributes = map[string]string{"FifoQueue": "true"}
	}
	created, err := s.client.CreateQueue(ctx, in)
	if err != nil {
		return "", fmt.Errorf("create queue %q on %s: %w", s.ep.QueueName, s.ep, err)
	}
	s.log.Info("created target queue", "queue", s.ep.QueueName)
	if s.queueURL == "" {
		s.queueURL = aws.ToString(created.QueueUrl)
	}
	return s.queueURL, nil
}

func (s *sqsSystem) source(maxBatch int) (event.Source, error) {
	u, err := s.url(context.Background(), false)
	if err != nil {
		return nil, err
	}
	return sqs.NewSource(sqs.SourceConfig{Client: s.client, QueueURL: u, MaxMessages: min(max(maxBatch, 0), 10),
		WaitTime: 2 * time.Second, Name: s.name + "-source", Logger: s.log})
}

func (s *sqsSystem) sink() (event.Sink, error) {
	u, err := s.url(context.Background(), false)
	if err != nil {
		return nil, err
	}
	return sqs.NewSink(sqs.SinkConfig{Client: s.client, QueueURL: u, Name: s.name + "-sink", Logger: s.log})
}

func (s *sqsSystem) checkSource(ctx context.Context) error {
	_, err := s.url(ctx, false)
	return err
}

func (s *sqsSystem) prepareTarget(ctx context.Context, _ int) error {
	_, err := s.url(ctx, true)
	return err
}

// depth counts visible, in-flight and delayed messages: an in-flight one
// is either being moved or will come back.
func (s *sqsSystem) depth(ctx context.Context) (int64, bool, error) {
	u, err := s.url(ctx, false)
	if err != nil {
		return 0, false, err
	}
	names := []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed}
	out, err := s.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(u), AttributeNames: names})
	if err != nil {
		return 0, false, err
	}
	var n int64
	for _, name := range names {
		v, _ := strconv.ParseInt(out.Attributes[string(name)], 10, 64)
		n += v
	}
	return n, true, nil
}

func (s *sqsSystem) mark(context.Context) (map[int32]int64, error) { return nil, nil }
func (s *sqsSystem) close()                                        {}

// Read-back tuning: the visibility the messages get while the whole queue
// is collected, how many empty receives in a row end the collection, and
// one poller, so that the receive order is the queue's order (as far as a
// standard queue keeps one) and order_violations mean something.
const (
	sqsReadVisibility = 5 * time.Minute
	sqsReadEmpty      = 2
	sqsReadPollers    = 1
)

// readBack receives every message of the queue with a visibility timeout
// long enough to collect them all, never deletes one, and finally makes
// them all visible again (ChangeMessageVisibility 0). Each receive raises
// a message's ApproximateReceiveCount, so a queue with a redrive policy of
// a low maxReceiveCount can move messages to its dead-letter queue: see
// the README. A FIFO queue cannot be read back this way (SQS holds a
// message group while one of its messages is in flight).
func (s *sqsSystem) readBack(ctx context.Context, _ map[int32]int64, fn func(targetMessage)) error {
	if s.ep.FIFO() {
		return errors.New("verifying a FIFO SQS target is not supported: SQS holds a message group while its messages are in flight, so the queue cannot be read whole without deleting")
	}
	u, err := s.url(ctx, false)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(sqsReadVisibility - 30*time.Second)
	var (
		mu       sync.Mutex
		seen     = map[string]bool{}
		receipts []string
		n        int
		empty    = 0
		failed   error
	)
	var wg sync.WaitGroup
	for range sqsReadPollers {
		wg.Go(func() {
			for {
				mu.Lock()
				done := empty >= sqsReadEmpty*sqsReadPollers || failed != nil
				mu.Unlock()
				if done || ctx.Err() != nil {
					return
				}
				if time.Now().After(deadline) {
					mu.Lock()
					failed = errors.New("read back: the queue could not be read within the visibility timeout")
					mu.Unlock()
					return
				}
				out, err := s.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(u),
					MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: int32(sqsReadVisibility / time.Second),
					MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
				mu.Lock()
				if err != nil {
					failed = fmt.Errorf("read back: receive: %w", err)
					mu.Unlock()
					return
				}
				if len(out.Messages) == 0 {
					empty++
				} else {
					empty = 0
				}
				for i := range out.Messages {
					m := &out.Messages[i]
					receipts = append(receipts, aws.ToString(m.ReceiptHandle))
					id := aws.ToString(m.MessageId)
					if seen[id] {
						continue // a second receive of one message, not a duplicate
					}
					seen[id] = true
					fn(targetMessage{Event: eventFromSQS(m), Position: id})
					n++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	restore := s.release(context.WithoutCancel(ctx), u, receipts)
	return errors.Join(failed, restore)
}

// release makes the collected messages visible again, ten per request.
func (s *sqsSystem) release(ctx context.Context, u string, receipts []string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var failedCount int
	for start := 0; start < len(receipts); start += 10 {
		end := min(start+10, len(receipts))
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, 0, end-start)
		for i, r := range receipts[start:end] {
			entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)),
				ReceiptHandle: aws.String(r), VisibilityTimeout: 0})
		}
		out, err := s.client.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(u), Entries: entries})
		if err != nil {
			failedCount += len(entries)
			continue
		}
		failedCount += len(out.Failed)
	}
	if failedCount > 0 {
		return fmt.Errorf("read back: %d messages could not be made visible again; they reappear after %s", failedCount, sqsReadVisibility)
	}
	return nil
}

// eventFromSQS maps a received message to the canonical event through
// the same attribute mapping the SQS connector uses (sqsattr).
func eventFromSQS(m *types.Message) event.Event {
	attrs := make([]sqsattr.Attribute, 0, len(m.MessageAttributes))
	for name, v := range m.MessageAttributes {
		value := aws.ToString(v.StringValue)
		if v.StringValue == nil && v.BinaryValue != nil {
			value = string(v.BinaryValue)
		}
		attrs = append(attrs, sqsattr.Attribute{Name: name, Value: value})
	}
	key, headers, _ := sqsattr.FromAttributes(sortAttributes(attrs))
	return event.Event{Key: key, Value: []byte(aws.ToString(m.Body)), Headers: headers}
}

// sortAttributes orders attributes by name with bridge-headers last, as
// the connector does, so repeated header values keep their order.
func sortAttributes(attrs []sqsattr.Attribute) []sqsattr.Attribute {
	slices.SortFunc(attrs, func(a, b sqsattr.Attribute) int {
		if (a.Name == event.HeaderOverflow) != (b.Name == event.HeaderOverflow) {
			if a.Name == event.HeaderOverflow {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return attrs
}
