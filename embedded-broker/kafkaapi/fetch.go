package kafkaapi

import (
	"context"
	"encoding/binary"
	"reflect"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchReply long-polls and answers a Fetch on the writer goroutine: the
// record batches go from the segment files to the socket (sendfile on
// plain TCP), so the response is encoded by hand around them
// (appendFetchHead/appendPartitionHead, checked against kmsg's encoding by
// TestFetchEncodingMatchesKmsg).
type fetchReply struct {
	c    *conn
	req  request
	body *kmsg.FetchRequest
}

func (c *conn) fetch(req request, body *kmsg.FetchRequest) reply {
	return &fetchReply{c: c, req: req, body: body}
}

// fetchPartition is one partition's part of the answer.
type fetchPartition struct {
	partition int32
	errorCode int16
	hwm       int64
	logStart  int64
	records   commitlog.BatchRange
}

func (r *fetchReply) wait(ctx context.Context, out *output) error {
	s := r.c.s
	maxWait := min(time.Duration(max(r.body.MaxWaitMillis, 0))*time.Millisecond, s.opts.MaxWait)
	deadline := time.Now().Add(maxWait)
	for {
		// Take the wake-up channels before reading, so that an append
		// between the read and the wait still wakes us.
		changed := r.changedChannels()
		parts, total, anyErr := r.read()
		if total >= int64(r.body.MinBytes) || anyErr || !time.Now().Before(deadline) || len(changed) == 0 {
			r.encode(out, parts)
			return nil
		}
		release(parts)
		if !waitAny(ctx, changed, time.Until(deadline), s.log.Done()) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
}

func release(parts [][]fetchPartition) {
	for _, t := range parts {
		for i := range t {
			t[i].records.Release()
		}
	}
}

func (r *fetchReply) changedChannels() []<-chan struct{} {
	var chans []<-chan struct{}
	for _, t := range r.body.Topics {
		for _, p := range t.Partitions {
			if ch, err := r.c.s.log.Changed(t.Topic, p.Partition); err == nil {
				chans = append(chans, ch)
			}
		}
	}
	return chans
}

// waitAny blocks until one channel closes, d passes, ctx ends or the log
// closes; it reports whether a channel closed.
func waitAny(ctx context.Context, chans []<-chan struct{}, d time.Duration, logDone <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	if len(chans) == 1 {
		select {
		case <-chans[0]:
			return true
		case <-timer.C:
		case <-ctx.Done():
		case <-logDone:
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+3)
	for _, ch := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(logDone)})
	chosen, _, _ := reflect.Select(cases)
	return chosen < len(chans)
}

// read pins a batch range per requested partition within the request's
// byte budgets. total counts the bytes found; anyErr reports a partition
// error (answered at once, as Kafka does).
func (r *fetchReply) read() (parts [][]fetchPartition, total int64, anyErr bool) {
	budget := int64(r.body.MaxBytes)
	if budget <= 0 {
		budget = 50 << 20
	}
	allowed := r.c.may(RoleConsumer)
	for _, t := range r.body.Topics {
		tp := make([]fetchPartition, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			fp := fetchPartition{partition: p.Partition, hwm: -1, logStart: -1}
			switch {
			case !allowed:
				fp.errorCode = kerr.TopicAuthorizationFailed.Code
			default:
				maxBytes := min(int64(p.PartitionMaxBytes), budget)
				if total == 0 {
					maxBytes = max(maxBytes, 1) // the first data always gets at least one batch
				}
				var st commitlog.PartitionState
				var err error
				if maxBytes > 0 {
					fp.records, st, err = r.c.s.log.ReadBatches(t.Topic, p.Partition, p.FetchOffset, int(maxBytes))
				} else {
					st, err = r.c.s.log.State(t.Topic, p.Partition)
				}
				fp.errorCode = errorCode(err)
				fp.hwm, fp.logStart = st.HighWatermark, st.LogStart
				if err != nil {
					fp.hwm, fp.logStart = -1, -1
					if s, e, serr := r.c.s.log.Offsets(t.Topic, p.Partition); serr == nil {
						fp.hwm, fp.logStart = e, s
					}
				}
				budget -= fp.records.Len()
				total += fp.records.Len()
			}
			anyErr = anyErr || fp.errorCode != 0
			tp = append(tp, fp)
		}
		parts = append(parts, tp)
	}
	return parts, total, anyErr
}

// encode writes the response frame: heads as bytes, batches as ranges.
func (r *fetchReply) encode(out *output, parts [][]fetchPartition) {
	v := r.req.version
	size := fetchHeadSize(v)
	for ti, t := range r.body.Topics {
		size += 2 + len(t.Topic) + 4
		for _, p := range parts[ti] {
			size += partitionHeadSize(v) + int(p.records.Len())
		}
	}
	head := binary.BigEndian.AppendUint32(nil, uint32(size))
	head = binary.BigEndian.AppendUint32(head, uint32(r.req.correlation))
	head = appendFetchHead(head, v, len(r.body.Topics))
	for ti, t := range r.body.Topics {
		head = appendString(head, t.Topic)
		head = binary.BigEndian.AppendUint32(head, uint32(len(parts[ti])))
		for i := range parts[ti] {
			p := &parts[ti][i]
			head = appendPartitionHead(head, v, p)
			out.bytes(head)
			head = head[:0]
			out.batches(&p.records)
		}
	}
	out.bytes(head)
}

// fetchHeadSize is the size of the frame after the size field up to the
// topics array length, inclusive: correlation id, throttle, error code and
// session id (v7+), topic count.
func fetchHeadSize(v int16) int {
	n := 4 + 4 + 4
	if v >= 7 {
		n += 2 + 4
	}
	return n
}

func appendFetchHead(dst []byte, v int16, topics int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, 0) // throttle
	if v >= 7 {
		dst = binary.BigEndian.AppendUint16(dst, 0) // error code
		dst = binary.BigEndian.AppendUint32(dst, 0) // session id: no fetch sessions
	}
	return binary.BigEndian.AppendUint32(dst, uint32(topics))
}

// partitionHeadSize covers a partition's fields up to and including the
// records length (versions 4 to 11, none of them flexible).
func partitionHeadSize(v int16) int {
	n := 4 + 2 + 8 + 8 + 4 + 4 // partition, error, hwm, lso, aborted (null), records length
	if v >= 5 {
		n += 8 // log start offset
	}
	if v >= 11 {
		n += 4 // preferred read replica
	}
	return n
}

func appendPartitionHead(dst []byte, v int16, p *fetchPartition) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(p.partition))
	dst = be.AppendUint16(dst, uint16(p.errorCode))
	dst = be.AppendUint64(dst, uint64(p.hwm))
	dst = be.AppendUint64(dst, uint64(p.hwm)) // last stable offset: no transactions
	if v >= 5 {
		dst = be.AppendUint64(dst, uint64(p.logStart))
	}
	dst = be.AppendUint32(dst, ^uint32(0)) // aborted transactions: null
	if v >= 11 {
		dst = be.AppendUint32(dst, ^uint32(0)) // preferred read replica: -1
	}
	return be.AppendUint32(dst, uint32(p.records.Len()))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}
