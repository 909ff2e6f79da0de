package sqsapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sdkShaped are requests as SDKs send them: the fast path must take them,
// or it buys nothing. One per hot request type, in fastDecodeTypes' order.
var sdkShaped = []string{
	`{"QueueUrl":"http://127.0.0.1:9324/000000000000/q","Entries":[{"Id":"m0","MessageBody":"hello"},{"Id":"m1","MessageBody":"{\"order\":\"o-1\",\"note\":\"caf\u00e9 \ud83d\ude00\"}","DelaySeconds":5}]}`,
	`{"QueueUrl":"q","MessageBody":"tab\there \/ \\ \b\f\n\r","DelaySeconds":0,"MessageAttributes":{"bridge-key":{"DataType":"String","StringValue":"o-1"},"bin":{"DataType":"Binary","BinaryValue":"AAEC"}},"MessageGroupId":"g","MessageDeduplicationId":"d"}`,
	`{"MaxNumberOfMessages":10,"QueueUrl":"q","WaitTimeSeconds":20,"AttributeNames":["All"],"MessageAttributeNames":["All"],"MessageSystemAttributeNames":[],"VisibilityTimeout":-1}`,
	`{"QueueUrl":"q","Entries":[{"Id":"d0","ReceiptHandle":"rh-0"},{"Id":"d1","ReceiptHandle":"rh-1","VisibilityTimeout":0}]}`,
	`{"QueueUrl":"q","ReceiptHandle":"rh"}`,
}

// nearMisses must be declined by every hot type: encoding/json answers them.
var nearMisses = []string{
	`{"queueurl":"q"}`,
	`{"QueueUrl":"q","QueueUrl":"r"}`,
	`{"QueueUrl":null}`,
	`{"Q\u0075eueUrl":"q"}`,
	`{"MaxNumberOfMessages":1.5,"DelaySeconds":1.5}`,
	`{"MaxNumberOfMessages":1e1,"DelaySeconds":1e1}`,
	`{"MaxNumberOfMessages":01,"DelaySeconds":01}`,
	`{"MaxNumberOfMessages":99999999999999999999,"DelaySeconds":99999999999999999999}`,
	`{"MessageBody":"x","QueueUrl":"q"} trailing`,
	`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"DataType":"Binary","BinaryValue":""}}}]}`,
	`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"DataType":"Binary","BinaryValue":"!!"}}}]}`,
	`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"StringListValues":["a"]}}}]}`,
	`{"Entries":[{"Id":"a","MessageAttributes":{"k":{"DataType":"String"},"k":{"DataType":"Number"}}}]}`,
	`{"MessageBody":"a"`,
}

// alsoAgree are inputs either path may take; if the fast path does, it
// must agree with encoding/json (invalid UTF-8 and lone surrogates become
// U+FFFD in both).
var alsoAgree = []string{
	` { "QueueUrl" : "q" , "Entries" : [ ] } `,
	`{"MaxNumberOfMessages":-0}`,
	`{"MessageBody":"\ud800 \udc00 \ud83d"}`,
	"{\"MessageBody\":\"\xff\xfe ok\"}",
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

func checkFastDecode(t *testing.T, data []byte) {
	decodeBoth[sendMessageBatchRequest](t, data)
	decodeBoth[sendEntry](t, data)
	decodeBoth[receiveMessageRequest](t, data)
	decodeBoth[batchRequest](t, data)
	decodeBoth[deleteMessageRequest](t, data)
}

func TestFastDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range slices.Concat(sdkShaped, nearMisses, alsoAgree) {
		checkFastDecode(t, []byte(in))
	}
	targets := []func() any{
		func() any { return new(sendMessageBatchRequest) },
		func() any { return new(sendEntry) },
		func() any { return new(receiveMessageRequest) },
		func() any { return new(batchRequest) },
		func() any { return new(deleteMessageRequest) },
	}
	for i, in := range sdkShaped {
		if !fastDecode([]byte(in), targets[i]()) {
			t.Errorf("SDK-shaped request declined: %s", in)
		}
	}
	for _, in := range nearMisses {
		for _, target := range targets {
			if v := target(); fastDecode([]byte(in), v) {
				t.Errorf("near miss accepted into %T: %s", v, in)
			}
		}
	}
	var r sendEntry
	if !fastDecode([]byte(alsoAgree[2]), &r) || *r.MessageBody != "\uFFFD \uFFFD \uFFFD" {
		t.Errorf("lone surrogates: %+v", r)
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
	for _, seed := range slices.Concat(sdkShaped, nearMisses, alsoAgree) {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastDecode(t, data)
	})
}
