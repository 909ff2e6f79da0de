package exchange

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bridgeio/bridge/event"
)

func mustNew(t testing.TB, kind Kind, bindings ...Binding) *Exchange {
	t.Helper()
	x, err := New("x", kind, bindings)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return x
}

func topicBindings(patterns ...string) []Binding {
	bs := make([]Binding, len(patterns))
	for i, p := range patterns {
		bs[i] = Binding{Queue: "q:" + p, Key: p}
	}
	return bs
}

// refTopicMatch is the definition of topic matching, written as directly as
// possible: the trie must agree with it.
func refTopicMatch(pattern, key []string) bool {
	if len(pattern) == 0 {
		return len(key) == 0
	}
	switch pattern[0] {
	case "#":
		return refTopicMatch(pattern[1:], key) || (len(key) > 0 && refTopicMatch(pattern, key[1:]))
	case "*":
		return len(key) > 0 && refTopicMatch(pattern[1:], key[1:])
	default:
		return len(key) > 0 && key[0] == pattern[0] && refTopicMatch(pattern[1:], key[1:])
	}
}

func refSplit(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

func TestTopicMatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{"#", []string{"", "a", "a.b", "a..b", ".", "a.b.c.d"}, nil},
		{"*", []string{"a", "x-y"}, []string{"", "a.b"}},
		{"*.", []string{"a.", "."}, []string{"a", "a.b", ""}},
		{"", []string{""}, []string{"a", "."}},
		{"a", []string{"a"}, []string{"", "a.b", "b", "A"}},
		{"a.*", []string{"a.b", "a."}, []string{"a", "a.b.c", "b.a"}},
		{"*.*", []string{"a.b", ".", "a."}, []string{"a", "a.b.c"}},
		{"a.#", []string{"a", "a.b", "a.b.c", "a."}, []string{"b", "ab", ""}},
		{"#.b", []string{"b", "a.b", "a.c.b", ".b"}, []string{"b.a", "", "ab"}},
		{"a.#.b", []string{"a.b", "a.x.b", "a.x.y.b", "a..b"}, []string{"a", "b", "a.b.c", "ab"}},
		{"#.#", []string{"", "a", "a.b.c"}, nil},
		{"a.#.#.b", []string{"a.b", "a.x.y.b"}, []string{"a.x"}},
		{"#.*", []string{"a", "a.b", "a.b.c"}, []string{""}},
		{"*.#", []string{"a", "a.b"}, []string{""}},
		{"#.a.#", []string{"a", "x.a", "a.x", "x.a.y", "a.a"}, []string{"", "x", "xa"}},
		{"*.a.*", []string{"x.a.y", ".a."}, []string{"a", "x.a", "a.y", "x.a.y.z"}},
		{"a..b", []string{"a..b"}, []string{"a.b", "a.x.b"}},
		{"order.*.eu", []string{"order.created.eu"}, []string{"order.created.us", "order.eu", "order.a.b.eu"}},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			t.Parallel()
			x := mustNew(t, Topic, Binding{Queue: "q", Key: tc.pattern})
			for _, k := range tc.match {
				if got := x.Route(k, nil, nil); !slices.Equal(got, []string{"q"}) {
					t.Errorf("key %q: got %v, want [q]", k, got)
				}
				if !refTopicMatch(refSplit(tc.pattern), refSplit(k)) {
					t.Errorf("reference disagrees on key %q", k)
				}
			}
			for _, k := range tc.noMatch {
				if got := x.Route(k, nil, nil); len(got) != 0 {
					t.Errorf("key %q: got %v, want none", k, got)
				}
			}
		})
	}
}

func TestTopicEachQueueOnce(t *testing.T) {
	t.Parallel()
	x := mustNew(t, Topic,
		Binding{Queue: "eu", Key: "order.*.eu"},
		Binding{Queue: "eu", Key: "order.#"},
		Binding{Queue: "eu", Key: "#.eu"},
		Binding{Queue: "all", Key: "#"},
		Binding{Queue: "all", Key: "#.#"},
		Binding{Queue: "us", Key: "order.*.us"},
		Binding{Queue: "b", Key: "*.created.*"},
	)
	dst := []string{"caller-prefix"}
	got := x.Route("order.created.eu", nil, dst)
	want := []string{"caller-prefix", "all", "b", "eu"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestDirect(t *testing.T) {
	t.Parallel()
	x := mustNew(t, Direct,
		Binding{Queue: "a", Key: "k1"},
		Binding{Queue: "b", Key: "k1"},
		Binding{Queue: "a", Key: "k2"},
		Binding{Queue: "e", Key: ""},
		Binding{Queue: "w", Key: "*"},
	)
	tests := []struct {
		key  string
		want []string
	}{
		{"k1", []string{"a", "b"}},
		{"k2", []string{"a"}},
		{"", []string{"e"}},
		{"*", []string{"w"}}, // no wildcards in direct exchanges
		{"k3", nil},
		{"K1", nil},
	}
	for _, tc := range tests {
		if got := x.Route(tc.key, nil, nil); !slices.Equal(got, tc.want) {
			t.Errorf("key %q: got %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestFanout(t *testing.T) {
	t.Parallel()
	x := mustNew(t, Fanout,
		Binding{Queue: "b", Key: "ignored"},
		Binding{Queue: "a"},
		Binding{Queue: "b", Key: "other"},
	)
	for _, key := range []string{"", "anything", "a.b.#"} {
		if got := x.Route(key, nil, nil); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("key %q: got %v", key, got)
		}
	}
	if !x.Unbind(Binding{Queue: "b", Key: "ignored"}) {
		t.Fatal("Unbind found nothing")
	}
	if got := x.Route("", nil, nil); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("b still has a binding; got %v", got)
	}
	x.Unbind(Binding{Queue: "b", Key: "other"})
	if got := x.Route("", nil, nil); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after unbinding b: got %v", got)
	}
}

func hdrs(kv ...string) []event.Header {
	var hs []event.Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, event.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		binding Binding
		headers []event.Header
		want    bool
	}{
		{"all matches", Binding{Headers: map[string]string{"a": "1", "b": "2"}}, hdrs("a", "1", "b", "2", "c", "3"), true},
		{"all misses one", Binding{Headers: map[string]string{"a": "1", "b": "2"}}, hdrs("a", "1"), false},
		{"all wrong value", Binding{Match: "all", Headers: map[string]string{"a": "1"}}, hdrs("a", "2"), false},
		{"any matches one", Binding{Match: "any", Headers: map[string]string{"a": "1", "b": "2"}}, hdrs("b", "2"), true},
		{"any matches none", Binding{Match: "any", Headers: map[string]string{"a": "1", "b": "2"}}, hdrs("a", "9", "c", "2"), false},
		{"x-match from the table", Binding{Headers: map[string]string{"x-match": "any", "a": "1", "b": "2"}}, hdrs("b", "2"), true},
		{"Match wins over x-match", Binding{Match: "all", Headers: map[string]string{"x-match": "any", "a": "1", "b": "2"}}, hdrs("b", "2"), false},
		{"x- keys ignored", Binding{Headers: map[string]string{"x-other": "z", "a": "1"}}, hdrs("a", "1"), true},
		{"last repeated value wins", Binding{Headers: map[string]string{"a": "1"}}, hdrs("a", "1", "a", "2"), false},
		{"last repeated value wins (match)", Binding{Headers: map[string]string{"a": "2"}}, hdrs("a", "1", "a", "2"), true},
		{"empty value must be present", Binding{Headers: map[string]string{"a": ""}}, nil, false},
		{"empty value present", Binding{Headers: map[string]string{"a": ""}}, hdrs("a", ""), true},
		{"all with no args matches all", Binding{}, nil, true},
		{"any with no args matches none", Binding{Match: "any"}, hdrs("a", "1"), false},
		{"only x- args, all", Binding{Headers: map[string]string{"x-match": "all"}}, nil, true},
		{"names are case-sensitive", Binding{Headers: map[string]string{"A": "1"}}, hdrs("a", "1"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.binding
			b.Queue = "q"
			x := mustNew(t, Headers, b)
			got := x.Route("ignored", tc.headers, nil)
			if want := tc.want; (len(got) == 1) != want || len(got) > 1 {
				t.Fatalf("got %v, want match=%v", got, want)
			}
		})
	}
}

func TestHeadersEachQueueOnce(t *testing.T) {
	t.Parallel()
	x := mustNew(t, Headers,
		Binding{Queue: "q", Headers: map[string]string{"a": "1"}},
		Binding{Queue: "q", Match: "any", Headers: map[string]string{"b": "2"}},
		Binding{Queue: "p", Headers: map[string]string{"a": "1"}},
	)
	if got := x.Route("", hdrs("a", "1", "b", "2"), nil); !slices.Equal(got, []string{"p", "q"}) {
		t.Fatalf("got %v", got)
	}
	x.Unbind(Binding{Queue: "q", Headers: map[string]string{"a": "1"}})
	if got := x.Route("", hdrs("a", "1"), nil); !slices.Equal(got, []string{"p"}) {
		t.Fatalf("after unbind: got %v", got)
	}
	if got := x.Route("", hdrs("b", "2"), nil); !slices.Equal(got, []string{"q"}) {
		t.Fatalf("other binding of q lost: got %v", got)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		kind     Kind
		bindings []Binding
		want     error
	}{
		{"bad kind", "round-robin", nil, ErrUnknownKind},
		{"empty kind", "", nil, ErrUnknownKind},
		{"empty queue", Direct, []Binding{{Key: "k"}}, ErrInvalidBinding},
		{"wildcard inside a word", Topic, []Binding{{Queue: "q", Key: "a.b*"}}, ErrInvalidBinding},
		{"hash inside a word", Topic, []Binding{{Queue: "q", Key: "#a"}}, ErrInvalidBinding},
		{"key too long", Topic, []Binding{{Queue: "q", Key: strings.Repeat("a", 256)}}, ErrInvalidBinding},
		{"bad x-match", Headers, []Binding{{Queue: "q", Match: "some"}}, ErrInvalidBinding},
		{"bad x-match in table", Headers, []Binding{{Queue: "q", Headers: map[string]string{"x-match": "all-with-x"}}}, ErrInvalidBinding},
		{"wildcards are literal in direct", Direct, []Binding{{Queue: "q", Key: "a*"}}, nil},
		{"valid topic", Topic, []Binding{{Queue: "q", Key: "a.*.#"}, {Queue: "q", Key: ""}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New("x", tc.kind, tc.bindings)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// All errors at once, not just the first.
	_, err := New("x", Topic, []Binding{{Queue: "", Key: "a"}, {Queue: "q", Key: "a*"}})
	if err == nil || !strings.Contains(err.Error(), "empty queue") || !strings.Contains(err.Error(), "a*") {
		t.Fatalf("want both errors, got %v", err)
	}
	// Bind validates too, and a rejected binding changes nothing.
	x := mustNew(t, Topic)
	if err := x.Bind(Binding{Queue: "q", Key: "*a"}); !errors.Is(err, ErrInvalidBinding) {
		t.Fatalf("Bind: %v", err)
	}
	if len(x.Bindings()) != 0 {
		t.Fatal("rejected binding was kept")
	}
}

func TestBindUnbindBindings(t *testing.T) {
	t.Parallel()
	x := mustNew(t, Topic, Binding{Queue: "a", Key: "k.#"})
	if x.Name() != "x" || x.Kind() != Topic {
		t.Fatalf("Name %q Kind %q", x.Name(), x.Kind())
	}
	hm := map[string]string{"h": "1"}
	for _, b := range []Binding{{Queue: "b", Key: "k.*"}, {Queue: "a", Key: "k.#"}, {Queue: "a", Key: "k.#.#"}, {Queue: "c", Key: "z", Headers: hm}} {
		if err := x.Bind(b); err != nil {
			t.Fatal(err)
		}
	}
	hm["h"] = "changed" // the exchange keeps its own copy
	want := []Binding{{Queue: "a", Key: "k.#"}, {Queue: "b", Key: "k.*"}, {Queue: "a", Key: "k.#.#"}, {Queue: "c", Key: "z", Headers: map[string]string{"h": "1"}}}
	got := x.Bindings()
	if len(got) != len(want) {
		t.Fatalf("Bindings %v, want %v (duplicate bind must be a no-op)", got, want)
	}
	for i := range want {
		if !got[i].equal(want[i]) {
			t.Fatalf("Bindings[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	got[0].Queue = "mutated"
	if x.Bindings()[0].Queue != "a" {
		t.Fatal("Bindings returned an alias")
	}

	if r := x.Route("k.v", nil, nil); !slices.Equal(r, []string{"a", "b"}) {
		t.Fatalf("Route %v", r)
	}
	if x.Unbind(Binding{Queue: "zz", Key: "k.#"}) {
		t.Fatal("Unbind of an unknown binding reported true")
	}
	// k.# and k.#.# are the same pattern: a stays bound until both go.
	if !x.Unbind(Binding{Queue: "a", Key: "k.#"}) {
		t.Fatal("Unbind found nothing")
	}
	if r := x.Route("k.v.w", nil, nil); !slices.Equal(r, []string{"a"}) {
		t.Fatalf("after first unbind: %v", r)
	}
	x.Unbind(Binding{Queue: "a", Key: "k.#.#"})
	x.Unbind(Binding{Queue: "b", Key: "k.*"})
	if r := x.Route("k.v", nil, nil); len(r) != 0 {
		t.Fatalf("after unbinding all: %v", r)
	}
	// The trie gives its memory back.
	x.Unbind(Binding{Queue: "c", Key: "z", Headers: map[string]string{"h": "1"}})
	if !x.topic.empty() {
		t.Fatalf("trie not pruned: %+v", x.topic)
	}
}

func TestDirectUnbindKeepsOtherBindings(t *testing.T) {
	t.Parallel()
	x := mustNew(t, Direct, Binding{Queue: "a", Key: "k"}, Binding{Queue: "a", Key: "k", Headers: map[string]string{"x": "y"}}, Binding{Queue: "b", Key: "k"})
	x.Unbind(Binding{Queue: "a", Key: "k"})
	if r := x.Route("k", nil, nil); !slices.Equal(r, []string{"a", "b"}) {
		t.Fatalf("got %v", r)
	}
	x.Unbind(Binding{Queue: "a", Key: "k", Headers: map[string]string{"x": "y"}})
	x.Unbind(Binding{Queue: "b", Key: "k"})
	if r := x.Route("k", nil, nil); len(r) != 0 || len(x.direct) != 0 {
		t.Fatalf("got %v, map %v", r, x.direct)
	}
}

// TestRouteConcurrentWithBind runs Route against Bind/Unbind (use -race).
// Queue "stable" is bound throughout and must be in every result.
func TestRouteConcurrentWithBind(t *testing.T) {
	t.Parallel()
	x := mustNew(t, Topic, Binding{Queue: "stable", Key: "a.#"})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := Binding{Queue: fmt.Sprintf("q%d", i%50), Key: fmt.Sprintf("a.*.%d", i%7)}
			if err := x.Bind(b); err != nil {
				panic(err)
			}
			if i%3 == 0 {
				x.Unbind(b)
			}
		}
	})
	var dst []string
	for range 20000 {
		dst = x.Route("a.b.3", nil, dst[:0])
		if !slices.Contains(dst, "stable") {
			t.Errorf("stable queue missing: %v", dst)
			break
		}
		if len(slices.Compact(slices.Clone(dst))) != len(dst) {
			t.Errorf("duplicate queue: %v", dst)
			break
		}
	}
	close(stop)
	wg.Wait()
}

func TestRouteDoesNotAllocate(t *testing.T) {
	x := mustNew(t, Topic, topicBindings("order.*.eu", "order.#", "#.eu", "*.created.*")...)
	dst := make([]string, 0, 8)
	allocs := testing.AllocsPerRun(200, func() { dst = x.Route("order.created.eu", nil, dst[:0]) })
	if allocs != 0 || len(dst) != 4 {
		t.Fatalf("allocs %v, routed %v", allocs, dst)
	}
}

// FuzzTopic compares the trie with refTopicMatch. The input is a list of
// patterns (one per line) and a routing key.
func FuzzTopic(f *testing.F) {
	f.Add("#\n*\na.#.b\n#.#\n\na..b\n*.*", "a.b")
	f.Add("a.#.b\n#.b.#\nb", "a.b.b")
	f.Add("*.#.*\n#.*.#", "")
	f.Add("#.a.#.a.#", "a.x.a")
	f.Add("a.*", "a.")
	f.Fuzz(func(t *testing.T, patterns, key string) {
		if len(key) > MaxKeyLen || strings.Count(patterns, "\n") > 64 {
			return
		}
		x := mustNew(t, Topic)
		var bound []string
		for p := range strings.SplitSeq(patterns, "\n") {
			if len(bound) > 0 && p == bound[len(bound)-1] {
				continue
			}
			if err := x.Bind(Binding{Queue: "q:" + p, Key: p}); err != nil {
				continue // rejected patterns are checked in TestValidation
			}
			bound = append(bound, p)
		}
		var want []string
		for _, p := range bound {
			if refTopicMatch(refSplit(p), refSplit(key)) {
				want = append(want, "q:"+p)
			}
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if got := x.Route(key, nil, nil); !slices.Equal(got, want) {
			t.Fatalf("key %q: trie %v, reference %v", key, got, want)
		}
	})
}

// TestManyBindings binds and unbinds 50,000 bindings (this took 30 s when
// Bind checked duplicates linearly) and checks that every index is empty
// afterwards.
func TestManyBindings(t *testing.T) {
	t.Parallel()
	for _, kind := range []Kind{Direct, Topic, Fanout, Headers} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			bs := make([]Binding, 50000)
			for i := range bs {
				bs[i] = Binding{Queue: fmt.Sprintf("q%d", i%500), Key: fmt.Sprintf("a.%d.#.#", i%20000)}
				if kind == Headers {
					bs[i].Headers = map[string]string{"h": fmt.Sprint(i % 20000)}
				}
			}
			x := mustNew(t, kind, bs...)
			if got := len(x.Bindings()); got != 20000 {
				t.Fatalf("%d distinct bindings, want 20000", got)
			}
			hs := hdrs("h", "7")
			key := "a.7.x"
			if kind == Direct {
				key = "a.7.#.#"
			}
			if got := x.Route(key, hs, nil); len(got) == 0 {
				t.Fatal("nothing routed")
			}
			for _, b := range bs[:20000] {
				if !x.Unbind(b) {
					t.Fatalf("Unbind(%+v) found nothing", b)
				}
			}
			if got := x.Route(key, hs, nil); len(got) != 0 {
				t.Fatalf("routed after unbinding all: %v", got)
			}
			if len(x.byID) != 0 || len(x.refs) != 0 || len(x.direct) != 0 || len(x.fanout) != 0 || len(x.headers) != 0 || (x.topic != nil && !x.topic.empty()) {
				t.Fatal("indexes not empty after unbinding all")
			}
		})
	}
}
