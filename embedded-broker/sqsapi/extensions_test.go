package sqsapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

func stringAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func numberAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(v)}
}

// receiveOne receives at most one message with every attribute, without waiting.
func (e *testEnv) receiveOne(url string) (types.Message, bool) {
	e.t.Helper()
	out, err := e.client.ReceiveMessage(e.t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
		MaxNumberOfMessages: 1, MessageAttributeNames: []string{"All"}})
	if err != nil {
		e.t.Fatalf("ReceiveMessage: %v", err)
	}
	if len(out.Messages) == 0 {
		return types.Message{}, false
	}
	return out.Messages[0], true
}

// TestSDKPriorityQueue: a priority queue created over the SQS API
// (bridge-max-priority) delivers by the bridge-priority attribute, higher
// first, FIFO within a priority, above the maximum counted as the maximum;
// the attribute stays on the message.
func TestSDKPriorityQueue(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("jobs", map[string]string{"bridge-max-priority": "5", "bridge-priority-aging": "1h"})
	sends := []struct {
		body     string
		priority string // "" = none
	}{{"low", ""}, {"mid-1", "3"}, {"top", "5"}, {"mid-2", "3"}, {"capped", "200"}, {"one", "1"}}
	for _, s := range sends {
		in := &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(s.body)}
		if s.priority != "" {
			in.MessageAttributes = map[string]types.MessageAttributeValue{AttributePriority: numberAttr(s.priority)}
		}
		if _, err := e.client.SendMessage(ctx, in); err != nil {
			t.Fatalf("send %s: %v", s.body, err)
		}
	}
	var order []string
	for {
		msg, ok := e.receiveOne(url)
		if !ok {
			break
		}
		order = append(order, aws.ToString(msg.Body))
		if aws.ToString(msg.Body) == "top" && aws.ToString(msg.MessageAttributes[AttributePriority].StringValue) != "5" {
			t.Fatalf("priority attribute = %+v", msg.MessageAttributes)
		}
	}
	if want := []string{"top", "capped", "mid-1", "mid-2", "one", "low"}; !slices.Equal(order, want) {
		t.Fatalf("delivery order = %v, want %v", order, want)
	}
	got, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil || got.Attributes["bridge-max-priority"] != "5" || got.Attributes["bridge-priority-aging"] != "3600" ||
		got.Attributes["bridge-message-ttl"] != "" {
		t.Fatalf("GetQueueAttributes = %v, %v", got.Attributes, err)
	}
	if _, err := e.client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url),
		Attributes: map[string]string{"bridge-max-priority": "9"}}); err != nil {
		t.Fatalf("SetQueueAttributes: %v", err)
	}
	if cfg := mustQueue(t, e, "jobs").Config(); cfg.MaxPriority != 9 {
		t.Fatalf("max priority after set = %d", cfg.MaxPriority)
	}
}

// TestSDKMessageTTL: bridge-message-ttl on the queue and bridge-ttl on a
// message (the lower wins); expired messages are never received and move
// to the RedrivePolicy's dead-letter queue with bridge-error: expired.
func TestSDKMessageTTL(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.createQueue("expired", nil)
	url := e.createQueue("offers", map[string]string{
		"bridge-message-ttl": "30",
		"RedrivePolicy":      `{"deadLetterTargetArn":"` + e.arn("expired") + `","maxReceiveCount":"5"}`,
	})
	dlq := e.http.URL + "/000000000000/expired"
	for _, m := range []struct{ body, ttl string }{{"short", "300ms"}, {"tenth", "0.1"}, {"kept", ""}} {
		in := &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(m.body)}
		if m.ttl != "" {
			in.MessageAttributes = map[string]types.MessageAttributeValue{AttributeTTL: stringAttr(m.ttl)}
		}
		if _, err := e.client.SendMessage(ctx, in); err != nil {
			t.Fatalf("send %s: %v", m.body, err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	msg, ok := e.receiveOne(url)
	if !ok || aws.ToString(msg.Body) != "kept" {
		t.Fatalf("received %v, %v; want kept", ok, aws.ToString(msg.Body))
	}
	if _, ok := e.receiveOne(url); ok {
		t.Fatal("an expired message was received")
	}
	var dead []string
	waitFor(t, 5*time.Second, func() error {
		msg, ok := e.receiveOne(dlq)
		if ok {
			if reason := aws.ToString(msg.MessageAttributes["bridge-error"].StringValue); reason != "expired" {
				return fmt.Errorf("bridge-error = %q", reason)
			}
			dead = append(dead, aws.ToString(msg.Body))
		}
		if len(dead) < 2 {
			return fmt.Errorf("dead letters so far: %v", dead)
		}
		return nil
	})
	slices.Sort(dead)
	if !slices.Equal(dead, []string{"short", "tenth"}) {
		t.Fatalf("dead letters = %v", dead)
	}
}

// TestSDKLongDelay: bridge-delay delays past DelaySeconds' 900 seconds (up
// to the retention); short ones are delivered at their time.
func TestSDKLongDelay(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("scheduled", nil)
	for _, m := range []struct{ body, delay string }{{"tomorrow", "24h"}, {"soon", "1.5"}} {
		if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(m.body),
			MessageAttributes: map[string]types.MessageAttributeValue{AttributeDelay: stringAttr(m.delay)}}); err != nil {
			t.Fatalf("send %s: %v", m.body, err)
		}
	}
	if st := mustQueue(t, e, "scheduled").Stats(); st.Delayed != 2 {
		t.Fatalf("stats = %+v, want 2 delayed", st)
	}
	start := time.Now()
	out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 5, MaxNumberOfMessages: 10})
	if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "soon" {
		t.Fatalf("receive = %v, %v", out, err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("delivered after %v, before its delay", took)
	}
}

// TestSDKExtensionValidation: malformed bridge-* attributes, tags and
// queue attributes are refused with SQS's error codes.
func TestSDKExtensionValidation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("v", nil)
	fifo := e.createQueue("v.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	long := strings.Repeat("c", 256)
	sends := []struct {
		name  string
		url   string
		attrs map[string]types.MessageAttributeValue
		delay int32
	}{
		{"priority too high", url, map[string]types.MessageAttributeValue{AttributePriority: numberAttr("256")}, 0},
		{"priority negative", url, map[string]types.MessageAttributeValue{AttributePriority: numberAttr("-1")}, 0},
		{"priority not a number", url, map[string]types.MessageAttributeValue{AttributePriority: stringAttr("high")}, 0},
		{"priority binary", url, map[string]types.MessageAttributeValue{AttributePriority: {DataType: aws.String("Binary"), BinaryValue: []byte{1}}}, 0},
		{"ttl zero", url, map[string]types.MessageAttributeValue{AttributeTTL: numberAttr("0")}, 0},
		{"ttl garbage", url, map[string]types.MessageAttributeValue{AttributeTTL: stringAttr("soon")}, 0},
		{"delay and DelaySeconds", url, map[string]types.MessageAttributeValue{AttributeDelay: stringAttr("1h")}, 5},
		{"delay past the retention", url, map[string]types.MessageAttributeValue{AttributeDelay: stringAttr("96h")}, 0},
		{"delay on a FIFO queue", fifo, map[string]types.MessageAttributeValue{AttributeDelay: stringAttr("1h")}, 0},
		{"reply-to not a queue", url, map[string]types.MessageAttributeValue{AttributeReplyTo: stringAttr("http://h/0/bad name")}, 0},
		{"correlation id too long", url, map[string]types.MessageAttributeValue{AttributeCorrelationID: stringAttr(long)}, 0},
	}
	for _, tc := range sends {
		t.Run(tc.name, func(t *testing.T) {
			in := &sqs.SendMessageInput{QueueUrl: aws.String(tc.url), MessageBody: aws.String("x"), MessageAttributes: tc.attrs, DelaySeconds: tc.delay}
			if tc.url == fifo {
				in.MessageGroupId = aws.String("g")
			}
			_, err := e.client.SendMessage(ctx, in)
			if errorCode(err) != "InvalidParameterValue" {
				t.Fatalf("send = %v, want InvalidParameterValue", err)
			}
		})
	}
	for name, attrs := range map[string]map[string]string{
		"max priority 256":   {"bridge-max-priority": "256"},
		"ttl not a duration": {"bridge-message-ttl": "forever"},
		"aging without max":  {"bridge-priority-aging": "10"},
		"ttl past retention": {"bridge-message-ttl": "7200", "MessageRetentionPeriod": "3600"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("bad"), Attributes: attrs})
			if code := errorCode(err); code != "InvalidAttributeValue" && code != "InvalidParameterValue" {
				t.Fatalf("create = %v", err)
			}
		})
	}
	_, err := e.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("p.fifo"),
		Attributes: map[string]string{"FifoQueue": "true", "bridge-max-priority": "3"}})
	if errorCode(err) != "InvalidAttributeValue" {
		t.Fatalf("priority FIFO queue: %v", err)
	}
	_, err = e.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("t"), Tags: map[string]string{TagTemporary: "sometimes"}})
	if errorCode(err) != "InvalidParameterValue" {
		t.Fatalf("bad temporary tag: %v", err)
	}
}

// TestSDKTemporaryQueue: CreateQueue with the bridge-temporary tag makes a
// queue that is deleted once idle; re-creating it with the same tag returns
// it, without it is QueueAlreadyExists.
func TestSDKTemporaryQueue(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	create := func(tags map[string]string) error {
		_, err := e.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("reply-abc"), Tags: tags})
		return err
	}
	if err := create(map[string]string{TagTemporary: "1s"}); err != nil {
		t.Fatal(err)
	}
	if cfg := mustQueue(t, e, "reply-abc").Config(); cfg.IdleTimeout != time.Second {
		t.Fatalf("idle timeout = %v", cfg.IdleTimeout)
	}
	if err := create(map[string]string{TagTemporary: "1"}); err != nil {
		t.Fatalf("same tag again: %v", err)
	}
	if err := create(map[string]string{TagTemporary: "false"}); errorCode(err) != "QueueAlreadyExists" {
		t.Fatalf("other tag: %v", err)
	}
	waitFor(t, 10*time.Second, func() error {
		_, err := e.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("reply-abc")})
		var missing *types.QueueDoesNotExist
		if !errors.As(err, &missing) {
			return fmt.Errorf("queue still there: %v", err)
		}
		return nil
	})
	if err := create(map[string]string{TagTemporary: "true"}); err != nil {
		t.Fatal(err)
	}
	if cfg := mustQueue(t, e, "reply-abc").Config(); cfg.IdleTimeout != DefaultIdleTimeout {
		t.Fatalf("idle timeout for true = %v", cfg.IdleTimeout)
	}
}

func mustQueue(t *testing.T, e *testEnv, name string) *queue.Queue {
	t.Helper()
	q, err := e.manager.Get(name)
	if err != nil {
		t.Fatalf("queue %s: %v", name, err)
	}
	return q
}

// FuzzParseTime: the time parser of bridge-ttl, bridge-delay and the queue
// attributes never panics, never yields a negative or absurd duration, and
// what formatSeconds writes reads back to within a microsecond.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"0", "90", "0.5", "1500ms", "2h", "-1", "NaN", "1e300", "+Inf", "3.000000001", "1h30m", "", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseTime(s)
		if !ok {
			return
		}
		if d < 0 || d > 100*365*24*time.Hour+time.Second {
			t.Fatalf("parseTime(%q) = %v", s, d)
		}
		back, ok := parseTime(formatSeconds(d))
		if diff := back - d; !ok || diff > time.Microsecond || diff < -time.Microsecond {
			t.Fatalf("parseTime(%q) = %v; formatted %q reads back as %v, %v", s, d, formatSeconds(d), back, ok)
		}
	})
}
