package kafkaapi

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handle answers one request. A returned error closes the connection (with
// the error logged); a nil reply answers nothing (produce with acks=0).
func (c *conn) handle(ctx context.Context, req request) (reply, error) {
	if req.body == nil {
		return c.unsupported(req)
	}
	if c.role == "" {
		switch req.key {
		case kmsg.ApiVersions.Int16(), kmsg.SASLHandshake.Int16(), kmsg.SASLAuthenticate.Int16():
		default:
			return nil, fmt.Errorf("kafkaapi: %s before SASL authentication", kmsg.NameForKey(req.key))
		}
	}
	switch body := req.body.(type) {
	case *kmsg.ApiVersionsRequest:
		return respond(req, apiVersions(0)), nil
	case *kmsg.SASLHandshakeRequest:
		return respond(req, c.saslHandshake(body)), nil
	case *kmsg.SASLAuthenticateRequest:
		return c.saslAuthenticate(req, body)
	case *kmsg.MetadataRequest:
		return respond(req, c.metadata(body)), nil
	case *kmsg.ProduceRequest:
		return c.produce(ctx, req, body), nil
	case *kmsg.FetchRequest:
		return c.fetch(req, body), nil
	case *kmsg.ListOffsetsRequest:
		return respond(req, c.listOffsets(body)), nil
	case *kmsg.CreateTopicsRequest:
		return respond(req, c.createTopics(body)), nil
	case *kmsg.DescribeConfigsRequest:
		return respond(req, c.describeConfigs(body)), nil
	case *kmsg.InitProducerIDRequest:
		return respond(req, c.initProducerID(body)), nil
	}
	return c.handleGroup(ctx, req)
}

// may says whether the connection's role allows an operation that needs
// want (admin may everything).
func (c *conn) may(want Role) bool { return c.role == RoleAdmin || c.role == want }

// apiVersions lists every served API; errCode is 0 or UNSUPPORTED_VERSION.
func apiVersions(errCode int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = errCode
	keys := make([]int16, 0, len(supported))
	for k := range supported {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: supported[k].min, MaxVersion: supported[k].max})
	}
	return resp
}

// unsupported answers an API or version that is not served. ApiVersions
// gets Kafka's answer (v0, UNSUPPORTED_VERSION and the list, so the client
// retries with a version both know). Any other API known to kmsg, at a
// version kmsg can encode, gets its response with every top-level error
// code set to UNSUPPORTED_VERSION; the rest close the connection with a
// logged reason, since no answer the client could parse exists.
func (c *conn) unsupported(req request) (reply, error) {
	name := kmsg.NameForKey(req.key)
	if req.key == kmsg.ApiVersions.Int16() {
		resp := apiVersions(kerr.UnsupportedVersion.Code)
		resp.SetVersion(0)
		return ready(appendResponse(nil, req.correlation, resp)), nil
	}
	c.logger.Warn("kafka request not served", "api", name, "key", req.key, "version", req.version, "client_id", c.clientID)
	probe := kmsg.RequestForKey(req.key)
	if probe == nil || req.version > probe.MaxVersion() {
		return nil, fmt.Errorf("kafkaapi: %s (key %d) v%d is not served and cannot be answered", name, req.key, req.version)
	}
	resp := probe.ResponseKind()
	field := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
	if !field.IsValid() || field.Kind() != reflect.Int16 {
		return nil, fmt.Errorf("kafkaapi: %s (key %d) v%d is not served and its response has no top-level error code", name, req.key, req.version)
	}
	field.SetInt(int64(kerr.UnsupportedVersion.Code))
	return respond(req, resp), nil
}

func (c *conn) metadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := kmsg.NewPtrMetadataResponse()
	host, port := c.s.advertised()
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: host, Port: port}}
	cluster := "bridge"
	resp.ClusterID = &cluster
	resp.ControllerID = 0
	var names []string
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, t := range c.s.log.Topics() {
			names = append(names, t.Name)
		}
	} else {
		for _, t := range req.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	autoCreate := req.Version < 4 || req.AllowAutoTopicCreation
	for _, name := range names {
		name := name
		mt := kmsg.MetadataResponseTopic{Topic: &name}
		info, err := c.s.log.Topic(name)
		if errors.Is(err, commitlog.ErrUnknownTopic) && autoCreate && c.s.opts.AutoCreateTopics && c.may(RoleProducer) {
			if err = c.s.createTopic(name, c.s.opts.DefaultPartitions); err == nil {
				info, err = c.s.log.Topic(name)
			}
		}
		if err != nil {
			mt.ErrorCode = errorCode(err)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		for _, p := range info.Partitions {
			mt.Partitions = append(mt.Partitions, kmsg.MetadataResponseTopicPartition{
				Partition: p.Partition, Leader: 0, LeaderEpoch: 0, Replicas: []int32{0}, ISR: []int32{0}})
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

// createTopic creates a topic through the log, logging it.
func (s *Server) createTopic(name string, partitions int) error {
	if err := s.log.CreateTopic(name, partitions); err != nil {
		return err
	}
	s.logger.Info("topic created over the Kafka API", "topic", name, "partitions", partitions)
	return nil
}

func (c *conn) listOffsets(req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := kmsg.NewPtrListOffsetsResponse()
	for _, rt := range req.Topics {
		t := kmsg.ListOffsetsResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			p := kmsg.ListOffsetsResponseTopicPartition{Partition: rp.Partition, Timestamp: -1, Offset: -1}
			if !c.may(RoleConsumer) {
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else {
				p.Offset, p.Timestamp, p.ErrorCode = c.s.offsetFor(rt.Topic, rp.Partition, rp.Timestamp)
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// offsetFor answers ListOffsets for one partition: -1 is the end (latest),
// -2 the start (earliest), anything else a timestamp in ms (the first
// offset at or after it, with that record's timestamp).
func (s *Server) offsetFor(topic string, partition int32, ts int64) (int64, int64, int16) {
	start, end, err := s.log.Offsets(topic, partition)
	if err != nil {
		return -1, -1, errorCode(err)
	}
	switch ts {
	case -1:
		return end, -1, 0
	case -2:
		return start, -1, 0
	}
	if ts < 0 {
		return -1, -1, kerr.InvalidRequest.Code
	}
	off, err := s.log.OffsetForTime(topic, partition, time.UnixMilli(ts))
	if err != nil {
		return -1, -1, errorCode(err)
	}
	if off >= end {
		return -1, -1, 0 // Kafka: no record at or after ts
	}
	evs, err := s.log.Read(topic, partition, off, 1, 1)
	if err != nil || len(evs) == 0 {
		return off, -1, errorCode(err)
	}
	return off, evs[0].Timestamp.UnixMilli(), 0
}

func (c *conn) createTopics(req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := kmsg.NewPtrCreateTopicsResponse()
	for _, rt := range req.Topics {
		t := kmsg.CreateTopicsResponseTopic{Topic: rt.Topic, NumPartitions: rt.NumPartitions, ReplicationFactor: 1}
		code, msg := c.createOne(rt, req.ValidateOnly)
		t.ErrorCode = code
		if msg != "" {
			t.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func (c *conn) createOne(rt kmsg.CreateTopicsRequestTopic, validateOnly bool) (int16, string) {
	partitions := int(rt.NumPartitions)
	switch {
	case !c.may(RoleAdmin):
		return kerr.TopicAuthorizationFailed.Code, "creating topics needs the admin role"
	case len(rt.ReplicaAssignment) > 0:
		return kerr.InvalidReplicaAssignment.Code, "bridge has one node; replica assignments are not accepted"
	case rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1:
		return kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d: bridge has one node (use 1 or -1)", rt.ReplicationFactor)
	case len(rt.Configs) > 0:
		return kerr.InvalidConfig.Code, "topic configs are not supported: retention and segment size are backbone-wide (backbone: in the config)"
	case partitions == -1:
		partitions = c.s.opts.DefaultPartitions
	case partitions <= 0 || partitions > 10000:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("%d partitions: use 1 to 10000", partitions)
	}
	if _, err := c.s.log.Topic(rt.Topic); err == nil {
		return kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %s exists", rt.Topic)
	}
	if validateOnly {
		if !validName(rt.Topic) {
			return kerr.InvalidTopicException.Code, "topic names are 1 to 249 of a-z A-Z 0-9 . _ -"
		}
		return 0, ""
	}
	if err := c.s.createTopic(rt.Topic, partitions); err != nil {
		if errors.Is(err, commitlog.ErrTopicExists) {
			return kerr.TopicAlreadyExists.Code, err.Error()
		}
		return errorCode(err), err.Error()
	}
	return 0, ""
}

func validName(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for _, ch := range []byte(name) {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return false
		}
	}
	return true
}

// describeConfigs answers for topics (and the broker) with the few configs
// bridge has, read-only; the values are the backbone's.
func (c *conn) describeConfigs(req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	resp := kmsg.NewPtrDescribeConfigsResponse()
	for _, rr := range req.Resources {
		r := kmsg.DescribeConfigsResponseResource{ResourceType: rr.ResourceType, ResourceName: rr.ResourceName}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if _, err := c.s.log.Topic(rr.ResourceName); err != nil {
				r.ErrorCode = errorCode(err)
				break
			}
			r.Configs = c.s.configs(rr.ConfigNames, kmsg.ConfigSourceDefaultConfig)
		case kmsg.ConfigResourceTypeBroker:
			r.Configs = c.s.configs(rr.ConfigNames, kmsg.ConfigSourceStaticBrokerConfig)
		default:
			r.ErrorCode = kerr.InvalidRequest.Code
			msg := fmt.Sprintf("resource type %v is not supported", rr.ResourceType)
			r.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp
}

func (s *Server) configs(names []string, source kmsg.ConfigSource) []kmsg.DescribeConfigsResponseResourceConfig {
	lo := s.log.Options()
	retentionMs := int64(-1)
	if lo.Retention > 0 {
		retentionMs = lo.Retention.Milliseconds()
	}
	retentionBytes := int64(-1)
	if lo.RetentionBytes > 0 {
		retentionBytes = lo.RetentionBytes
	}
	all := []struct{ name, value string }{
		{"cleanup.policy", "delete"},
		{"compression.type", "producer"},
		{"max.message.bytes", fmt.Sprint(s.opts.MaxRequestBytes)},
		{"message.timestamp.type", "CreateTime"},
		{"retention.bytes", fmt.Sprint(retentionBytes)},
		{"retention.ms", fmt.Sprint(retentionMs)},
		{"segment.bytes", fmt.Sprint(lo.SegmentBytes)},
		{"segment.ms", fmt.Sprint(lo.SegmentAge.Milliseconds())},
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, cfg := range all {
		if names != nil && !slices.Contains(names, cfg.name) {
			continue
		}
		value := cfg.value
		out = append(out, kmsg.DescribeConfigsResponseResourceConfig{Name: cfg.name, Value: &value, ReadOnly: true, Source: source})
	}
	return out
}
