package leanhttp

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// start serves h on a loopback port and returns its address; the server
// is closed when the test ends.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ln.Addr().String()
}

// echo answers with the method, target, host and body it got.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, "body: %v", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Len", fmt.Sprint(r.ContentLength))
	_, _ = fmt.Fprintf(w, "%s %s %s %s|%s", r.Method, r.URL.Path, r.URL.RawQuery, r.Host, b)
}

// rawConn is a client speaking HTTP by hand.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// answer reads one answer.
func (r *rawConn) answer() (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("read answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("read answer body: %v", err)
	}
	return resp, string(b)
}

// closed reports whether the server closed the connection.
func (r *rawConn) closed() bool {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func TestServeWithNetHTTPClient(t *testing.T) {
	var conns atomic.Int64
	s := &Server{Handler: http.HandlerFunc(echo)}
	addr := start(t, s)
	tr := &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, n, a)
	}}
	client := &http.Client{Transport: tr}
	for i := range 20 {
		resp, err := client.Post("http://"+addr+"/a/b?x=1", "text/plain", strings.NewReader(fmt.Sprint("body", i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /a/b x=1 %s|body%d", addr, i); string(b) != want || resp.StatusCode != 200 {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, b, want)
		}
		if resp.Header.Get("Date") == "" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("headers %v", resp.Header)
		}
	}
	resp, err := client.Get("http://" + addr + "/p%20q?y")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "GET /p q y "+addr+"|" {
		t.Fatalf("escaped path: %q", b)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 21 sequential requests, want 1 (keep-alive)", n)
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(echo)})
	c := dial(t, addr)
	c.send("POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n")
	for _, want := range []string{"POST /1  h|abc", "GET /2  h|", "POST /3  h|xy"} {
		if resp, got := c.answer(); got != want || resp.StatusCode != 200 {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, got, want)
		}
	}
}

func TestChunkedBodyInPieces(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(echo)})
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab")
	time.Sleep(20 * time.Millisecond)
	c.send("cd\r\n3;x=y\r\nefg\r\n0\r\nTrailer-Field: 1\r\n\r\n")
	resp, got := c.answer()
	if got != "POST /  h|abcdefg" || resp.Header.Get("X-Len") != "-1" {
		t.Fatalf("got %q %v", got, resp.Header)
	}
	c.send("GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, got := c.answer(); got != "GET /after  h|" {
		t.Fatalf("after a chunked body: %q", got)
	}
}

func TestExpectContinue(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusForbidden) // never reads the body
			return
		}
		echo(w, r)
	})})
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("interim answer %v, %v", resp, err)
	}
	c.send("hello")
	if _, got := c.answer(); got != "POST /  h|hello" {
		t.Fatalf("got %q", got)
	}
	// A handler that answers without reading: no 100, and the connection
	// closes, since the client may never send the body.
	c.send("POST /refuse HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	resp, _ = c.answer()
	if resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Fatalf("refusal %d close=%v", resp.StatusCode, resp.Close)
	}
	if !c.closed() {
		t.Fatal("connection still open")
	}
}

func TestHTTP10(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(echo)})
	c := dial(t, addr)
	c.send("GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, got := c.answer()
	if got != "GET /k  |" || resp.ProtoMinor != 0 || resp.Close {
		t.Fatalf("keep-alive 1.0: %q %v close=%v", got, resp.Proto, resp.Close)
	}
	c.send("GET /c HTTP/1.0\r\n\r\n")
	if resp, _ := c.answer(); !resp.Close {
		t.Fatal("HTTP/1.0 without keep-alive stays open")
	}
	if !c.closed() {
		t.Fatal("connection still open")
	}
}

func TestRefusedRequests(t *testing.T) {
	var handled atomic.Int64
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		echo(w, r)
	}), MaxHeaderBytes: 4096, MaxBodyBytes: 100})
	for _, tc := range []struct {
		req  string
		code int
	}{
		{"GET / HTTP/1.1\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", 413},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
		{"GET /% HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"BAD\r\n\r\n", 400},
	} {
		c := dial(t, addr)
		c.send(tc.req)
		resp, _ := c.answer()
		if resp.StatusCode != tc.code || !resp.Close {
			t.Errorf("%.40q: %d close=%v, want %d and close", tc.req, resp.StatusCode, resp.Close, tc.code)
		}
		if !c.closed() {
			t.Errorf("%.40q: connection still open", tc.req)
		}
	}
	// A chunked body past MaxBodyBytes fails the handler's read.
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + strings.Repeat("x", 101) + "\r\n0\r\n\r\n")
	if resp, got := c.answer(); resp.StatusCode != 400 || !strings.Contains(got, ErrBodyTooLarge.Error()) || !resp.Close {
		t.Fatalf("chunked past the limit: %d %q", resp.StatusCode, got)
	}
	if handled.Load() != 1 {
		t.Fatalf("the handler saw %d requests, want 1", handled.Load())
	}
}

func TestUnreadBodyIsDrained(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ignored the body")
	})})
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	for range 2 {
		if resp, got := c.answer(); got != "ignored the body" || resp.Close {
			t.Fatalf("got %q close=%v", got, resp.Close)
		}
	}
	// Past maxDrain the connection closes instead.
	c.send(fmt.Sprintf("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", 2*maxDrain))
	go func() { _, _ = c.c.Write(make([]byte, 2*maxDrain)) }()
	if resp, _ := c.answer(); !resp.Close {
		t.Fatal("a large unread body kept the connection")
	}
}

func TestHandlerPanicClosesConnection(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		echo(w, r)
	})})
	c := dial(t, addr)
	c.send("GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	if !c.closed() {
		t.Fatal("connection open after a panic")
	}
	c = dial(t, addr)
	c.send("GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, got := c.answer(); got != "GET /ok  h|" {
		t.Fatalf("after a panic: %q", got)
	}
}

func TestTimeouts(t *testing.T) {
	addr := start(t, &Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	// A head that never completes.
	c := dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost:")
	begin := time.Now()
	resp, _ := c.answer()
	if resp.StatusCode != http.StatusRequestTimeout || time.Since(begin) > 3*time.Second {
		t.Fatalf("slow head: %d after %v", resp.StatusCode, time.Since(begin))
	}
	// An idle connection.
	c = dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	c.answer()
	begin = time.Now()
	if !c.closed() || time.Since(begin) > 3*time.Second {
		t.Fatal("idle connection not closed")
	}
}

// A handler waiting on the request's context (a long poll) learns that the
// client went away; a request pipelined behind it is not lost.
func TestContextCancelledOnDisconnect(t *testing.T) {
	cancelled := make(chan error, 1)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			select {
			case <-r.Context().Done():
				cancelled <- r.Context().Err()
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
		echo(w, r)
	})})
	c := dial(t, addr)
	c.send("GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	_ = c.c.Close()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Err() = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled when the client left")
	}

	c = dial(t, addr)
	c.send("GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the watcher is reading now
	c.send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"GET /wait  h|", "GET /next  h|"} {
		if _, got := c.answer(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	select {
	case err := <-cancelled:
		t.Fatalf("cancelled although the client stayed: %v", err)
	default:
	}
}

func TestShutdownWaitsForActiveRequests(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		echo(w, r)
	})}
	addr := start(t, s)
	idle := dial(t, addr)
	idle.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
	idle.answer()
	busy := dial(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Fatal("idle connection not closed by Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, got := busy.answer()
	if got != "GET /slow  h|" || !resp.Close {
		t.Fatalf("in-flight answer %q close=%v", got, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

func TestShutdownDeadlineCloses(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // a long poll: Close cancels it
	})}
	addr := start(t, s)
	c := dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	s := &Server{Handler: http.HandlerFunc(echo)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeTLS(ln, certFile, keyFile) }()
	defer func() {
		_ = s.Close()
		<-done
	}()
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for range 3 {
		resp, err := client.Post("https://"+ln.Addr().String()+"/t", "text/plain", strings.NewReader("secret"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "POST /t  "+ln.Addr().String()+"|secret" || resp.TLS == nil {
			t.Fatalf("over TLS: %q", b)
		}
	}
}

func writeCert(t *testing.T, dir string) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestLargeAnswerAndHead(t *testing.T) {
	big := strings.Repeat("z", 3<<20)
	addr := start(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Bad", "a\r\nInjected: yes")
		_, _ = io.WriteString(w, big)
	})})
	c := dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, got := c.answer()
	if got != big || resp.ContentLength != int64(len(big)) || resp.Header.Get("Injected") != "" {
		t.Fatalf("large answer: %d bytes, %v", len(got), resp.Header)
	}
	c.send("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodHead})
	if err != nil || resp.ContentLength != int64(len(big)) {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, got := c.answer(); got != big {
		t.Fatal("the answer after HEAD is wrong")
	}
}
