package sqs

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/bridgeio/bridge/connectors/sqsattr"
	"github.com/bridgeio/bridge/event"
)

func TestValidBody(t *testing.T) {
	cases := []struct {
		body string
		want bool
	}{
		{"", false},
		{"plain", true},
		{"tab\tlf\ncr\r", true},
		{"nul\x00", false},
		{"bell\x07", false},
		{"bad utf8 \xff", false},
		{"é漢字🙂", true},
		{"\uFFFE", false},
		{"\uE000", true},
	}
	for _, tc := range cases {
		if got := sqsattr.ValidBody([]byte(tc.body)); got != tc.want {
			t.Errorf("ValidBody(%q) = %v, want %v", tc.body, got, tc.want)
		}
	}
}

func TestSplit(t *testing.T) {
	sized := func(sizes ...int) []entry {
		out := make([]entry, len(sizes))
		for i, s := range sizes {
			out[i] = entry{index: i, size: s}
		}
		return out
	}
	repeat := func(n, size int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = size
		}
		return s
	}
	cases := []struct {
		name  string
		sizes []int
		want  []int // entries per request
	}{
		{"empty", nil, nil},
		{"one", []int{5}, []int{1}},
		{"ten small", repeat(10, 1), []int{10}},
		{"twenty-three small", repeat(23, 1), []int{10, 10, 3}},
		{"by size", repeat(5, 100*1024), []int{2, 2, 1}},
		{"exact limit", []int{MaxMessageSize / 2, MaxMessageSize / 2, 1}, []int{2, 1}},
		{"one at the limit", []int{1, MaxMessageSize, 1}, []int{1, 1, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reqs := split(sized(tc.sizes...))
			var got []int
			next := 0
			for _, r := range reqs {
				got = append(got, len(r))
				total := 0
				for _, en := range r {
					if en.index != next {
						t.Fatalf("entry %d out of order (want %d)", en.index, next)
					}
					next++
					total += en.size
				}
				if len(r) > 10 || (len(r) > 1 && total > MaxMessageSize) {
					t.Fatalf("request of %d entries, %d bytes", len(r), total)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("requests %v, want %v", got, tc.want)
			}
		})
	}
}

func TestToEntry(t *testing.T) {
	withID := event.Event{Key: []byte("k"), Value: []byte("v"), Headers: []event.Header{
		{Key: event.HeaderEventID, Value: []byte("t/0/1")}, {Key: "sqs.MessageId", Value: []byte("old")},
		{Key: HeaderAWSTraceHeader, Value: []byte("Root=1-5759e988-bd862e3fe1be46a994272793")},
	}}
	noKey := event.Event{Value: []byte("v")}
	cases := []struct {
		name      string
		e         event.Event
		p         event.Params
		fifo      bool
		group     string
		dedup     string
		permanent bool
	}{
		{"standard has no group", withID, event.Params{GroupID: "g"}, false, "", "", false},
		{"fifo group from key, dedup from event id", withID, event.Params{}, true, "k", "t/0/1", false},
		{"fifo params win", withID, event.Params{GroupID: "g", DedupID: "d"}, true, "g", "d", false},
		{"fifo without key", noKey, event.Params{}, true, "default", "", false},
		{"empty body", event.Event{}, event.Params{}, false, "", "", true},
		{"binary body", event.Event{Value: []byte{0xff, 0}}, event.Params{}, false, "", "", true},
		{"binary header value (carried base64 in bridge-headers)", event.Event{Value: []byte("v"), Headers: []event.Header{{Key: "b", Value: []byte{0xff}}, {Key: "e", Value: []byte{}}}}, event.Params{}, false, "", "", false},
		{"binary header name", event.Event{Value: []byte("v"), Headers: []event.Header{{Key: "\xe0", Value: []byte("x")}}}, event.Params{}, false, "", "", true},
		{"oversize", event.Event{Value: bytes.Repeat([]byte("x"), MaxMessageSize)}, event.Params{}, false, "", "", false},
		{"oversize with attributes", event.Event{Key: []byte("k"), Value: bytes.Repeat([]byte("x"), MaxMessageSize)}, event.Params{}, false, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			en, err := toEntry(7, &tc.e, tc.p, tc.fifo)
			if tc.permanent {
				if !errors.Is(err, event.ErrPermanent) {
					t.Fatalf("error %v, want permanent", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(en.req.MessageGroupId) != tc.group || aws.ToString(en.req.MessageDeduplicationId) != tc.dedup {
				t.Errorf("group %q dedup %q, want %q %q", aws.ToString(en.req.MessageGroupId), aws.ToString(en.req.MessageDeduplicationId), tc.group, tc.dedup)
			}
			if aws.ToString(en.req.Id) != "7" || en.index != 7 {
				t.Errorf("id %q index %d", aws.ToString(en.req.Id), en.index)
			}
			for name := range en.req.MessageAttributes {
				if strings.HasPrefix(name, HeaderPrefix) {
					t.Errorf("system header %s sent as an attribute", name)
				}
			}
			if _, ok := tc.e.Header(HeaderAWSTraceHeader); ok {
				if _, ok := en.req.MessageSystemAttributes["AWSTraceHeader"]; !ok {
					t.Error("AWSTraceHeader system attribute not set")
				}
			}
		})
	}
}

// received is what a consumer gets for a sent entry.
func received(en entry, attrs map[string]string) types.Message {
	m := types.Message{Body: en.req.MessageBody, MessageId: aws.String("id-1"), MessageAttributes: en.req.MessageAttributes, Attributes: attrs}
	return m
}

func TestFromMessageKeyAndSystemAttributes(t *testing.T) {
	en, err := toEntry(0, &event.Event{Value: []byte("v"), Headers: []event.Header{{Key: "a", Value: []byte("1")}}}, event.Params{}, true)
	if err != nil {
		t.Fatal(err)
	}
	sys := map[string]string{"MessageGroupId": "grp", "SentTimestamp": "1700000000123", "ApproximateReceiveCount": "2"}
	cases := []struct {
		name string
		fifo bool
		key  []byte
	}{
		{"fifo group becomes the key", true, []byte("grp")},
		{"standard ignores a group", false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := received(en, sys)
			e, err := fromMessage(&m, tc.fifo, "src", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.Key, tc.key) {
				t.Errorf("key %q, want %q", e.Key, tc.key)
			}
			if !e.Timestamp.Equal(time.UnixMilli(1700000000123)) {
				t.Errorf("timestamp %v", e.Timestamp)
			}
			want := []string{"a=1", "sqs.ApproximateReceiveCount=2", "sqs.MessageGroupId=grp", "sqs.MessageId=id-1", "sqs.SentTimestamp=1700000000123"}
			if got := perName(e.Headers); !slices.Equal(got, want) {
				t.Errorf("headers %q, want %q", got, want)
			}
		})
	}
	// bridge-key wins over the group.
	keyed, _ := toEntry(0, &event.Event{Key: []byte("exact"), Value: []byte("v")}, event.Params{}, true)
	m := received(keyed, sys)
	if e, _ := fromMessage(&m, true, "", time.Time{}); string(e.Key) != "exact" {
		t.Errorf("key %q, want the bridge-key attribute", e.Key)
	}
}

// FuzzMessageRoundTrip builds an event from arbitrary bytes, maps it to an
// SQS entry and back as a receive would, and checks key, body and headers
// (per name, in order) survive, or that toEntry refused it as permanent.
func FuzzMessageRoundTrip(f *testing.F) {
	f.Add([]byte("k"), []byte("body"), []byte("a\x001\x00a\x002\x00bridge-headers\x00[]"), true, false)
	f.Add([]byte("k"), []byte("x"), []byte("tag\x00first\x00tag\x00second"), true, false) // names after bridge-headers
	f.Add([]byte(""), []byte("x"), []byte("traceparent\x0000-1-2-01\x00sqs.MessageId\x00m\x00AWS.x\x00y"), false, true)
	f.Add([]byte("g"), []byte("x"), []byte("1\x001\x002\x002\x003\x003\x004\x004\x005\x005\x006\x006\x007\x007\x008\x008\x009\x009\x0010\x0010\x0011\x0011"), true, true)
	f.Fuzz(func(t *testing.T, key, body, raw []byte, hasKey, fifo bool) {
		e := event.Event{Value: body}
		if hasKey {
			e.Key = append([]byte{}, key...)
		}
		parts := bytes.Split(raw, []byte{0})
		for i := 0; i+1 < len(parts); i += 2 {
			e.Headers = append(e.Headers, event.Header{Key: string(parts[i]), Value: parts[i+1]})
		}
		en, err := toEntry(0, &e, event.Params{}, fifo)
		if err != nil {
			if !errors.Is(err, event.ErrPermanent) {
				t.Fatalf("refusal %v is not permanent", err)
			}
			return
		}
		var sys map[string]string
		if fifo {
			sys = map[string]string{"MessageGroupId": aws.ToString(en.req.MessageGroupId)}
		}
		m := received(en, sys)
		got, err := fromMessage(&m, fifo, "", time.Time{})
		if err != nil {
			t.Fatalf("fromMessage: %v", err)
		}
		wantKey := e.Key
		if wantKey == nil && fifo {
			wantKey = []byte(defaultGroupID)
		}
		if !bytes.Equal(got.Key, wantKey) || (got.Key == nil) != (wantKey == nil) {
			t.Fatalf("key %q, want %q", got.Key, wantKey)
		}
		if !bytes.Equal(got.Value, e.Value) {
			t.Fatalf("body changed")
		}
		var wantHeaders, gotHeaders []event.Header
		for _, h := range e.Headers {
			if !strings.HasPrefix(h.Key, HeaderPrefix) && h.Key != event.HeaderOverflow && h.Key != event.HeaderKey {
				wantHeaders = append(wantHeaders, event.Header{Key: h.Key, Value: []byte(strings.ToValidUTF8(string(h.Value), "\uFFFD"))})
			}
		}
		for _, h := range got.Headers {
			if !strings.HasPrefix(h.Key, HeaderPrefix) && h.Key != event.HeaderKey {
				gotHeaders = append(gotHeaders, event.Header{Key: h.Key, Value: []byte(strings.ToValidUTF8(string(h.Value), "\uFFFD"))})
			}
		}
		if !slices.Equal(perName(gotHeaders), perName(wantHeaders)) {
			t.Fatalf("headers\n got %q\nwant %q", perName(gotHeaders), perName(wantHeaders))
		}
	})
}
