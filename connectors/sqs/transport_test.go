package sqs

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// closingBody behaves like the SDK's request body: WriteTo and Read give
// io.EOF once it is closed.
type closingBody struct {
	r      *bytes.Reader
	closed bool
}

func (b *closingBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, io.EOF
	}
	return b.r.Read(p)
}

func (b *closingBody) WriteTo(w io.Writer) (int64, error) {
	if b.closed {
		return 0, io.EOF
	}
	return b.r.WriteTo(w)
}

func (b *closingBody) Close() error { b.closed = true; return nil }

type captureRT struct{ req *http.Request }

func (c *captureRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.req = r
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}"))}, nil
}

func (c *captureRT) Do(r *http.Request) (*http.Response, error) { return c.RoundTrip(r) }

// TestSafeTransportHidesWriterTo: what the transport sees of a body closed
// early ends cleanly, where the SDK's own body makes io.Copy fail (and
// net/http drop the connection).
func TestSafeTransportHidesWriterTo(t *testing.T) {
	for _, wrap := range []struct {
		name string
		rt   func(*captureRT) func(*http.Request) (*http.Response, error)
	}{
		{"SafeTransport", func(c *captureRT) func(*http.Request) (*http.Response, error) { return SafeTransport(c).RoundTrip }},
		{"SafeHTTPClient", func(c *captureRT) func(*http.Request) (*http.Response, error) { return SafeHTTPClient(c).Do }},
	} {
		t.Run(wrap.name, func(t *testing.T) { testHidesWriterTo(t, wrap.rt) })
	}
}

func testHidesWriterTo(t *testing.T, wrap func(*captureRT) func(*http.Request) (*http.Response, error)) {
	raw := &closingBody{r: bytes.NewReader([]byte(`{"QueueUrl":"q"}`))}
	raw.Close()
	if _, err := io.Copy(io.Discard, raw); !errors.Is(err, io.EOF) {
		t.Fatalf("precondition: copying a closed SDK-like body gives %v, want io.EOF as an error", err)
	}

	body := &closingBody{r: bytes.NewReader([]byte(`{"QueueUrl":"q"}`))}
	req, err := http.NewRequest("POST", "http://127.0.0.1:1/", body)
	if err != nil {
		t.Fatal(err)
	}
	inner := &captureRT{}
	if _, err := wrap(inner)(req); err != nil {
		t.Fatal(err)
	}
	if req.Body != body {
		t.Fatal("the caller's request was modified")
	}
	sent := inner.req.Body
	if _, ok := sent.(io.WriterTo); ok {
		t.Fatal("the transport still sees io.WriterTo")
	}
	b, err := io.ReadAll(sent)
	if err != nil || string(b) != `{"QueueUrl":"q"}` {
		t.Fatalf("body %q, %v", b, err)
	}
	body.Close() // the SDK closes it when the response headers arrive
	if n, err := io.Copy(io.Discard, sent); n != 0 || err != nil {
		t.Fatalf("copy after close: %d, %v; want a clean end", n, err)
	}
	if err := sent.Close(); err != nil {
		t.Fatal(err)
	}
}
