package kafkaapi

import (
	"context"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceReply waits for a produce request's appends, in order, and
// answers with their offsets (or nothing, for acks=0).
type produceReply struct {
	c       *conn
	req     request
	resp    *kmsg.ProduceResponse
	pending [][]*commitlog.PendingAppend // per response topic, per partition; nil = already answered
	timeout time.Duration
	acks0   bool
}

// produce validates and submits every partition's batches on the reader
// goroutine (so that the offsets follow the request order), and leaves the
// wait for durability to the writer.
func (c *conn) produce(_ context.Context, req request, body *kmsg.ProduceRequest) reply {
	resp := kmsg.NewPtrProduceResponse()
	// The reply keeps the header only: the records (up to MaxRequestBytes)
	// are copied into the log by the submit below and must not stay
	// referenced while the answer waits.
	head := req
	head.body = nil
	r := &produceReply{c: c, req: head, resp: resp, acks0: body.Acks == 0,
		timeout: time.Duration(max(body.TimeoutMillis, 1000)) * time.Millisecond}
	for _, rt := range body.Topics {
		t := kmsg.ProduceResponseTopic{Topic: rt.Topic}
		waits := make([]*commitlog.PendingAppend, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			p := kmsg.ProduceResponseTopicPartition{Partition: rp.Partition, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
			switch {
			case !c.may(RoleProducer):
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case body.TransactionID != nil:
				p.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			default:
				pending, err := c.s.log.SubmitBatches(rt.Topic, rp.Partition, rp.Records)
				if err != nil {
					p.ErrorCode = errorCode(err)
					c.logRejected(rt.Topic, rp.Partition, err, p.ErrorCode)
				} else {
					waits[i] = &pending
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
		r.pending = append(r.pending, waits)
	}
	return r
}

func (c *conn) logRejected(topic string, partition int32, err error, code int16) {
	if code == kerr.UnknownTopicOrPartition.Code {
		c.logger.Debug("produce to unknown partition", "topic", topic, "partition", partition)
		return
	}
	c.logger.Warn("produce rejected", "topic", topic, "partition", partition, "client_id", c.clientID,
		"code", kerr.ErrorForCode(code), "err", err)
}

func (r *produceReply) wait(ctx context.Context, out *output) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for ti := range r.resp.Topics {
		t := &r.resp.Topics[ti]
		for pi := range t.Partitions {
			pending := r.pending[ti][pi]
			if pending == nil {
				continue
			}
			p := &t.Partitions[pi]
			base, err := pending.Wait(ctx)
			if err != nil {
				p.ErrorCode = errorCode(err)
				if ctx.Err() != nil && p.ErrorCode == kerr.UnknownServerError.Code {
					p.ErrorCode = kerr.RequestTimedOut.Code
				}
				continue
			}
			p.BaseOffset = base
			if start, _, err := r.c.s.log.Offsets(t.Topic, p.Partition); err == nil {
				p.LogStartOffset = start
			}
		}
	}
	if r.acks0 {
		return nil
	}
	r.resp.SetVersion(r.req.version)
	out.bytes(appendResponse(nil, r.req.correlation, r.resp))
	return nil
}
