// Package fauxqs runs fauxqs, an SQS emulator independent of bridge (the
// npm package fauxqs@1.9.2, which scripts/test.sh installs into
// .tools/fauxqs), for the tests and benchmarks that compare bridge's SQS
// code with another implementation of the protocol. See PEERS.md.
package fauxqs

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Version is the fauxqs release the tests are written against.
const Version = "1.9.2"

// Dir is where fauxqs is installed: $FAUXQS_DIR, else .tools/fauxqs at
// the root of the module (found from the working directory upwards).
func Dir() string {
	if d := os.Getenv("FAUXQS_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join(".tools", "fauxqs")
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".tools", "fauxqs")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(wd, ".tools", "fauxqs")
		}
	}
}

// ErrNotInstalled is returned by Start when Dir holds no fauxqs.
var ErrNotInstalled = errors.New("fauxqs is not installed")

// Start runs fauxqs on a free loopback port and returns its endpoint once
// /health answers, and a stop function that kills it.
func Start() (endpoint string, stop func(), err error) {
	dir := Dir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "fauxqs")); err != nil {
		return "", nil, fmt.Errorf("%w in %s (scripts/test.sh installs it: npm install --prefix %s fauxqs@%s)", ErrNotInstalled, dir, dir, Version)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command("node", "--input-type=module", "-e",
		`import {startFauxqs} from "fauxqs"; await startFauxqs({port: `+strconv.Itoa(port)+`, logger: false})`)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start fauxqs: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	for range 150 {
		if resp, err := http.Get(endpoint + "/health"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return endpoint, stop, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("fauxqs not healthy at %s after 15s", endpoint)
}

// StartTB is Start for one test or benchmark: it fails tb when fauxqs
// cannot start and stops it when tb ends.
func StartTB(tb testing.TB) string {
	tb.Helper()
	endpoint, stop, err := Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return endpoint
}
