package sqsapi

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBoto3QueueFeatures runs testdata/interop/boto3_queues.py with
// Debian's boto3 (query protocol, SigV4): priorities, TTL and
// dead-lettering, long delays, temporary queues and request-reply, through
// an independent client and the query codec.
func TestBoto3QueueFeatures(t *testing.T) {
	python := interopTool(t, "SQS_PYTHON", "/usr/bin/python3")
	e := newSignedEnv(t)
	out, err := runClient(t, clientEnv(t), python, filepath.Join("testdata", "interop", "boto3_queues.py"), e.http.URL)
	t.Logf("boto3 script:\n%s", out)
	if err != nil {
		t.Fatalf("boto3 script failed: %v", err)
	}
	for _, want := range []string{"protocol query", "ok priority order", "ok ttl and dead-lettering", "ok request-reply 20 calls", "ok temporary queue deleted"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the script did not report %q:\n%s", want, out)
		}
	}
	assertProtocol(t, e.server, ProtocolQuery, 40)
}
