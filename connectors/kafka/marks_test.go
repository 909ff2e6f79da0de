package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDeliveredMarks: the commit offset of a partition is one past the
// highest delivered record, never moves back, is pending until committed,
// and forgotten partitions are not committed.
func TestDeliveredMarks(t *testing.T) {
	t.Parallel()
	rec := func(topic string, p int32, o int64) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Offset: o, LeaderEpoch: 1}
	}
	cases := []struct {
		name    string
		batches [][]*kgo.Record
		forget  map[string][]int32
		want    string // fmt of pending offsets; "" for none
	}{
		{"nothing", nil, nil, ""},
		{"runs per partition", [][]*kgo.Record{{rec("a", 0, 5), rec("a", 0, 6), rec("a", 1, 2), rec("b", 0, 9)}}, nil,
			"map[a:map[0:{1 7} 1:{1 3}] b:map[0:{1 10}]]"},
		{"interleaved partitions keep the max", [][]*kgo.Record{{rec("a", 0, 5), rec("a", 1, 1), rec("a", 0, 7), rec("a", 1, 0)}}, nil,
			"map[a:map[0:{1 8} 1:{1 2}]]"},
		{"never moves back", [][]*kgo.Record{{rec("a", 0, 9)}, {rec("a", 0, 3)}}, nil, "map[a:map[0:{1 10}]]"},
		{"forgotten partitions", [][]*kgo.Record{{rec("a", 0, 1), rec("a", 1, 1)}}, map[string][]int32{"a": {1}},
			"map[a:map[0:{1 2}]]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d delivered
			for _, b := range tc.batches {
				d.mark(b)
			}
			d.forget(tc.forget)
			got, gen := d.pending()
			if s := fmt.Sprint(got); (got == nil && tc.want != "") || (got != nil && s != tc.want) {
				t.Fatalf("pending = %s, want %q", s, tc.want)
			}
			d.committed(gen)
			if again, _ := d.pending(); again != nil {
				t.Fatalf("still pending after commit: %v", again)
			}
		})
	}
}
