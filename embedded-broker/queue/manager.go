package queue

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/internal/vfs"
)

const (
	journalSuffix = ".q"
	tmpSuffix     = ".tmp"
	// DefaultFsyncInterval is the flusher's period when Options.FsyncInterval is 0.
	DefaultFsyncInterval = 10 * time.Millisecond
)

// Options configures a Manager.
type Options struct {
	Dir           string
	FS            vfs.FS // nil = the OS file system
	Fsync         string // "always" (default) | "interval" | "never", as the backbone
	FsyncInterval time.Duration
	Logger        *slog.Logger
	// Now is the clock for timestamps and deadlines (nil = time.Now). Waits
	// use the runtime's timers, so a fake Now only suits tests that never
	// long-poll; synctest is the way to test time.
	Now func() time.Time
}

// Manager owns the queues stored in one directory. Its methods are safe for
// concurrent use.
type Manager struct {
	dir        string
	fs         vfs.FS
	log        *slog.Logger
	now        func() time.Time
	syncAlways bool
	syncPeriod bool
	interval   time.Duration
	// compactMinBytes is compactMinBytes, lowered by tests.
	compactMinBytes int64

	// mu serializes Create, Delete and Close. Readers use the copy-on-write
	// map in queues, so the hot paths (Get, and the dead-letter check under
	// a queue's lock) take no manager lock. Lock order: mu, then a queue's
	// flushMu, then its mu.
	mu     sync.Mutex
	queues atomic.Pointer[map[string]*Queue]
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open loads every queue in opts.Dir with its messages and starts the
// background flusher (owned by the Manager; Close stops it). A journal with
// a torn tail (a crash during an append) is truncated to its last whole
// record, and the loss is logged; a damaged record followed by more data
// fails Open with an error matching ErrCorrupt and event.ErrCorruption.
func Open(opts Options) (*Manager, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("open queues: %w: Dir is required", ErrInvalidParameter)
	}
	m := &Manager{dir: opts.Dir, fs: opts.FS, log: opts.Logger, now: opts.Now, interval: opts.FsyncInterval, stop: make(chan struct{}), compactMinBytes: compactMinBytes}
	if m.fs == nil {
		m.fs = vfs.Default
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.interval <= 0 {
		m.interval = DefaultFsyncInterval
	}
	switch opts.Fsync {
	case "", "always":
		m.syncAlways = true
	case "interval":
		m.syncPeriod = true
	case "never":
	default:
		return nil, fmt.Errorf("open queues: %w: fsync %q is not always, interval or never", ErrInvalidParameter, opts.Fsync)
	}
	queues, err := m.loadAll()
	if err != nil {
		return nil, err
	}
	m.queues.Store(&queues)
	m.wg.Go(m.flusher)
	return m, nil
}

func (m *Manager) loadAll() (map[string]*Queue, error) {
	if err := m.fs.MkdirAll(m.dir, 0o755); err != nil {
		return nil, fmt.Errorf("open queues: %w", err)
	}
	names, err := m.fs.List(m.dir)
	if err != nil {
		return nil, fmt.Errorf("open queues: %w", err)
	}
	queues := map[string]*Queue{}
	for _, entry := range names {
		path := filepath.Join(m.dir, entry)
		if strings.HasSuffix(entry, tmpSuffix) {
			// An unfinished Create or compaction; the real file is intact.
			if err := m.fs.Remove(path); err != nil {
				return nil, fmt.Errorf("open queues: %w", err)
			}
			continue
		}
		name, ok := strings.CutSuffix(entry, journalSuffix)
		if !ok || validateName(name) != nil {
			continue
		}
		q, err := m.loadQueue(name)
		if err != nil {
			closeAll(queues)
			return nil, err
		}
		queues[name] = q
	}
	return queues, nil
}

// loadQueue replays one journal and rewrites it as a fresh snapshot with a
// new epoch, which also drops any torn tail.
func (m *Manager) loadQueue(name string) (*Queue, error) {
	path := filepath.Join(m.dir, name+journalSuffix)
	data, err := m.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("open queue %s: %w", name, err)
	}
	r, err := m.replay(name, data)
	if err != nil {
		return nil, err
	}
	if r.tornBytes > 0 {
		m.log.Warn("queue journal had a torn tail; dropped it", "queue", name, "bytes", r.tornBytes)
	}
	if r.meta.Config.Name != name {
		return nil, fmt.Errorf("open queue %s: %w: journal names queue %q", name, ErrCorrupt, r.meta.Config.Name)
	}
	q := newQueue(m, r.meta)
	q.mu.Lock()
	q.restore(r, m.now())
	q.mu.Unlock()
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	if err := q.compactLocked(); err != nil {
		return nil, fmt.Errorf("open queue %s: %w", name, err)
	}
	return q, nil
}

func (m *Manager) readFile(path string) ([]byte, error) {
	f, err := m.fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data := make([]byte, info.Size())
	// ReaderAt may report io.EOF along with a full read.
	if n, err := f.ReadAt(data, 0); err != nil && (n != len(data) || !errors.Is(err, io.EOF)) {
		return nil, err
	}
	return data, nil
}

// flusher runs until Close: it expires messages whose TTL ended, deletes
// idle temporary queues, writes unwaited records, fsyncs under the
// interval policy and compacts journals.
func (m *Manager) flusher() {
	ticker := time.NewTicker(m.interval)
	defer ticker.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-ticker.C:
		}
		now := m.now()
		for name, q := range *m.queues.Load() {
			q.sweep(now)
			if q.idle(now) {
				m.deleteIdle(name, q)
				continue
			}
			q.background(m.syncPeriod)
		}
	}
}

// deleteIdle deletes a temporary queue nobody used for its IdleTimeout.
func (m *Manager) deleteIdle(name string, q *Queue) {
	err := m.deleteIf(name, func(cur *Queue) bool { return cur == q && q.idle(m.now()) })
	switch {
	case err == nil:
		m.log.Info("deleted an idle temporary queue", "queue", name, "idle_timeout", q.Config().IdleTimeout)
	case !errors.Is(err, ErrClosed) && !errors.Is(err, errNotDeleted):
		m.log.Warn("deleting an idle temporary queue failed", "queue", name, "error", err)
	}
}

// Close stops the flusher, writes and fsyncs every journal (except under
// the never policy, where it only writes) and closes the files. Blocked
// receivers return ErrClosed. Close is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	// The flusher may be deleting an idle queue, which takes mu: wait for
	// it without holding mu. Create and Delete see closed from now on.
	m.mu.Unlock()
	m.wg.Wait()
	return closeAll(*m.queues.Load())
}

func closeAll(queues map[string]*Queue) error {
	var errs []error
	for _, q := range queues {
		q.close(ErrClosed)
		q.flushMu.Lock()
		if q.file != nil {
			if err := q.writePendingLocked(q.m.syncAlways || q.m.syncPeriod); err != nil {
				errs = append(errs, err)
			}
			errs = append(errs, q.file.Close())
			q.file = nil
		}
		q.flushMu.Unlock()
	}
	return errors.Join(errs...)
}

// Create creates a queue durably and returns it. If a queue of that name
// exists with the same attributes (after defaults) it is returned; with
// different ones the error wraps ErrQueueExists.
func (m *Manager) Create(cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("create queue: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if q := (*m.queues.Load())[cfg.Name]; q != nil {
		if q.Config() != cfg {
			return nil, fmt.Errorf("create queue %s: %w", cfg.Name, ErrQueueExists)
		}
		return q, nil
	}
	now := m.now()
	q := newQueue(m, queueMeta{Config: cfg, QueueID: m.random64(), CreatedAt: now, ModifiedAt: now})
	q.epoch = 1
	q.flushMu.Lock()
	err := q.compactLocked() // writes config and epoch, fsynced, renamed into place
	q.flushMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create queue %s: %w", cfg.Name, err)
	}
	m.storeQueues(func(qs map[string]*Queue) { qs[cfg.Name] = q })
	return q, nil
}

func (m *Manager) storeQueues(edit func(map[string]*Queue)) {
	next := cloneQueues(*m.queues.Load())
	edit(next)
	m.queues.Store(&next)
}

func cloneQueues(in map[string]*Queue) map[string]*Queue {
	out := make(map[string]*Queue, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	return out
}

// Get returns the named queue or an error wrapping ErrNoSuchQueue.
func (m *Manager) Get(name string) (*Queue, error) {
	if q := (*m.queues.Load())[name]; q != nil {
		return q, nil
	}
	return nil, fmt.Errorf("queue %q: %w", name, ErrNoSuchQueue)
}

func (m *Manager) hasQueue(name string) bool { return (*m.queues.Load())[name] != nil }

// Delete removes a queue and its journal. Receivers blocked on it return an
// error wrapping ErrNoSuchQueue.
func (m *Manager) Delete(name string) error {
	return m.deleteIf(name, nil)
}

// errNotDeleted: deleteIf's condition no longer held.
var errNotDeleted = errors.New("queue: not deleted")

// deleteIf deletes name when ok (nil = always) holds for it under mu.
func (m *Manager) deleteIf(name string, ok func(*Queue) bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	q := (*m.queues.Load())[name]
	if q == nil {
		return fmt.Errorf("delete queue %q: %w", name, ErrNoSuchQueue)
	}
	if ok != nil && !ok(q) {
		return errNotDeleted
	}
	m.storeQueues(func(qs map[string]*Queue) { delete(qs, name) })
	q.close(fmt.Errorf("queue %q: %w", name, ErrNoSuchQueue))
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	if q.file != nil {
		_ = q.file.Close() // the file is removed next; its contents no longer matter
		q.file = nil
	}
	if err := m.fs.Remove(q.path()); err != nil {
		return fmt.Errorf("delete queue %q: %w", name, err)
	}
	if err := m.fs.SyncDir(m.dir); err != nil {
		return fmt.Errorf("delete queue %q: %w", name, err)
	}
	return nil
}

// List returns the names of the queues starting with prefix, sorted.
func (m *Manager) List(prefix string) []string {
	var names []string
	for name := range *m.queues.Load() {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// DeadLetterSources returns the queues whose DeadLetterQueue is dlq, sorted.
func (m *Manager) DeadLetterSources(dlq string) []string {
	var names []string
	for name, q := range *m.queues.Load() {
		if q.Config().DeadLetterQueue == dlq {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func (m *Manager) random64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return binary.LittleEndian.Uint64(b[:])
}

func (m *Manager) encodeMeta(meta queueMeta) []byte {
	data, err := json.Marshal(meta)
	if err != nil {
		panic(fmt.Sprintf("queue: encoding meta of %s: %v", meta.Config.Name, err)) // plain struct: cannot fail
	}
	return data
}

func decodeMeta(data []byte) (queueMeta, error) {
	var meta queueMeta
	if err := json.Unmarshal(data, &meta); err != nil {
		return queueMeta{}, fmt.Errorf("%w: config record: %v", ErrCorrupt, err)
	}
	return meta, nil
}
