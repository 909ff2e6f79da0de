package commitlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
	"github.com/bridgeio/bridge/event"
)

// FsyncPolicy says when an append is durable.
type FsyncPolicy string

// The fsync policies.
const (
	// FsyncAlways: Append returns after the fdatasync covering its batch;
	// concurrent appends to a partition share it (group commit).
	FsyncAlways FsyncPolicy = "always"
	// FsyncInterval: Append returns once written; a ticker fsyncs dirty
	// partitions every FsyncInterval.
	FsyncInterval FsyncPolicy = "interval"
	// FsyncNever: Append returns once written; data is fsynced only when a
	// segment rolls and on Close.
	FsyncNever FsyncPolicy = "never"
)

// Options configure a Log. Zero fields take the defaults noted.
type Options struct {
	Dir                string
	FS                 vfs.FS        // nil = the OS file system
	Fsync              FsyncPolicy   // default FsyncAlways
	FsyncInterval      time.Duration // default 10ms
	SegmentBytes       int64         // roll a segment past this size; default 128 MiB, at most 1 GiB
	SegmentAge         time.Duration // roll a segment older than this; default 168h
	IndexIntervalBytes int           // sparse index granularity; default 4096
	Retention          time.Duration // delete whole segments older than this; 0 = keep forever
	RetentionBytes     int64         // per partition; 0 = unlimited
	// RetentionCheckInterval is how often retention runs; default 1m.
	RetentionCheckInterval time.Duration
	Logger                 *slog.Logger     // nil = discard
	Now                    func() time.Time // nil = time.Now (tests)
	// OnSync, when set, is called after every fsync of a segment's data
	// (group commit and interval flush) with its duration: the latency
	// metric of the log. It must be fast and safe for concurrent use.
	OnSync func(time.Duration)
}

// ensureDefaults fills zero fields, in one visible place.
func (o *Options) ensureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Fsync == "" {
		o.Fsync = FsyncAlways
	}
	if o.FsyncInterval == 0 {
		o.FsyncInterval = 10 * time.Millisecond
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = 128 << 20
	}
	if o.SegmentAge == 0 {
		o.SegmentAge = 168 * time.Hour
	}
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = 4096
	}
	if o.RetentionCheckInterval == 0 {
		o.RetentionCheckInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// validate reports every problem at once.
func (o *Options) validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("commitlog: Options.Dir is required"))
	}
	switch o.Fsync {
	case FsyncAlways, FsyncInterval, FsyncNever:
	default:
		errs = append(errs, fmt.Errorf("commitlog: unknown fsync policy %q", o.Fsync))
	}
	if o.FsyncInterval < 0 || o.SegmentAge < 0 || o.Retention < 0 || o.RetentionBytes < 0 || o.RetentionCheckInterval < 0 {
		errs = append(errs, errors.New("commitlog: durations and sizes must not be negative"))
	}
	if o.SegmentBytes < 0 || o.SegmentBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("commitlog: SegmentBytes %d outside (0, 1 GiB]", o.SegmentBytes))
	}
	if o.IndexIntervalBytes < 0 {
		errs = append(errs, fmt.Errorf("commitlog: IndexIntervalBytes %d is negative", o.IndexIntervalBytes))
	}
	return errors.Join(errs...)
}

// Log is a set of topics, each with partitions. It is safe for concurrent
// use by any number of goroutines.
type Log struct {
	opts   Options
	fs     vfs.FS
	logger *slog.Logger
	now    func() time.Time

	mu     sync.RWMutex // guards topics; taken before any partition.mu
	topics map[string]*topic

	// truncationsMu has its own lock: recovery records cuts while
	// CreateTopic holds mu.
	truncationsMu sync.Mutex
	truncations   []Truncation

	checkpoints *checkpointStore
	stop        chan struct{} // closed by Close: flushers, ticker and retention exit
	closing     atomic.Bool
	wg          sync.WaitGroup
	closeOnce   sync.Once
	closeErr    error
}

type topic struct {
	name       string
	partitions []*partition
	sticky     atomic.Uint32 // round-robin partition for keyless appends
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name       string
	Partitions []PartitionInfo
}

// PartitionInfo describes a partition. EndOffset is the next offset to be
// written (readable offsets are [StartOffset, EndOffset)).
type PartitionInfo struct {
	Partition   int32
	StartOffset int64
	EndOffset   int64
	Segments    int
	Bytes       int64
}

type topicMeta struct {
	Partitions int `json:"partitions"`
}

// Options returns the options the log runs with, defaults filled in.
func (l *Log) Options() Options { return l.opts }

func (l *Log) topicsDir() string { return filepath.Join(l.opts.Dir, "topics") }

// Open opens (creating if needed) the log in opts.Dir, discovers existing
// topics and recovers every partition: it validates the tail, truncates a
// torn last batch (logging and recording what was cut, see Truncations) and
// rebuilds a missing or corrupt index. It starts the background fsync
// (interval policy) and retention goroutines, which Close stops and waits for.
func Open(opts Options) (*Log, error) {
	opts.ensureDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	l := &Log{
		opts: opts, fs: opts.FS, logger: opts.Logger, now: opts.Now,
		topics: map[string]*topic{},
		stop:   make(chan struct{}),
	}
	if err := l.fs.MkdirAll(l.topicsDir(), 0o755); err != nil {
		return nil, fmt.Errorf("commitlog: open %s: %w", opts.Dir, err)
	}
	if err := l.fs.SyncDir(opts.Dir); err != nil {
		return nil, fmt.Errorf("commitlog: open %s: %w", opts.Dir, err)
	}
	names, err := l.fs.List(l.topicsDir())
	if err != nil {
		return nil, fmt.Errorf("commitlog: open %s: %w", opts.Dir, err)
	}
	for _, name := range names {
		t, err := l.openTopic(name)
		if errors.Is(err, fs.ErrNotExist) {
			// CreateTopic crashed before writing the metadata: nothing in
			// the topic was ever acknowledged.
			l.logger.Warn("ignoring topic directory without metadata", "topic", name)
			continue
		}
		if err != nil {
			l.closePartitions()
			return nil, fmt.Errorf("commitlog: open topic %s: %w", name, err)
		}
		l.topics[name] = t
	}
	if l.checkpoints, err = openCheckpoints(l.fs, filepath.Join(opts.Dir, "checkpoints")); err != nil {
		l.closePartitions()
		return nil, err
	}
	for _, t := range l.topics {
		l.startFlushers(t)
	}
	if opts.Fsync == FsyncInterval {
		l.wg.Go(l.runSyncer)
	}
	if opts.Retention > 0 || opts.RetentionBytes > 0 {
		l.wg.Go(l.runRetention)
	}
	return l, nil
}

func (l *Log) openTopic(name string) (*topic, error) {
	dir := filepath.Join(l.topicsDir(), name)
	raw, err := readWhole(l.fs, filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	var meta topicMeta
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Partitions <= 0 {
		return nil, fmt.Errorf("commitlog: %w: topic metadata %q", event.ErrCorruption, raw)
	}
	t := &topic{name: name}
	for i := range meta.Partitions {
		p, err := l.openPartition(name, int32(i), filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			for _, p := range t.partitions {
				p.closeFiles()
			}
			return nil, err
		}
		t.partitions = append(t.partitions, p)
	}
	return t, nil
}

func (l *Log) startFlushers(t *topic) {
	for _, p := range t.partitions {
		l.wg.Go(func() { p.runFlusher(l.stop) })
	}
}

func (l *Log) recordTruncation(t Truncation) {
	l.truncationsMu.Lock()
	defer l.truncationsMu.Unlock()
	l.truncations = append(l.truncations, t)
}

// Truncations returns what recovery cut when this Log was opened.
func (l *Log) Truncations() []Truncation {
	l.truncationsMu.Lock()
	defer l.truncationsMu.Unlock()
	return slices.Clone(l.truncations)
}

// Close flushes pending appends, fsyncs everything, stops the background
// goroutines and closes the files. It is idempotent; calls after the first
// return the first result. Appends racing with Close either complete or
// fail with ErrClosed.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.closing.Store(true)
		l.mu.RLock()
		for _, t := range l.topics {
			for _, p := range t.partitions {
				p.mu.Lock()
				p.closed = true
				p.mu.Unlock()
			}
		}
		l.mu.RUnlock()
		close(l.stop)
		l.wg.Wait()
		l.closeErr = errors.Join(l.closePartitions(), l.checkpoints.close())
	})
	return l.closeErr
}

func (l *Log) closePartitions() error {
	var errs []error
	for _, t := range l.topics {
		for _, p := range t.partitions {
			errs = append(errs, p.closeFiles())
		}
	}
	return errors.Join(errs...)
}

func (l *Log) runSyncer() {
	ticker := time.NewTicker(l.opts.FsyncInterval)
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ticker.C:
			for _, p := range l.allPartitions() {
				if err := p.syncIfDirty(); err != nil {
					l.logger.Error("fsync failed; the partition refuses appends", "topic", p.topic, "partition", p.id, "err", err)
				}
			}
		}
	}
}

func (l *Log) runRetention() {
	ticker := time.NewTicker(l.opts.RetentionCheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ticker.C:
			l.enforceRetention()
		}
	}
}

// enforceRetention runs retention on every partition once.
func (l *Log) enforceRetention() {
	now := l.now()
	for _, p := range l.allPartitions() {
		if err := p.enforceRetention(now); err != nil {
			l.logger.Error("retention failed", "topic", p.topic, "partition", p.id, "err", err)
		}
	}
}

func (l *Log) allPartitions() []*partition {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []*partition
	for _, t := range l.topics {
		out = append(out, t.partitions...)
	}
	return out
}

// validTopicName applies Kafka's rules, which also make the name a safe
// directory name: 1-249 of [a-zA-Z0-9._-], not "." or "..".
func validTopicName(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// CreateTopic creates a topic with n partitions, durably. It is idempotent
// when the topic exists with n partitions and returns an error wrapping
// ErrTopicExists when it exists with another count.
func (l *Log) CreateTopic(name string, partitions int) error {
	if !validTopicName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	if partitions <= 0 {
		return fmt.Errorf("commitlog: create topic %s: %d partitions", name, partitions)
	}
	if l.closing.Load() {
		return ErrClosed
	}
	// Topic creation is rare; holding l.mu over its I/O keeps two creators
	// of one name from racing, at the cost of briefly stalling lookups.
	l.mu.Lock()
	defer l.mu.Unlock()
	// Checked again under the lock: Close marks partitions closed under
	// l.mu, so a topic created after that point would never be closed.
	if l.closing.Load() {
		return ErrClosed
	}
	if t, ok := l.topics[name]; ok {
		if len(t.partitions) != partitions {
			return fmt.Errorf("%w: %s has %d partitions, not %d", ErrTopicExists, name, len(t.partitions), partitions)
		}
		return nil
	}
	dir := filepath.Join(l.topicsDir(), name)
	t := &topic{name: name}
	for i := range partitions {
		p, err := l.openPartition(name, int32(i), filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			for _, p := range t.partitions {
				p.closeFiles()
			}
			return fmt.Errorf("commitlog: create topic %s: %w", name, err)
		}
		t.partitions = append(t.partitions, p)
	}
	raw, _ := json.Marshal(topicMeta{Partitions: partitions})
	if err := writeFileAtomic(l.fs, dir, "meta.json", raw); err != nil {
		return fmt.Errorf("commitlog: create topic %s: %w", name, err)
	}
	if err := l.fs.SyncDir(l.topicsDir()); err != nil {
		return fmt.Errorf("commitlog: create topic %s: %w", name, err)
	}
	l.topics[name] = t
	l.startFlushers(t)
	return nil
}

// writeFileAtomic writes dir/name through a temporary file, fsync, rename
// and a directory fsync, so a crash leaves the old or the new contents.
func writeFileAtomic(fsys vfs.FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := fsys.Create(tmp)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

// Topics lists the topics, sorted by name.
func (l *Log) Topics() []TopicInfo {
	l.mu.RLock()
	names := make([]string, 0, len(l.topics))
	for name := range l.topics {
		names = append(names, name)
	}
	l.mu.RUnlock()
	slices.Sort(names)
	out := make([]TopicInfo, 0, len(names))
	for _, name := range names {
		if info, err := l.Topic(name); err == nil {
			out = append(out, info)
		}
	}
	return out
}

// Topic describes one topic; the error wraps ErrUnknownTopic when it does
// not exist.
func (l *Log) Topic(name string) (TopicInfo, error) {
	t, err := l.topic(name)
	if err != nil {
		return TopicInfo{}, err
	}
	info := TopicInfo{Name: name, Partitions: make([]PartitionInfo, len(t.partitions))}
	for i, p := range t.partitions {
		p.mu.Lock()
		pi := PartitionInfo{Partition: p.id, StartOffset: p.segments[0].base, EndOffset: p.visible, Segments: len(p.segments)}
		for _, s := range p.segments {
			pi.Bytes += s.readable
		}
		p.mu.Unlock()
		info.Partitions[i] = pi
	}
	return info, nil
}

func (l *Log) topic(name string) (*topic, error) {
	l.mu.RLock()
	t, ok := l.topics[name]
	l.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	return t, nil
}

// partition finds a partition for a data operation; after Close it fails
// with ErrClosed rather than with whatever a closed file would say.
func (l *Log) partition(name string, id int32) (*partition, error) {
	if l.closing.Load() {
		return nil, ErrClosed
	}
	t, err := l.topic(name)
	if err != nil {
		return nil, err
	}
	if id < 0 || int(id) >= len(t.partitions) {
		return nil, fmt.Errorf("%w: %s/%d", ErrUnknownPartition, name, id)
	}
	return t.partitions[id], nil
}
