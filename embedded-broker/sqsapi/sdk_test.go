package sqsapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

func TestQueueLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("orders", map[string]string{"VisibilityTimeout": "45", "DelaySeconds": "2"})
	if want := e.http.URL + "/000000000000/orders"; url != want {
		t.Fatalf("QueueUrl = %q, want %q", url, want)
	}
	// Same attributes: the existing queue. Different: QueueAlreadyExists.
	if again := e.createQueue("orders", map[string]string{"VisibilityTimeout": "45"}); again != url {
		t.Fatalf("re-create returned %q", again)
	}
	_, err := e.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders"), Attributes: map[string]string{"VisibilityTimeout": "46"}})
	var exists *types.QueueNameExists
	if !errors.As(err, &exists) || errorCode(err) != "QueueAlreadyExists" {
		t.Fatalf("create with other attributes: %v, want QueueNameExists/QueueAlreadyExists", err)
	}
	got, err := e.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("orders")})
	if err != nil || aws.ToString(got.QueueUrl) != url {
		t.Fatalf("GetQueueUrl = %v, %v", got, err)
	}
	if _, err := e.client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatalf("DeleteQueue: %v", err)
	}
	_, err = e.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("orders")})
	var missing *types.QueueDoesNotExist
	if !errors.As(err, &missing) || errorCode(err) != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Fatalf("GetQueueUrl after delete: %v, want QueueDoesNotExist", err)
	}
}

func TestQueueAttributesRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.createQueue("dead", nil)
	attrs := map[string]string{
		"VisibilityTimeout":             "45",
		"DelaySeconds":                  "3",
		"MaximumMessageSize":            "2048",
		"MessageRetentionPeriod":        "3600",
		"ReceiveMessageWaitTimeSeconds": "4",
		"RedrivePolicy":                 `{"deadLetterTargetArn":"` + e.arn("dead") + `","maxReceiveCount":"7"}`,
	}
	url := e.createQueue("work", attrs)
	out, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	want := map[string]string{
		"VisibilityTimeout": "45", "DelaySeconds": "3", "MaximumMessageSize": "2048",
		"MessageRetentionPeriod": "3600", "ReceiveMessageWaitTimeSeconds": "4",
		"RedrivePolicy":               `{"deadLetterTargetArn":"` + e.arn("dead") + `","maxReceiveCount":7}`,
		"QueueArn":                    e.arn("work"),
		"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0", "ApproximateNumberOfMessagesDelayed": "0",
	}
	for k, v := range want {
		if out.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, out.Attributes[k], v)
		}
	}
	for _, k := range []string{"CreatedTimestamp", "LastModifiedTimestamp"} {
		ts, err := strconv.ParseInt(out.Attributes[k], 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)) > time.Minute {
			t.Errorf("attribute %s = %q, want a recent epoch second", k, out.Attributes[k])
		}
	}
	if _, ok := out.Attributes["FifoQueue"]; ok {
		t.Errorf("standard queue reports FifoQueue")
	}
	// SetQueueAttributes changes one; named reads return only what was asked.
	if _, err := e.client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"VisibilityTimeout": "10", "RedrivePolicy": ""}}); err != nil {
		t.Fatalf("SetQueueAttributes: %v", err)
	}
	out, err = e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"VisibilityTimeout", "RedrivePolicy"}})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	if len(out.Attributes) != 1 || out.Attributes["VisibilityTimeout"] != "10" {
		t.Fatalf("after set: %v, want only VisibilityTimeout=10 (redrive policy removed)", out.Attributes)
	}
}

func TestQueueAttributeErrors(t *testing.T) {
	e := newEnv(t)
	e.createQueue("dead", nil)
	e.createQueue("dead.fifo", nil)
	tests := []struct {
		name  string
		queue string
		attrs map[string]string
		code  string
	}{
		{"unknown attribute", "q1", map[string]string{"Colour": "blue"}, "InvalidAttributeName"},
		{"visibility too long", "q1", map[string]string{"VisibilityTimeout": "43201"}, "InvalidAttributeValue"},
		{"delay not a number", "q1", map[string]string{"DelaySeconds": "soon"}, "InvalidAttributeValue"},
		{"message size too small", "q1", map[string]string{"MaximumMessageSize": "1023"}, "InvalidAttributeValue"},
		{"retention too short", "q1", map[string]string{"MessageRetentionPeriod": "59"}, "InvalidAttributeValue"},
		{"wait too long", "q1", map[string]string{"ReceiveMessageWaitTimeSeconds": "21"}, "InvalidAttributeValue"},
		{"fifo attribute on standard name", "q1", map[string]string{"FifoQueue": "true"}, "InvalidParameterValue"},
		{"content dedup on standard", "q1", map[string]string{"ContentBasedDeduplication": "true"}, "InvalidAttributeName"},
		{"redrive to missing queue", "q1", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"` + e.arn("nope") + `","maxReceiveCount":3}`}, "InvalidParameterValue"},
		{"redrive count zero", "q1", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"` + e.arn("dead") + `","maxReceiveCount":0}`}, "InvalidParameterValue"},
		{"redrive not json", "q1", map[string]string{"RedrivePolicy": `dead`}, "InvalidParameterValue"},
		{"redrive to other queue type", "q1", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"` + e.arn("dead.fifo") + `","maxReceiveCount":3}`}, "InvalidParameterValue"},
		{"bad name", "has space", nil, "InvalidParameterValue"},
		{"name too long", body(81), nil, "InvalidParameterValue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(tc.queue), Attributes: tc.attrs})
			if got := errorCode(err); got != tc.code {
				t.Fatalf("error %v (code %q), want code %q", err, got, tc.code)
			}
		})
	}
	if names := e.manager.List("q1"); len(names) != 0 {
		t.Fatalf("failed creates left queues %v", names)
	}
}

func TestListQueuesPagination(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 5 {
		want = append(want, e.createQueue(fmt.Sprintf("page-%d", i), nil))
	}
	e.createQueue("other", nil)
	var got []string
	var token *string
	for pages := 0; ; pages++ {
		out, err := e.client.ListQueues(t.Context(), &sqs.ListQueuesInput{QueueNamePrefix: aws.String("page-"), MaxResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatalf("ListQueues: %v", err)
		}
		got = append(got, out.QueueUrls...)
		if token = out.NextToken; token == nil {
			break
		}
		if pages > 5 {
			t.Fatalf("pagination does not end")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	all, err := e.client.ListQueues(t.Context(), &sqs.ListQueuesInput{})
	if err != nil || len(all.QueueUrls) != 6 || all.NextToken != nil {
		t.Fatalf("ListQueues without prefix = %v, %v", all, err)
	}
}

func TestSendReceiveDeleteWithAttributes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("attrs", nil)
	attrs := map[string]types.MessageAttributeValue{
		"city":      {DataType: aws.String("String"), StringValue: aws.String("Zürich")},
		"count":     {DataType: aws.String("Number"), StringValue: aws.String("-12.5e3")},
		"blob":      {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 0xff}},
		"geo.lat":   {DataType: aws.String("Number.float"), StringValue: aws.String("47.37")},
		"trace.ctx": {DataType: aws.String("String"), StringValue: aws.String("00-abc-01")},
	}
	sent, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(url), MessageBody: aws.String("héllo\n\"world\""), MessageAttributes: attrs,
		MessageSystemAttributes: map[string]types.MessageSystemAttributeValue{"AWSTraceHeader": {DataType: aws.String("String"), StringValue: aws.String("Root=1-abc")}},
	})
	if err != nil {
		t.Fatalf("SendMessage: %v", err) // the SDK verifies MD5OfMessageBody
	}
	if got, want := aws.ToString(sent.MD5OfMessageAttributes), md5OfAttributes(toQueueAttributes(attrs)); got != want || got == "" {
		t.Fatalf("MD5OfMessageAttributes = %q, want %q", got, want)
	}
	if sent.MD5OfMessageSystemAttributes == nil {
		t.Fatalf("MD5OfMessageSystemAttributes missing")
	}
	tests := []struct {
		name     string
		patterns []string
		want     []string
	}{
		{"all", []string{"All"}, []string{"blob", "city", "count", "geo.lat", "trace.ctx"}},
		{"dot star", []string{".*"}, []string{"blob", "city", "count", "geo.lat", "trace.ctx"}},
		{"prefix", []string{"geo.*"}, []string{"geo.lat"}},
		{"exact", []string{"city", "blob", "absent"}, []string{"blob", "city"}},
		{"none", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(url), MessageAttributeNames: tc.patterns,
				MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"},
			})
			if err != nil || len(out.Messages) != 1 {
				t.Fatalf("ReceiveMessage = %v, %v; want one message", out, err)
			}
			m := out.Messages[0]
			if aws.ToString(m.Body) != "héllo\n\"world\"" || aws.ToString(m.MessageId) != aws.ToString(sent.MessageId) {
				t.Fatalf("message = %q/%q", aws.ToString(m.MessageId), aws.ToString(m.Body))
			}
			var names []string
			for name, v := range m.MessageAttributes {
				names = append(names, name)
				in := attrs[name]
				if aws.ToString(v.DataType) != aws.ToString(in.DataType) || aws.ToString(v.StringValue) != aws.ToString(in.StringValue) || !bytes.Equal(v.BinaryValue, in.BinaryValue) {
					t.Errorf("attribute %s = %+v, want %+v", name, v, in)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.want) {
				t.Fatalf("attributes %v, want %v", names, tc.want)
			}
			picked := map[string]types.MessageAttributeValue{}
			for _, n := range tc.want {
				picked[n] = attrs[n]
			}
			if got, want := aws.ToString(m.MD5OfMessageAttributes), md5OfAttributes(toQueueAttributes(picked)); got != want {
				t.Fatalf("MD5OfMessageAttributes on receive = %q, want %q (digest of the returned attributes)", got, want)
			}
			if m.Attributes["AWSTraceHeader"] != "Root=1-abc" || m.Attributes["SenderId"] == "" || m.Attributes["SentTimestamp"] == "" {
				t.Fatalf("system attributes %v", m.Attributes)
			}
			// Back to visible for the next case.
			if _, err := e.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatalf("ChangeMessageVisibility: %v", err)
			}
		})
	}
	//lint:ignore SA1019 older SDKs still send AttributeNames; the API must answer it.
	out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"ApproximateReceiveCount"}})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("ReceiveMessage = %v, %v", out, err)
	}
	if got := out.Messages[0].Attributes; len(got) != 1 || got["ApproximateReceiveCount"] != strconv.Itoa(len(tests)+1) {
		t.Fatalf("legacy AttributeNames selection = %v, want only ApproximateReceiveCount=%d", got, len(tests)+1)
	}
	if _, err := e.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); err != nil || len(out.Messages) != 0 {
		t.Fatalf("receive after delete = %v, %v; want nothing", out, err)
	}
}

func toQueueAttributes(in map[string]types.MessageAttributeValue) []queue.Attribute {
	var out []queue.Attribute
	for name, v := range in {
		value := v.BinaryValue
		if v.StringValue != nil {
			value = []byte(*v.StringValue)
		}
		out = append(out, queue.Attribute{Name: name, DataType: aws.ToString(v.DataType), Value: value})
	}
	return out
}

func TestSendMessageBatchPartialFailure(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("batch", map[string]string{"MaximumMessageSize": "1024"})
	tooMany := map[string]types.MessageAttributeValue{}
	for i := range 11 {
		tooMany[fmt.Sprintf("a%d", i)] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("v")}
	}
	entries := []types.SendMessageBatchRequestEntry{
		{Id: aws.String("ok1"), MessageBody: aws.String("one")},
		{Id: aws.String("big"), MessageBody: aws.String(body(1025))},
		{Id: aws.String("ok2"), MessageBody: aws.String("two"), DelaySeconds: 0},
		{Id: aws.String("chars"), MessageBody: aws.String("bad\x01char")},
		{Id: aws.String("attrs"), MessageBody: aws.String("x"), MessageAttributes: tooMany},
		{Id: aws.String("number"), MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String("12abc")}}},
		{Id: aws.String("dedup"), MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")},
		{Id: aws.String("ok3"), MessageBody: aws.String("three")},
	}
	out, err := e.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
	if err != nil {
		t.Fatalf("SendMessageBatch: %v", err)
	}
	var okIDs []string
	for _, s := range out.Successful {
		okIDs = append(okIDs, aws.ToString(s.Id))
		if aws.ToString(s.MessageId) == "" {
			t.Errorf("entry %s has no MessageId", aws.ToString(s.Id))
		}
	}
	if !slices.Equal(okIDs, []string{"ok1", "ok2", "ok3"}) {
		t.Fatalf("successful = %v", okIDs)
	}
	wantFailed := map[string]string{
		"big": "InvalidParameterValue", "chars": "InvalidMessageContents", "attrs": "InvalidParameterValue",
		"number": "InvalidParameterValue", "dedup": "InvalidParameterValue",
	}
	if len(out.Failed) != len(wantFailed) {
		t.Fatalf("failed = %+v", out.Failed)
	}
	for _, f := range out.Failed {
		if wantFailed[aws.ToString(f.Id)] != aws.ToString(f.Code) || !f.SenderFault || aws.ToString(f.Message) == "" {
			t.Errorf("failed entry %s: code %s sender %v message %q", aws.ToString(f.Id), aws.ToString(f.Code), f.SenderFault, aws.ToString(f.Message))
		}
	}
	var bodies []string
	waitFor(t, 5*time.Second, func() error {
		r, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			return err
		}
		for _, m := range r.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
		if len(bodies) < 3 {
			return fmt.Errorf("received %v so far", bodies)
		}
		return nil
	})
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{"one", "three", "two"}) {
		t.Fatalf("bodies = %v", bodies)
	}
}

func TestBatchRequestErrors(t *testing.T) {
	e := newEnv(t)
	url := e.createQueue("batches", nil)
	entry := func(id string, n int) types.SendMessageBatchRequestEntry {
		return types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(body(n))}
	}
	var eleven []types.SendMessageBatchRequestEntry
	for i := range 11 {
		eleven = append(eleven, entry(fmt.Sprint("e", i), 1))
	}
	var huge []types.SendMessageBatchRequestEntry
	for i := range 5 {
		huge = append(huge, entry(fmt.Sprint("h", i), 250000))
	}
	tests := []struct {
		name    string
		entries []types.SendMessageBatchRequestEntry
		code    string
		as      func(error) bool
	}{
		{"empty", []types.SendMessageBatchRequestEntry{}, "AWS.SimpleQueueService.EmptyBatchRequest", func(err error) bool { var x *types.EmptyBatchRequest; return errors.As(err, &x) }},
		{"eleven", eleven, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", func(err error) bool { var x *types.TooManyEntriesInBatchRequest; return errors.As(err, &x) }},
		{"repeated id", []types.SendMessageBatchRequestEntry{entry("a", 1), entry("a", 1)}, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", func(err error) bool { var x *types.BatchEntryIdsNotDistinct; return errors.As(err, &x) }},
		{"bad id", []types.SendMessageBatchRequestEntry{entry("a b", 1)}, "AWS.SimpleQueueService.InvalidBatchEntryId", func(err error) bool { var x *types.InvalidBatchEntryId; return errors.As(err, &x) }},
		{"too long", huge, "AWS.SimpleQueueService.BatchRequestTooLong", func(err error) bool { var x *types.BatchRequestTooLong; return errors.As(err, &x) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: tc.entries})
			if errorCode(err) != tc.code || !tc.as(err) {
				t.Fatalf("error %v, want typed %s", err, tc.code)
			}
		})
	}
	if n := e.queueStats("batches").Visible; n != 0 {
		t.Fatalf("rejected batches enqueued %d messages", n)
	}
}

func (e *testEnv) queueStats(name string) queue.Stats {
	e.t.Helper()
	q, err := e.manager.Get(name)
	if err != nil {
		e.t.Fatalf("get %s: %v", name, err)
	}
	return q.Stats()
}

func TestLongPollWakesOnSend(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("poll", nil)
	type result struct {
		msgs    []types.Message
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 15})
		r := result{err: err, elapsed: time.Since(start)}
		if out != nil {
			r.msgs = out.Messages
		}
		done <- r
	}()
	time.Sleep(200 * time.Millisecond) // let the receive start waiting: its wake-up on send is what is tested
	if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("wake")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	r := <-done
	if r.err != nil || len(r.msgs) != 1 || aws.ToString(r.msgs[0].Body) != "wake" {
		t.Fatalf("long poll = %v, %v", r.msgs, r.err)
	}
	if r.elapsed > 5*time.Second {
		t.Fatalf("long poll returned after %v, want it to wake on the send", r.elapsed)
	}
	// With nothing to deliver, the long poll lasts its wait time.
	start = time.Now()
	out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) != 0 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("empty long poll = %v, %v after %v", out, err, time.Since(start))
	}
}

func TestVisibilityExpiryAndReceiveCount(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("vis", nil)
	if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("m")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	all := []types.MessageSystemAttributeName{"All"}
	first, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 1, MessageSystemAttributeNames: all})
	if err != nil || len(first.Messages) != 1 || first.Messages[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("first receive = %+v, %v", first, err)
	}
	if s := e.queueStats("vis"); s.InFlight != 1 || s.Visible != 0 {
		t.Fatalf("stats while in flight = %+v", s)
	}
	out, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessagesNotVisible"}})
	if err != nil || out.Attributes["ApproximateNumberOfMessagesNotVisible"] != "1" {
		t.Fatalf("NotVisible = %v, %v", out, err)
	}
	// Invisible now; visible again once the 1 s timeout passes.
	second, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 5, MessageSystemAttributeNames: all})
	if err != nil || len(second.Messages) != 1 {
		t.Fatalf("second receive = %+v, %v", second, err)
	}
	m := second.Messages[0]
	if m.Attributes["ApproximateReceiveCount"] != "2" || m.Attributes["ApproximateFirstReceiveTimestamp"] != first.Messages[0].Attributes["ApproximateFirstReceiveTimestamp"] {
		t.Fatalf("second receive attributes %v, first %v", m.Attributes, first.Messages[0].Attributes)
	}
	// The first delivery's receipt no longer deletes the message.
	if _, err := e.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: first.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage with a stale receipt: %v, want the SQS no-op success", err)
	}
	if s := e.queueStats("vis"); s.InFlight != 1 {
		t.Fatalf("stale receipt deleted the message: %+v", s)
	}
}

func TestChangeVisibility(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("change", nil)
	for i := range 3 {
		if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(fmt.Sprint("m", i))}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	got := e.receiveN(url, 3, 60)
	// Entry a returns its message now, b keeps it hidden, c has a bad handle.
	out, err := e.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
		{Id: aws.String("a"), ReceiptHandle: got[0].ReceiptHandle, VisibilityTimeout: 0},
		{Id: aws.String("b"), ReceiptHandle: got[1].ReceiptHandle, VisibilityTimeout: 600},
		{Id: aws.String("c"), ReceiptHandle: aws.String("not-a-handle"), VisibilityTimeout: 0},
		{Id: aws.String("d"), ReceiptHandle: got[2].ReceiptHandle, VisibilityTimeout: 43201},
	}})
	if err != nil {
		t.Fatalf("ChangeMessageVisibilityBatch: %v", err)
	}
	if len(out.Successful) != 2 || len(out.Failed) != 2 {
		t.Fatalf("batch result %+v", out)
	}
	codes := map[string]string{}
	for _, f := range out.Failed {
		codes[aws.ToString(f.Id)] = aws.ToString(f.Code)
	}
	if codes["c"] != "ReceiptHandleIsInvalid" || codes["d"] != "InvalidParameterValue" {
		t.Fatalf("failed codes %v", codes)
	}
	again := e.receiveN(url, 1, 60)
	if aws.ToString(again[0].MessageId) != aws.ToString(got[0].MessageId) {
		t.Fatalf("received %s, want the message made visible (%s)", aws.ToString(again[0].MessageId), aws.ToString(got[0].MessageId))
	}
	// A deleted message is not in flight.
	if _, err := e.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: again[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	_, err = e.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: again[0].ReceiptHandle, VisibilityTimeout: 5})
	var notInflight *types.MessageNotInflight
	var invalid *types.ReceiptHandleIsInvalid
	if !errors.As(err, &notInflight) && !errors.As(err, &invalid) {
		t.Fatalf("ChangeMessageVisibility of a deleted message: %v, want MessageNotInflight or ReceiptHandleIsInvalid", err)
	}
	_, err = e.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("garbage"), VisibilityTimeout: 5})
	if !errors.As(err, &invalid) {
		t.Fatalf("ChangeMessageVisibility with a malformed handle: %v, want ReceiptHandleIsInvalid", err)
	}
}

// receiveN receives exactly n messages with the given visibility timeout.
func (e *testEnv) receiveN(url string, n int, visibility int32) []types.Message {
	e.t.Helper()
	var got []types.Message
	waitFor(e.t, 5*time.Second, func() error {
		out, err := e.client.ReceiveMessage(e.t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: int32(n - len(got)), VisibilityTimeout: visibility,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"},
		})
		if err != nil {
			return err
		}
		got = append(got, out.Messages...)
		if len(got) < n {
			return fmt.Errorf("received %d of %d", len(got), n)
		}
		return nil
	})
	if len(got) != n {
		e.t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}

func TestDeleteMessageBatch(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("del", nil)
	var entries []types.SendMessageBatchRequestEntry
	for i := range 4 {
		entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("s", i)), MessageBody: aws.String(fmt.Sprint("m", i))})
	}
	if _, err := e.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err != nil {
		t.Fatalf("SendMessageBatch: %v", err)
	}
	got := e.receiveN(url, 4, 60)
	del := []types.DeleteMessageBatchRequestEntry{{Id: aws.String("bad"), ReceiptHandle: aws.String("###")}}
	for i, m := range got {
		del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("d", i)), ReceiptHandle: m.ReceiptHandle})
	}
	out, err := e.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del})
	if err != nil {
		t.Fatalf("DeleteMessageBatch: %v", err)
	}
	if len(out.Successful) != 4 || len(out.Failed) != 1 || aws.ToString(out.Failed[0].Id) != "bad" || aws.ToString(out.Failed[0].Code) != "ReceiptHandleIsInvalid" {
		t.Fatalf("result %+v", out)
	}
	if s := e.queueStats("del"); s.Visible+s.InFlight+s.Delayed != 0 {
		t.Fatalf("messages left after delete: %+v", s)
	}
}

func TestDeadLetterQueueAndMoveTask(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dlqURL := e.createQueue("orders-dlq", nil)
	url := e.createQueue("orders", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"` + e.arn("orders-dlq") + `","maxReceiveCount":2}`})
	e.createQueue("unrelated", nil)
	if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("poison")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	// Two failed deliveries: received and made visible again at once.
	for i := range 2 {
		m := e.receiveN(url, 1, 60)[0]
		if got := m.Attributes["ApproximateReceiveCount"]; got != strconv.Itoa(i+1) {
			t.Fatalf("receive %d: count %s", i+1, got)
		}
		if _, err := e.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatalf("ChangeMessageVisibility: %v", err)
		}
	}
	// The third receive finds it past maxReceiveCount: it goes to the DLQ.
	if out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); err != nil || len(out.Messages) != 0 {
		t.Fatalf("third receive = %+v, %v; want nothing", out, err)
	}
	dead := e.receiveN(dlqURL, 1, 60)[0]
	if aws.ToString(dead.Body) != "poison" || dead.Attributes["DeadLetterQueueSourceArn"] != e.arn("orders") {
		t.Fatalf("dead letter = %q, attributes %v", aws.ToString(dead.Body), dead.Attributes)
	}
	if _, err := e.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(dlqURL), ReceiptHandle: dead.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatalf("ChangeMessageVisibility: %v", err)
	}
	sources, err := e.client.ListDeadLetterSourceQueues(ctx, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlqURL)})
	if err != nil || !slices.Equal(sources.QueueUrls, []string{url}) {
		t.Fatalf("ListDeadLetterSourceQueues = %v, %v", sources, err)
	}

	// A move task brings it back to the source queue.
	if _, err := e.client.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(e.arn("unrelated"))}); errorCode(err) != "InvalidParameterValue" {
		t.Fatalf("move task from a queue that is no DLQ: %v", err)
	}
	task, err := e.client.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(e.arn("orders-dlq")), MaxNumberOfMessagesPerSecond: aws.Int32(100)})
	if err != nil || aws.ToString(task.TaskHandle) == "" {
		t.Fatalf("StartMessageMoveTask = %v, %v", task, err)
	}
	waitFor(t, 10*time.Second, func() error {
		out, err := e.client.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(e.arn("orders-dlq"))})
		if err != nil {
			return err
		}
		if len(out.Results) != 1 || aws.ToString(out.Results[0].Status) != "COMPLETED" {
			return fmt.Errorf("tasks %+v", out.Results)
		}
		if r := out.Results[0]; r.ApproximateNumberOfMessagesMoved != 1 || aws.ToInt64(r.ApproximateNumberOfMessagesToMove) != 1 {
			t.Fatalf("task counts moved %d to move %d", r.ApproximateNumberOfMessagesMoved, aws.ToInt64(r.ApproximateNumberOfMessagesToMove))
		}
		return nil
	})
	back := e.receiveN(url, 1, 60)[0]
	if aws.ToString(back.Body) != "poison" {
		t.Fatalf("redriven body %q", aws.ToString(back.Body))
	}
	if _, err := e.client.CancelMessageMoveTask(ctx, &sqs.CancelMessageMoveTaskInput{TaskHandle: task.TaskHandle}); errorCode(err) == "" {
		t.Fatalf("cancel of a completed task succeeded")
	}
}

func TestFIFOOrderAndDedup(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("jobs.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	send := func(group, bodyText, dedup string) *sqs.SendMessageOutput {
		t.Helper()
		in := &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(bodyText), MessageGroupId: aws.String(group)}
		if dedup != "" {
			in.MessageDeduplicationId = aws.String(dedup)
		}
		out, err := e.client.SendMessage(ctx, in)
		if err != nil {
			t.Fatalf("SendMessage %s/%s: %v", group, bodyText, err)
		}
		return out
	}
	first := send("g1", "a1", "")
	send("g1", "a2", "")
	send("g2", "b1", "")
	dup := send("g1", "a1", "") // same content: deduplicated
	if aws.ToString(dup.MessageId) != aws.ToString(first.MessageId) || aws.ToString(first.SequenceNumber) == "" {
		t.Fatalf("duplicate id %s, original %s (seq %s)", aws.ToString(dup.MessageId), aws.ToString(first.MessageId), aws.ToString(first.SequenceNumber))
	}
	attrs, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"All"}})
	if err != nil || attrs.Attributes["FifoQueue"] != "true" || attrs.Attributes["ContentBasedDeduplication"] != "true" || attrs.Attributes["ApproximateNumberOfMessages"] != "3" {
		t.Fatalf("FIFO attributes %v, %v", attrs, err)
	}
	send("g1", "a3", "explicit")
	send("g1", "a3-again", "explicit") // same explicit id: deduplicated

	// g1 is held while a1 is in flight: the next receive skips to g2.
	a1 := e.receiveN(url, 1, 60)[0]
	b1 := e.receiveN(url, 1, 60)[0]
	if aws.ToString(a1.Body) != "a1" || aws.ToString(b1.Body) != "b1" {
		t.Fatalf("receives %q then %q, want a1 then b1", aws.ToString(a1.Body), aws.ToString(b1.Body))
	}
	if a1.Attributes["MessageGroupId"] != "g1" || a1.Attributes["SequenceNumber"] == "" || a1.Attributes["MessageDeduplicationId"] == "" {
		t.Fatalf("FIFO system attributes missing: %v", a1.Attributes)
	}
	if out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10}); err != nil || len(out.Messages) != 0 {
		t.Fatalf("receive while both groups are held = %v, %v", out, err)
	}
	for _, m := range []types.Message{a1, b1} {
		if _, err := e.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatalf("DeleteMessage: %v", err)
		}
	}
	var order []string
	for len(order) < 2 {
		out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) == 0 {
			t.Fatalf("receive of the rest of g1 = %v, %v", out, err)
		}
		for _, m := range out.Messages {
			order = append(order, aws.ToString(m.Body))
			if _, err := e.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("DeleteMessage: %v", err)
			}
		}
	}
	if !slices.Equal(order, []string{"a2", "a3"}) {
		t.Fatalf("group g1 order %v, want [a2 a3] (duplicates dropped)", order)
	}

	// FIFO parameter rules.
	tests := []struct {
		name string
		in   sqs.SendMessageInput
		code string
	}{
		{"no group", sqs.SendMessageInput{MessageBody: aws.String("x")}, "MissingParameter"},
		{"delay", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageGroupId: aws.String("g"), DelaySeconds: 5}, "InvalidParameterValue"},
		{"bad group", sqs.SendMessageInput{MessageBody: aws.String("x"), MessageGroupId: aws.String("g g")}, "InvalidParameterValue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.QueueUrl = aws.String(url)
			if _, err := e.client.SendMessage(ctx, &tc.in); errorCode(err) != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
		})
	}
	noDedup := e.createQueue("strict.fifo", map[string]string{"FifoQueue": "true"})
	_, err = e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(noDedup), MessageBody: aws.String("x"), MessageGroupId: aws.String("g")})
	if errorCode(err) != "InvalidParameterValue" {
		t.Fatalf("send without dedup id to a queue without content dedup: %v", err)
	}
}

func TestPurgeQueue(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("purge", nil)
	for i := range 5 {
		if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	if _, err := e.client.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatalf("PurgeQueue: %v", err)
	}
	out, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessages"}})
	if err != nil || out.Attributes["ApproximateNumberOfMessages"] != "0" {
		t.Fatalf("after purge %v, %v", out, err)
	}
	if r, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); err != nil || len(r.Messages) != 0 {
		t.Fatalf("receive after purge = %v, %v", r, err)
	}
}

func TestDelayedMessages(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("delay", nil)
	if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("later"), DelaySeconds: 1}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	out, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessages"}})
	if err != nil || out.Attributes["ApproximateNumberOfMessagesDelayed"] != "1" || out.Attributes["ApproximateNumberOfMessages"] != "0" {
		t.Fatalf("while delayed %v, %v", out, err)
	}
	r, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 5})
	if err != nil || len(r.Messages) != 1 {
		t.Fatalf("receive of delayed message = %v, %v", r, err)
	}
}

func TestTypedErrors(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("typed", nil)
	gone := e.http.URL + "/000000000000/gone"
	tests := []struct {
		name string
		call func() error
		code string
		as   func(error) bool
	}{
		{"send to missing queue", func() error {
			_, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(gone), MessageBody: aws.String("x")})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue", func(err error) bool { var x *types.QueueDoesNotExist; return errors.As(err, &x) }},
		{"receive from missing queue", func() error {
			_, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(gone)})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue", func(err error) bool { var x *types.QueueDoesNotExist; return errors.As(err, &x) }},
		{"delete with malformed receipt", func() error {
			_, err := e.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("nope")})
			return err
		}, "ReceiptHandleIsInvalid", func(err error) bool { var x *types.ReceiptHandleIsInvalid; return errors.As(err, &x) }},
		{"too many messages", func() error {
			_, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
			return err
		}, "InvalidParameterValue", func(error) bool { return true }},
		{"wait too long", func() error {
			_, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 21})
			return err
		}, "InvalidParameterValue", func(error) bool { return true }},
		{"empty body", func() error {
			_, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("")})
			return err
		}, "MissingParameter", func(error) bool { return true }},
		{"delay too long", func() error {
			_, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"), DelaySeconds: 901})
			return err
		}, "InvalidParameterValue", func(error) bool { return true }},
		{"invalid characters", func() error {
			_, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("\uffff")})
			return err
		}, "InvalidMessageContents", func(err error) bool { var x *types.InvalidMessageContents; return errors.As(err, &x) }},
		{"reserved attribute name", func() error {
			_, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"),
				MessageAttributes: map[string]types.MessageAttributeValue{"AWS.x": {DataType: aws.String("String"), StringValue: aws.String("v")}}})
			return err
		}, "InvalidParameterValue", func(error) bool { return true }},
		{"bad data type", func() error {
			_, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"),
				MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Integer"), StringValue: aws.String("1")}}})
			return err
		}, "InvalidParameterValue", func(error) bool { return true }},
		{"unknown queue attribute", func() error {
			_, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"Colour"}})
			return err
		}, "InvalidAttributeName", func(err error) bool { var x *types.InvalidAttributeName; return errors.As(err, &x) }},
		{"move task of unknown queue", func() error {
			_, err := e.client.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(e.arn("gone"))})
			return err
		}, "ResourceNotFoundException", func(err error) bool { var x *types.ResourceNotFoundException; return errors.As(err, &x) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if errorCode(err) != tc.code || !tc.as(err) {
				t.Fatalf("error %v (code %q), want %s", err, errorCode(err), tc.code)
			}
		})
	}
}

func TestSigV4WithSDK(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Credentials = []Credential{{AccessKeyID: "AKIDBRIDGE", SecretAccessKey: "right-secret"}}
	})
	ctx := t.Context()
	good := e.newClient("AKIDBRIDGE", "right-secret")
	url := "" // created with the good key
	out, err := good.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("signed")})
	if err != nil {
		t.Fatalf("CreateQueue with the right key: %v", err)
	}
	url = aws.ToString(out.QueueUrl)
	if _, err := good.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("signed body")}); err != nil {
		t.Fatalf("SendMessage with the right key: %v", err)
	}
	tests := []struct {
		name, key, secret, code string
	}{
		{"wrong secret", "AKIDBRIDGE", "wrong-secret", "SignatureDoesNotMatch"},
		{"unknown key", "AKIDOTHER", "right-secret", "InvalidClientTokenId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.newClient(tc.key, tc.secret).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("forged")})
			if errorCode(err) != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
		})
	}
	if n := e.queueStats("signed").Visible; n != 1 {
		t.Fatalf("queue holds %d messages, want only the signed one", n)
	}
}

func TestZeroVisibilityTimeoutQueue(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("instant", map[string]string{"VisibilityTimeout": "0"})
	if again := e.createQueue("instant", map[string]string{"VisibilityTimeout": "0"}); again != url {
		t.Fatalf("re-create with the same zero timeout returned %q", again)
	}
	// Changing another attribute keeps the zero (not the 30 s default).
	if _, err := e.client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"DelaySeconds": "0"}}); err != nil {
		t.Fatalf("SetQueueAttributes: %v", err)
	}
	out, err := e.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"VisibilityTimeout"}})
	if err != nil || out.Attributes["VisibilityTimeout"] != "0" {
		t.Fatalf("VisibilityTimeout = %v, %v; want 0", out, err)
	}
	if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("again")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	for i := 1; i <= 2; i++ {
		r, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageSystemAttributeNames: []types.MessageSystemAttributeName{"ApproximateReceiveCount"}})
		if err != nil || len(r.Messages) != 1 || r.Messages[0].Attributes["ApproximateReceiveCount"] != strconv.Itoa(i) {
			t.Fatalf("receive %d = %+v, %v; want the message back at once", i, r, err)
		}
	}
}

func TestMoveTaskCancelAndServerClose(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dlqURL := e.createQueue("slow-dlq", nil)
	e.createQueue("slow", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"` + e.arn("slow-dlq") + `","maxReceiveCount":1}`})
	for i := range 5 {
		if _, err := e.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlqURL), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	e.createQueue("elsewhere", nil)
	// One message per second: the task is still running when cancelled.
	task, err := e.client.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(e.arn("slow-dlq")), DestinationArn: aws.String(e.arn("elsewhere")), MaxNumberOfMessagesPerSecond: aws.Int32(1)})
	if err != nil {
		t.Fatalf("StartMessageMoveTask: %v", err)
	}
	if _, err := e.client.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(e.arn("slow-dlq"))}); errorCode(err) != "AWS.SimpleQueueService.UnsupportedOperation" {
		t.Fatalf("second task on a busy source: %v", err)
	}
	list, err := e.client.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(e.arn("slow-dlq")), MaxResults: aws.Int32(10)})
	if err != nil || len(list.Results) != 1 || aws.ToString(list.Results[0].Status) != "RUNNING" || aws.ToString(list.Results[0].TaskHandle) != aws.ToString(task.TaskHandle) ||
		aws.ToString(list.Results[0].DestinationArn) != e.arn("elsewhere") || aws.ToInt32(list.Results[0].MaxNumberOfMessagesPerSecond) != 1 {
		t.Fatalf("ListMessageMoveTasks = %+v, %v", list, err)
	}
	if _, err := e.client.CancelMessageMoveTask(ctx, &sqs.CancelMessageMoveTaskInput{TaskHandle: task.TaskHandle}); err != nil {
		t.Fatalf("CancelMessageMoveTask: %v", err)
	}
	waitFor(t, 5*time.Second, func() error {
		list, err := e.client.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(e.arn("slow-dlq"))})
		if err != nil {
			return err
		}
		if got := aws.ToString(list.Results[0].Status); got != "CANCELLED" {
			return fmt.Errorf("status %s", got)
		}
		return nil
	})
	moved := e.queueStats("elsewhere").Visible
	if left := e.queueStats("slow-dlq").Visible; moved+left != 5 || moved >= 5 {
		t.Fatalf("after cancel: %d moved, %d left; want some left and none lost", moved, left)
	}

	// A task still running when the server closes is stopped by Close.
	if _, err := e.client.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(e.arn("slow-dlq")), DestinationArn: aws.String(e.arn("elsewhere")), MaxNumberOfMessagesPerSecond: aws.Int32(1)}); err != nil {
		t.Fatalf("StartMessageMoveTask: %v", err)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.server.Close(closeCtx); err != nil {
		t.Fatalf("Close with a running task: %v", err)
	}
	if err := e.server.Close(closeCtx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if total := e.queueStats("elsewhere").Visible + e.queueStats("slow-dlq").Visible; total != 5 {
		t.Fatalf("messages after close: %d, want 5", total)
	}
}

func TestConcurrentClientsExactlyOnceDelete(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	url := e.createQueue("busy", nil)
	const producers, perProducer, consumers = 4, 100, 4
	var wg sync.WaitGroup
	errs := make(chan error, producers+consumers)
	for p := range producers {
		wg.Go(func() {
			for i := 0; i < perProducer; i += 10 {
				var entries []types.SendMessageBatchRequestEntry
				for j := range 10 {
					entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("e", j)), MessageBody: aws.String(fmt.Sprintf("p%d-%d", p, i+j))})
				}
				out, err := e.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
				if err != nil || len(out.Failed) != 0 {
					errs <- fmt.Errorf("send: %v %+v", err, out)
					return
				}
			}
		})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	for range consumers {
		wg.Go(func() {
			for {
				mu.Lock()
				done := len(seen) == producers*perProducer
				mu.Unlock()
				if done {
					return
				}
				out, err := e.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				if err != nil {
					errs <- err
					return
				}
				var del []types.DeleteMessageBatchRequestEntry
				for i, m := range out.Messages {
					mu.Lock()
					seen[aws.ToString(m.Body)]++
					mu.Unlock()
					del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("d", i)), ReceiptHandle: m.ReceiptHandle})
				}
				if len(del) == 0 {
					continue
				}
				if res, err := e.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del}); err != nil || len(res.Failed) != 0 {
					errs <- fmt.Errorf("delete: %v %+v", err, res)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for body, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d times", body, n)
		}
	}
	if len(seen) != producers*perProducer {
		t.Fatalf("received %d distinct messages, want %d", len(seen), producers*perProducer)
	}
}

func TestQueuesPersistAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() (*sqs.Client, func()) {
		m, err := queue.Open(queue.Options{Dir: dir, Fsync: "always"})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		hs := newTestHTTP(t)
		s := New(m, Options{Addr: hs.Addr})
		hs.Start(s)
		e := &testEnv{t: t, http: hs}
		return e.newClient("x", "x"), func() {
			hs.Close()
			_ = s.Close(context.Background())
			if err := m.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	}
	ctx := t.Context()
	client, stop := start()
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("durable"), Attributes: map[string]string{"VisibilityTimeout": "77"}})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	for i := range 3 {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: created.QueueUrl, MessageBody: aws.String(fmt.Sprint("m", i))}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	stop()

	client, stop = start()
	defer stop()
	url, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("durable")})
	if err != nil {
		t.Fatalf("GetQueueUrl after restart: %v", err)
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url.QueueUrl, AttributeNames: []types.QueueAttributeName{"VisibilityTimeout", "ApproximateNumberOfMessages"}})
	if err != nil || attrs.Attributes["VisibilityTimeout"] != "77" || attrs.Attributes["ApproximateNumberOfMessages"] != "3" {
		t.Fatalf("attributes after restart %v, %v", attrs, err)
	}
}
