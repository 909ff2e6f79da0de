package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/event/eventtest"
)

var conformanceTopic atomic.Int64

// freshTopic creates a uniquely named six-partition topic on c.
func freshTopic(t *testing.T, c *kfake.Cluster) string {
	t.Helper()
	name := fmt.Sprintf("conformance-%d", conformanceTopic.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(bareClient(t, c)).CreateTopics(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	return name
}

// recordEvent is the event a plain consumer sees in a record.
func recordEvent(r *kgo.Record) event.Event {
	hs := make([]event.Header, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = event.Header(h)
	}
	return event.Event{Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp}
}

func kafkaFeatures() eventtest.Features {
	return eventtest.Features{
		BinaryValues:  true,
		BinaryHeaders: true,
		HeaderOrder:   true,
		Ordered:       true,
		// The source adds the origin coordinates.
		SystemHeader: func(name string) bool { return strings.HasPrefix(name, "kafka.") },
		// Larger than franz-go's 1 MiB batch limit: MessageTooLarge.
		Poison: func() event.Event { return event.Event{Value: make([]byte, 2<<20)} },
		Wait:   20 * time.Second,
	}
}

func TestSinkConformance(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	eventtest.RunSinkSuite(t, kafkaFeatures(), func(t *testing.T) (event.Sink, eventtest.Reader) {
		topic := freshTopic(t, c)
		sink, err := NewSink(SinkConfig{Client: clientConfig(c), Topic: topic, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		reader := bareClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(100*time.Millisecond))
		read := func(ctx context.Context) ([]event.Event, error) {
			ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			fs := reader.PollFetches(ctx)
			var out []event.Event
			for _, r := range fs.Records() {
				out = append(out, recordEvent(r))
			}
			return out, nil
		}
		return sink, read
	})
}

func TestSourceConformance(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	groups := 0
	eventtest.RunSourceSuite(t, kafkaFeatures(), func(t *testing.T) eventtest.SourceEnv {
		topic := freshTopic(t, c)
		groups++
		group := fmt.Sprintf("conformance-group-%d", groups)
		producer := bareClient(t, c, kgo.DefaultProduceTopic(topic))
		return eventtest.SourceEnv{
			NewSource: func() event.Source {
				return newTestSource(t, c, group, func(cfg *SourceConfig) { cfg.Topics = []string{topic} })
			},
			Publish: func(ctx context.Context, evs []event.Event) error {
				rs := make([]*kgo.Record, len(evs))
				for i, ev := range evs {
					rs[i] = &kgo.Record{Key: ev.Key, Value: ev.Value, Timestamp: ev.Timestamp}
					for _, h := range ev.Headers {
						rs[i].Headers = append(rs[i].Headers, kgo.RecordHeader(h))
					}
				}
				return producer.ProduceSync(ctx, rs...).FirstErr()
			},
		}
	})
}
