package leanhttp

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

func parse(t testing.TB, raw string) (head, http.Header, error) {
	t.Helper()
	n := headEnd([]byte(raw))
	if n < 0 {
		t.Fatalf("no complete head in %q", raw)
	}
	var h head
	hdr := http.Header{}
	_, err := parseHead([]byte(raw[:n]), &h, hdr, nil)
	return h, hdr, err
}

func TestHeadEnd(t *testing.T) {
	for raw, want := range map[string]int{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest": 27,
		"GET / HTTP/1.1\nHost: a\n\nrest":       24,
		"\r\nGET / HTTP/1.1\r\n\r\n":            20,
		"GET / HTTP/1.1\r\nHost: a\r\n":         -1,
		"GET / HTTP/1.1\r\nHost: a\r\n\r":       -1,
		"GET / HTTP/1.1\r\n":                    -1,
		"":                                      -1,
	} {
		if got := headEnd([]byte(raw)); got != want {
			t.Errorf("headEnd(%q) = %d, want %d", raw, got, want)
		}
	}
}

func TestParseHead(t *testing.T) {
	h, hdr, err := parse(t, "POST /000000000000/q?Action=SendMessage HTTP/1.1\r\nhost: localhost:9324\r\n"+
		"content-type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\nX-Custom:  a b \r\nx-custom: c\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if h.method != "POST" || h.target != "/000000000000/q?Action=SendMessage" || h.minor != 1 || h.host != "localhost:9324" || h.contentLength != 12 {
		t.Fatalf("head %+v", h)
	}
	if hdr.Get("Content-Type") != "application/x-www-form-urlencoded" || strings.Join(hdr.Values("X-Custom"), "|") != "a b|c" || hdr.Get("Host") != "" {
		t.Fatalf("header %v", hdr)
	}
	h, _, err = parse(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: keep-alive, close\r\n\r\n")
	if err != nil || !h.chunked || !h.expectContinue || !h.connClose || h.contentLength != -1 {
		t.Fatalf("head %+v, %v", h, err)
	}
	h, _, err = parse(t, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
	if err != nil || h.minor != 0 || !h.keepAlive || h.hostSeen {
		t.Fatalf("HTTP/1.0 head %+v, %v", h, err)
	}
}

func TestParseHeadRejects(t *testing.T) {
	for raw, code := range map[string]int{
		"GET / HTTP/1.1\r\n\r\n":                                                                400, // no Host
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n":                                          400,
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n":                                                     505,
		"GET / HTTP/1.1 x\r\nHost: a\r\n\r\n":                                                   400,
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n":                                                    400,
		"G(T / HTTP/1.1\r\nHost: a\r\n\r\n":                                                     400,
		"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n":                                                 400,
		"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n":                                      400,
		"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n":                                          400,
		"GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n":                                          400,
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n":                                  400,
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n":                                          400,
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n":                              400,
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n":                              400,
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n":                              400,
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n":          400,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n":                         501,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n": 400,
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n":                                 400,
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n":                                   417,
	} {
		_, _, err := parse(t, raw)
		se, ok := err.(*statusError)
		if !ok || se.code != code {
			t.Errorf("%q: %v, want status %d", raw, err, code)
		}
	}
	// The same Content-Length twice is one length.
	if h, _, err := parse(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"); err != nil || h.contentLength != 3 {
		t.Errorf("repeated equal Content-Length: %+v, %v", h, err)
	}
}

// FuzzParseHead checks the head parser against net/http's: it must not
// panic, and where both accept a head they must agree on the method, the
// target, the host and the body framing.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /000000000000/q HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nX-Amz-Target: AmazonSQS.SendMessage\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
		"GET /?Action=ListQueues&X=%20 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET http://h:1/p HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\nGET / HTTP/1.1\nHost: a\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n := headEnd(raw)
		if n < 0 {
			return
		}
		var h head
		hdr := http.Header{}
		if _, err := parseHead(raw[:n], &h, hdr, nil); err != nil {
			if _, ok := err.(*statusError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if !isToken(h.method) || h.target == "" || h.minor < 0 || h.minor > 1 {
			t.Fatalf("accepted a bad request line: %+v", h)
		}
		if h.chunked && h.contentLength >= 0 {
			t.Fatalf("accepted both framings: %+v", h)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw[:n])))
		if err != nil {
			return // stricter than net/http is fine; the other way round is checked below
		}
		if req.Method != h.method || req.RequestURI != h.target || req.ProtoMinor != h.minor {
			t.Fatalf("request line: net/http %s %s 1.%d, leanhttp %+v", req.Method, req.RequestURI, req.ProtoMinor, h)
		}
		if req.Host != h.host && req.URL.Host == "" {
			t.Fatalf("host: net/http %q, leanhttp %q", req.Host, h.host)
		}
		wantLen := h.contentLength
		if h.chunked {
			wantLen = -1
		} else if wantLen < 0 {
			wantLen = 0
		}
		if req.ContentLength != wantLen {
			t.Fatalf("framing: net/http %d, leanhttp %+v", req.ContentLength, h)
		}
	})
}

func readChunked(raw []byte, limit int64) ([]byte, error) {
	c := &conn{br: bufio.NewReaderSize(bytes.NewReader(raw), minBufferBytes)}
	var b body
	b.reset(c, &head{chunked: true, contentLength: -1}, limit)
	return io.ReadAll(&b)
}

func TestChunkedBody(t *testing.T) {
	got, err := readChunked([]byte("5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT"), 0)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"5\r\nhello", "5\r\nhelloXX\r\n0\r\n\r\n", "x\r\n", "5\r\nhello\r\n", "\r\n", "fffffffffffffffff\r\n"} {
		if _, err := readChunked([]byte(bad), 0); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := readChunked([]byte("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 8); err != ErrBodyTooLarge {
		t.Errorf("past the limit: %v", err)
	}
}

// FuzzChunkedBody checks the chunked reader against net/http/httputil's.
func FuzzChunkedBody(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("3;a=b\r\nabc\r\n1\r\nd\r\n0\r\nX: y\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := readChunked(raw, 0)
		if err != nil {
			return
		}
		want, werr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(raw)))
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("leanhttp %q, httputil %q", got, want)
		}
	})
}
