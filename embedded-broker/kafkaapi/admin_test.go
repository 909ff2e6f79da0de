package kafkaapi

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCreateTopics(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	adm := kadm.NewClient(ts.client())
	ctx := ctxT(t, 20*time.Second)
	resp, err := adm.CreateTopic(ctx, 4, -1, nil, "made")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	if info, err := ts.log.Topic("made"); err != nil || len(info.Partitions) != 4 {
		t.Fatalf("the log has %+v, %v", info, err)
	}
	for _, tc := range []struct {
		name       string
		partitions int32
		rf         int16
		configs    map[string]*string
		topic      string
		want       error
	}{
		{"exists", 4, 1, nil, "made", kerr.TopicAlreadyExists},
		{"zero partitions", 0, 1, nil, "zero", kerr.InvalidPartitions},
		{"replication 3", 1, 3, nil, "rf3", kerr.InvalidReplicationFactor},
		{"configs", 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("1")}, "cfg", kerr.InvalidConfig},
		{"bad name", 1, 1, nil, "no/slash", kerr.InvalidTopicException},
	} {
		resp, err := adm.CreateTopic(ctx, tc.partitions, tc.rf, tc.configs, tc.topic)
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Validate-only creates nothing.
	if _, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "dry"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.log.Topic("dry"); err == nil {
		t.Fatal("validate-only created the topic")
	}
	// Only the admin role creates topics.
	ts2 := startServer(t, "", func(o *Options) { o.Credentials = testCredentials })
	prodAdm := kadm.NewClient(ts2.client(kgo.SASL(mechanism("PLAIN", "producer", "p-token"))))
	resp, err = prodAdm.CreateTopic(ctx, 1, 1, nil, "nope")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("producer create: %v", err)
	}
}

func TestDescribeConfigs(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	ts.topic("t", 1)
	adm := kadm.NewClient(ts.client())
	ctx := ctxT(t, 10*time.Second)
	rcs, err := adm.DescribeTopicConfigs(ctx, "t", "missing")
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		switch rc.Name {
		case "t":
			if rc.Err != nil {
				t.Fatal(rc.Err)
			}
			found := map[string]string{}
			for _, c := range rc.Configs {
				found[c.Key] = c.MaybeValue()
			}
			if found["cleanup.policy"] != "delete" || found["segment.bytes"] != "134217728" || found["retention.ms"] != "-1" {
				t.Fatalf("configs %v", found)
			}
		case "missing":
			if !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
				t.Fatalf("missing topic: %v", rc.Err)
			}
		}
	}
	brokers, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil || len(brokers) != 1 || len(brokers[0].Configs) == 0 {
		t.Fatalf("broker configs: %v %+v", err, brokers)
	}
}

// TestAutoCreateTopics: off by default (unknown topic), on when enabled
// (Metadata creates it with the default partitions).
func TestAutoCreateTopics(t *testing.T) {
	t.Parallel()
	off := startServer(t, "", nil)
	cl := off.client(kgo.DefaultProduceTopic("auto"), kgo.RecordRetries(2), kgo.ProduceRequestTimeout(time.Second))
	ctx := ctxT(t, 3*time.Second)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("produced to a topic that does not exist")
	}
	on := startServer(t, "", func(o *Options) { o.AutoCreateTopics = true; o.DefaultPartitions = 3 })
	cl = on.client(kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if info, err := on.log.Topic("auto"); err != nil || len(info.Partitions) != 3 {
		t.Fatalf("auto-created %+v, %v", info, err)
	}
}
