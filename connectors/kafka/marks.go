package kafka

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// delivered tracks, per owned partition, the offset after the last record
// whose deliver returned nil: exactly what may be committed. It is the only
// thing the source ever commits, so a commit can never pass an event that
// is not durable in the backbone.
//
// Run's goroutine writes it; the rebalance callbacks read and prune it from
// franz-go's goroutine, hence the mutex. It is never held during I/O.
type delivered struct {
	mu   sync.Mutex
	next map[string]map[int32]kgo.EpochOffset
	gen  uint64 // bumped by every mark
	done uint64 // gen of the last successful commit
}

func (d *delivered) mark(records []*kgo.Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.next == nil {
		d.next = make(map[string]map[int32]kgo.EpochOffset)
	}
	for i, r := range records {
		// A poll lists each partition's records together and in offset
		// order, so only the last record of each run moves the mark; this
		// keeps the map work per partition, not per record.
		if next := i + 1; next < len(records) && records[next].Partition == r.Partition && records[next].Topic == r.Topic {
			continue
		}
		parts := d.next[r.Topic]
		if parts == nil {
			parts = make(map[int32]kgo.EpochOffset)
			d.next[r.Topic] = parts
		}
		if cur, ok := parts[r.Partition]; !ok || r.Offset+1 > cur.Offset {
			parts[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
		}
	}
	d.gen++
}

// pending returns a copy of the offsets to commit and their generation, or
// nil if everything marked is already committed.
func (d *delivered) pending() (map[string]map[int32]kgo.EpochOffset, uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gen == d.done {
		return nil, d.gen
	}
	out := make(map[string]map[int32]kgo.EpochOffset, len(d.next))
	for topic, parts := range d.next {
		cp := make(map[int32]kgo.EpochOffset, len(parts))
		for p, o := range parts {
			cp[p] = o
		}
		out[topic] = cp
	}
	return out, d.gen
}

func (d *delivered) committed(gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = max(d.done, gen)
}

// forget drops partitions this member no longer owns, so that a later
// commit cannot rewind the offsets their next owner commits.
func (d *delivered) forget(partitions map[string][]int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for topic, ps := range partitions {
		for _, p := range ps {
			delete(d.next[topic], p)
		}
	}
}

// commit commits the pending offsets synchronously and returns the first
// error, including per-partition errors of the response.
func (d *delivered) commit(ctx context.Context, cl *kgo.Client) error {
	offsets, gen := d.pending()
	if offsets == nil {
		return nil
	}
	var rerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && rerr == nil {
					rerr = err
				}
			}
		}
	})
	if rerr == nil {
		d.committed(gen)
	}
	return rerr
}
