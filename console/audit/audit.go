// Package audit records who did what to bridge from the console: one JSON
// line per action (who, what, on which object, when, how many, the
// outcome), appended to a file and fsynced before the action is reported
// done. The newest entries are also kept in memory for the audit page.
//
// Guarantees: an entry Append returned nil for is on disk; entries are
// listed newest first; a torn last line (a crash mid-write) is skipped when
// the file is reopened, never misread. Safe for concurrent use.
package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Entry is one audited action.
type Entry struct {
	Time   time.Time `json:"time"`
	Who    string    `json:"who"`    // role and token fingerprint, e.g. "admin:3f2a9c1e"
	Action string    `json:"action"` // e.g. "redrive.queue", "redrive.deadletters", "replay"
	Target string    `json:"target"` // the queue, pipeline or dead-letter selection
	Count  int       `json:"count"`  // how many messages or partitions
	Detail string    `json:"detail,omitempty"`
	Result string    `json:"result"` // "started", "done", "failed: ...", "cancelled"
}

// Log is the audit log.
type Log struct {
	keep int

	memory bool // no file: entries live in memory only

	mu     sync.Mutex
	closed bool
	file   *os.File
	recent []Entry // oldest first, at most keep
}

// Open opens (or creates) the log at path and loads its newest keep
// entries. An empty path keeps entries in memory only (tests, no data dir).
func Open(path string, keep int) (*Log, error) {
	if keep <= 0 {
		keep = 10000
	}
	if path == "" {
		return &Log{keep: keep, memory: true}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l := &Log{keep: keep}
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e Entry
		if len(line) == 0 || json.Unmarshal(line, &e) != nil {
			continue // a torn tail is not an entry
		}
		l.remember(e)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if n := len(data); n > 0 && data[n-1] != '\n' {
		// Terminate a torn line so the next entry starts on its own line.
		if _, err := f.Write([]byte("\n")); err != nil {
			f.Close()
			return nil, err
		}
	}
	l.file = f
	return l, nil
}

func (l *Log) remember(e Entry) {
	l.recent = append(l.recent, e)
	if len(l.recent) > l.keep {
		l.recent = append(l.recent[:0], l.recent[len(l.recent)-l.keep:]...)
	}
}

// Append writes an entry and syncs it. A zero Time is set to now.
func (l *Log) Append(e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("audit: log closed")
	}
	if l.memory {
		l.remember(e)
		return nil
	}
	w := bufio.NewWriter(l.file)
	w.Write(line)
	w.WriteByte('\n')
	if err := w.Flush(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := l.file.Sync(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.remember(e)
	return nil
}

// List returns up to limit entries, newest first, skipping the first skip,
// and the number of entries kept in memory.
func (l *Log) List(skip, limit int) ([]Entry, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	total := len(l.recent)
	var out []Entry
	for i := total - 1 - skip; i >= 0 && len(out) < limit; i-- {
		out = append(out, l.recent[i])
	}
	return out, total
}

// Close closes the file; it is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}
