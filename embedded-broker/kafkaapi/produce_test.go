package kafkaapi

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceFetchRoundTrip: franz-go (idempotent by default) produces to a
// three-partition topic with each codec; a consumer reads everything back
// from the start with keys, values, headers and timestamps, and the
// engine's reader of the log sees the same events.
func TestProduceFetchRoundTrip(t *testing.T) {
	t.Parallel()
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		ts := startServer(t, "", nil)
		ts.topic("orders", 3)
		prod := ts.client(kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic("orders"))
		const n = 300
		ts0 := time.UnixMilli(time.Now().UnixMilli() - 5000)
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%17), Value: bytes.Repeat(fmt.Appendf(nil, "v%d.", i), 1+i%7),
				Headers: []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}}, Timestamp: ts0.Add(time.Duration(i) * time.Millisecond)})
		}
		if err := prod.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		cons := ts.client(kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := consume(t, cons, n, 20*time.Second)
		if len(got) != n {
			t.Fatalf("%d records back, want %d", len(got), n)
		}
		byHeader := map[string]*kgo.Record{}
		for _, r := range got {
			byHeader[string(r.Headers[0].Value)] = r
		}
		var logTotal int
		for i, want := range recs {
			r := byHeader[fmt.Sprint(i)]
			if r == nil || !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) || !r.Timestamp.Equal(want.Timestamp) {
				t.Fatalf("%v: record %d differs: %+v", codec, i, r)
			}
		}
		for p := range int32(3) {
			evs, err := ts.log.Read("orders", p, 0, n, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				r := byHeader[string(ev.Headers[0].Value)]
				if !bytes.Equal(ev.Key, r.Key) || !bytes.Equal(ev.Value, r.Value) || !ev.Timestamp.Equal(r.Timestamp) || ev.Offset != r.Offset {
					t.Fatalf("%v: log event %d/%d differs from the consumed record", codec, p, ev.Offset)
				}
			}
			logTotal += len(evs)
		}
		if logTotal != n {
			t.Fatalf("%v: the log holds %d events, want %d", codec, logTotal, n)
		}
		if st := ts.srv.Stats(); st.FetchBytesSendfile == 0 || st.FetchBytesBuffered != 0 {
			t.Fatalf("plain TCP fetches: %+v, want sendfile only", st)
		}
	}
}

// TestFetchLongPoll: a consumer at the end waits in Fetch and gets a record
// produced later without polling again.
func TestFetchLongPoll(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.topic("t", 1)
	cons := ts.client(kgo.ConsumeTopics("t"), kgo.FetchMaxWait(5*time.Second))
	got := make(chan []*kgo.Record, 1)
	go func() {
		fs := cons.PollFetches(ctxT(t, 20*time.Second))
		got <- fs.Records()
	}()
	time.Sleep(300 * time.Millisecond) // the consumer is parked in Fetch
	prod := ts.client(kgo.DefaultProduceTopic("t"))
	sent := time.Now()
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case recs := <-got:
		if len(recs) != 1 || string(recs[0].Value) != "late" {
			t.Fatalf("got %v", recs)
		}
		if d := time.Since(sent); d > 3*time.Second {
			t.Fatalf("long poll answered after %v: it waited out MaxWait instead of waking", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no record")
	}
}

func TestListOffsets(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.topic("t", 2)
	prod := ts.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 10 {
		r := &kgo.Record{Topic: "t", Partition: 1, Value: []byte("x"), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(ts.client())
	ends, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), "t")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("t", 1); o.Offset != 10 {
		t.Fatalf("end offset %d, want 10", o.Offset)
	}
	if o, _ := ends.Lookup("t", 0); o.Offset != 0 {
		t.Fatalf("end offset of the empty partition %d", o.Offset)
	}
	starts, err := adm.ListStartOffsets(ctxT(t, 10*time.Second), "t")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("t", 1); o.Offset != 0 {
		t.Fatalf("start offset %d", o.Offset)
	}
	after, err := adm.ListOffsetsAfterMilli(ctxT(t, 10*time.Second), base.Add(4500*time.Millisecond).UnixMilli(), "t")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := after.Lookup("t", 1); o.Offset != 5 || o.Timestamp != base.Add(5*time.Second).UnixMilli() {
		t.Fatalf("offset after 4.5 s: %+v, want 5", o)
	}
}
