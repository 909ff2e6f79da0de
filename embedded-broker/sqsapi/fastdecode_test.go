package sqsapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fastDecodeSeeds are requests as SDKs send them, and near misses the fast
// path must decline or get exactly right.
var fastDecodeSeeds = []string{
	`{"QueueUrl":"http://127.0.0.1:9324/000000000000/q","Entries":[{"Id":"m0","MessageBody":"hello"},{"Id":"m1","MessageBody":"{\"order\":\"o-1\",\"note\":\"caf\u00e9 \ud83d\ude00\"}","DelaySeconds":5}]}`,
	`{"Entries":[{"Id":"a","MessageBody":"x","MessageAttributes":{"bridge-key":{"DataType":"String","StringValue":"o-1"},"bin":{"DataType":"Binary","BinaryValue":"AAEC"}},"MessageGroupId":"g","MessageDeduplicationId":"d"}],"QueueUrl":"q"}`,
	`{"MaxNumberOfMessages":10,"QueueUrl":"q","WaitTimeSeconds":20,"AttributeNames":["All"],"MessageAttributeNames":["All"],"MessageSystemAttributeNames":[],"VisibilityTimeout":-1}`,
	`{"QueueUrl":"q","Entries":[{"Id":"d0","ReceiptHandle":"rh-0"},{"Id":"d1","ReceiptHandle":"rh-1","VisibilityTimeout":0}]}`,
	`{"QueueUrl":"q","ReceiptHandle":"rh"}`,
	` { "QueueUrl" : "q" , "Entries" : [ ] } `,
	`{"QueueUrl":"q","MessageBody":"tab\there \/ \\ \b\f\n\r","DelaySeconds":0}`,
	`{"queueurl":"q"}`,
	`{"QueueUrl":"q","QueueUrl":"r"}`,
	`{"QueueUrl":null}`,
	`{"MaxNumberOfMessages":1.5}`,
	`{"MaxNumberOfMessages":1e1}`,
	`{"MaxNumberOfMessages":01}`,
	`{"MaxNumberOfMessages":-0}`,
	`{"MaxNumberOfMessages":99999999999999999999}`,
	`{"MessageBody":"\ud800"}`,
	"{\"MessageBody\":\"\xff\"}",
	`{"MessageBody":"x"} trailing`,
	`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"DataType":"Binary","BinaryValue":""}}}]}`,
	`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"DataType":"Binary","BinaryValue":"!!"}}}]}`,
	`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"StringListValues":["a"]}}}]}`,
	`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"DataType":"String"},"k":{"DataType":"Number"}}}]}`,
	`{"MessageBody":"a"`,
	`{}`,
}

// decodeBoth decodes data into a fresh T by the fast path and by
// encoding/json. When the fast path accepts, encoding/json must accept too
// and agree on every field.
func decodeBoth[T any](t *testing.T, data []byte) (accepted bool) {
	var fast, slow T
	if !fastDecode(data, &fast) {
		var zero T
		if !reflect.DeepEqual(fast, zero) {
			t.Fatalf("declined %q but changed the target: %+v", data, fast)
		}
		return false
	}
	if err := json.Unmarshal(data, &slow); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast path %#v, encoding/json %#v", data, fast, slow)
	}
	return true
}

func checkFastDecode(t *testing.T, data []byte) int {
	n := 0
	for _, ok := range []bool{
		decodeBoth[sendMessageBatchRequest](t, data),
		decodeBoth[sendEntry](t, data),
		decodeBoth[receiveMessageRequest](t, data),
		decodeBoth[batchRequest](t, data),
		decodeBoth[deleteMessageRequest](t, data),
	} {
		if ok {
			n++
		}
	}
	return n
}

func TestFastDecodeAgreesWithEncodingJSON(t *testing.T) {
	accepted := 0
	for _, seed := range fastDecodeSeeds {
		accepted += checkFastDecode(t, []byte(seed))
	}
	// The SDK-shaped seeds must take the fast path, or it buys nothing.
	for i, want := range []func([]byte) bool{
		func(b []byte) bool { var r sendMessageBatchRequest; return fastDecode(b, &r) },
		func(b []byte) bool { var r sendMessageBatchRequest; return fastDecode(b, &r) },
		func(b []byte) bool { var r receiveMessageRequest; return fastDecode(b, &r) },
		func(b []byte) bool { var r batchRequest; return fastDecode(b, &r) },
		func(b []byte) bool { var r deleteMessageRequest; return fastDecode(b, &r) },
	} {
		if !want([]byte(fastDecodeSeeds[i])) {
			t.Errorf("seed %d declined: %s", i, fastDecodeSeeds[i])
		}
	}
	// Each near miss must be declined (encoding/json then answers it).
	for _, miss := range fastDecodeSeeds[7:] {
		if miss == `{}` || miss == `{"MaxNumberOfMessages":-0}` {
			continue
		}
		var r1 sendEntry
		var r2 receiveMessageRequest
		var r3 sendMessageBatchRequest
		if fastDecode([]byte(miss), &r1) || fastDecode([]byte(miss), &r2) || fastDecode([]byte(miss), &r3) {
			t.Errorf("near miss accepted: %s", miss)
		}
	}
	if accepted == 0 {
		t.Fatal("no seed accepted")
	}
}

func TestFastDecodeEscapes(t *testing.T) {
	var r sendEntry
	in := `{"MessageBody":"{\"a\":\"caf\u00e9\"}\n\u0000end ` + strings.Repeat("é", 3) + `"}`
	if !fastDecode([]byte(in), &r) {
		t.Fatalf("declined %s", in)
	}
	if want := "{\"a\":\"café\"}\n\x00end ééé"; *r.MessageBody != want {
		t.Fatalf("body %q, want %q", *r.MessageBody, want)
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, seed := range fastDecodeSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastDecode(t, data)
	})
}
