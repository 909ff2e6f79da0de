package sqsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// rawCall posts body to the server as action and returns the recorded response.
func rawCall(t testing.TB, s *Server, method, action string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	// A short deadline bounds long polls the input may ask for.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, method, "/", bytes.NewReader(body))
	if action != "" {
		r.Header.Set("X-Amz-Target", targetPrefix+action)
	}
	r.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func newRawServer(t testing.TB) (*Server, *queue.Manager) {
	t.Helper()
	m, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
	if err != nil {
		t.Fatalf("open queues: %v", err)
	}
	s := New(m, Options{Addr: "127.0.0.1:9324"})
	t.Cleanup(func() {
		_ = s.Close(context.Background())
		_ = m.Close()
	})
	return s, m
}

func TestRawProtocolErrors(t *testing.T) {
	s, _ := newRawServer(t)
	tests := []struct {
		name       string
		method     string
		action     string
		body       []byte
		status     int
		queryError string
	}{
		{"get", http.MethodGet, "ListQueues", nil, 405, "InvalidHttpRequest;Sender"},
		{"no target", http.MethodPost, "", []byte("{}"), 400, "InvalidAction;Sender"},
		{"unknown action", http.MethodPost, "FlyToMoon", []byte("{}"), 400, "InvalidAction;Sender"},
		{"malformed json", http.MethodPost, "CreateQueue", []byte(`{"QueueName":`), 400, "MalformedInput;Sender"},
		{"wrong field type", http.MethodPost, "ReceiveMessage", []byte(`{"QueueUrl":"x","MaxNumberOfMessages":"ten"}`), 400, "MalformedInput;Sender"},
		{"body too large", http.MethodPost, "SendMessage", bytes.Repeat([]byte("a"), maxRequestBytes+1), 413, "RequestEntityTooLarge;Sender"},
		{"missing queue url", http.MethodPost, "SendMessage", []byte(`{"MessageBody":"x"}`), 400, "MissingParameter;Sender"},
		{"missing queue", http.MethodPost, "PurgeQueue", []byte(`{"QueueUrl":"http://h/000000000000/none"}`), 400, "AWS.SimpleQueueService.NonExistentQueue;Sender"},
		{"bad queue url", http.MethodPost, "PurgeQueue", []byte(`{"QueueUrl":"http://h/000000000000/bad name"}`), 400, "InvalidAddress;Sender"},
		{"missing queue name", http.MethodPost, "CreateQueue", []byte(`{}`), 400, "MissingParameter;Sender"},
		{"bad next token", http.MethodPost, "ListQueues", []byte(`{"NextToken":"***","MaxResults":1}`), 400, "InvalidParameterValue;Sender"},
		{"max results zero", http.MethodPost, "ListQueues", []byte(`{"MaxResults":0}`), 400, "InvalidParameterValue;Sender"},
		{"bad source arn", http.MethodPost, "StartMessageMoveTask", []byte(`{"SourceArn":"arn:aws:s3:::bucket"}`), 400, "InvalidParameterValue;Sender"},
		{"unknown task", http.MethodPost, "CancelMessageMoveTask", []byte(`{"TaskHandle":"nope"}`), 400, "ResourceNotFoundException;Sender"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := rawCall(t, s, tc.method, tc.action, tc.body)
			if w.Code != tc.status || w.Header().Get("X-Amzn-Query-Error") != tc.queryError {
				t.Fatalf("status %d, query error %q; want %d, %q (body %s)", w.Code, w.Header().Get("X-Amzn-Query-Error"), tc.status, tc.queryError, w.Body)
			}
			var eb errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Type == "" || eb.Message == "" {
				t.Fatalf("error body %q is not an SQS error (%v)", w.Body, err)
			}
		})
	}
}

func TestRawEmptyReceiveAndNoInputActions(t *testing.T) {
	s, m := newRawServer(t)
	if _, err := m.Create(defaultConfig("raw")); err != nil {
		t.Fatalf("create: %v", err)
	}
	tests := []struct {
		name, action, body, want string
	}{
		{"empty receive", "ReceiveMessage", `{"QueueUrl":"http://x/000000000000/raw"}`, `{"Messages":[]}`},
		{"list without body", "ListQueues", ``, `{"QueueUrls":["http://127.0.0.1:9324/000000000000/raw"]}`},
		{"no attributes asked", "GetQueueAttributes", `{"QueueUrl":"raw"}`, `{}`},
		{"no dead letter sources", "ListDeadLetterSourceQueues", `{"QueueUrl":"raw"}`, `{"queueUrls":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := rawCall(t, s, http.MethodPost, tc.action, []byte(tc.body))
			if w.Code != 200 || w.Body.String() != tc.want {
				t.Fatalf("%d %s, want 200 %s", w.Code, w.Body, tc.want)
			}
		})
	}
}

// FuzzRequest feeds arbitrary bodies to every action. Invariants: no panic;
// the answer is 200 with a JSON object, or a 4xx SQS error with __type,
// message and the query-error header; never a server fault.
func FuzzRequest(f *testing.F) {
	seeds := []string{
		`{}`, ``, `{"QueueName":"fz"}`, `{"QueueName":"fz.fifo","Attributes":{"FifoQueue":"true"}}`,
		`{"QueueUrl":"fz","MessageBody":"hello","MessageAttributes":{"a":{"DataType":"String","StringValue":"v"}}}`,
		`{"QueueUrl":"fz","Entries":[{"Id":"a","MessageBody":"x"},{"Id":"b","MessageBody":""}]}`,
		`{"QueueUrl":"fz","MaxNumberOfMessages":10,"WaitTimeSeconds":1,"AttributeNames":["All"],"MessageAttributeNames":["a.*"]}`,
		`{"QueueUrl":"fz","ReceiptHandle":"x"}`, `{"QueueUrl":"fz","Entries":[{"Id":"a","ReceiptHandle":"x","VisibilityTimeout":5}]}`,
		`{"QueueUrl":"fz","Attributes":{"RedrivePolicy":"{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:fz\",\"maxReceiveCount\":1}"}}`,
		`{"SourceArn":"arn:aws:sqs:us-east-1:000000000000:fz","MaxNumberOfMessagesPerSecond":1}`,
		`{"QueueUrl":"fz","MessageBody":"b","MessageAttributes":{"n":{"DataType":"Number","StringValue":"1e5"},"b":{"DataType":"Binary","BinaryValue":"AAE="}}}`,
		`[1,2]`, `null`, `{"QueueUrl":5}`,
	}
	// Sorted so a corpus entry means the same action on every run.
	actions := slices.Sorted(maps.Keys(handlers))
	for i, seed := range seeds {
		f.Add(uint8(i), []byte(seed))
	}
	s, m := newRawServer(f)
	if _, err := m.Create(defaultConfig("fz")); err != nil {
		f.Fatalf("create: %v", err)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		action := actions[int(which)%len(actions)]
		w := rawCall(t, s, http.MethodPost, action, body)
		checkWellFormed(t, action, w)
		if action == "SendMessage" && w.Code == http.StatusOK {
			// A stored message's digest is that of the body as sent.
			var req struct{ MessageBody string }
			var resp struct{ MD5OfMessageBody, MessageId string }
			if json.Unmarshal(body, &req) != nil || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
				t.Fatalf("SendMessage succeeded on %q with answer %q", body, w.Body)
			}
			if resp.MD5OfMessageBody != md5Hex([]byte(req.MessageBody)) || resp.MessageId == "" {
				t.Fatalf("SendMessage answer %q for body %q", w.Body, req.MessageBody)
			}
		}
	})
}

func checkWellFormed(t *testing.T, action string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code == http.StatusOK {
		var obj map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &obj); err != nil {
			t.Fatalf("%s: 200 with a body that is not a JSON object: %q", action, w.Body)
		}
		return
	}
	if w.Code < 400 || w.Code >= 500 {
		t.Fatalf("%s: status %d (body %s); want 200 or a client error", action, w.Code, w.Body)
	}
	var eb errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Type == "" || eb.Message == "" {
		t.Fatalf("%s: malformed error body %q", action, w.Body)
	}
	if q := w.Header().Get("X-Amzn-Query-Error"); !strings.HasSuffix(q, ";Sender") {
		t.Fatalf("%s: query error header %q", action, q)
	}
}

func TestLongPollEndsWhenClientGoesAway(t *testing.T) {
	s, m := newRawServer(t)
	if _, err := m.Create(defaultConfig("idle")); err != nil {
		t.Fatalf("create: %v", err)
	}
	start := time.Now()
	// rawCall's request context ends after 50 ms, as a disconnect does.
	w := rawCall(t, s, http.MethodPost, "ReceiveMessage", []byte(`{"QueueUrl":"idle","WaitTimeSeconds":20}`))
	if w.Code != 200 || w.Body.String() != `{"Messages":[]}` || time.Since(start) > 5*time.Second {
		t.Fatalf("%d %s after %v; want an empty answer well before the 20 s wait", w.Code, w.Body, time.Since(start))
	}
}

// faultyManager wraps the real manager and fails the calls a test picks.
type faultyManager struct {
	*queue.Manager
	getErr     error
	redriveErr error
}

func (f *faultyManager) Get(name string) (*queue.Queue, error) {
	if f.getErr != nil {
		return nil, f.getErr
	}
	return f.Manager.Get(name)
}

func (f *faultyManager) Redrive(ctx context.Context, dlq, dest string, max, perSecond int) (int, error) {
	if f.redriveErr != nil {
		return 0, f.redriveErr
	}
	return f.Manager.Redrive(ctx, dlq, dest, max, perSecond)
}

func TestEngineFaultsAreServerErrors(t *testing.T) {
	_, m := newRawServer(t)
	for _, name := range []string{"src", "dlq"} {
		if _, err := m.Create(defaultConfig(name)); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	src, _ := m.Get("src")
	cfg := src.Config()
	cfg.DeadLetterQueue, cfg.MaxReceiveCount = "dlq", 3
	if err := src.SetConfig(cfg); err != nil {
		t.Fatalf("set config: %v", err)
	}
	dlq, _ := m.Get("dlq")
	if _, err := dlq.Send(context.Background(), []queue.SendInput{{Body: []byte("x")}}); err != nil {
		t.Fatalf("send: %v", err)
	}
	faulty := &faultyManager{Manager: m, redriveErr: errors.New("disk on fire")}
	s := New(faulty, Options{Addr: "127.0.0.1:9324"})
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	// A failing engine during a move task: the task ends FAILED with the reason.
	w := rawCall(t, s, http.MethodPost, "StartMessageMoveTask", []byte(`{"SourceArn":"arn:aws:sqs:us-east-1:000000000000:dlq"}`))
	if w.Code != 200 {
		t.Fatalf("StartMessageMoveTask: %d %s", w.Code, w.Body)
	}
	waitFor(t, 5*time.Second, func() error {
		w := rawCall(t, s, http.MethodPost, "ListMessageMoveTasks", []byte(`{"SourceArn":"arn:aws:sqs:us-east-1:000000000000:dlq"}`))
		var out struct {
			Results []struct{ Status, FailureReason string }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Results) != 1 {
			return fmt.Errorf("list: %s", w.Body)
		}
		if out.Results[0].Status != "FAILED" || !strings.Contains(out.Results[0].FailureReason, "disk on fire") {
			return fmt.Errorf("task %+v", out.Results[0])
		}
		return nil
	})

	// An unclassified engine error is the server's fault: 500, Receiver.
	faulty.getErr = errors.New("disk on fire")
	w = rawCall(t, s, http.MethodPost, "SendMessage", []byte(`{"QueueUrl":"src","MessageBody":"x"}`))
	if w.Code != 500 || w.Header().Get("X-Amzn-Query-Error") != "InternalError;Receiver" {
		t.Fatalf("engine fault answered %d %q %s", w.Code, w.Header().Get("X-Amzn-Query-Error"), w.Body)
	}
}
