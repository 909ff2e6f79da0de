package sqsapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// The query protocol against JSON 1.0 in the same run: the same
// send (batch of 10 × 200 B) → receive 10 → delete batch loop, with the
// same minimal client (one that builds bodies from templates and finds
// receipt handles with a byte scan, the same work for both protocols), so
// that the difference is the server's codec. Goal: query ≥ 80% of JSON's
// messages per second.

// protocolClient builds one protocol's requests and reads its answers.
type protocolClient struct {
	name string
	// header sets the protocol's headers on a request for action.
	header func(h http.Header, action string)
	// body returns the request body of action with the given entries.
	send, receive []byte
	deleteBody    func(handles []string) []byte
	// handleStart and handleEnd delimit a receipt handle in a receive answer.
	handleStart, handleEnd string
	// deletedEntry appears once per deleted entry in a delete answer.
	deletedEntry string
}

func jsonProtocolClient(queueURL string) *protocolClient {
	var send strings.Builder
	fmt.Fprintf(&send, `{"QueueUrl":%q,"Entries":[`, queueURL)
	for i := range 10 {
		if i > 0 {
			send.WriteByte(',')
		}
		fmt.Fprintf(&send, `{"Id":"m%d","MessageBody":"%s"}`, i, strings.Repeat("x", benchBodyBytes))
	}
	send.WriteString(`]}`)
	return &protocolClient{
		name: ProtocolJSON,
		header: func(h http.Header, action string) {
			h.Set("X-Amz-Target", targetPrefix+action)
			h.Set("Content-Type", contentType)
		},
		send:    []byte(send.String()),
		receive: fmt.Appendf(nil, `{"QueueUrl":%q,"MaxNumberOfMessages":10,"WaitTimeSeconds":1}`, queueURL),
		deleteBody: func(handles []string) []byte {
			del := fmt.Appendf(nil, `{"QueueUrl":%q,"Entries":[`, queueURL)
			for i, h := range handles {
				if i > 0 {
					del = append(del, ',')
				}
				del = fmt.Appendf(del, `{"Id":"d%d","ReceiptHandle":%q}`, i, h)
			}
			return append(del, "]}"...)
		},
		handleStart: `"ReceiptHandle":"`, handleEnd: `"`,
		deletedEntry: `{"Id":"d`,
	}
}

func queryProtocolClient(queueURL string) *protocolClient {
	q := url.QueryEscape(queueURL)
	var send strings.Builder
	send.WriteString("Action=SendMessageBatch&Version=2012-11-05&QueueUrl=" + q)
	for i := range 10 {
		fmt.Fprintf(&send, "&SendMessageBatchRequestEntry.%d.Id=m%d&SendMessageBatchRequestEntry.%d.MessageBody=%s", i+1, i, i+1, strings.Repeat("x", benchBodyBytes))
	}
	return &protocolClient{
		name: ProtocolQuery,
		header: func(h http.Header, _ string) {
			h.Set("Content-Type", formContentType+"; charset=utf-8")
		},
		send:    []byte(send.String()),
		receive: []byte("Action=ReceiveMessage&Version=2012-11-05&QueueUrl=" + q + "&MaxNumberOfMessages=10&WaitTimeSeconds=1"),
		deleteBody: func(handles []string) []byte {
			del := []byte("Action=DeleteMessageBatch&Version=2012-11-05&QueueUrl=" + q)
			for i, h := range handles {
				del = fmt.Appendf(del, "&DeleteMessageBatchRequestEntry.%d.Id=d%d&DeleteMessageBatchRequestEntry.%d.ReceiptHandle=%s", i+1, i, i+1, url.QueryEscape(h))
			}
			return del
		},
		handleStart: "<ReceiptHandle>", handleEnd: "</ReceiptHandle>",
		deletedEntry: "<DeleteMessageBatchResultEntry>",
	}
}

// handles finds the receipt handles of a receive answer.
func (c *protocolClient) handles(out []byte) []string {
	var hs []string
	for {
		i := bytes.Index(out, []byte(c.handleStart))
		if i < 0 {
			return hs
		}
		out = out[i+len(c.handleStart):]
		j := bytes.Index(out, []byte(c.handleEnd))
		if j < 0 {
			return hs
		}
		hs = append(hs, string(out[:j]))
		out = out[j:]
	}
}

// round sends 10 messages, receives up to 10 and deletes what it got; it
// returns how many the delete confirmed.
func (c *protocolClient) round(post func(action string, body []byte) ([]byte, error)) (int, error) {
	if _, err := post("SendMessageBatch", c.send); err != nil {
		return 0, err
	}
	out, err := post("ReceiveMessage", c.receive)
	if err != nil {
		return 0, err
	}
	hs := c.handles(out)
	if len(hs) == 0 {
		return 0, nil
	}
	out, err = post("DeleteMessageBatch", c.deleteBody(hs))
	if err != nil {
		return 0, err
	}
	return bytes.Count(out, []byte(c.deletedEntry)), nil
}

// BenchmarkProtocolRawHTTP runs the loop over loopback TCP with 4 workers,
// fsync "interval", once per protocol against the same server (on
// internal/leanhttp, as bridge serves it).
func BenchmarkProtocolRawHTTP(b *testing.B) {
	m, err := queue.Open(queue.Options{Dir: b.TempDir(), Fsync: "interval"})
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	b.Cleanup(func() { _ = m.Close() })
	s := New(m, Options{Addr: "127.0.0.1:1"})
	hs := newTestHTTP(b) // bridge's SQS listener: internal/leanhttp
	hs.Start(s)
	b.Cleanup(hs.Close)
	for _, mk := range []func(string) *protocolClient{jsonProtocolClient, queryProtocolClient} {
		c := mk(hs.URL + "/000000000000/raw")
		b.Run("protocol="+c.name, func(b *testing.B) {
			name := "raw-" + c.name
			if _, err := m.Create(defaultConfig(name)); err != nil {
				b.Fatalf("create: %v", err)
			}
			defer func() { _ = m.Delete(name) }()
			c = mk(hs.URL + "/000000000000/" + name)
			runProtocolLoop(b, s, hs.URL, c)
		})
	}
}

func runProtocolLoop(b *testing.B, s *Server, endpoint string, c *protocolClient) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	post := func(action string, body []byte) ([]byte, error) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
		c.header(req.Header, action)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %d %s", action, resp.StatusCode, out)
		}
		return out, err
	}
	const workers = 4
	before := s.Requests()[c.name]
	var rounds, moved atomic.Int64
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for rounds.Add(1) <= benchRoundMsgs/10/workers*workers {
					n, err := c.round(post)
					if err != nil {
						errs <- err
						return
					}
					moved.Add(int64(n))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		rounds.Store(0)
	}
	b.ReportMetric(float64(moved.Load())/time.Since(start).Seconds(), "msgs/s")
	if s.Requests()[c.name] == before {
		b.Fatalf("the server saw no %s request", c.name)
	}
}

// BenchmarkProtocolHandler calls ServeHTTP directly (no sockets, no
// client) for the same three calls: the server's own cost per protocol,
// codec plus handlers plus engine, fsync "never".
func BenchmarkProtocolHandler(b *testing.B) {
	m, err := queue.Open(queue.Options{Dir: b.TempDir(), Fsync: "never"})
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	b.Cleanup(func() { _ = m.Close() })
	if _, err := m.Create(defaultConfig("h")); err != nil {
		b.Fatalf("create: %v", err)
	}
	s := New(m, Options{Addr: "127.0.0.1:1"})
	for _, c := range []*protocolClient{jsonProtocolClient("h"), queryProtocolClient("h")} {
		b.Run("protocol="+c.name, func(b *testing.B) {
			post := func(action string, body []byte) ([]byte, error) {
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				c.header(r.Header, action)
				w := httptest.NewRecorder()
				s.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					return nil, fmt.Errorf("%s: %d %s", action, w.Code, w.Body)
				}
				return w.Body.Bytes(), nil
			}
			b.ReportAllocs()
			start := time.Now()
			moved := 0
			for b.Loop() {
				n, err := c.round(post)
				if err != nil || n != 10 {
					b.Fatalf("round: %d, %v", n, err)
				}
				moved += n
			}
			b.ReportMetric(float64(moved)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
