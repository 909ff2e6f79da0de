package sqs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/embedded-broker/sqsapi"
	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/event/eventtest"
	"github.com/bridgeio/bridge/internal/fauxqs"
)

// fauxqsURL is the endpoint of the fauxqs process TestMain started.
var fauxqsURL string

// TestMain starts one fauxqs (an independent SQS emulator) for the package.
// It is installed by the repository's test script; see PEERS.md.
func TestMain(m *testing.M) {
	url, stop, err := fauxqs.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fauxqsURL = url
	code := m.Run()
	stop()
	os.Exit(code)
}

// peer is an SQS endpoint the tests run against.
type peer struct {
	name   string
	client func(t testing.TB) *awssqs.Client
}

var peers = []peer{
	{"fauxqs", func(t testing.TB) *awssqs.Client { return newSDKClient(fauxqsURL) }},
	{"embedded", embeddedClient},
}

func newSDKClient(endpoint string) *awssqs.Client {
	return awssqs.New(awssqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
	})
}

// embeddedClient starts the embedded SQS API over queues in a temporary
// directory for the test.
func embeddedClient(t testing.TB) *awssqs.Client {
	t.Helper()
	m, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
	if err != nil {
		t.Fatalf("open queues: %v", err)
	}
	hs := httptest.NewUnstartedServer(nil)
	s := sqsapi.New(m, sqsapi.Options{Addr: hs.Listener.Addr().String()})
	hs.Config.Handler = s
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		_ = s.Close(context.Background())
		_ = m.Close()
	})
	return newSDKClient(hs.URL)
}

// createQueue creates a uniquely named queue (FIFO when fifo) with the given
// visibility timeout, deleted when the test ends, and returns its URL.
func createQueue(t testing.TB, c *awssqs.Client, fifo bool, visibility time.Duration) string {
	t.Helper()
	name := fmt.Sprintf("bridge-test-%016x", rand.Uint64())
	attrs := map[string]string{"VisibilityTimeout": strconv.Itoa(int(visibility / time.Second))}
	if fifo {
		name += ".fifo"
		attrs["FifoQueue"] = "true"
	}
	out, err := c.CreateQueue(context.Background(), &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		_, _ = c.DeleteQueue(context.Background(), &awssqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	})
	return url
}

// reader receives and deletes messages, mapping them as the source does.
func reader(c *awssqs.Client, url string) eventtest.Reader {
	fifo := len(url) > 5 && url[len(url)-5:] == ".fifo"
	return func(ctx context.Context) ([]event.Event, error) {
		out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return nil, err
		}
		evs := make([]event.Event, 0, len(out.Messages))
		var del []types.DeleteMessageBatchRequestEntry
		for i := range out.Messages {
			e, err := fromMessage(&out.Messages[i], fifo, "", time.Time{})
			if err != nil {
				return nil, err
			}
			evs = append(evs, e)
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: out.Messages[i].ReceiptHandle})
		}
		if len(del) > 0 {
			if _, err := c.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del}); err != nil {
				return evs, err
			}
		}
		return evs, nil
	}
}

// publish sends events with a bare SDK loop (batches of 10), mapping them
// as the package doc says a producer should.
func publish(ctx context.Context, c *awssqs.Client, url string, evs []event.Event) error {
	fifo := len(url) > 5 && url[len(url)-5:] == ".fifo"
	for from := 0; from < len(evs); from += 10 {
		var reqs []types.SendMessageBatchRequestEntry
		for i := from; i < min(from+10, len(evs)); i++ {
			en, err := toEntry(i, &evs[i], event.Params{}, fifo)
			if err != nil {
				return err
			}
			reqs = append(reqs, en.req)
		}
		out, err := c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: reqs})
		if err != nil {
			return err
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("publish: %d failed, first %s: %s", len(out.Failed), aws.ToString(out.Failed[0].Code), aws.ToString(out.Failed[0].Message))
		}
	}
	return nil
}

func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
