package commitlog

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

// fsCase is one file system the shared cases run on: the commitlogtest
// table the house style asks for, kept in the package because the cases
// also reach into unexported state (indexes, retention).
type fsCase struct {
	name string
	new  func(t testing.TB) (vfs.FS, string)
}

var fsCases = []fsCase{
	{"os", func(t testing.TB) (vfs.FS, string) { return vfs.Default, t.TempDir() }},
	{"mem", func(t testing.TB) (vfs.FS, string) { return vfs.NewMem(), "/data" }},
}

// forEachFS runs fn once per file system, in parallel subtests.
func forEachFS(t *testing.T, fn func(t *testing.T, fsys vfs.FS, dir string)) {
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := c.new(t)
			fn(t, fsys, dir)
		})
	}
}

func openLog(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustCreate(t testing.TB, l *Log, topic string, partitions int) {
	t.Helper()
	if err := l.CreateTopic(topic, partitions); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
}

var baseTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// makeEvents returns n events whose values name them, with one header.
func makeEvents(prefix string, n, valueSize int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		v := fmt.Appendf(nil, "%s-%d|", prefix, i)
		for len(v) < valueSize {
			v = append(v, 'x')
		}
		evs[i] = event.Event{
			Key:       fmt.Appendf(nil, "k%d", i),
			Value:     v,
			Headers:   []event.Header{{Key: "h", Value: []byte(prefix)}},
			Timestamp: baseTime.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return evs
}

// sameEvent compares the stored fields of an event (not its coordinates).
func sameEvent(a, b event.Event) bool {
	if !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) ||
		!bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil) ||
		a.Source != b.Source || a.Timestamp.UnixMilli() != b.Timestamp.UnixMilli() ||
		len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) ||
			(a.Headers[i].Value == nil) != (b.Headers[i].Value == nil) {
			return false
		}
	}
	return true
}

// readAll reads a partition from start to end with small reads.
func readAll(t testing.TB, l *Log, topic string, partition int32) []event.Event {
	t.Helper()
	start, end, err := l.Offsets(topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for off := start; off < end; {
		evs, err := l.Read(topic, partition, off, 37, 3000)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(evs) == 0 {
			t.Fatalf("Read(%d) returned nothing before end %d", off, end)
		}
		for i, ev := range evs {
			if ev.Offset != off+int64(i) {
				t.Fatalf("Read(%d): event %d has offset %d", off, i, ev.Offset)
			}
		}
		out = append(out, evs...)
		off += int64(len(evs))
	}
	return out
}

func partitionDir(dir, topic string, p int) string {
	return filepath.Join(dir, "topics", topic, fmt.Sprint(p))
}

func listSuffix(t testing.TB, fsys vfs.FS, dir, suffix string) []string {
	t.Helper()
	names, err := fsys.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(names, func(n string) bool { return filepath.Ext(n) != suffix })
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
