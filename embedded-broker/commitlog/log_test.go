package commitlog

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

func TestRoundTrip(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		l := openLog(t, Options{Dir: dir, FS: fsys})
		mustCreate(t, l, "orders", 1)
		in := []event.Event{
			{Key: nil, Value: []byte("null key"), Timestamp: baseTime},
			{Key: []byte{}, Value: []byte("empty key"), Timestamp: baseTime},
			{Key: []byte("k"), Value: nil, Timestamp: baseTime.Add(-time.Hour)},
			{Key: []byte("k"), Value: []byte{}, Headers: []event.Header{{Key: "a", Value: nil}, {Key: "a", Value: []byte{}}, {Key: "b", Value: []byte("2")}}},
			{Value: []byte("from http"), Source: "http", Headers: []event.Header{{Key: "x", Value: []byte("y")}}},
			{Value: []byte("source only"), Source: "amqp"},
		}
		pos, err := l.Append(ctxT(t), "orders", in)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pos {
			if p.Partition != 0 || p.Offset != int64(i) {
				t.Fatalf("position %d = %+v", i, p)
			}
		}
		check := func(l *Log) {
			got, err := l.Read("orders", 0, 0, 100, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(in) {
				t.Fatalf("read %d events, want %d", len(got), len(in))
			}
			for i := range in {
				want := in[i]
				if want.Timestamp.IsZero() {
					if got[i].Timestamp.IsZero() || time.Since(got[i].Timestamp) > time.Minute {
						t.Fatalf("event %d: zero timestamp became %v, want about now", i, got[i].Timestamp)
					}
					want.Timestamp = got[i].Timestamp
				}
				if !sameEvent(got[i], want) {
					t.Fatalf("event %d:\n got %+v\nwant %+v", i, got[i], want)
				}
				if got[i].Topic != "orders" || got[i].Partition != 0 || got[i].Offset != int64(i) {
					t.Fatalf("event %d coordinates %s/%d/%d", i, got[i].Topic, got[i].Partition, got[i].Offset)
				}
			}
		}
		check(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		check(openLog(t, Options{Dir: dir, FS: fsys}))
	})
}

func TestPartitionerMatchesKafka(t *testing.T) {
	// Kafka's UtilsTest.testMurmur2 vectors (Java signed ints).
	for _, tc := range []struct {
		key  string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if got := int32(murmur2([]byte(tc.key))); got != tc.want {
				t.Fatalf("murmur2(%q) = %d, want %d", tc.key, got, tc.want)
			}
			// toPositive masks the sign bit; it does not take abs().
			want := int32((uint32(tc.want) & 0x7fffffff) % 7)
			if got := Partition([]byte(tc.key), 7); got != want {
				t.Fatalf("Partition(%q, 7) = %d, want %d", tc.key, got, want)
			}
		})
	}
	for _, tc := range []struct {
		name       string
		key        []byte
		partitions int
		want       int32
	}{
		{"foobar over 50 partitions", []byte("foobar"), 50, 16},
		{"nil key has no partition", nil, 6, -1},
		{"empty key hashes", []byte{}, 1000, int32((uint32(275646681) & 0x7fffffff) % 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Partition(tc.key, tc.partitions); got != tc.want {
				t.Fatalf("Partition = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestAppendPartitioning(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		l := openLog(t, Options{Dir: dir, FS: fsys, Fsync: FsyncNever})
		mustCreate(t, l, "t", 4)
		evs := makeEvents("a", 50, 10)
		for i := range evs {
			if i%5 == 0 {
				evs[i].Key = nil
			}
		}
		pos, err := l.Append(ctxT(t), "t", evs)
		if err != nil {
			t.Fatal(err)
		}
		var sticky int32 = -1
		next := map[int32]int64{}
		for i, p := range pos {
			want := Partition(evs[i].Key, 4)
			if evs[i].Key == nil {
				if sticky == -1 {
					sticky = p.Partition
				}
				want = sticky
			}
			if p.Partition != want {
				t.Fatalf("event %d went to %d, want %d", i, p.Partition, want)
			}
			if p.Offset != next[p.Partition] {
				t.Fatalf("event %d offset %d, want %d (consecutive per partition)", i, p.Offset, next[p.Partition])
			}
			next[p.Partition]++
			got, err := l.Read("t", p.Partition, p.Offset, 1, 1)
			if err != nil || len(got) != 1 || !sameEvent(got[0], evs[i]) {
				t.Fatalf("event %d at %+v reads back %v, %v", i, p, got, err)
			}
		}
		// Keyless appends rotate over the partitions, one per call.
		seen := map[int32]bool{}
		for range 4 {
			pos, err := l.Append(ctxT(t), "t", []event.Event{{Value: []byte("a")}, {Value: []byte("b")}})
			if err != nil {
				t.Fatal(err)
			}
			if pos[0].Partition != pos[1].Partition {
				t.Fatalf("one call's keyless events split over %d and %d", pos[0].Partition, pos[1].Partition)
			}
			seen[pos[0].Partition] = true
		}
		if len(seen) != 4 {
			t.Fatalf("keyless appends used partitions %v, want all 4", seen)
		}
	})
}

func TestErrors(t *testing.T) {
	l := openLog(t, Options{Dir: "/d", FS: vfs.NewMem()})
	mustCreate(t, l, "t", 2)
	if _, err := l.AppendPartition(ctxT(t), "t", 0, makeEvents("a", 10, 10)); err != nil {
		t.Fatal(err)
	}
	var oor *OffsetOutOfRangeError
	for _, tc := range []struct {
		name  string
		err   func() error
		check func(error) bool
	}{
		{"unknown topic append", func() error { _, err := l.Append(ctxT(t), "nope", makeEvents("a", 1, 1)); return err },
			func(err error) bool { return errors.Is(err, ErrUnknownTopic) }},
		{"unknown topic read", func() error { _, err := l.Read("nope", 0, 0, 1, 1); return err },
			func(err error) bool { return errors.Is(err, ErrUnknownTopic) }},
		{"unknown topic info", func() error { _, err := l.Topic("nope"); return err },
			func(err error) bool { return errors.Is(err, ErrUnknownTopic) }},
		{"unknown partition", func() error { _, err := l.Read("t", 2, 0, 1, 1); return err },
			func(err error) bool { return errors.Is(err, ErrUnknownPartition) }},
		{"recreate with other count", func() error { return l.CreateTopic("t", 3) },
			func(err error) bool { return errors.Is(err, ErrTopicExists) }},
		{"recreate with same count", func() error { return l.CreateTopic("t", 2) },
			func(err error) bool { return err == nil }},
		{"bad topic name", func() error { return l.CreateTopic("../x", 1) },
			func(err error) bool { return errors.Is(err, ErrInvalidTopic) }},
		{"read past end", func() error { _, err := l.Read("t", 0, 11, 1, 1); return err },
			func(err error) bool { return errors.As(err, &oor) && oor.Earliest == 0 && oor.Latest == 10 }},
		{"read before start", func() error { _, err := l.Read("t", 0, -1, 1, 1); return err },
			func(err error) bool { return errors.As(err, &oor) && oor.Latest == 10 }},
		{"read at end is empty", func() error {
			evs, err := l.Read("t", 0, 10, 1, 1)
			if evs != nil {
				return errors.New("events at end")
			}
			return err
		}, func(err error) bool { return err == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); !tc.check(err) {
				t.Fatalf("unexpected error %v", err)
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.AppendPartition(ctxT(t), "t", 0, makeEvents("a", 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := l.Append(ctxT(t), "t", makeEvents("a", 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after close: %v", err)
	}
	if _, err := l.Read("t", 0, 0, 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := l.Commit(ctxT(t), "g", "t", 0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
}

func TestReadLimits(t *testing.T) {
	l := openLog(t, Options{Dir: "/d", FS: vfs.NewMem(), Fsync: FsyncNever})
	mustCreate(t, l, "t", 1)
	for range 10 {
		if _, err := l.AppendPartition(ctxT(t), "t", 0, makeEvents("a", 10, 100)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name                string
		from                int64
		maxEvents, maxBytes int
		want                int
	}{
		{"max events", 5, 7, 1 << 20, 7},
		{"one byte still returns one event", 3, 100, 1, 1},
		{"bytes cap a few events (the one crossing the cap included)", 0, 100, 350, 4},
		{"up to the end", 95, 100, 1 << 20, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := l.Read("t", 0, tc.from, tc.maxEvents, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) < 1 || len(evs) > tc.want || (tc.maxEvents < 100 && len(evs) != tc.want) {
				t.Fatalf("got %d events, want %d", len(evs), tc.want)
			}
			if evs[0].Offset != tc.from {
				t.Fatalf("first offset %d, want %d", evs[0].Offset, tc.from)
			}
		})
	}
}

// TestReadEveryWindow reads from every offset with many limit combinations
// over batches of very different sizes (some far larger than a read chunk):
// every result is a non-empty prefix of the log from that offset.
func TestReadEveryWindow(t *testing.T) {
	l := openLog(t, Options{Dir: "/d", FS: vfs.NewMem(), Fsync: FsyncNever, IndexIntervalBytes: 64})
	mustCreate(t, l, "t", 1)
	for i, shape := range [][2]int{{1, 10}, {40, 3000}, {2, 5}, {200, 200}, {1, 70000}, {7, 1}} {
		if _, err := l.AppendPartition(ctxT(t), "t", 0, makeEvents(fmt.Sprint(i), shape[0], shape[1])); err != nil {
			t.Fatal(err)
		}
	}
	truth := readAll(t, l, "t", 0)
	for from := range int64(len(truth)) {
		for _, maxEvents := range []int{1, 3, 50, 1000} {
			for _, maxBytes := range []int{1, 500, 20000, 1 << 22} {
				evs, err := l.Read("t", 0, from, maxEvents, maxBytes)
				if err != nil {
					t.Fatalf("Read(%d, %d, %d): %v", from, maxEvents, maxBytes, err)
				}
				if len(evs) == 0 || len(evs) > maxEvents {
					t.Fatalf("Read(%d, %d, %d) returned %d events", from, maxEvents, maxBytes, len(evs))
				}
				for i, ev := range evs {
					if ev.Offset != from+int64(i) || !sameEvent(ev, truth[from+int64(i)]) {
						t.Fatalf("Read(%d, %d, %d): event %d is offset %d", from, maxEvents, maxBytes, i, ev.Offset)
					}
				}
			}
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no dir", Options{}, "Dir is required"},
		{"bad policy", Options{Dir: "/d", Fsync: "sometimes"}, `unknown fsync policy "sometimes"`},
		{"huge segments", Options{Dir: "/d", SegmentBytes: 2 << 30}, "SegmentBytes"},
		{"negative retention", Options{Dir: "/d", Retention: -time.Second}, "must not be negative"},
		{"negative index interval", Options{Dir: "/d", IndexIntervalBytes: -1}, "IndexIntervalBytes"},
		{"every problem at once", Options{Fsync: "x", SegmentBytes: -1}, "Dir is required\ncommitlog: unknown fsync policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.FS = vfs.NewMem()
			_, err := Open(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
