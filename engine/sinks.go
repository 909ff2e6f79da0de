package engine

import (
	"context"
	"fmt"

	"github.com/bridgeio/bridge/event"
)

// topicSink appends to another backbone topic. Partitions follow the event
// key (the default partitioner), so per-key order carries over.
type topicSink struct {
	backbone Backbone
	topic    string
}

func (s *topicSink) Name() string { return "topic:" + s.topic }

func (s *topicSink) Send(ctx context.Context, batch []event.Event) error {
	if _, err := s.backbone.Append(ctx, s.topic, batch); err != nil {
		return fmt.Errorf("append to topic %s: %w", s.topic, err)
	}
	return nil
}

func (s *topicSink) Close(context.Context) error { return nil }
