package amqpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/bridgeio/bridge/internal/atomicfile"
)

// storeFile is the runtime topology file under Options.Dir.
const storeFile = "topology.json"

// storedTopology is what survives a restart of the exchanges, queues and
// bindings declared over AMQP. Queues and their messages live in the queue
// manager; this file keeps what the queue manager does not know: which
// queues were declared over AMQP and with which flags (so that transient
// and exclusive ones are removed at startup), the runtime exchanges, and
// every runtime binding (also those on exchanges of the config file).
type storedTopology struct {
	Version   int              `json:"version"`
	Exchanges []storedExchange `json:"exchanges"`
	Queues    []storedQueue    `json:"queues"`
	Bindings  []storedBinding  `json:"bindings"`
}

type storedExchange struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Internal   bool   `json:"internal,omitempty"`
}

type storedQueue struct {
	Name       string `json:"name"`
	Durable    bool   `json:"durable"`
	Exclusive  bool   `json:"exclusive,omitempty"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
}

type storedBinding struct {
	Exchange string            `json:"exchange"`
	Queue    string            `json:"queue"`
	Key      string            `json:"key"`
	Headers  map[string]string `json:"headers,omitempty"`
	Match    string            `json:"match,omitempty"`
}

func (b storedBinding) equal(o storedBinding) bool {
	return b.Exchange == o.Exchange && b.Queue == o.Queue && b.Key == o.Key && b.Match == o.Match && mapsEqual(b.Headers, o.Headers)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// loadTopology reads the file; a missing file is an empty topology.
func loadTopology(dir string) (storedTopology, error) {
	data, err := os.ReadFile(filepath.Join(dir, storeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return storedTopology{Version: 1}, nil
	}
	if err != nil {
		return storedTopology{}, fmt.Errorf("read AMQP topology: %w", err)
	}
	var t storedTopology
	if err := json.Unmarshal(data, &t); err != nil {
		return storedTopology{}, fmt.Errorf("read AMQP topology %s: %w", filepath.Join(dir, storeFile), err)
	}
	if t.Version != 1 {
		return storedTopology{}, fmt.Errorf("read AMQP topology: version %d, want 1", t.Version)
	}
	return t, nil
}

// saveTopology replaces the file durably: write a temporary file, fsync
// it, rename it over the old one, fsync the directory. A crash leaves
// either the old or the new file, never a mix.
func saveTopology(dir string, t storedTopology) error {
	t.Version = 1
	slices.SortFunc(t.Exchanges, func(a, b storedExchange) int { return cmpString(a.Name, b.Name) })
	slices.SortFunc(t.Queues, func(a, b storedQueue) int { return cmpString(a.Name, b.Name) })
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("encode AMQP topology: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save AMQP topology: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, storeFile), data, 0o644); err != nil {
		return fmt.Errorf("save AMQP topology: %w", err)
	}
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
