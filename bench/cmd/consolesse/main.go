// Command consolesse measures what an open console tab costs the bridge
// process while a load runs (issue 16: < 1% CPU per tab at 100k events/s).
//
// It starts `bridge run` (the binary given) on loopback with an HTTP
// ingest load at -rate events/s, and reads the bridge process's CPU time
// from /proc in alternating phases: no tab, -tabs overview tabs (the live
// page: SSE cards, topology and rates), no tab, -tabs live-tail tabs. The
// cost per tab is (CPU with tabs − mean CPU of the neighbouring no-tab
// phases) / tabs, in percent of one core. Loops are bounded by -phase.
//
//	go build -o /tmp/bridge ./cmd/bridge
//	cd bench && go run ./cmd/consolesse -bin /tmp/bridge -rate 100000 -tabs 10 -phase 20s
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bin := flag.String("bin", "", "bridge binary (go build -o ... ./cmd/bridge)")
	rate := flag.Int("rate", 100000, "target ingest rate, events/s")
	batch := flag.Int("batch", 1000, "events per POST")
	tabs := flag.Int("tabs", 10, "tabs per phase")
	phase := flag.Duration("phase", 20*time.Second, "length of each phase")
	rounds := flag.Int("rounds", 2, "rounds of the four phases")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "usage: consolesse -bin PATH [-rate N] [-tabs N] [-phase D]")
		os.Exit(2)
	}
	if err := run(*bin, *rate, *batch, *tabs, *phase, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "consolesse:", err)
		os.Exit(1)
	}
}

const config = `
data_dir: %s
http: { listen: "%s" }
backbone:
  fsync: never
  topics:
    load: { partitions: 4 }
    copy: { partitions: 4 }
pipelines:
  - name: load-copy
    from: load
    filter: 'body.n %% 100 == 0'
    routes:
      - to: { topic: copy }
`

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func run(bin string, rate, batch, tabs int, phase time.Duration, rounds int) error {
	dir, err := os.MkdirTemp("", "consolesse")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addr, err := freePort()
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(config, filepath.Join(dir, "data"), addr)), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "run", "-c", cfg, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://" + addr
	if err := waitReady(base); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { load(ctx, base, rate, batch, &sent) })
	time.Sleep(3 * time.Second) // warm up
	pid := cmd.Process.Pid
	fmt.Printf("bridge pid %d, target %d events/s, %d tabs, phases of %v\n", pid, rate, tabs, phase)
	fmt.Printf("%-10s %6s %12s %10s %14s\n", "phase", "tabs", "events/s", "cpu %", "tab messages")
	var results [][2]float64 // per round: overview per-tab, tail per-tab
	for range rounds {
		b1 := measure(pid, phase, &sent, "none", base, 0)
		ov := measure(pid, phase, &sent, "overview", base, tabs)
		b2 := measure(pid, phase, &sent, "none", base, 0)
		tl := measure(pid, phase, &sent, "tail", base, tabs)
		b3 := measure(pid, phase, &sent, "none", base, 0)
		results = append(results, [2]float64{(ov - (b1+b2)/2) / float64(tabs), (tl - (b2+b3)/2) / float64(tabs)})
	}
	stop()
	wg.Wait()
	for i, r := range results {
		fmt.Printf("round %d: cost per overview tab %.3f%% of a core, per tail tab %.3f%%\n", i+1, r[0], r[1])
	}
	return nil
}

func waitReady(base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("bridge not ready")
}

// load posts batches of small JSON events, paced to rate, from 4 workers.
func load(ctx context.Context, base string, rate, batch int, sent *atomic.Int64) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"key":"k%d","value":{"n":%d,"type":"order.created","amount":%d}}`, i%64, i, i*3)
	}
	body.WriteByte(']')
	payload := body.Bytes()
	perWorker := time.Duration(float64(time.Second) * float64(batch) * 4 / float64(rate))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			next := time.Now()
			for ctx.Err() == nil {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(perWorker)
				if time.Until(next) < -time.Second {
					next = time.Now() // behind: do not burst to catch up
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/topics/load/events", bytes.NewReader(payload))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					sent.Add(int64(batch))
				}
			}
		})
	}
	wg.Wait()
}

// cpuTicks reads utime+stime of a process (clock ticks, 100 per second).
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name in parentheses; utime and stime are
	// fields 14 and 15 (1-based) of the whole line.
	s := string(data)
	rest := s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(rest)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st, nil
}

// measure runs one phase with n tabs of a kind and returns the bridge's
// CPU in percent of one core.
func measure(pid int, d time.Duration, sent *atomic.Int64, kind, base string, n int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	var msgs atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { tab(ctx, kind, base, &msgs) })
	}
	time.Sleep(500 * time.Millisecond) // tabs connected
	t0, _ := cpuTicks(pid)
	e0 := sent.Load()
	start := time.Now()
	time.Sleep(d)
	t1, _ := cpuTicks(pid)
	elapsed := time.Since(start).Seconds()
	events := float64(sent.Load()-e0) / elapsed
	cancel()
	wg.Wait()
	cpu := float64(t1-t0) / 100 / elapsed * 100
	fmt.Printf("%-10s %6d %12.0f %10.2f %14d\n", kind, n, events, cpu, msgs.Load())
	return cpu
}

// tab holds one SSE stream open and reads it as a browser would.
func tab(ctx context.Context, kind, base string, msgs *atomic.Int64) {
	path := "/console/sse/overview"
	if kind == "tail" {
		path = "/console/topics/load/tail"
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		if bytes.HasPrefix(line, []byte("event:")) {
			msgs.Add(1)
		}
	}
}
