// Package versions stores the configs a bridge process applied (issue 17,
// docs/reload.md): every applied config as DIR/NNNNNN.yaml, and a journal
// (DIR/journal.jsonl, one JSON record per line, fsynced per record) of what
// was done with them: started, applied, shadowed, canaried, promoted,
// rolled back, by whom (cli | sighup | api | start), and per changed route
// the offsets where the version took over.
package versions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bridgeio/bridge/internal/atomicfile"
)

// Actions of journal records.
const (
	ActionStart    = "start"    // bridge run started with this version
	ActionApply    = "apply"    // a reload made it live
	ActionShadow   = "shadow"   // evaluated beside the live version, not sent
	ActionCanary   = "canary"   // took a key-hash slice
	ActionPromote  = "promote"  // the shadow or canary version became live
	ActionAbort    = "abort"    // the shadow or canary was dropped
	ActionRollback = "rollback" // back to the previous live version
	ActionTakeover = "takeover" // late takeover offsets of an earlier record
)

var actions = []string{ActionStart, ActionApply, ActionShadow, ActionCanary, ActionPromote, ActionAbort, ActionRollback, ActionTakeover}

// Takeover is where one route changed hands (engine.Takeover's shape).
type Takeover struct {
	Pipeline string          `json:"pipeline"`
	Route    string          `json:"route"`
	Action   string          `json:"action"`
	Version  int64           `json:"version"`
	Offsets  map[int32]int64 `json:"offsets,omitempty"`
}

// Record is one journal line.
type Record struct {
	Version int64     `json:"version"`
	Action  string    `json:"action"`
	Time    time.Time `json:"time"`
	Hash    string    `json:"hash,omitempty"` // sha256 of the stored file
	Source  string    `json:"source,omitempty"`
	// Live is the live version after the record; From the one before.
	Live          int64      `json:"live"`
	From          int64      `json:"from,omitempty"`
	CanaryPercent int        `json:"canary_percent,omitempty"`
	Takeovers     []Takeover `json:"takeovers,omitempty"`
	Note          string     `json:"note,omitempty"`
}

// Version is one stored config.
type Version struct {
	Version int64     `json:"version"`
	Hash    string    `json:"hash"`
	Stored  time.Time `json:"stored"`
	Size    int64     `json:"size"`
	Live    bool      `json:"live"`
}

// Store is a directory of config versions and their journal. It is safe
// for concurrent use.
type Store struct {
	dir     string
	mu      sync.Mutex
	journal []Record
	f       *os.File
}

const journalName = "journal.jsonl"

// Open opens (creating) the store in dir and reads its journal. A torn
// last line (a crash while appending) is dropped; a damaged line before
// it is an error.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, journalName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	recs, valid, err := DecodeJournal(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if valid < len(data) {
		if err := os.Truncate(path, int64(valid)); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, journal: recs, f: f}, nil
}

// Close closes the journal.
func (s *Store) Close() error { return s.f.Close() }

// DecodeJournal parses journal lines. It returns the records and the
// length of data they cover: a last line without its newline is a torn
// write and is not covered. Any complete line that is not a valid record is
// an error naming its line.
func DecodeJournal(data []byte) ([]Record, int, error) {
	var out []Record
	pos := 0
	for line := 1; pos < len(data); line++ {
		nl := bytes.IndexByte(data[pos:], '\n')
		if nl < 0 {
			break // torn tail
		}
		text := data[pos : pos+nl]
		if len(bytes.TrimSpace(text)) > 0 {
			var r Record
			dec := json.NewDecoder(bytes.NewReader(text))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				return nil, 0, fmt.Errorf("journal line %d: %w", line, err)
			}
			if dec.More() {
				return nil, 0, fmt.Errorf("journal line %d: more than one record", line)
			}
			if err := r.check(); err != nil {
				return nil, 0, fmt.Errorf("journal line %d: %w", line, err)
			}
			out = append(out, r)
		}
		pos += nl + 1
	}
	return out, pos, nil
}

func (r *Record) check() error {
	if r.Version <= 0 || r.Live < 0 || r.From < 0 {
		return fmt.Errorf("version %d, live %d, from %d: versions are positive", r.Version, r.Live, r.From)
	}
	if !slices.Contains(actions, r.Action) {
		return fmt.Errorf("unknown action %q", r.Action)
	}
	if r.CanaryPercent < 0 || r.CanaryPercent > 100 {
		return fmt.Errorf("canary_percent %d is not in 0..100", r.CanaryPercent)
	}
	return nil
}

// Hash is the hash a stored config is known by.
func Hash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func (s *Store) file(v int64) string { return filepath.Join(s.dir, fmt.Sprintf("%06d.yaml", v)) }

// Versions lists the stored configs, oldest first; live marks the one
// the journal says runs.
func (s *Store) Versions() ([]Version, error) {
	live := s.Live()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list(live)
}

// list reads the stored versions; s.mu is held.
func (s *Store) list(live int64) ([]Version, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(name, 10, 64)
		if err != nil || v <= 0 {
			continue
		}
		data, err := os.ReadFile(s.file(v))
		if err != nil {
			return nil, err
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, Version{Version: v, Hash: Hash(data), Stored: info.ModTime().UTC(), Size: int64(len(data)), Live: v == live})
	}
	slices.SortFunc(out, func(a, b Version) int { return int(a.Version - b.Version) })
	return out, nil
}

// Config returns stored version v.
func (s *Store) Config(v int64) ([]byte, error) {
	data, err := os.ReadFile(s.file(v))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %d", ErrNoVersion, v)
	}
	return data, err
}

// ErrNoVersion is returned for a version that is not stored.
var ErrNoVersion = errors.New("versions: no such version")

// Save stores data as a new version unless it equals the newest stored
// one, which it returns with existing true.
func (s *Store) Save(data []byte) (v int64, existing bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.list(0)
	if err != nil {
		return 0, false, err
	}
	if n := len(vs); n > 0 {
		if vs[n-1].Hash == Hash(data) {
			return vs[n-1].Version, true, nil
		}
		v = vs[n-1].Version
	}
	v++
	if err := atomicfile.Write(s.file(v), data, 0o644); err != nil {
		return 0, false, err
	}
	return v, false, nil
}

// Append writes a journal record and fsyncs it.
func (s *Store) Append(r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	if err := r.check(); err != nil {
		return err
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.journal = append(s.journal, r)
	return nil
}

// Journal returns every record, oldest first.
func (s *Store) Journal() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal)
}

// Live is the live version the journal records last (0 when none).
func (s *Store) Live() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.journal) - 1; i >= 0; i-- {
		if s.journal[i].Action != ActionTakeover {
			return s.journal[i].Live
		}
	}
	return 0
}
