package migrate

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/connectors/sqs"
	"github.com/bridgeio/bridge/internal/fauxqs"
)

// benchCount is the number of 1 KiB messages per migration:
// $BRIDGE_MIGRATE_BENCH_N, else def (small, so that `go test -bench .`
// stays quick). The README's figures used BRIDGE_MIGRATE_BENCH_N=1000000
// for RabbitMQ; see there for SQS.
func benchCount(def int) int {
	if n, err := strconv.Atoi(os.Getenv("BRIDGE_MIGRATE_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkMigrate moves n messages of 1 KiB into a Kafka topic (kfake)
// per iteration, with verification off and on. It reports the move's
// throughput (msgs/s: moved over Summary.Busy, the time until the target
// had everything, without the idle period that confirms the source is
// empty), and with verification on also the throughput including the
// verification (total-msgs/s) and the share of that time the
// verification took (verify-%): its cost to throughput. Filling the
// source is not timed. Fsync is always on for the ledger.
func BenchmarkMigrate(b *testing.B) {
	sources := []struct {
		name string
		n    int
		fill func(b *testing.B, n int) string // returns the --from URL
	}{
		{name: "rabbitmq-kafka", n: benchCount(50000), fill: func(b *testing.B, n int) string {
			q := newQueue(b)
			publish(b, q, n, 1024, 100)
			return rabbitURL() + "?queue=" + q
		}},
		{name: "sqs-kafka", n: benchCount(20000), fill: fillSQS},
	}
	for _, src := range sources {
		for _, verify := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/verify=%v/n=%d", src.name, verify, src.n), func(b *testing.B) {
				var moveTime, verifyTime time.Duration
				var moved int64
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					from := src.fill(b, src.n)
					kc := newKafka(b)
					b.StartTimer()
					sum, err := Run(context.Background(), Config{From: from, To: "kafka://" + strings.Join(kc.ListenAddrs(), ",") + "/bench",
						StateDir: b.TempDir(), Verify: verify, Idle: 500 * time.Millisecond})
					if err != nil {
						b.Fatal(err)
					}
					moveTime += sum.Busy
					verifyTime += sum.VerifyTime
					moved += sum.Moved
					if sum.Moved != int64(src.n) || (verify && (sum.Report == nil || !sum.Report.OK || sum.Report.Delivered != int64(src.n))) {
						b.Fatalf("moved %d of %d; report %+v", sum.Moved, src.n, sum.Report)
					}
					b.StopTimer()
					kc.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(moved)/moveTime.Seconds(), "msgs/s")
				b.SetBytes(int64(src.n) * 1024 / int64(max(b.N, 1)))
				if verify {
					b.ReportMetric(float64(moved)/(moveTime+verifyTime).Seconds(), "total-msgs/s")
					b.ReportMetric(100*verifyTime.Seconds()/(moveTime+verifyTime).Seconds(), "verify-%")
				}
			})
		}
	}
}

// fillSQS starts a fauxqs and creates a queue on it with n messages of 1 KiB, sent by
// eight senders in batches of ten.
func fillSQS(b *testing.B, n int) string {
	fauxqsEndpoint := fauxqs.StartTB(b)
	ctx := context.Background()
	client, err := sqs.NewClient(ctx, sqs.ClientConfig{Region: "us-east-1", Endpoint: fauxqsEndpoint, AccessKeyID: "x", SecretAccessKey: "x"})
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	q, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat("x", 1024)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w * 10; i < n; i += 80 {
				entries := make([]types.SendMessageBatchRequestEntry, 0, 10)
				for j := i; j < min(i+10, n); j++ {
					entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(body),
						MessageAttributes: map[string]types.MessageAttributeValue{"bridge-key": {DataType: aws.String("String"),
							StringValue: aws.String("k-" + strconv.Itoa(j%100))}}})
				}
				out, err := client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries})
				if err == nil && len(out.Failed) > 0 {
					err = fmt.Errorf("%d entries failed", len(out.Failed))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return "sqs://" + name + "?endpoint=" + fauxqsEndpoint
}
