package sqsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/internal/fauxqs"
)

// The end-to-end loop of the README's SQS figure: producers send batches of
// 10 messages of 200 bytes, consumers receive 10 (long polling) and delete
// them with DeleteMessageBatch, all through the real SDK over loopback TCP.
// The same loop runs against fauxqs, an SQS emulator on Node, so the ratio
// is measured on the same machine in the same run.
const (
	benchProducers = 4
	benchConsumers = 4
	benchBodyBytes = 200
	benchRoundMsgs = 5000 // messages per b.Loop iteration
)

func BenchmarkSQSAPISendReceiveDelete(b *testing.B) {
	for _, fsync := range []string{"always", "interval"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			m, err := queue.Open(queue.Options{Dir: b.TempDir(), Fsync: fsync})
			if err != nil {
				b.Fatalf("open: %v", err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatalf("listen: %v", err)
			}
			s := New(m, Options{Addr: ln.Addr().String()})
			hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
			var served sync.WaitGroup
			served.Go(func() { _ = hs.Serve(ln) })
			b.Cleanup(func() {
				_ = hs.Close()
				served.Wait()
				_ = s.Close(context.Background())
				_ = m.Close()
			})
			runSendReceiveDelete(b, benchClient("http://"+ln.Addr().String()))
		})
	}
}

func BenchmarkFauxqsSendReceiveDelete(b *testing.B) {
	runSendReceiveDelete(b, benchClient(startFauxqs(b)))
}

// startFauxqs starts fauxqs for the rest of b and returns its endpoint.
func startFauxqs(b *testing.B) string {
	url, stop, err := fauxqs.Start()
	if errors.Is(err, fauxqs.ErrNotInstalled) {
		b.Skip(err) // a comparison, not a test of bridge: ./scripts/test.sh installs fauxqs
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	return url
}

// BenchmarkSDKClientCeiling runs the same SDK loop against a stub that
// answers every call with a canned, valid response and keeps no state: the
// loop's ceiling on this machine whatever the server does, since the stub
// costs only net/http's own server work. No SQS server sharing the cores
// with the SDK client can make the loop go faster than this.
func BenchmarkSDKClientCeiling(b *testing.B) {
	hs := httptest.NewServer(cannedSQS(b))
	b.Cleanup(hs.Close)
	runSendReceiveDelete(b, benchClient(hs.URL))
}

// cannedSQS answers the loop's five actions with fixed bodies that pass
// the SDK's checks (message ids, MD5 digests of the 200-byte bodies). It
// keeps one count: a receive answers ten messages only for a batch sent
// and not yet received, and otherwise waits for one (a long poll), so the
// loop does the same calls as against a real queue.
func cannedSQS(b *testing.B) http.Handler {
	batches := make(chan struct{}, 1<<20)
	body := strings.Repeat("x", benchBodyBytes)
	digest := md5Hex([]byte(body))
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
		action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
		out, ok := answers[action]
		if !ok {
			b.Errorf("canned SQS: unexpected action %q", action)
			http.Error(w, "unexpected action", http.StatusBadRequest)
			return
		}
		switch action {
		case "CreateQueue":
			out = []byte(`{"QueueUrl":"http://` + r.Host + `/000000000000/bench"}`)
		case "SendMessageBatch":
			batches <- struct{}{}
		case "ReceiveMessage":
			select {
			case <-batches:
			case <-time.After(time.Second):
				out = []byte(`{}`)
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		_, _ = w.Write(out)
	})
}

// benchClient is the SDK client of the loop: as PEERS.md and the tests
// configure it, or, with SQS_BENCH_CLIENT=lean, as a worker tuned for
// throughput would (unsigned, no client-side MD5 checks, no retryer), to
// show what the SDK's options are worth.
func benchClient(url string) *sqs.Client {
	if os.Getenv("SQS_BENCH_CLIENT") == "lean" {
		return sqs.New(sqs.Options{
			Region:                           "us-east-1",
			BaseEndpoint:                     aws.String(url),
			Credentials:                      aws.AnonymousCredentials{},
			DisableMessageChecksumValidation: true,
			Retryer:                          aws.NopRetryer{},
		})
	}
	return sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
	})
}

// runSendReceiveDelete moves benchRoundMsgs messages through the queue per
// iteration and reports end-to-end messages per second, the p99 latency of
// SendMessageBatch, and failed calls as a metric rather than hiding them.
func runSendReceiveDelete(b *testing.B, client *sqs.Client) {
	ctx := context.Background()
	bodyText := aws.String(strings.Repeat("x", benchBodyBytes))
	var failures atomic.Int64
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	var elapsed time.Duration
	for round := 0; b.Loop(); round++ {
		// A fresh queue per round: a long poll the previous round abandoned
		// (its client cancelled) may still be parked in a server that does
		// not notice disconnects, and would hide this round's messages for
		// a visibility timeout.
		b.StopTimer()
		name := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), round)
		created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			b.Fatalf("create queue: %v", err)
		}
		b.StartTimer()
		start := time.Now()
		sendLat := runRound(ctx, client, created.QueueUrl, bodyText, &failures)
		elapsed += time.Since(start)
		if len(lat)+len(sendLat) <= cap(lat) {
			lat = append(lat, sendLat...)
		}
		b.StopTimer()
		if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: created.QueueUrl}); err != nil {
			b.Fatalf("delete queue: %v", err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*benchRoundMsgs)/elapsed.Seconds(), "msgs/s")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "send-p99-ms")
	}
	b.ReportMetric(float64(failures.Load()), "failed-calls")
}

// runRound sends benchRoundMsgs messages from the producers and returns once
// the consumers deleted as many. It returns the producers' batch latencies.
func runRound(ctx context.Context, client *sqs.Client, url, bodyText *string, failures *atomic.Int64) []time.Duration {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var deleted atomic.Int64
	var wg sync.WaitGroup
	lats := make([][]time.Duration, benchProducers)
	batches := benchRoundMsgs / 10
	for p := range benchProducers {
		wg.Go(func() {
			entries := make([]types.SendMessageBatchRequestEntry, 10)
			for i := range entries {
				entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("m", i)), MessageBody: bodyText}
			}
			for i := p; i < batches; i += benchProducers {
				t0 := time.Now()
				for {
					out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: url, Entries: entries})
					if err == nil && len(out.Failed) == 0 {
						break
					}
					failures.Add(1) // resent whole: a partial failure would skew counts
					if ctx.Err() != nil {
						return
					}
				}
				lats[p] = append(lats[p], time.Since(t0))
			}
		})
	}
	for range benchConsumers {
		wg.Go(func() { consume(ctx, client, url, &deleted, failures, cancel) })
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return all
}

func consume(ctx context.Context, client *sqs.Client, url *string, deleted, failures *atomic.Int64, done context.CancelFunc) {
	entries := make([]types.DeleteMessageBatchRequestEntry, 0, 10)
	for ctx.Err() == nil {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				failures.Add(1)
			}
			continue
		}
		if len(out.Messages) == 0 {
			continue
		}
		entries = entries[:0]
		for i, m := range out.Messages {
			entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("d", i)), ReceiptHandle: m.ReceiptHandle})
		}
		res, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: url, Entries: entries})
		if err != nil {
			failures.Add(1)
			continue // the messages come back after their visibility timeout
		}
		if deleted.Add(int64(len(res.Successful))) >= benchRoundMsgs {
			done()
		}
	}
}

// BenchmarkServerRawHTTP runs the same send/receive/delete loop with a
// minimal HTTP client instead of the SDK, to show the server's own ceiling:
// in the SDK benchmarks the client shares the two cores and costs more CPU
// per message than the server. BenchmarkFauxqsRawHTTP is the same loop
// against fauxqs, for the servers' ratio with a client that costs little.
func BenchmarkServerRawHTTP(b *testing.B) {
	m, err := queue.Open(queue.Options{Dir: b.TempDir(), Fsync: "interval"})
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	b.Cleanup(func() { _ = m.Close() })
	if _, err := m.Create(defaultConfig("raw")); err != nil {
		b.Fatalf("create: %v", err)
	}
	hs := httptest.NewServer(New(m, Options{Addr: "127.0.0.1:1"}))
	b.Cleanup(hs.Close)
	runRawHTTP(b, hs.URL, "raw")
}

func BenchmarkFauxqsRawHTTP(b *testing.B) {
	url := startFauxqs(b)
	created, err := benchClient(url).CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("raw")})
	if err != nil {
		b.Fatalf("create queue: %v", err)
	}
	runRawHTTP(b, url, *created.QueueUrl)
}

// runRawHTTP moves benchRoundMsgs messages per iteration through the queue
// at queueURL with 4 workers, each sending a batch of 10, receiving up to 10
// and deleting what it got, over plain net/http without signatures.
func runRawHTTP(b *testing.B, endpoint, queueURL string) {
	quotedURL, _ := json.Marshal(queueURL)
	var send strings.Builder
	fmt.Fprintf(&send, `{"QueueUrl":%s,"Entries":[`, quotedURL)
	for i := range 10 {
		if i > 0 {
			send.WriteByte(',')
		}
		fmt.Fprintf(&send, `{"Id":"m%d","MessageBody":"%s"}`, i, strings.Repeat("x", benchBodyBytes))
	}
	send.WriteString(`]}`)
	sendBody := []byte(send.String())
	receiveBody := fmt.Appendf(nil, `{"QueueUrl":%s,"MaxNumberOfMessages":10,"WaitTimeSeconds":1}`, quotedURL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	post := func(action string, body []byte) ([]byte, error) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", targetPrefix+action)
		req.Header.Set("Content-Type", contentType)
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
	var rounds, moved atomic.Int64
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for rounds.Add(1) <= benchRoundMsgs/10/workers*workers {
					n, err := rawRound(post, quotedURL, sendBody, receiveBody)
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
	// Counted as deleted, not as sent: a receive that came back short
	// leaves messages for a later round, and the figure must not credit them.
	b.ReportMetric(float64(moved.Load())/time.Since(start).Seconds(), "msgs/s")
}

// rawRound sends 10 messages, receives up to 10 and deletes what it got; it
// returns how many the delete confirmed.
func rawRound(post func(string, []byte) ([]byte, error), quotedURL, sendBody, receiveBody []byte) (int, error) {
	if _, err := post("SendMessageBatch", sendBody); err != nil {
		return 0, err
	}
	out, err := post("ReceiveMessage", receiveBody)
	if err != nil {
		return 0, err
	}
	var got struct {
		Messages []struct{ ReceiptHandle string }
	}
	if err := json.Unmarshal(out, &got); err != nil {
		return 0, err
	}
	if len(got.Messages) == 0 {
		return 0, nil
	}
	del := fmt.Appendf(nil, `{"QueueUrl":%s,"Entries":[`, quotedURL)
	for i, m := range got.Messages {
		if i > 0 {
			del = append(del, ',')
		}
		del = fmt.Appendf(del, `{"Id":"d%d","ReceiptHandle":%q}`, i, m.ReceiptHandle)
	}
	del = append(del, "]}"...)
	out, err = post("DeleteMessageBatch", del)
	if err != nil {
		return 0, err
	}
	var res struct{ Successful []struct{ Id string } }
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, err
	}
	return len(res.Successful), nil
}

// BenchmarkSQSAPILongPollLatency measures how soon a consumer parked in a
// long poll (WaitTimeSeconds 20) receives a message after a producer starts
// sending it, through the SDK, under fsync "always". It also reports how
// often the receive completed before the send was acknowledged: the engine
// makes a message visible before its fsync ends, which this figure makes
// visible rather than hiding it.
func BenchmarkSQSAPILongPollLatency(b *testing.B) {
	m, err := queue.Open(queue.Options{Dir: b.TempDir(), Fsync: "always"})
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	b.Cleanup(func() { _ = m.Close() })
	hs := httptest.NewUnstartedServer(nil)
	s := New(m, Options{Addr: hs.Listener.Addr().String()})
	hs.Config.Handler = s
	hs.Start()
	b.Cleanup(hs.Close)
	client := benchClient(hs.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("latency")})
	if err != nil {
		b.Fatalf("create: %v", err)
	}
	received := make(chan time.Time, 1)
	var consumer sync.WaitGroup
	consumer.Go(func() {
		for ctx.Err() == nil {
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: created.QueueUrl, WaitTimeSeconds: 20})
			if err != nil || len(out.Messages) == 0 {
				continue
			}
			at := time.Now()
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: created.QueueUrl, ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil && ctx.Err() == nil {
				b.Errorf("delete: %v", err)
			}
			received <- at
		}
	})
	bodyText := aws.String(strings.Repeat("x", benchBodyBytes))
	var endToEnd []time.Duration
	beforeAck := 0
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: created.QueueUrl, MessageBody: bodyText}); err != nil {
			b.Fatalf("send: %v", err)
		}
		acked := time.Now()
		at := <-received
		endToEnd = append(endToEnd, at.Sub(t0))
		if at.Before(acked) {
			beforeAck++
		}
	}
	cancel()
	consumer.Wait()
	slices.Sort(endToEnd)
	b.ReportMetric(float64(endToEnd[len(endToEnd)*99/100].Microseconds())/1000, "e2e-p99-ms")
	b.ReportMetric(float64(endToEnd[len(endToEnd)/2].Microseconds())/1000, "e2e-p50-ms")
	b.ReportMetric(100*float64(beforeAck)/float64(len(endToEnd)), "recv-before-ack-%")
}

// BenchmarkHandlerSendReceiveDelete calls ServeHTTP directly (no sockets, no
// client) for SendMessageBatch, ReceiveMessage and DeleteMessageBatch of 10
// messages: the server's own CPU cost per message, handlers plus engine.
func BenchmarkHandlerSendReceiveDelete(b *testing.B) {
	for _, fsync := range []string{"always", "never"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			m, err := queue.Open(queue.Options{Dir: b.TempDir(), Fsync: fsync})
			if err != nil {
				b.Fatalf("open: %v", err)
			}
			b.Cleanup(func() { _ = m.Close() })
			if _, err := m.Create(defaultConfig("h")); err != nil {
				b.Fatalf("create: %v", err)
			}
			s := New(m, Options{Addr: "127.0.0.1:1"})
			var send strings.Builder
			send.WriteString(`{"QueueUrl":"h","Entries":[`)
			for i := range 10 {
				if i > 0 {
					send.WriteByte(',')
				}
				fmt.Fprintf(&send, `{"Id":"m%d","MessageBody":"%s"}`, i, strings.Repeat("x", benchBodyBytes))
			}
			send.WriteString(`]}`)
			sendBody := []byte(send.String())
			receiveBody := []byte(`{"QueueUrl":"h","MaxNumberOfMessages":10}`)
			call := func(action string, body []byte) []byte {
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				r.Header.Set("X-Amz-Target", targetPrefix+action)
				w := httptest.NewRecorder()
				s.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", action, w.Code, w.Body)
				}
				return w.Body.Bytes()
			}
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				call("SendMessageBatch", sendBody)
				out := call("ReceiveMessage", receiveBody)
				var got struct {
					Messages []struct{ ReceiptHandle string }
				}
				if err := json.Unmarshal(out, &got); err != nil || len(got.Messages) == 0 {
					b.Fatalf("receive: %v %s", err, out)
				}
				del := []byte(`{"QueueUrl":"h","Entries":[`)
				for i, msg := range got.Messages {
					if i > 0 {
						del = append(del, ',')
					}
					del = fmt.Appendf(del, `{"Id":"d%d","ReceiptHandle":%q}`, i, msg.ReceiptHandle)
				}
				call("DeleteMessageBatch", append(del, "]}"...))
			}
			b.ReportMetric(float64(b.N*10)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
