package bench

// Kafka-protocol listener benchmarks, side by side in one run:
//
//	cd bench && go test -run '^$' -bench 'KafkaAPI' -benchtime 3x .
//
// Produce: franz-go producing 100-byte records (no compression, acks=all,
// idempotent, 4 partitions) to bridge's listener (commitlog fsync=always:
// answered after fdatasync, with group commit; and fsync=interval), to kfake
// (in memory, no fsync), and, for scale, nats.go async-publishing the same
// records to embedded JetStream (file storage, default interval fsync).
// Consume: franz-go reading 1,000,000 records from the start, served by
// sendfile (bridge over plain TCP), through user space (bridge over TLS),
// and by kfake.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/embedded-broker/kafkaapi"
)

const (
	kafkaPartitions    = 4
	produceRecordsIter = 200_000
	consumeRecords     = 1_000_000
)

// startBridgeKafka serves a fresh commitlog over the Kafka protocol.
func startBridgeKafka(b *testing.B, policy commitlog.FsyncPolicy, tlsCfg *tls.Config) string {
	b.Helper()
	l, err := commitlog.Open(commitlog.Options{Dir: b.TempDir(), Fsync: policy})
	if err != nil {
		b.Fatal(err)
	}
	if err := l.CreateTopic("bench", kafkaPartitions); err != nil {
		b.Fatal(err)
	}
	srv, err := kafkaapi.New(kafkaapi.Options{Log: l, TLS: tlsCfg})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	b.Cleanup(func() {
		srv.Close()
		<-done
		l.Close()
	})
	return ln.Addr().String()
}

func startKfake(b *testing.B) string {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(kafkaPartitions, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func producer(b testing.TB, addr string, extra ...kgo.Opt) *kgo.Client {
	b.Helper()
	opts := append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"), kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.MaxBufferedRecords(1 << 20), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// produceAll produces n records asynchronously and waits for every ack.
// When lat is not nil, every 64th record's produce-to-ack latency is
// appended to it (the record's timestamp is set by the client at Produce).
func produceAll(b testing.TB, cl *kgo.Client, n int, lat ...*latencies) {
	value := make([]byte, valueSize)
	var failed atomic.Int64
	done := make(chan struct{})
	var left atomic.Int64
	left.Store(int64(n))
	ack := func(r *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
		if len(lat) > 0 && r.Offset%64 == 0 {
			lat[0].add(time.Since(r.Timestamp))
		}
		if left.Add(-1) == 0 {
			close(done)
		}
	}
	ctx := context.Background()
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: value}, ack)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatal("produce acks timed out")
	}
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d records failed", f)
	}
}

// latencies collects samples from concurrent callbacks.
type latencies struct {
	mu      sync.Mutex
	samples []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

func BenchmarkKafkaAPIProduce100B(b *testing.B) {
	run := func(b *testing.B, addr string) {
		cl := producer(b, addr)
		produceAll(b, cl, 1000) // warm up: metadata, producer id, connections
		var lat latencies
		b.SetBytes(valueSize * produceRecordsIter)
		start, cpu0 := time.Now(), processCPU()
		for b.Loop() {
			produceAll(b, cl, produceRecordsIter, &lat)
		}
		b.ReportMetric(float64(b.N*produceRecordsIter)/time.Since(start).Seconds(), "records/s")
		// Client and server share this process: the CPU of both per record
		// (2 cores give 2,000 ns of CPU per record at 1M records/s).
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*produceRecordsIter), "cpu-ns/record")
		// Produce-to-ack latency with 200,000 records queued at once: mostly
		// queueing in the client, reported so regressions show.
		b.ReportMetric(p99(lat.samples)/1e6, "p99-ms")
	}
	b.Run("server=bridge/fsync=always", func(b *testing.B) { run(b, startBridgeKafka(b, commitlog.FsyncAlways, nil)) })
	b.Run("server=bridge/fsync=interval", func(b *testing.B) { run(b, startBridgeKafka(b, commitlog.FsyncInterval, nil)) })
	b.Run("server=kfake/fsync=none", func(b *testing.B) { run(b, startKfake(b)) })
	b.Run("server=jetstream/fsync=interval", func(b *testing.B) {
		// Enough pending publishes for a whole round, as franz-go buffers.
		js := startJetStream(b, false, jetstream.WithPublishAsyncMaxPending(produceRecordsIter))
		value := make([]byte, valueSize)
		b.SetBytes(valueSize * produceRecordsIter)
		start := time.Now()
		for b.Loop() {
			for range produceRecordsIter {
				if _, err := js.PublishAsync("bench", value); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(2 * time.Minute):
				b.Fatal("JetStream acks timed out")
			}
		}
		b.ReportMetric(float64(b.N*produceRecordsIter)/time.Since(start).Seconds(), "records/s")
	})
}

func BenchmarkKafkaAPIConsume100B(b *testing.B) {
	run := func(b *testing.B, addr string, extra ...kgo.Opt) {
		cl := producer(b, addr, extra...)
		produceAll(b, cl, consumeRecords)
		b.SetBytes(valueSize * consumeRecords)
		start, cpu0 := time.Now(), processCPU()
		for b.Loop() {
			cons, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics("bench"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(16 << 20), kgo.FetchMaxPartitionBytes(4 << 20)}, extra...)...)
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			for got < consumeRecords {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					b.Fatal(err)
				}
				got += fs.NumRecords()
			}
			cancel()
			cons.Close()
		}
		b.ReportMetric(float64(b.N*consumeRecords)/time.Since(start).Seconds(), "records/s")
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*consumeRecords), "cpu-ns/record")
	}
	b.Run("server=bridge/path=sendfile", func(b *testing.B) { run(b, startBridgeKafka(b, commitlog.FsyncInterval, nil)) })
	b.Run("server=bridge/path=tls-buffered", func(b *testing.B) {
		serverTLS, clientTLS := benchTLS(b)
		run(b, startBridgeKafka(b, commitlog.FsyncInterval, serverTLS), kgo.DialTLSConfig(clientTLS))
	})
	b.Run("server=kfake", func(b *testing.B) { run(b, startKfake(b)) })
}

func benchTLS(b *testing.B) (*tls.Config, *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// BenchmarkKafkaAPIRdkafkaProduce100B: librdkafka's rdkafka_performance (a
// separate C process, so client cost is off the Go runtime) produces
// 1,000,000 100-byte records (acks=all, idempotent, no compression) per
// iteration. Needs KAFKA_INTEROP_RDKAFKA_PERFORMANCE
// (scripts/ensure.d/kafka-clients.sh); skipped without it.
func BenchmarkKafkaAPIRdkafkaProduce100B(b *testing.B) {
	bin := os.Getenv("KAFKA_INTEROP_RDKAFKA_PERFORMANCE")
	if bin == "" {
		b.Skip("KAFKA_INTEROP_RDKAFKA_PERFORMANCE not set (source scripts/ensure.d/kafka-clients.sh)")
	}
	const n = 1_000_000
	run := func(b *testing.B, addr string) {
		b.SetBytes(valueSize * n)
		cpu0 := processCPU()
		start := time.Now()
		for b.Loop() {
			out, err := exec.Command(bin, "-P", "-t", "bench", "-b", addr, "-s", "100", "-c", strconv.Itoa(n),
				"-X", "enable.idempotence=true", "-X", "linger.ms=5", "-X", "batch.size=1000000").CombinedOutput()
			if err != nil || !strings.Contains(string(out), strconv.Itoa(n)+" messages") {
				b.Fatalf("rdkafka_performance: %v\n%s", err, out)
			}
		}
		b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "records/s")
		// The client is another process: this process's CPU is the
		// server's (plus the Go runtime), so this is what a record costs it.
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*n), "server-cpu-ns/record")
	}
	b.Run("server=bridge/fsync=always", func(b *testing.B) { run(b, startBridgeKafka(b, commitlog.FsyncAlways, nil)) })
	b.Run("server=bridge/fsync=interval", func(b *testing.B) { run(b, startBridgeKafka(b, commitlog.FsyncInterval, nil)) })
	b.Run("server=kfake/fsync=none", func(b *testing.B) { run(b, startKfake(b)) })
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
