package vfs

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemFS is an in-memory FS that records what has been synced, so that
// CrashClone can produce the state a power cut would leave. The zero value is
// not usable; call NewMem.
type MemFS struct {
	mu sync.Mutex
	// dirs maps a cleaned directory path to its current entries, and
	// durable to the entries as of its last SyncDir. Directories themselves
	// are always durable (see the package doc).
	dirs    map[string]map[string]*memNode
	durable map[string]map[string]*memNode
}

// memNode is an inode: a name points at one, a rename moves the pointer.
type memNode struct {
	mu      sync.Mutex
	data    []byte
	synced  []byte // contents at the last Sync
	modTime time.Time
}

// NewMem returns an empty MemFS with a root directory "/" (and ".").
func NewMem() *MemFS {
	m := &MemFS{
		dirs:    map[string]map[string]*memNode{},
		durable: map[string]map[string]*memNode{},
	}
	m.dirs[string(filepath.Separator)] = map[string]*memNode{}
	m.dirs["."] = map[string]*memNode{}
	return m
}

// CrashOptions says how much unsynced state survives a CrashClone.
type CrashOptions struct {
	// UnsyncedDataPercent is the chance, in percent, that each file keeps
	// some of its unsynced tail (a random-length prefix of it) and that each
	// directory keeps its unsynced entry changes. 0 drops everything that
	// was not synced; 100 keeps a random prefix of every tail.
	UnsyncedDataPercent int
	// KeepAllUnsynced keeps every unsynced byte and entry: a process crash
	// (kill -9) rather than a power cut.
	KeepAllUnsynced bool
	// Seed makes the choices reproducible.
	Seed uint64
}

// CrashClone returns an independent MemFS holding what would be on disk
// after a crash at this instant. Files open in m are unaffected and do not
// see the clone.
func (m *MemFS) CrashClone(opts CrashOptions) *MemFS {
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	keep := func() bool {
		return opts.KeepAllUnsynced || rng.IntN(100) < opts.UnsyncedDataPercent
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clone := NewMem()
	cloned := map[*memNode]*memNode{}
	cloneNode := func(n *memNode) *memNode {
		if c, ok := cloned[n]; ok {
			return c
		}
		n.mu.Lock()
		data := crashData(n.data, n.synced, opts.KeepAllUnsynced, keep, rng)
		c := &memNode{data: data, synced: slices.Clone(data), modTime: n.modTime}
		n.mu.Unlock()
		cloned[n] = c
		return c
	}
	for dir, entries := range m.dirs {
		src := m.durable[dir]
		if keep() {
			src = entries
		}
		out := map[string]*memNode{}
		for name, n := range src {
			if n == nil { // a subdirectory marker
				if _, ok := m.dirs[filepath.Join(dir, name)]; ok {
					out[name] = nil
				}
				continue
			}
			out[name] = cloneNode(n)
		}
		clone.dirs[dir] = out
		clone.durable[dir] = maps(out)
	}
	return clone
}

// crashData picks what survives of one file: the synced contents, plus a
// random prefix of the unsynced tail when the current data extends them.
// When the file was truncated or overwritten since the sync, it is either
// the old synced contents or the new ones, never a mix.
func crashData(data, synced []byte, keepAll bool, keep func() bool, rng *rand.Rand) []byte {
	if keepAll {
		return slices.Clone(data)
	}
	if len(data) >= len(synced) && string(data[:len(synced)]) == string(synced) {
		tail := len(data) - len(synced)
		n := 0
		if tail > 0 && keep() {
			n = rng.IntN(tail + 1)
		}
		return slices.Clone(data[:len(synced)+n])
	}
	if keep() {
		return slices.Clone(data)
	}
	return slices.Clone(synced)
}

func maps(in map[string]*memNode) map[string]*memNode {
	out := make(map[string]*memNode, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func split(name string) (dir, base string) {
	name = filepath.Clean(name)
	return filepath.Dir(name), filepath.Base(name)
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// lookupLocked finds the node of a file; m.mu must be held.
func (m *MemFS) lookupLocked(op, name string) (*memNode, error) {
	dir, base := split(name)
	entries, ok := m.dirs[dir]
	if !ok {
		return nil, pathErr(op, name, fs.ErrNotExist)
	}
	n, ok := entries[base]
	if !ok {
		return nil, pathErr(op, name, fs.ErrNotExist)
	}
	if n == nil {
		return nil, pathErr(op, name, errors.New("is a directory"))
	}
	return n, nil
}

func (m *MemFS) createLocked(name string, truncate bool) (*memNode, error) {
	dir, base := split(name)
	entries, ok := m.dirs[dir]
	if !ok {
		return nil, pathErr("open", name, fs.ErrNotExist)
	}
	n, ok := entries[base]
	if ok && n == nil {
		return nil, pathErr("open", name, errors.New("is a directory"))
	}
	if !ok {
		n = &memNode{modTime: time.Now()}
		entries[base] = n
	}
	if truncate {
		n.mu.Lock()
		n.data = nil
		n.mu.Unlock()
	}
	return n, nil
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.createLocked(name, true)
	if err != nil {
		return nil, err
	}
	return &memFile{node: n, name: name, writable: true}, nil
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("open", name)
	if err != nil {
		return nil, err
	}
	return &memFile{node: n, name: name}, nil
}

// OpenReadWrite implements FS.
func (m *MemFS) OpenReadWrite(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.createLocked(name, false)
	if err != nil {
		return nil, err
	}
	return &memFile{node: n, name: name, writable: true}, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base := split(name)
	entries, ok := m.dirs[dir]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	n, ok := entries[base]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n == nil {
		full := filepath.Clean(name)
		if len(m.dirs[full]) > 0 {
			return pathErr("remove", name, errors.New("directory not empty"))
		}
		delete(m.dirs, full)
		delete(m.durable, full)
	}
	delete(entries, base)
	return nil
}

// RemoveAll implements FS.
func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	full := filepath.Clean(name)
	prefix := full + string(filepath.Separator)
	for d := range m.dirs {
		if d == full || strings.HasPrefix(d, prefix) {
			delete(m.dirs, d)
			delete(m.durable, d)
		}
	}
	dir, base := split(full)
	if entries, ok := m.dirs[dir]; ok {
		delete(entries, base)
	}
	return nil
}

// Rename implements FS. Renaming directories is not supported.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("rename", oldname)
	if err != nil {
		return err
	}
	newDir, newBase := split(newname)
	entries, ok := m.dirs[newDir]
	if !ok {
		return pathErr("rename", newname, fs.ErrNotExist)
	}
	oldDir, oldBase := split(oldname)
	delete(m.dirs[oldDir], oldBase)
	entries[newBase] = n
	return nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var missing []string // deepest first
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, ok := m.dirs[d]; ok {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		parent, base := split(d)
		if pe, ok := m.dirs[parent]; ok {
			if n, exists := pe[base]; exists && n != nil {
				return pathErr("mkdir", d, errors.New("not a directory"))
			}
			pe[base] = nil
			// Directories are durable at once (package doc).
			if m.durable[parent] == nil {
				m.durable[parent] = map[string]*memNode{}
			}
			m.durable[parent][base] = nil
		}
		m.dirs[d] = map[string]*memNode{}
		m.durable[d] = map[string]*memNode{}
	}
	return nil
}

// List implements FS.
func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	entries, ok := m.dirs[filepath.Clean(dir)]
	if !ok {
		return nil, pathErr("open", dir, fs.ErrNotExist)
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	full := filepath.Clean(name)
	if _, ok := m.dirs[full]; ok {
		return memInfo{name: filepath.Base(full), dir: true}, nil
	}
	n, err := m.lookupLocked("stat", name)
	if err != nil {
		return nil, err
	}
	return n.info(filepath.Base(full)), nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = filepath.Clean(dir)
	entries, ok := m.dirs[dir]
	if !ok {
		return pathErr("sync", dir, fs.ErrNotExist)
	}
	m.durable[dir] = maps(entries)
	return nil
}

func (n *memNode) info(name string) memInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return memInfo{name: name, size: int64(len(n.data)), modTime: n.modTime}
}

// memFile is an open handle; its position serves Write only.
type memFile struct {
	node     *memNode
	name     string
	writable bool
	mu       sync.Mutex
	pos      int64
	closed   bool
}

var errClosed = errors.New("file already closed")

func (f *memFile) check(op string, write bool) error {
	if f.closed {
		return pathErr(op, f.name, errClosed)
	}
	if write && !f.writable {
		return pathErr(op, f.name, errors.New("bad file descriptor"))
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	err := f.check("read", false)
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, errors.New("negative offset"))
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	n, err := f.node.writeAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	err := f.check("write", true)
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("write", f.name, errors.New("negative offset"))
	}
	return f.node.writeAt(p, off)
}

func (n *memNode) writeAt(p []byte, off int64) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	end := off + int64(len(p))
	if end > int64(len(n.data)) {
		if end > int64(cap(n.data)) {
			grown := make([]byte, end, max(end, 2*int64(cap(n.data))))
			copy(grown, n.data)
			n.data = grown
		} else {
			n.data = n.data[:end]
		}
	}
	copy(n.data[off:], p)
	n.modTime = time.Now()
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.mu.Lock()
	err := f.check("sync", false)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.node.mu.Lock()
	// Reuse the synced buffer's capacity: syncs are frequent in tests.
	f.node.synced = append(f.node.synced[:0], f.node.data...)
	f.node.mu.Unlock()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.mu.Lock()
	err := f.check("truncate", true)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, errors.New("negative size"))
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	if size <= int64(len(f.node.data)) {
		// Copy so a later extension never resurrects the cut bytes.
		f.node.data = slices.Clone(f.node.data[:size])
	} else {
		f.node.data = append(f.node.data, make([]byte, size-int64(len(f.node.data)))...)
	}
	return nil
}

func (f *memFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, errClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.mu.Lock()
	err := f.check("stat", false)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.node.info(filepath.Base(f.name)), nil
}

type memInfo struct {
	name    string
	size    int64
	dir     bool
	modTime time.Time
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return i.modTime }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
