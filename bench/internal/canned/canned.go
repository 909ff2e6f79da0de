// Package canned is an SQS endpoint that answers the sqsload loop's calls
// (CreateQueue, SendMessageBatch, ReceiveMessage, DeleteMessageBatch,
// DeleteQueue) with canned, valid JSON 1.0 answers and keeps no queue: the
// HTTP floor of the server CPU figure (cmd/sqscanned, BenchmarkSQSServerCPU).
package canned

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler answers with fixed bodies that pass the SDK's checks (ids, MD5
// digests). A receive answers ten messages for a batch sent and not yet
// received, and otherwise waits for one, as a long poll on a real queue.
func Handler(bodyBytes int) http.Handler {
	batches := make(chan struct{}, 1<<20)
	body := strings.Repeat("x", bodyBytes)
	sum := md5.Sum([]byte(body))
	digest := hex.EncodeToString(sum[:])
	var sent, received, deleted strings.Builder
	sent.WriteString(`{"Successful":[`)
	received.WriteString(`{"Messages":[`)
	deleted.WriteString(`{"Successful":[`)
	for i := range 10 {
		if i > 0 {
			sent.WriteByte(',')
			received.WriteByte(',')
			deleted.WriteByte(',')
		}
		fmt.Fprintf(&sent, `{"Id":"m%d","MessageId":"00000000-0000-4000-8000-00000000000%d","MD5OfMessageBody":"%s"}`, i, i, digest)
		fmt.Fprintf(&received, `{"MessageId":"00000000-0000-4000-8000-00000000000%d","ReceiptHandle":"rh-%d","MD5OfBody":"%s","Body":"%s"}`, i, i, digest, body)
		fmt.Fprintf(&deleted, `{"Id":"d%d"}`, i)
	}
	answers := map[string][]byte{
		"CreateQueue":        nil, // the URL depends on the request's Host
		"DeleteQueue":        []byte(`{}`),
		"SendMessageBatch":   []byte(sent.String() + `],"Failed":[]}`),
		"ReceiveMessage":     []byte(received.String() + `]}`),
		"DeleteMessageBatch": []byte(deleted.String() + `],"Failed":[]}`),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
		out, ok := answers[action]
		if !ok {
			http.Error(w, "unexpected action", http.StatusBadRequest)
			return
		}
		switch action {
		case "CreateQueue":
			out = []byte(`{"QueueUrl":"http://` + r.Host + `/000000000000/canned"}`)
		case "SendMessageBatch":
			batches <- struct{}{}
		case "ReceiveMessage":
			select { // as a queue does: wait only when nothing is there
			case <-batches:
			default:
				got, ok := wait(r, batches)
				if !ok {
					return
				}
				if !got {
					out = []byte(`{}`)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		_, _ = w.Write(out)
	})
}

// wait waits up to a second for a batch (got); ok is false when the client
// left.
func wait(r *http.Request, batches chan struct{}) (got, ok bool) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-batches:
		return true, true
	case <-t.C:
		return false, true
	case <-r.Context().Done():
		return false, false
	}
}
