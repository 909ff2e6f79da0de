package sse

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// event is one parsed SSE message (or comment) as EventSource sees it.
type event struct {
	id, event, data, comment string
}

// parse reads a stream the way the WHATWG EventSource parser does: lines
// end at CR, LF or CRLF; data lines are joined with LF.
func parse(b []byte) []event {
	var out []event
	var cur event
	var data []string
	hasData := false
	lines := splitLines(b)
	for _, line := range lines {
		if line == "" {
			if hasData {
				cur.data = strings.Join(data, "\n")
				out = append(out, cur)
			}
			cur, data, hasData = event{}, nil, false
			continue
		}
		if c, ok := strings.CutPrefix(line, ":"); ok {
			out = append(out, event{comment: strings.TrimPrefix(c, " ")})
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			cur.id = value
		case "event":
			cur.event = value
		case "data":
			data = append(data, value)
			hasData = true
		}
	}
	return out
}

func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			break // an unterminated line is not a line yet
		}
		out = append(out, string(b[:i]))
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
	}
	return out
}

func TestAppendFrameSplitsLinesAsEventSourceJoins(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "<p>x</p>", "<p>x</p>"},
		{"lf", "a\nb", "a\nb"},
		{"crlf", "a\r\nb", "a\nb"},
		{"cr", "a\rb", "a\nb"},
		{"trailing lf", "a\n", "a\n"},
		{"empty", "", ""},
		{"blank lines", "\n\n", "\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parse(AppendFrame(nil, "7", "cards", []byte(tc.in)))
			if len(got) != 1 || got[0].id != "7" || got[0].event != "cards" || got[0].data != tc.want {
				t.Fatalf("parsed %+v, want id 7 event cards data %q", got, tc.want)
			}
		})
	}
}

func FuzzAppendFrame(f *testing.F) {
	f.Add([]byte("<div>\r\n</div>"))
	f.Add([]byte("\r\r\n\n"))
	f.Add([]byte("data: x\n\nid: 9"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := parse(AppendFrame(nil, "1", "e", data))
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
		if len(got) != 1 || got[0].data != want || got[0].id != "1" || got[0].event != "e" {
			t.Fatalf("round trip of %q gave %+v", data, got)
		}
	})
}

// stream connects to url with an optional Last-Event-ID and returns a
// function that reads until n messages (not comments) or a timeout.
func stream(t *testing.T, url, lastID string) (read func(n int, within time.Duration) []event, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := make(chan []byte, 1024)
	go func() {
		defer close(lines)
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	var buf []byte
	read = func(n int, within time.Duration) []event {
		deadline := time.After(within)
		for {
			evs := parse(buf)
			count := 0
			for _, e := range evs {
				if e.comment == "" {
					count++
				}
			}
			if count >= n {
				return evs
			}
			select {
			case l, ok := <-lines:
				if !ok {
					return evs
				}
				buf = append(buf, l...)
			case <-deadline:
				return evs
			}
		}
	}
	return read, func() { cancel(); resp.Body.Close() }
}

func messages(evs []event) []event {
	var out []event
	for _, e := range evs {
		if e.comment == "" {
			out = append(out, e)
		}
	}
	return out
}

func TestHubIDsResumeAndKeepalive(t *testing.T) {
	h := NewHub(8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.Serve(w, r, 50*time.Millisecond)
	}))
	defer srv.Close()

	for i := 1; i <= 3; i++ {
		h.Publish("cards", []byte(fmt.Sprintf("state %d", i)))
	}
	// A first connection gets only the newest state of each event name.
	read, stop := stream(t, srv.URL, "")
	first := messages(read(1, 2*time.Second))
	if len(first) != 1 || first[0].id != "3" || first[0].data != "state 3" {
		t.Fatalf("first connection got %+v, want only id 3", first)
	}
	waitSubs(t, h, 1)
	h.Publish("cards", []byte("state 4"))
	h.Publish("topology", []byte("graph 5"))
	evs := read(3, 2*time.Second)
	got := messages(evs)
	if len(got) != 3 || got[1].id != "4" || got[2].id != "5" || got[2].event != "topology" {
		t.Fatalf("live messages %+v", got)
	}
	// Nothing more is published: a keepalive comment comes within the interval.
	evs = read(4, 300*time.Millisecond)
	keepalive := false
	for _, e := range evs {
		keepalive = keepalive || e.comment == "keepalive"
	}
	if !keepalive {
		t.Fatalf("no keepalive comment in %+v", evs)
	}
	stop()

	// Resume: messages after the last seen id, none before, none twice.
	h.Publish("cards", []byte("state 6"))
	read, stop = stream(t, srv.URL, "4")
	got = messages(read(2, 2*time.Second))
	if len(got) != 2 || got[0].id != "5" || got[1].id != "6" {
		t.Fatalf("resume after 4 got %+v, want 5 and 6", got)
	}
	stop()

	// An id older than the kept window resumes from the newest states.
	for i := 7; i <= 20; i++ {
		h.Publish("cards", []byte(fmt.Sprintf("state %d", i)))
	}
	read, stop = stream(t, srv.URL, "2")
	got = messages(read(2, 2*time.Second))
	defer stop()
	if len(got) != 1 || got[0].id != "20" {
		t.Fatalf("stale resume got %+v, want only the newest (20)", got)
	}
}

func waitSubs(t testing.TB, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for h.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("subscribers %d, want %d", h.Subscribers(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// slowWriter blocks writes until released, to stand for a stalled client.
type slowWriter struct {
	header  http.Header
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *slowWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *slowWriter) Header() http.Header { return w.header }
func (w *slowWriter) WriteHeader(int)     {}
func (w *slowWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
func (w *slowWriter) Flush() {}

func TestSlowSubscriberSkipsToNewest(t *testing.T) {
	h := NewHub(64)
	w := &slowWriter{header: http.Header{}, release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	go func() { done <- h.ServeContext(ctx, w, req, time.Hour) }()
	waitSubs(t, h, 1)
	// The writer is stalled on the retry line; publishing must not block.
	start := time.Now()
	for i := range 100 {
		h.Publish("cards", []byte(fmt.Sprint(i)))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Publish blocked for %v on a stalled subscriber", d)
	}
	close(w.release)
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(w.String(), "data: 99\n") {
		if time.Now().After(deadline) {
			t.Fatalf("stream never reached the newest state:\n%s", w.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs := parse(w.buf.Bytes())
	var last uint64
	skipped := false
	for _, e := range evs {
		if e.comment == "skipped to the newest state" {
			skipped = true
		}
		if e.id == "" {
			continue
		}
		var id uint64
		fmt.Sscan(e.id, &id)
		if id <= last {
			t.Fatalf("id %d after %d: not increasing", id, last)
		}
		last = id
	}
	if !skipped {
		t.Fatal("a stalled subscriber was not told it skipped")
	}
	if n := len(messages(evs)); n >= 100 {
		t.Fatalf("stalled subscriber got all %d messages; want a skip", n)
	}
}

// discardWriter is a ResponseWriter that drops what it is given.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) WriteHeader(int)             {}
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) Flush()                      {}

// BenchmarkHubFanout publishes one tick (cards, topology, rates: ~12 KB)
// to 100 subscribers and waits until each has written it: the server-side
// CPU of an overview tab is the cost per subscriber per tick.
func BenchmarkHubFanout(b *testing.B) {
	const subs = 100
	h := NewHub(32)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var written sync.WaitGroup
	counts := make([]chan struct{}, subs)
	for i := range subs {
		counts[i] = make(chan struct{}, 1024)
		w := &countingWriter{discardWriter: discardWriter{h: http.Header{}}, n: counts[i]}
		written.Go(func() { _ = h.ServeContext(ctx, w, httptest.NewRequest(http.MethodGet, "/", nil), time.Hour) })
	}
	waitSubs(b, h, subs)
	cards := bytes.Repeat([]byte("<div class=\"card\">x</div>\n"), 100)
	topo := bytes.Repeat([]byte("<g class=\"node\"><rect/></g>\n"), 300)
	rates := []byte(`{"t":1,"values":[100000,99000,0]}`)
	for b.Loop() {
		h.Publish("cards", cards)
		h.Publish("topology", topo)
		h.Publish("rates", rates)
		for _, c := range counts {
			<-c
			<-c
			<-c
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subs, "ns/tab/tick")
	cancel()
	written.Wait()
}

type countingWriter struct {
	discardWriter
	n chan struct{}
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("id: ")) {
		w.n <- struct{}{}
	}
	return len(p), nil
}
