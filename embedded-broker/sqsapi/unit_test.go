package sqsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

func TestMD5OfAttributesKnownVectors(t *testing.T) {
	// Digests published with SQS client libraries, which real SQS returns
	// for these attributes.
	tests := []struct {
		name  string
		attrs []queue.Attribute
		want  string
	}{
		{"none", nil, ""},
		{"one string", []queue.Attribute{{Name: "SellerName", DataType: "String", Value: []byte("Example Store")}}, "cd28f3b68aeee4b2eac9c66f2f694b58"},
		{"number and string, unsorted", []queue.Attribute{
			{Name: "ordinal", DataType: "Number", Value: []byte("1")},
			{Name: "category", DataType: "String", Value: []byte("test")},
		}, "d21ae90c49061e927f57df5f5d72be1f"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := md5OfAttributes(tc.attrs); got != tc.want {
				t.Fatalf("md5OfAttributes = %q, want %q", got, tc.want)
			}
		})
	}
	// Binary uses transport byte 2: the same bytes typed Binary and String differ.
	s := md5OfAttributes([]queue.Attribute{{Name: "a", DataType: "String", Value: []byte("x")}})
	b := md5OfAttributes([]queue.Attribute{{Name: "a", DataType: "Binary", Value: []byte("x")}})
	if s == b {
		t.Fatalf("Binary and String digests are equal")
	}
}

func TestValidators(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) bool
		in   string
		want bool
	}{
		{"queue name", validQueueName, "orders_eu-1", true},
		{"fifo queue name", validQueueName, "orders.fifo", true},
		{"bare fifo suffix", validQueueName, ".fifo", false},
		{"dot in name", validQueueName, "a.b", false},
		{"empty name", validQueueName, "", false},
		{"80 chars", validQueueName, strings.Repeat("a", 80), true},
		{"81 chars", validQueueName, strings.Repeat("a", 81), false},
		{"batch id", validBatchEntryID, "a-b_C9", true},
		{"batch id with dot", validBatchEntryID, "a.b", false},
		{"batch id 81", validBatchEntryID, strings.Repeat("a", 81), false},
		{"group id punctuation", validGroupOrDedupID, `a!"#$%&'()*+,-./:;<=>?@[\]^_{|}~`, true},
		{"group id space", validGroupOrDedupID, "a b", false},
		{"group id 129", validGroupOrDedupID, strings.Repeat("a", 129), false},
		{"attribute name", validAttributeName, "trace.ctx-1_x", true},
		{"attribute AWS prefix", validAttributeName, "aws.thing", false},
		{"attribute Amazon prefix", validAttributeName, "Amazon.thing", false},
		{"attribute leading dot", validAttributeName, ".a", false},
		{"attribute trailing dot", validAttributeName, "a.", false},
		{"attribute double dot", validAttributeName, "a..b", false},
		{"attribute space", validAttributeName, "a b", false},
		{"chars tab newline", validMessageChars, "a\tb\nc\rd", true},
		{"chars control", validMessageChars, "a\x00", false},
		{"chars emoji", validMessageChars, "ok 🚀", true},
		{"chars FFFE", validMessageChars, "\ufffe", false},
		{"chars invalid utf8", validMessageChars, "\xff", false},
		{"number int", validNumber, "-12", true},
		{"number decimal exp", validNumber, "+1.5E-10", true},
		{"number trailing dot", validNumber, "1.", true},
		{"number leading dot", validNumber, ".5", true},
		{"number letters", validNumber, "12abc", false},
		{"number empty", validNumber, "", false},
		{"number sign only", validNumber, "-", false},
		{"number 39 digits", validNumber, strings.Repeat("9", 39), false},
		{"number bad exponent", validNumber, "1e", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fn(tc.in); got != tc.want {
				t.Fatalf("(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	dataTypes := map[string]string{"String": "String", "Number.int": "Number", "Binary.png": "Binary", "String.": "", "Integer": "", "": ""}
	for in, want := range dataTypes {
		if got := baseDataType(in); got != want {
			t.Errorf("baseDataType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrepareSendSize(t *testing.T) {
	cfg := defaultConfig("q")
	cfg.MaxMessageSize = 1024
	attr := map[string]messageAttributeValue{"name": {DataType: "String", StringValue: aws.String("value")}} // 4+6+5 = 15 bytes
	tests := []struct {
		name   string
		body   int
		wantOK bool
	}{
		{"at the limit", 1024 - 15, true},
		{"one byte over", 1024 - 14, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := body(tc.body)
			p, apiErr := prepareSend(&cfg, &sendEntry{MessageBody: &b, MessageAttributes: attr})
			if (apiErr == nil) != tc.wantOK {
				t.Fatalf("prepareSend error %v, want ok=%v", apiErr, tc.wantOK)
			}
			if apiErr == nil && p.payloadBytes != tc.body+15 {
				t.Fatalf("payload bytes %d", p.payloadBytes)
			}
		})
	}
}

func TestSigV4Verification(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m, err := queue.Open(queue.Options{Dir: t.TempDir(), Fsync: "never"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s := New(m, Options{Addr: "sqs.local:9324", Now: func() time.Time { return now }, Credentials: []Credential{
		{AccessKeyID: "AKID1", SecretAccessKey: "secret1"},
		{AccessKeyID: "AKID2", SecretAccessKey: "secret2"},
	}})
	body := []byte(`{"QueueNamePrefix":"x"}`)
	sign := func(key, secret string, at time.Time, target string, b []byte, url string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(b))
		r.Header.Set("X-Amz-Target", target)
		r.Header.Set("Content-Type", contentType)
		sum := sha256.Sum256(b)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, r, hex.EncodeToString(sum[:]), "sqs", "eu-west-1", at)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		r.Body = ioNopCloser(b) // the body the server reads

		return r
	}
	const list = "AmazonSQS.ListQueues"
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"valid", func() *http.Request { return sign("AKID1", "secret1", now, list, body, "http://sqs.local:9324/") }, 200, ""},
		{"second key", func() *http.Request { return sign("AKID2", "secret2", now, list, body, "http://sqs.local:9324/") }, 200, ""},
		{"query string", func() *http.Request {
			return sign("AKID1", "secret1", now, list, body, "http://sqs.local:9324/?b=2&a-b=3&a=1&a=0&sp=x%20y")
		}, 200, ""},
		{"clock skew within 15 min", func() *http.Request {
			return sign("AKID1", "secret1", now.Add(-14*time.Minute), list, body, "http://sqs.local:9324/")
		}, 200, ""},
		{"wrong secret", func() *http.Request { return sign("AKID1", "secret2", now, list, body, "http://sqs.local:9324/") }, 403, "SignatureDoesNotMatch"},
		{"unknown key", func() *http.Request { return sign("AKID3", "secret1", now, list, body, "http://sqs.local:9324/") }, 403, "InvalidClientTokenId"},
		{"expired", func() *http.Request {
			return sign("AKID1", "secret1", now.Add(-16*time.Minute), list, body, "http://sqs.local:9324/")
		}, 403, "RequestExpired"},
		{"tampered body", func() *http.Request {
			r := sign("AKID1", "secret1", now, list, body, "http://sqs.local:9324/")
			r.Body = ioNopCloser([]byte(`{"QueueNamePrefix":"y"}`))
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"tampered target", func() *http.Request {
			r := sign("AKID1", "secret1", now, list, body, "http://sqs.local:9324/")
			r.Header.Set("X-Amz-Target", "AmazonSQS.DeleteQueue")
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"other host", func() *http.Request {
			r := sign("AKID1", "secret1", now, list, body, "http://sqs.local:9324/")
			r.Host = "evil.local:9324"
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"missing", func() *http.Request {
			r := sign("AKID1", "secret1", now, list, body, "http://sqs.local:9324/")
			r.Header.Del("Authorization")
			return r
		}, 403, "MissingAuthenticationToken"},
		{"malformed", func() *http.Request {
			r := sign("AKID1", "secret1", now, list, body, "http://sqs.local:9324/")
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID1, Signature=zz")
			return r
		}, 403, "SignatureDoesNotMatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, tc.req())
			code, _, _ := strings.Cut(w.Header().Get("X-Amzn-Query-Error"), ";")
			if w.Code != tc.status || code != tc.code {
				t.Fatalf("status %d code %q, want %d %q (body %s)", w.Code, code, tc.status, tc.code, w.Body)
			}
		})
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func ioNopCloser(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }

// FuzzAppendJSONString checks the hand-written encoder against
// encoding/json: the output always parses, and valid UTF-8 round-trips.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t", "\x00\x1f\x7f", "héllo 🚀", "\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("output %q does not parse: %v", out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip %q -> %q", s, back)
		}
	})
}

func TestAdvertisedAddr(t *testing.T) {
	tests := map[string]string{
		":9324":          "localhost:9324",
		"0.0.0.0:9324":   "localhost:9324",
		"[::]:9324":      "localhost:9324",
		"127.0.0.1:9324": "127.0.0.1:9324",
		"sqs.local:80":   "sqs.local:80",
		"no-port-at-all": "no-port-at-all",
		"[::1]:9324":     "[::1]:9324",
	}
	for in, want := range tests {
		if got := advertisedAddr(in); got != want {
			t.Errorf("advertisedAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
