// Package e2e drives the real bridge binary: it builds it once, runs it
// with config files on temporary data dirs, talks to it over HTTP and the
// SQS API with real clients, and kills it with SIGKILL to prove that nothing
// acknowledged is lost.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binary string // built once by TestMain, without the race detector
	binDir string

	raceOnce   sync.Once
	raceBin    string
	raceBinErr error
)

// raceBinary returns bridge built with the race detector, built on first
// use. Tests that exercise the concurrent paths of a whole process (many
// partitions, routes and queues at once) run it, so a data race between
// packages fails the test even where no package test reaches it.
func raceBinary(t *testing.T) string {
	t.Helper()
	raceOnce.Do(func() {
		raceBin = filepath.Join(binDir, "bridge-race")
		build := exec.Command("go", "build", "-race", "-o", raceBin, "../cmd/bridge")
		out, err := build.CombinedOutput()
		if err != nil {
			raceBinErr = fmt.Errorf("go build -race: %v\n%s", err, out)
		}
	})
	if raceBinErr != nil {
		t.Fatal(raceBinErr)
	}
	return raceBin
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bridge-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	binary = filepath.Join(dir, "bridge")
	// The main binary is built without the race detector: most of these
	// tests are about processes, crashes and throughput. raceBinary serves
	// the ones that hunt races across packages.
	build := exec.Command("go", "build", "-o", binary, "../cmd/bridge")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build bridge:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// instance is one running bridge process.
type instance struct {
	t       *testing.T
	cmd     *exec.Cmd
	httpURL string
	sqsURL  string
	cfgPath string
	dataDir string
	stderr  *lockedBuffer
	done    chan error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeConfig writes a config whose ${HTTP}, ${SQS} and ${DATA} are filled in.
func writeConfig(t *testing.T, dataDir, template string) (cfgPath, httpAddr, sqsAddr string) {
	t.Helper()
	httpAddr, sqsAddr = freeAddr(t), freeAddr(t)
	cfg := strings.NewReplacer("${HTTP}", httpAddr, "${SQS}", sqsAddr, "${DATA}", dataDir).Replace(template)
	cfgPath = filepath.Join(t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, httpAddr, sqsAddr
}

// start runs bridge on cfgPath and waits until /readyz answers 200.
func start(t *testing.T, cfgPath, httpAddr, sqsAddr, dataDir string) *instance {
	t.Helper()
	return startBinary(t, binary, cfgPath, httpAddr, sqsAddr, dataDir)
}

// startBinary is start with another build of bridge (see raceBinary). A
// data race reported by a race-enabled build fails the test.
func startBinary(t *testing.T, bin, cfgPath, httpAddr, sqsAddr, dataDir string) *instance {
	t.Helper()
	return startArgs(t, bin, cfgPath, httpAddr, sqsAddr, dataDir)
}

// startArgs is startBinary with extra flags for bridge run.
func startArgs(t *testing.T, bin, cfgPath, httpAddr, sqsAddr, dataDir string, flags ...string) *instance {
	t.Helper()
	in := &instance{t: t, cfgPath: cfgPath, dataDir: dataDir, httpURL: "http://" + httpAddr,
		sqsURL: "http://" + sqsAddr, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	in.cmd = exec.Command(bin, append([]string{"run", "-c", cfgPath}, flags...)...)
	in.cmd.Stderr = in.stderr
	in.cmd.Stdout = in.stderr
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	t.Cleanup(func() {
		if in.cmd.ProcessState == nil {
			_ = in.cmd.Process.Kill()
			<-in.done
		}
		if strings.Contains(in.stderr.String(), "WARNING: DATA RACE") {
			t.Error("the race detector reported a data race in bridge")
		}
		if t.Failed() {
			t.Logf("bridge stderr:\n%s", in.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-in.done:
			t.Fatalf("bridge exited during startup: %v\n%s", err, in.stderr.String())
		default:
		}
		resp, err := http.Get(in.httpURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return in
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("bridge not ready after 60s:\n%s", in.stderr.String())
	return nil
}

// kill sends SIGKILL and waits for the process to go.
func (in *instance) kill() {
	in.t.Helper()
	_ = in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.done
}

// stop sends SIGTERM and returns the exit code.
func (in *instance) stop() int {
	in.t.Helper()
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(60 * time.Second):
		in.t.Fatalf("bridge did not stop within 60s after SIGTERM:\n%s", in.stderr.String())
	}
	return in.cmd.ProcessState.ExitCode()
}

// postEvents posts a JSON body and decodes the answer.
func postEvents(ctx context.Context, url, topic string, body any) (int, map[string]any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	return postRaw(ctx, url, topic, b)
}

func postRaw(ctx context.Context, url, topic string, b []byte) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/topics/"+topic+"/events", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out, nil
}

type readEvent struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       *string           `json:"key"`
	Headers   map[string]string `json:"headers"`
	Value     json.RawMessage   `json:"value"`
}

// readAll reads every event of a topic, partition by partition.
func readAll(t *testing.T, url, topic string) []readEvent {
	t.Helper()
	var ti struct {
		Partitions []struct {
			Partition   int32 `json:"partition"`
			StartOffset int64 `json:"start_offset"`
			EndOffset   int64 `json:"end_offset"`
		} `json:"partitions"`
	}
	getJSON(t, url+"/v1/topics/"+topic, &ti)
	var all []readEvent
	for _, p := range ti.Partitions {
		next := p.StartOffset
		for next < p.EndOffset {
			var out struct {
				Events     []readEvent `json:"events"`
				NextOffset int64       `json:"next_offset"`
			}
			getJSON(t, fmt.Sprintf("%s/v1/topics/%s/events?partition=%d&offset=%d&limit=5000", url, topic, p.Partition, next), &out)
			if len(out.Events) == 0 {
				t.Fatalf("topic %s partition %d: no events at %d below end %d", topic, p.Partition, next, p.EndOffset)
			}
			for i := range out.Events {
				out.Events[i].Partition = p.Partition
			}
			all = append(all, out.Events...)
			next = out.NextOffset
		}
	}
	return all
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, data)
	}
}

// waitFor polls f until it returns nil or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("condition not met after %v: %v", timeout, err)
}
