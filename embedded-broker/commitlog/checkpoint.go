package commitlog

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

// Consumer checkpoints live in <Dir>/checkpoints/<group>.json, one file per
// group, replaced atomically (temp file, fsync, rename, directory fsync).
// Concurrent Commits of one group share a write, as appends share an
// fsync: the first committer writes a snapshot holding every offset set so
// far, and everyone whose update the snapshot covers returns with it.

type topicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

type checkpointEntry struct {
	topicPartition
	Next int64 `json:"next"`
}

type checkpointFile struct {
	Offsets []checkpointEntry `json:"offsets"`
}

type checkpointStore struct {
	fs  vfs.FS
	dir string

	mu     sync.Mutex // guards groups; taken before groupCheckpoints.mu
	groups map[string]*groupCheckpoints
	closed bool
}

type groupCheckpoints struct {
	name string

	mu       sync.Mutex
	latest   map[topicPartition]int64 // including commits not yet durable
	durable  map[topicPartition]int64 // as of the last completed write
	version  uint64                   // bumped by every Commit
	written  uint64                   // the version the file holds
	flushing bool
	flushed  chan struct{} // closed and replaced after every write attempt
}

func checkpointFileName(group string) string { return url.PathEscape(group) + ".json" }

func openCheckpoints(fsys vfs.FS, dir string) (*checkpointStore, error) {
	s := &checkpointStore{fs: fsys, dir: dir, groups: map[string]*groupCheckpoints{}}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("commitlog: checkpoints: %w", err)
	}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("commitlog: checkpoints: %w", err)
	}
	for _, name := range names {
		stem, ok := strings.CutSuffix(name, ".json")
		if !ok {
			continue // a leftover .tmp: the rename never happened
		}
		group, err := url.PathUnescape(stem)
		if err != nil {
			continue
		}
		raw, err := readWhole(fsys, filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("commitlog: checkpoints of %s: %w", group, err)
		}
		var file checkpointFile
		if err := json.Unmarshal(raw, &file); err != nil {
			return nil, fmt.Errorf("commitlog: checkpoints of %s: %w: %v", group, event.ErrCorruption, err)
		}
		g := newGroupCheckpoints(group)
		for _, e := range file.Offsets {
			g.latest[e.topicPartition] = e.Next
			g.durable[e.topicPartition] = e.Next
		}
		s.groups[group] = g
	}
	return s, nil
}

func newGroupCheckpoints(name string) *groupCheckpoints {
	return &groupCheckpoints{
		name:    name,
		latest:  map[topicPartition]int64{},
		durable: map[topicPartition]int64{},
		flushed: make(chan struct{}),
	}
}

func (s *checkpointStore) group(name string, create bool) (*groupCheckpoints, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	g, ok := s.groups[name]
	if !ok && create {
		g = newGroupCheckpoints(name)
		s.groups[name] = g
	}
	return g, nil
}

func (s *checkpointStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Commit stores next (the offset after the last processed event) as the
// checkpoint of group on topic/partition and returns once it is durable.
// Safe for concurrent use; concurrent commits of a group share one write.
// If ctx ends first the checkpoint may or may not be stored.
func (l *Log) Commit(ctx context.Context, group, topic string, partition int32, next int64) error {
	if err := l.CommitOffsets(ctx, group, []CommittedOffset{{Topic: topic, Partition: partition, Next: next}}); err != nil {
		return fmt.Errorf("commitlog: commit %s %s/%d: %w", group, topic, partition, err)
	}
	return nil
}

// CommittedOffset is one checkpoint: Next is the offset after the last
// processed event.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Next      int64
}

// CommitOffsets is Commit for several partitions at once: one durable
// write covers them all (a Kafka OffsetCommit of many partitions).
func (l *Log) CommitOffsets(ctx context.Context, group string, offsets []CommittedOffset) error {
	g, err := l.checkpoints.group(group, true)
	if err != nil {
		return err
	}
	return l.checkpoints.commit(ctx, g, offsets)
}

// GroupOffsets returns every durable checkpoint of group, sorted by topic
// and partition.
func (l *Log) GroupOffsets(group string) ([]CommittedOffset, error) {
	g, err := l.checkpoints.group(group, false)
	if err != nil || g == nil {
		return nil, err
	}
	g.mu.Lock()
	out := make([]CommittedOffset, 0, len(g.durable))
	for tp, next := range g.durable {
		out = append(out, CommittedOffset{Topic: tp.Topic, Partition: tp.Partition, Next: next})
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b CommittedOffset) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, nil
}

func (s *checkpointStore) commit(ctx context.Context, g *groupCheckpoints, offsets []CommittedOffset) error {
	g.mu.Lock()
	for _, o := range offsets {
		g.latest[topicPartition{o.Topic, o.Partition}] = o.Next
	}
	g.version++
	mine := g.version
	for g.written < mine {
		if g.flushing {
			ch := g.flushed
			g.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			g.mu.Lock()
			continue
		}
		g.flushing = true
		version := g.version
		snapshot := make(map[topicPartition]int64, len(g.latest))
		for k, v := range g.latest {
			snapshot[k] = v
		}
		g.mu.Unlock()
		err := s.write(g.name, snapshot)
		g.mu.Lock()
		g.flushing = false
		if err == nil {
			g.written, g.durable = version, snapshot
		}
		close(g.flushed)
		g.flushed = make(chan struct{})
		if err != nil {
			g.mu.Unlock()
			return err
		}
	}
	g.mu.Unlock()
	return nil
}

func (s *checkpointStore) write(group string, offsets map[topicPartition]int64) error {
	file := checkpointFile{Offsets: make([]checkpointEntry, 0, len(offsets))}
	for tp, next := range offsets {
		file.Offsets = append(file.Offsets, checkpointEntry{tp, next})
	}
	slices.SortFunc(file.Offsets, func(a, b checkpointEntry) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	raw, err := json.Marshal(file)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.fs, s.dir, checkpointFileName(group), raw)
}

// Committed returns the durable checkpoint of group on topic/partition;
// ok is false when there is none.
func (l *Log) Committed(ctx context.Context, group, topic string, partition int32) (next int64, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	g, err := l.checkpoints.group(group, false)
	if err != nil || g == nil {
		return 0, false, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	next, ok = g.durable[topicPartition{topic, partition}]
	return next, ok, nil
}
