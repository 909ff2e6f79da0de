package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The producers and consumers of the chaos tests and the soak. Producers
// are careful at-least-once clients: an input counts in the ledger only
// once its receiver acknowledged it, and an input that was not
// acknowledged is offered again with the same id (so per-key order holds:
// a key's next input is offered only after the previous one was
// acknowledged). Consumers talk to the peers directly, around the faults.

// keyedSeq hands out per-key sequence numbers.
type keyedSeq struct {
	prefix string
	keys   int
	n      int
	seq    map[string]int
}

func newKeyedSeq(prefix string, keys int) *keyedSeq {
	return &keyedSeq{prefix: prefix, keys: keys, seq: map[string]int{}}
}

// next returns the next input: keys in rotation, ids unique.
func (k *keyedSeq) next(pad int) ledgerMsg {
	key := k.prefix + "k" + strconv.Itoa(k.n%k.keys)
	k.seq[key]++
	m := ledgerMsg{ID: k.prefix + strconv.Itoa(k.n), Key: key, Seq: k.seq[key]}
	if pad > 0 {
		m.Pad = strings.Repeat("x", pad)
	}
	k.n++
	return m
}

func (m ledgerMsg) value() []byte {
	b, _ := json.Marshal(m)
	return b
}

// pacer spaces a loop at rate iterations per second.
type pacer struct {
	begin time.Time
	rate  float64
	n     int
}

func (p *pacer) wait(ctx context.Context) bool {
	if p.begin.IsZero() {
		p.begin = time.Now()
	}
	p.n++
	ahead := time.Duration(float64(p.n)/p.rate*float64(time.Second)) - time.Since(p.begin)
	if ahead <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(ahead):
		return true
	}
}

// httpProducer posts batches of inputs to a topic of bridge until ctx ends.
type httpProducer struct {
	url     func() string // the current bridge's HTTP URL (it may be restarted)
	topic   string
	batch   int
	rate    float64 // batches per second
	pad     int
	sinks   []string
	ledger  *ledger
	seq     *keyedSeq
	refused atomic.Int64 // answers other than 200, and transport errors
	posted  atomic.Int64 // acknowledged inputs
	// lastRefusal is the last answer other than 200: "STATUS BODY".
	lastRefusal atomic.Pointer[string]
}

func (p *httpProducer) run(ctx context.Context) {
	client := &http.Client{Timeout: 5 * time.Second}
	pace := pacer{rate: p.rate}
	for pace.wait(ctx) {
		msgs := make([]ledgerMsg, p.batch)
		evs := make([]map[string]any, p.batch)
		for i := range msgs {
			msgs[i] = p.seq.next(p.pad)
			p.ledger.sent(msgs[i], p.sinks...)
			evs[i] = map[string]any{"key": msgs[i].Key, "value": msgs[i]}
		}
		body, _ := json.Marshal(evs)
		for ctx.Err() == nil {
			if p.post(ctx, client, body) {
				ids := make([]string, len(msgs))
				for i := range msgs {
					ids[i] = msgs[i].ID
				}
				p.ledger.acked(ids...)
				p.posted.Add(int64(len(msgs)))
				break
			}
			p.refused.Add(1)
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
}

func (p *httpProducer) post(ctx context.Context, client *http.Client, body []byte) bool {
	req, err := http.NewRequestWithContext(ctx, "POST", p.url()+"/v1/topics/"+p.topic+"/events", strings.NewReader(string(body)))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		return true
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	answer := strconv.Itoa(resp.StatusCode) + " " + string(b)
	p.lastRefusal.Store(&answer)
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// kafkaProducer produces keyed inputs to a Kafka topic, directly.
type kafkaProducer struct {
	client *kgo.Client
	topic  string
	batch  int
	rate   float64
	sinks  []string
	ledger *ledger
	seq    *keyedSeq
	posted atomic.Int64
}

func (p *kafkaProducer) run(ctx context.Context, t testing.TB) {
	pace := pacer{rate: p.rate}
	for pace.wait(ctx) {
		rs := make([]*kgo.Record, p.batch)
		ids := make([]string, p.batch)
		for i := range rs {
			m := p.seq.next(0)
			p.ledger.sent(m, p.sinks...)
			ids[i] = m.ID
			rs[i] = &kgo.Record{Topic: p.topic, Key: []byte(m.Key), Value: m.value()}
		}
		// franz-go retries until the record is acknowledged or ctx ends;
		// its idempotent producer keeps per-partition order.
		if err := p.client.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			if ctx.Err() == nil {
				t.Errorf("kafka produce: %v", err)
			}
			return
		}
		p.ledger.acked(ids...)
		p.posted.Add(int64(len(ids)))
	}
}

// amqpProducer publishes inputs to a RabbitMQ queue with publisher
// confirms, directly; an unconfirmed chunk is published again.
type amqpProducer struct {
	url    string
	queue  string
	batch  int
	rate   float64
	sinks  []string
	ledger *ledger
	seq    *keyedSeq
	posted atomic.Int64
}

func (p *amqpProducer) run(ctx context.Context, t testing.TB) {
	var conn *amqp091.Connection
	var ch *amqp091.Channel
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	pace := pacer{rate: p.rate}
	for pace.wait(ctx) {
		msgs := make([]ledgerMsg, p.batch)
		for i := range msgs {
			msgs[i] = p.seq.next(0)
			p.ledger.sent(msgs[i], p.sinks...)
		}
		for ctx.Err() == nil {
			if conn == nil || conn.IsClosed() {
				var err error
				if conn, ch, err = amqpE2EConfirmChannel(p.url); err != nil {
					conn = nil
					sleepCtx(ctx, 200*time.Millisecond)
					continue
				}
			}
			if err := p.publish(ctx, ch, msgs); err != nil {
				_ = conn.Close()
				continue
			}
			ids := make([]string, len(msgs))
			for i := range msgs {
				ids[i] = msgs[i].ID
			}
			p.ledger.acked(ids...)
			p.posted.Add(int64(len(ids)))
			break
		}
	}
}

func (p *amqpProducer) publish(ctx context.Context, ch *amqp091.Channel, msgs []ledgerMsg) error {
	pending := make([]*amqp091.DeferredConfirmation, 0, len(msgs))
	for _, m := range msgs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", p.queue, false, false, amqp091.Publishing{
			DeliveryMode: amqp091.Persistent, ContentType: "application/json",
			Headers: amqp091.Table{"key": m.Key}, Body: m.value()})
		if err != nil {
			return err
		}
		pending = append(pending, dc)
	}
	for _, dc := range pending {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := dc.WaitContext(wctx)
		cancel()
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("nacked")
		}
	}
	return nil
}

// consumeKafka records every record of topic at sink until ctx ends.
func consumeKafka(ctx context.Context, t testing.TB, opts []kgo.Opt, topic, sink string, l *ledger) {
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Errorf("kafka consumer: %v", err)
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { l.delivered(sink, r.Value) })
	}
}

// consumeAMQP records every message of queue at sink until ctx ends,
// with one consumer (so the queue's order is what it sees), acking each.
func consumeAMQP(ctx context.Context, amqpURL, queue, sink string, l *ledger) {
	for ctx.Err() == nil {
		conn, err := amqp091.Dial(amqpURL)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		ch, err := conn.Channel()
		if err == nil {
			err = ch.Qos(500, 0, false)
		}
		var deliveries <-chan amqp091.Delivery
		if err == nil {
			deliveries, err = ch.Consume(queue, "", false, true, false, false, nil)
		}
		if err != nil {
			conn.Close()
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		func() {
			defer conn.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case d, ok := <-deliveries:
					if !ok {
						return
					}
					l.delivered(sink, d.Body)
					_ = d.Ack(false)
				}
			}
		}()
	}
}

// sqsWorker receives from an SQS queue (fauxqs or bridge's SQS API) with
// the AWS SDK, records each message at sink, and deletes it, except a
// fraction failRate that it "fails": not deleted, so it comes back after
// the visibility timeout.
type sqsWorker struct {
	client   *sqs.Client
	queueURL string
	sink     string
	ledger   *ledger
	failRate float64
	fifo     bool
	failed   atomic.Int64
	errors   atomic.Int64
}

func (w *sqsWorker) run(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := w.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.queueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			if ctx.Err() == nil {
				w.errors.Add(1)
				sleepCtx(ctx, 200*time.Millisecond)
			}
			continue
		}
		var del []types.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			if w.failRate > 0 && rand.Float64() < w.failRate {
				w.failed.Add(1)
				if w.fifo {
					// A FIFO group is held while one of its messages is in
					// flight: the rest of this receive must come back too,
					// behind the failed one, or they would be processed
					// ahead of it.
					break
				}
				continue
			}
			w.ledger.delivered(w.sink, []byte(aws.ToString(m.Body)))
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if len(del) == 0 {
			continue
		}
		if _, err := w.client.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{
			QueueUrl: aws.String(w.queueURL), Entries: del}); err != nil {
			w.errors.Add(1) // they come back: counted as duplicates
		}
	}
}

// sqsSender sends inputs to an SQS queue (the upstream of bridge's SQS
// source), directly.
type sqsSender struct {
	client   *sqs.Client
	queueURL string
	rate     float64 // batches of 10 per second
	sinks    []string
	ledger   *ledger
	seq      *keyedSeq
	posted   atomic.Int64
}

func (s *sqsSender) run(ctx context.Context) {
	pace := pacer{rate: s.rate}
	for pace.wait(ctx) {
		msgs := make([]ledgerMsg, 10)
		entries := make([]types.SendMessageBatchRequestEntry, len(msgs))
		for i := range msgs {
			msgs[i] = s.seq.next(0)
			s.ledger.sent(msgs[i], s.sinks...)
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(msgs[i].value()))}
		}
		for ctx.Err() == nil {
			out, err := s.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries})
			if err != nil || len(out.Failed) > 0 {
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			ids := make([]string, len(msgs))
			for i := range msgs {
				ids[i] = msgs[i].ID
			}
			s.ledger.acked(ids...)
			s.posted.Add(int64(len(ids)))
			break
		}
	}
}

// fauxqsQueue creates a queue on fauxqs and returns its URL.
func fauxqsQueue(t testing.TB, client *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// group runs goroutines until its context ends and waits for them.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newGroup(parent context.Context) *group {
	ctx, cancel := context.WithCancel(parent)
	return &group{ctx: ctx, cancel: cancel}
}

func (g *group) Go(f func(ctx context.Context)) { g.wg.Go(func() { f(g.ctx) }) }

func (g *group) stop() {
	g.cancel()
	g.wg.Wait()
}

// progress waits until count() grows by at least n within timeout.
func progress(t testing.TB, what string, timeout time.Duration, n int64, count func() int64) time.Duration {
	t.Helper()
	began, from := time.Now(), count()
	deadline := began.Add(timeout)
	for time.Now().Before(deadline) {
		if count()-from >= n {
			return time.Since(began)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: no progress within %v (%d of %d more)", what, timeout, count()-from, n)
	return 0
}

// deliveredTo counts the distinct inputs sink has seen.
func (l *ledger) deliveredTo(sink string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sinks[sink]; s != nil {
		return int64(len(s.count))
	}
	return 0
}

// describe is a one-line summary for logs.
func (p *httpProducer) describe() string {
	return fmt.Sprintf("http %d acked, %d refused", p.posted.Load(), p.refused.Load())
}
