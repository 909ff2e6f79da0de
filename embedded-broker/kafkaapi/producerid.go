package kafkaapi

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// producerIDs hands out idempotent producer ids. Ids must never repeat one
// the log still remembers (the new producer's sequence 0 would clash with
// the old one's state), so the first id is above both the log's largest
// (rebuilt at Open) and a clock-derived floor (milliseconds << 10), and the
// counter only grows.
type producerIDs struct {
	mu   sync.Mutex
	next int64
}

func newProducerIDs() *producerIDs { return &producerIDs{} }

func (p *producerIDs) allocate(logMax int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == 0 {
		p.next = max(logMax+1, time.Now().UnixMilli()<<10)
	}
	id := p.next
	p.next++
	return id
}

func (c *conn) initProducerID(req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case !c.may(RoleProducer):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	case req.TransactionalID != nil:
		// Transactions are not supported: refuse rather than pretend.
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	default:
		resp.ProducerID = c.s.pids.allocate(c.s.log.MaxProducerID())
		resp.ProducerEpoch = 0
	}
	return resp
}
