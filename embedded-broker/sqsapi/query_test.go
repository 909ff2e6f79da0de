package sqsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// queryCall sends a query-protocol request: params as a form body (POST)
// or as the query string (GET), to path.
func queryCall(t testing.TB, s *Server, method, path, params string) *httptest.ResponseRecorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var r *http.Request
	if method == http.MethodGet {
		r = httptest.NewRequestWithContext(ctx, method, path+"?"+params, nil)
	} else {
		r = httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(params))
		r.Header.Set("Content-Type", formContentType+"; charset=utf-8")
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// xmlError is SQS's ErrorResponse.
type xmlError struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// xmlAnswer is any successful answer: its root and request id.
type xmlAnswer struct {
	XMLName   xml.Name
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// checkQueryAnswer checks a 200 XML answer of action and returns its body.
func checkQueryAnswer(t *testing.T, action string, w *httptest.ResponseRecorder) []byte {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", action, w.Code, w.Body)
	}
	var a xmlAnswer
	if err := xml.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("%s: answer is not XML: %v\n%s", action, err, w.Body)
	}
	if a.XMLName.Local != action+"Response" || a.XMLName.Space != xmlNamespace {
		t.Fatalf("%s: root %v", action, a.XMLName)
	}
	if a.RequestID == "" || a.RequestID != w.Header().Get("X-Amzn-Requestid") || w.Header().Get("Content-Type") != xmlContentType {
		t.Fatalf("%s: request id %q, header %q, content type %q", action, a.RequestID, w.Header().Get("X-Amzn-Requestid"), w.Header().Get("Content-Type"))
	}
	return w.Body.Bytes()
}

func newQueryServer(t *testing.T) *Server {
	t.Helper()
	s, m := newRawServer(t)
	for _, cfg := range []queue.Config{defaultConfig("q"), defaultConfig("dlq")} {
		if _, err := m.Create(cfg); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	src := defaultConfig("src")
	src.DeadLetterQueue, src.MaxReceiveCount = "dlq", 1
	if _, err := m.Create(src); err != nil {
		t.Fatalf("create: %v", err)
	}
	return s
}

// TestQueryEveryAction runs every action of the table over the query
// protocol with the parameter names of the SQS API reference, and checks
// the XML answer. A new action without a query case fails here.
func TestQueryEveryAction(t *testing.T) {
	s := newQueryServer(t)
	const qurl = "QueueUrl=http%3A%2F%2F127.0.0.1%3A9324%2F000000000000%2Fq"
	receiptOf := func() string {
		w := queryCall(t, s, http.MethodPost, "/", "Action=SendMessage&"+qurl+"&MessageBody=for-a-handle")
		checkQueryAnswer(t, "SendMessage", w)
		w = queryCall(t, s, http.MethodPost, "/", "Action=ReceiveMessage&"+qurl+"&MaxNumberOfMessages=1")
		var got struct {
			Handle string `xml:"ReceiveMessageResult>Message>ReceiptHandle"`
		}
		if err := xml.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Handle == "" {
			t.Fatalf("no receipt handle: %v %s", err, w.Body)
		}
		return url.QueryEscape(got.Handle)
	}
	cases := map[string]func() string{
		"CreateQueue": func() string {
			return "QueueName=created&Attribute.1.Name=DelaySeconds&Attribute.1.Value=3&Tag.1.Key=team&Tag.1.Value=a"
		},
		"GetQueueUrl":        func() string { return "QueueName=q" },
		"ListQueues":         func() string { return "QueueNamePrefix=q&MaxResults=5" },
		"GetQueueAttributes": func() string { return qurl + "&AttributeName.1=All" },
		"SetQueueAttributes": func() string { return qurl + "&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=40" },
		"PurgeQueue":         func() string { return "QueueUrl=http%3A%2F%2Fh%2F000000000000%2Fcreated" },
		"DeleteQueue":        func() string { return "QueueUrl=http%3A%2F%2Fh%2F000000000000%2Fcreated" },
		"SendMessage": func() string {
			return qurl + "&MessageBody=hi&DelaySeconds=0&MessageAttribute.1.Name=k&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v" +
				"&MessageSystemAttribute.1.Name=AWSTraceHeader&MessageSystemAttribute.1.Value.DataType=String&MessageSystemAttribute.1.Value.StringValue=Root%3D1-5759e988-bd862e3fe1be46a994272793"
		},
		"SendMessageBatch": func() string {
			return qurl + "&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=one" +
				"&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two&SendMessageBatchRequestEntry.2.MessageAttribute.1.Name=bin" +
				"&SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType=Binary&SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.BinaryValue=AAE%3D"
		},
		"ReceiveMessage": func() string {
			return qurl + "&MaxNumberOfMessages=10&AttributeName.1=All&MessageAttributeName.1=All&VisibilityTimeout=0&WaitTimeSeconds=0"
		},
		"DeleteMessage":           func() string { return qurl + "&ReceiptHandle=" + receiptOf() },
		"ChangeMessageVisibility": func() string { return qurl + "&ReceiptHandle=" + receiptOf() + "&VisibilityTimeout=0" },
		"DeleteMessageBatch": func() string {
			return qurl + "&DeleteMessageBatchRequestEntry.1.Id=d0&DeleteMessageBatchRequestEntry.1.ReceiptHandle=" + receiptOf()
		},
		"ChangeMessageVisibilityBatch": func() string {
			return qurl + "&ChangeMessageVisibilityBatchRequestEntry.1.Id=c0&ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=" + receiptOf() +
				"&ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout=0"
		},
		"ListDeadLetterSourceQueues": func() string { return "QueueUrl=dlq" },
		"StartMessageMoveTask": func() string {
			return "SourceArn=arn%3Aaws%3Asqs%3Aus-east-1%3A000000000000%3Adlq&MaxNumberOfMessagesPerSecond=10"
		},
		"ListMessageMoveTasks":  func() string { return "SourceArn=arn%3Aaws%3Asqs%3Aus-east-1%3A000000000000%3Adlq&MaxResults=10" },
		"CancelMessageMoveTask": func() string { return "TaskHandle=none" }, // answered with an error: no task is running by then
	}
	if missing := slices.DeleteFunc(slices.Collect(maps.Keys(handlers)), func(a string) bool { return cases[a] != nil }); len(missing) > 0 {
		t.Fatalf("actions without a query case: %v", missing)
	}
	order := []string{"CreateQueue", "GetQueueUrl", "ListQueues", "GetQueueAttributes", "SetQueueAttributes", "SendMessage",
		"SendMessageBatch", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "DeleteMessageBatch",
		"ChangeMessageVisibilityBatch", "ListDeadLetterSourceQueues", "StartMessageMoveTask", "ListMessageMoveTasks",
		"CancelMessageMoveTask", "PurgeQueue", "DeleteQueue"}
	for _, action := range order {
		w := queryCall(t, s, http.MethodPost, "/", "Action="+action+"&Version=2012-11-05&"+cases[action]())
		if action == "CancelMessageMoveTask" {
			checkQueryError(t, w, 400, "ResourceNotFoundException")
			continue
		}
		body := checkQueryAnswer(t, action, w)
		t.Logf("%s: %s", action, body)
	}
}

func checkQueryError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) xmlError {
	t.Helper()
	var e xmlError
	if err := xml.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error answer is not XML: %v\n%s", err, w.Body)
	}
	if w.Code != status || e.Code != code || e.Type != "Sender" || e.Message == "" || e.RequestID == "" ||
		e.RequestID != w.Header().Get("X-Amzn-Requestid") {
		t.Fatalf("status %d %+v; want %d %s", w.Code, e, status, code)
	}
	return e
}

func TestQueryAnswersInDetail(t *testing.T) {
	s := newQueryServer(t)
	body := "a\r\nb <&> caf\u00e9"
	w := queryCall(t, s, http.MethodPost, "/", "Action=SendMessageBatch&QueueUrl=q"+
		"&SendMessageBatchRequestEntry.2.Id=second&SendMessageBatchRequestEntry.2.MessageBody="+url.QueryEscape(body)+
		"&SendMessageBatchRequestEntry.10.Id=bad&SendMessageBatchRequestEntry.10.MessageBody="+
		"&SendMessageBatchRequestEntry.1.Id=first&SendMessageBatchRequestEntry.1.MessageBody=one"+
		"&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=n&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=Number"+
		"&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=12")
	var sent struct {
		Successful []struct{ Id, MessageId, MD5OfMessageBody, MD5OfMessageAttributes string } `xml:"SendMessageBatchResult>SendMessageBatchResultEntry"`
		Failed     []struct {
			Id, Code    string
			SenderFault bool
		} `xml:"SendMessageBatchResult>BatchResultErrorEntry"`
	}
	if err := xml.Unmarshal(checkQueryAnswer(t, "SendMessageBatch", w), &sent); err != nil {
		t.Fatal(err)
	}
	// Entries in index order (1, 2, 10), not in the order of the form.
	if len(sent.Successful) != 2 || sent.Successful[0].Id != "first" || sent.Successful[1].Id != "second" ||
		sent.Successful[1].MD5OfMessageBody != md5Hex([]byte(body)) || sent.Successful[0].MD5OfMessageAttributes == "" {
		t.Fatalf("successful %+v", sent.Successful)
	}
	if len(sent.Failed) != 1 || sent.Failed[0].Id != "bad" || sent.Failed[0].Code != "MissingParameter" || !sent.Failed[0].SenderFault {
		t.Fatalf("failed %+v", sent.Failed)
	}
	// GET with a query string, to the queue's own URL (no QueueUrl parameter).
	w = queryCall(t, s, http.MethodGet, "/000000000000/q", "Action=ReceiveMessage&MaxNumberOfMessages=10&AttributeName.1=ApproximateReceiveCount&MessageAttributeName.1=All")
	var got struct {
		Messages []struct {
			Body       string
			Attributes []struct{ Name, Value string } `xml:"Attribute"`
			Attrs      []struct {
				Name  string
				Value struct{ DataType, StringValue string }
			} `xml:"MessageAttribute"`
		} `xml:"ReceiveMessageResult>Message"`
	}
	if err := xml.Unmarshal(checkQueryAnswer(t, "ReceiveMessage", w), &got); err != nil {
		t.Fatal(err)
	}
	bodies := map[string]bool{}
	for _, m := range got.Messages {
		bodies[m.Body] = true
		if len(m.Attributes) != 1 || m.Attributes[0].Name != "ApproximateReceiveCount" || m.Attributes[0].Value != "1" {
			t.Fatalf("system attributes %+v", m.Attributes)
		}
		if m.Body == "one" && (len(m.Attrs) != 1 || m.Attrs[0].Value.DataType != "Number" || m.Attrs[0].Value.StringValue != "12") {
			t.Fatalf("message attributes %+v", m.Attrs)
		}
	}
	if len(got.Messages) != 2 || !bodies[body] || !bodies["one"] {
		t.Fatalf("received %+v", got.Messages)
	}
	// Queue attributes come back in GetQueueAttributes' order.
	w = queryCall(t, s, http.MethodPost, "/", "Action=GetQueueAttributes&QueueUrl=q&AttributeName.1=VisibilityTimeout&AttributeName.2=QueueArn")
	if b := string(checkQueryAnswer(t, "GetQueueAttributes", w)); !strings.Contains(b,
		"<Attribute><Name>QueueArn</Name><Value>arn:aws:sqs:us-east-1:000000000000:q</Value></Attribute><Attribute><Name>VisibilityTimeout</Name><Value>30</Value></Attribute>") {
		t.Fatalf("attributes: %s", b)
	}
}

func TestQueryErrors(t *testing.T) {
	s := newQueryServer(t)
	big := "Action=SendMessage&QueueUrl=q&MessageBody=" + strings.Repeat("a", maxRequestBytes)
	tests := []struct {
		name, method, params string
		status               int
		code                 string
	}{
		{"no action", "POST", "QueueUrl=q", 400, "MissingAction"},
		{"unknown action", "POST", "Action=FlyToMoon", 400, "InvalidAction"},
		{"put", "PUT", "Action=ListQueues", 405, "InvalidHttpRequest"},
		{"bad escape", "POST", "Action=ListQueues&QueueNamePrefix=%zz", 400, "MalformedInput"},
		{"parameter twice", "POST", "Action=GetQueueUrl&QueueName=a&QueueName=b", 400, "MalformedInput"},
		{"index zero", "POST", "Action=GetQueueAttributes&QueueUrl=q&AttributeName.0=All", 400, "MalformedInput"},
		{"leading zero index", "POST", "Action=GetQueueAttributes&QueueUrl=q&AttributeName.01=All", 400, "MalformedInput"},
		{"value and structure", "POST", "Action=GetQueueAttributes&QueueUrl=q&AttributeName.1=All&AttributeName.1.x=y", 400, "MalformedInput"},
		{"not an integer", "POST", "Action=ReceiveMessage&QueueUrl=q&MaxNumberOfMessages=ten", 400, "InvalidParameterValue"},
		{"bad base64", "POST", "Action=SendMessage&QueueUrl=q&MessageBody=x&MessageAttribute.1.Name=b&MessageAttribute.1.Value.DataType=Binary&MessageAttribute.1.Value.BinaryValue=!!", 400, "MalformedInput"},
		{"attribute without name", "POST", "Action=SendMessage&QueueUrl=q&MessageBody=x&MessageAttribute.1.Value.DataType=String", 400, "MissingParameter"},
		{"attribute twice", "POST", "Action=SendMessage&QueueUrl=q&MessageBody=x&MessageAttribute.1.Name=a&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=1&MessageAttribute.2.Name=a&MessageAttribute.2.Value.DataType=String&MessageAttribute.2.Value.StringValue=2", 400, "InvalidParameterValue"},
		{"body too large", "POST", big, 413, "RequestEntityTooLarge"},
		{"missing queue", "GET", "Action=SendMessage&QueueUrl=http%3A%2F%2Fh%2F000000000000%2Fnone&MessageBody=x", 400, "AWS.SimpleQueueService.NonExistentQueue"},
		{"no queue at all", "POST", "Action=SendMessage&MessageBody=x", 400, "MissingParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkQueryError(t, queryCall(t, s, tc.method, "/", tc.params), tc.status, tc.code)
		})
	}
}

// TestQueryAndJSONErrorCodesAgree sends the same faulty requests in both
// protocols: the error code and status must be the same.
func TestQueryAndJSONErrorCodesAgree(t *testing.T) {
	s := newQueryServer(t)
	tests := []struct{ action, json, query string }{
		{"PurgeQueue", `{"QueueUrl":"http://h/000000000000/none"}`, "QueueUrl=http://h/000000000000/none"},
		{"PurgeQueue", `{"QueueUrl":"http://h/000000000000/bad name"}`, "QueueUrl=http://h/000000000000/bad+name"},
		{"CreateQueue", `{}`, ""},
		{"CreateQueue", `{"QueueName":"q","Attributes":{"VisibilityTimeout":"1"}}`, "QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=1"},
		{"CreateQueue", `{"QueueName":"x","Attributes":{"Bogus":"1"}}`, "QueueName=x&Attribute.1.Name=Bogus&Attribute.1.Value=1"},
		{"ListQueues", `{"NextToken":"***","MaxResults":1}`, "NextToken=***&MaxResults=1"},
		{"ListQueues", `{"MaxResults":0}`, "MaxResults=0"},
		{"StartMessageMoveTask", `{"SourceArn":"arn:aws:s3:::bucket"}`, "SourceArn=arn:aws:s3:::bucket"},
		{"StartMessageMoveTask", `{"SourceArn":"arn:aws:sqs:us-east-1:000000000000:q"}`, "SourceArn=arn:aws:sqs:us-east-1:000000000000:q"},
		{"CancelMessageMoveTask", `{"TaskHandle":"nope"}`, "TaskHandle=nope"},
		{"SendMessageBatch", `{"QueueUrl":"q","Entries":[]}`, "QueueUrl=q"},
		{"SendMessageBatch", `{"QueueUrl":"q","Entries":[{"Id":"a","MessageBody":"x"},{"Id":"a","MessageBody":"y"}]}`,
			"QueueUrl=q&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x&SendMessageBatchRequestEntry.2.Id=a&SendMessageBatchRequestEntry.2.MessageBody=y"},
		{"DeleteMessageBatch", `{"QueueUrl":"q","Entries":[{"Id":"a b","ReceiptHandle":"x"}]}`, "QueueUrl=q&DeleteMessageBatchRequestEntry.1.Id=a+b&DeleteMessageBatchRequestEntry.1.ReceiptHandle=x"},
		{"DeleteMessage", `{"QueueUrl":"q","ReceiptHandle":"garbage"}`, "QueueUrl=q&ReceiptHandle=garbage"},
		{"ChangeMessageVisibility", `{"QueueUrl":"q","ReceiptHandle":"garbage"}`, "QueueUrl=q&ReceiptHandle=garbage"},
		{"ReceiveMessage", `{"QueueUrl":"q","MaxNumberOfMessages":11}`, "QueueUrl=q&MaxNumberOfMessages=11"},
		{"SendMessage", `{"QueueUrl":"q","MessageBody":"\u0001"}`, "QueueUrl=q&MessageBody=%01"},
		{"SendMessage", `{"QueueUrl":"q","MessageBody":"x","MessageAttributes":{"a":{"DataType":"String","StringListValues":["x"]}}}`,
			"QueueUrl=q&MessageBody=x&MessageAttribute.1.Name=a&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringListValue.1=x"},
		{"GetQueueAttributes", `{"QueueUrl":"q","AttributeNames":["Bogus"]}`, "QueueUrl=q&AttributeName.1=Bogus"},
		{"GetQueueUrl", `{"QueueName":"none"}`, "QueueName=none"},
	}
	for _, tc := range tests {
		t.Run(tc.action+" "+tc.query, func(t *testing.T) {
			jw := rawCall(t, s, http.MethodPost, tc.action, []byte(tc.json))
			jsonCode, _, _ := strings.Cut(jw.Header().Get("X-Amzn-Query-Error"), ";")
			if jw.Code == http.StatusOK || jsonCode == "" {
				t.Fatalf("JSON: %d %s is not an error", jw.Code, jw.Body)
			}
			checkQueryError(t, queryCall(t, s, http.MethodPost, "/", "Action="+tc.action+"&"+tc.query), jw.Code, jsonCode)
		})
	}
}

func TestQuerySigV4(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s := New(m, Options{Addr: "sqs.local:9324", Now: func() time.Time { return now },
		Credentials: []Credential{{AccessKeyID: "AKID1", SecretAccessKey: "secret1"}}})
	form := []byte("Action=ListQueues&Version=2012-11-05&QueueNamePrefix=a%20b")
	sign := func(method, target string, body []byte, secret string) *http.Request {
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		if method == http.MethodPost {
			r.Header.Set("Content-Type", formContentType+"; charset=utf-8")
		}
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKID1", SecretAccessKey: secret},
			r, hex.EncodeToString(sum[:]), "sqs", "eu-west-1", now); err != nil {
			t.Fatal(err)
		}
		r.Body = ioNopCloser(body)
		return r
	}
	get := "http://sqs.local:9324/?Action=ListQueues&QueueNamePrefix=a%20b&Version=2012-11-05"
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"form body", func() *http.Request { return sign("POST", "http://sqs.local:9324/", form, "secret1") }, 200, ""},
		{"query string", func() *http.Request { return sign("GET", get, nil, "secret1") }, 200, ""},
		{"wrong secret", func() *http.Request { return sign("POST", "http://sqs.local:9324/", form, "secret2") }, 403, "SignatureDoesNotMatch"},
		{"tampered form", func() *http.Request {
			r := sign("POST", "http://sqs.local:9324/", form, "secret1")
			r.Body = ioNopCloser([]byte("Action=DeleteQueue&QueueUrl=a"))
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"tampered query string", func() *http.Request {
			r := sign("GET", get, nil, "secret1")
			r.URL.RawQuery = "Action=DeleteQueue&QueueUrl=a"
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"unsigned", func() *http.Request {
			r := sign("GET", get, nil, "secret1")
			r.Header.Del("Authorization")
			return r
		}, 403, "MissingAuthenticationToken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, tc.req())
			if tc.status == 200 {
				checkQueryAnswer(t, "ListQueues", w)
				return
			}
			var e xmlError
			if err := xml.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != tc.status || e.Code != tc.code {
				t.Fatalf("%d %s; want %d %s", w.Code, w.Body, tc.status, tc.code)
			}
		})
	}
}

// FuzzQueryRequest feeds arbitrary parameters to every action over the
// query protocol. Invariants: no panic; a 200 is well-formed XML rooted at
// <ActionResponse>, anything else a 4xx <ErrorResponse> with a code; never a
// server fault.
func FuzzQueryRequest(f *testing.F) {
	seeds := []string{
		"", "QueueName=fz", "QueueUrl=fz&MessageBody=hello&MessageAttribute.1.Name=a&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v",
		"QueueUrl=fz&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x&SendMessageBatchRequestEntry.2.Id=b",
		"QueueUrl=fz&MaxNumberOfMessages=10&AttributeName.1=All&MessageAttributeName.1=a.*",
		"QueueUrl=fz&DeleteMessageBatchRequestEntry.1.Id=a&DeleteMessageBatchRequestEntry.1.ReceiptHandle=x",
		"QueueUrl=fz&ChangeMessageVisibilityBatchRequestEntry.1.Id=a&ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=x&ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout=5",
		"QueueUrl=fz&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5", "QueueName=fz.fifo&Attribute.1.Name=FifoQueue&Attribute.1.Value=true",
		"SourceArn=arn%3Aaws%3Asqs%3Aus-east-1%3A000000000000%3Afz", "a=%zz", "X.1=&X.1.Y=", "&&==&",
	}
	actions := slices.Sorted(maps.Keys(handlers))
	for i, seed := range seeds {
		f.Add(uint8(i), seed)
	}
	s, m := newRawServer(f)
	if _, err := m.Create(defaultConfig("fz")); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, params string) {
		action := actions[int(which)%len(actions)]
		w := queryCall(t, s, http.MethodPost, "/", "Action="+action+"&"+params)
		if w.Code == http.StatusOK {
			checkQueryAnswer(t, action, w)
			return
		}
		var e xmlError
		if err := xml.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == "" {
			t.Fatalf("%s %q: malformed error %d %q (%v)", action, params, w.Code, w.Body, err)
		}
		if w.Code < 400 || w.Code >= 500 {
			t.Fatalf("%s %q: status %d %s", action, params, w.Code, w.Body)
		}
	})
}

// FuzzFormDecode checks the form reader against net/url: parameters encoded
// by url.Values come back with the same values, and a batch's entries come
// back in index order whatever the order of the form.
func FuzzFormDecode(f *testing.F) {
	f.Add("QueueUrl", "q", "hello world", uint8(3), false)
	f.Add("A.1", "&=+%", "caf\u00e9", uint8(12), true)
	f.Add("", "", "\x00\xff", uint8(0), false)
	f.Fuzz(func(t *testing.T, key, value, body string, entries uint8, reverse bool) {
		v := url.Values{}
		v.Set(key, value)
		n := int(entries % 12)
		for i := 1; i <= n; i++ {
			v.Set(fmt.Sprintf("SendMessageBatchRequestEntry.%d.Id", i), "e"+strconv.Itoa(i))
			v.Set(fmt.Sprintf("SendMessageBatchRequestEntry.%d.MessageBody", i), body+strconv.Itoa(i))
		}
		raw := v.Encode()
		if reverse {
			pairs := strings.Split(raw, "&")
			slices.Reverse(pairs)
			raw = strings.Join(pairs, "&")
		}
		fm, apiErr := parseForm(raw)
		if apiErr != nil {
			t.Fatalf("parseForm(%q): %v", raw, apiErr)
		}
		if got, ok := fm.get(key); !ok || got != v.Get(key) {
			t.Fatalf("get(%q) = %q, %v; want %q", key, got, ok, v.Get(key))
		}
		if strings.HasPrefix(key, "SendMessageBatchRequestEntry.") || key == "QueueUrl" {
			return // the key is part of the batch shape itself
		}
		var req sendMessageBatchRequest
		if apiErr := fm.decode(&req); apiErr != nil {
			t.Fatalf("decode %q: %v", raw, apiErr)
		}
		if len(req.Entries) != n {
			t.Fatalf("%d entries, want %d", len(req.Entries), n)
		}
		for i, e := range req.Entries {
			if e.Id != "e"+strconv.Itoa(i+1) || e.MessageBody == nil || *e.MessageBody != body+strconv.Itoa(i+1) {
				t.Fatalf("entry %d: %+v", i, e)
			}
		}
	})
}

// xmlSanitized is what an XML 1.0 document can carry of s: the characters
// appendXMLText replaces become U+FFFD.
func xmlSanitized(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0xFFFE, r == 0xFFFF:
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// FuzzXMLRoundTrip encodes a received message and a batch failure with
// arbitrary text and reads the answer back with encoding/xml: it must parse
// and give back what was encoded (characters XML cannot carry become
// U+FFFD; valid message bodies come back byte for byte, CR included).
func FuzzXMLRoundTrip(f *testing.F) {
	f.Add("hello", "bridge-key", "o-1", "boom")
	f.Add("a\r\nb <&> ]]> caf\u00e9 \U0001F600", "x", "\t\n", "quote \" ' \x01")
	f.Add("\xff\xfe\x00", "", "\uFFFE", "")
	f.Fuzz(func(t *testing.T, body, attrName, attrValue, message string) {
		msg := queue.Message{MessageID: "id-" + attrName, ReceiptHandle: "rh", Body: []byte(body),
			Attributes: []queue.Attribute{{Name: attrName, DataType: "String", Value: []byte(attrValue)}, {Name: "b", DataType: "Binary", Value: []byte(body)}}}
		res := &receiveResult{messages: []receivedMessage{{msg: &msg, md5Body: md5Hex(msg.Body),
			system: []attrPair{{sysSenderID, accountID}, {"Note", attrValue}}, systemAsked: true,
			user: msg.Attributes, md5User: "d"}}}
		c := &queryCodec{requestID: []byte("rid")}
		out, apiErr := c.encode(nil, "ReceiveMessage", res)
		if apiErr != nil {
			t.Fatal(apiErr)
		}
		var got struct {
			Messages []struct {
				MessageId, Body string
				Attributes      []struct{ Name, Value string } `xml:"Attribute"`
				Attrs           []struct {
					Name  string
					Value struct{ DataType, StringValue, BinaryValue string }
				} `xml:"MessageAttribute"`
			} `xml:"ReceiveMessageResult>Message"`
			RequestID string `xml:"ResponseMetadata>RequestId"`
		}
		if err := xml.Unmarshal(out, &got); err != nil {
			t.Fatalf("not XML: %v\n%s", err, out)
		}
		if len(got.Messages) != 1 || got.RequestID != "rid" {
			t.Fatalf("got %+v", got)
		}
		g := got.Messages[0]
		if g.Body != xmlSanitized(body) || (validMessageChars(body) && g.Body != body) {
			t.Fatalf("body %q came back as %q", body, g.Body)
		}
		if g.MessageId != xmlSanitized(msg.MessageID) || len(g.Attributes) != 2 || g.Attributes[1].Value != xmlSanitized(attrValue) {
			t.Fatalf("attributes %+v", g.Attributes)
		}
		if len(g.Attrs) != 2 || g.Attrs[0].Name != xmlSanitized(attrName) || g.Attrs[0].Value.StringValue != xmlSanitized(attrValue) ||
			g.Attrs[1].Value.BinaryValue != encodeStd(body) {
			t.Fatalf("message attributes %+v", g.Attrs)
		}
		// An error answer quoting the text.
		w := httptest.NewRecorder()
		c.writeError(w, newError(kindInvalidParameterValue, "%s", message))
		var e xmlError
		if err := xml.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Message != xmlSanitized(message) || e.Code != "InvalidParameterValue" {
			t.Fatalf("error %q came back as %+v (%v)", message, e, err)
		}
	})
}

func encodeStd(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
