package e2e

// The fault harness of the chaos suite (issue 18, docs/reliability.md):
// Toxiproxy, in process, between bridge and each peer (RabbitMQ, kfake,
// fauxqs); signals to the bridge process (SIGKILL, SIGSTOP/SIGCONT); a
// size-limited data dir for a full disk; and the probes that watch the
// process for leaks (RSS, open files, goroutines).

import (
	"context"
	"encoding/json"
	"errors"
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
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
)

// faultNet is an in-process Toxiproxy server: the owner of the proxies
// of one test.
type faultNet struct {
	srv *toxiproxy.ApiServer
}

var quietToxiproxy sync.Once

func newFaultNet(t testing.TB) *faultNet {
	t.Helper()
	// Toxiproxy's toxics log through zerolog's global logger (the bandwidth
	// toxic at trace level for every chunk): silence it for the process.
	quietToxiproxy.Do(func() {
		zerolog.SetGlobalLevel(zerolog.Disabled)
		toxics.Register("silent", new(silentToxic))
		toxics.Register("partition", new(partitionToxic))
	})
	t.Logf("fault injection: Toxiproxy %s in process", moduleVersion("github.com/Shopify/toxiproxy/v2"))
	return &faultNet{srv: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())}
}

// faultProxy is one TCP proxy with toxics: a fault between bridge and one
// endpoint of a peer.
type faultProxy struct {
	t    testing.TB
	name string
	p    *toxiproxy.Proxy

	mu     sync.Mutex
	active map[string]bool
}

// proxy starts a proxy on a free loopback port in front of upstream. It
// stops with the test.
func (f *faultNet) proxy(t testing.TB, name, upstream string) *faultProxy {
	t.Helper()
	return f.proxyOn(t, name, "127.0.0.1:0", upstream)
}

func (f *faultNet) proxyOn(t testing.TB, name, listen, upstream string) *faultProxy {
	t.Helper()
	p := toxiproxy.NewProxy(f.srv, name, listen, upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("toxiproxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{t: t, name: name, p: p, active: map[string]bool{}}
}

// addr is where clients connect to reach upstream through the proxy.
func (fp *faultProxy) addr() string { return fp.p.Listen }

// fault is one toxic: its Toxiproxy type, the direction it acts on
// ("upstream" = client to server, "downstream" = server to client) and
// its attributes (see Toxiproxy's README).
type fault struct {
	kind   string
	stream string
	attrs  map[string]any
}

// Faults by name, as the chaos tests and the soak inject them.
var (
	faultLatency   = fault{"latency", "downstream", map[string]any{"latency": 150, "jitter": 50}}
	faultLatencyUp = fault{"latency", "upstream", map[string]any{"latency": 150, "jitter": 50}}
	faultBandwidth = fault{"bandwidth", "downstream", map[string]any{"rate": 32}} // KB/s
	faultSlicer    = fault{"slicer", "downstream", map[string]any{"average_size": 16, "size_variation": 12, "delay": 200}}
	faultSlicerUp  = fault{"slicer", "upstream", map[string]any{"average_size": 16, "size_variation": 12, "delay": 200}}
	faultReset     = fault{"reset_peer", "upstream", map[string]any{"timeout": 0}}
	// A half-open connection: nothing passes either way and nothing is
	// closed (timeout 0 = never), as after a silent network partition.
	faultBlackholeUp   = fault{"timeout", "upstream", map[string]any{"timeout": 0}}
	faultBlackholeDown = fault{"timeout", "downstream", map[string]any{"timeout": 0}}
	// A silent peer (a host that vanished, a NAT entry that expired): like
	// the blackhole, but a close by either side is not passed on either
	// (Toxiproxy's timeout toxic forwards it, so a server that closes idle
	// connections ends its "half-open" state by itself).
	faultSilentUp   = fault{"silent", "upstream", nil}
	faultSilentDown = fault{"silent", "downstream", nil}
	// A network partition that heals: nothing moves either way while it
	// lasts (the proxy stops reading, so TCP windows fill and senders
	// block, as when packets go nowhere and are retransmitted), and
	// everything held moves on, in order, when it ends.
	faultPartitionUp   = fault{"partition", "upstream", nil}
	faultPartitionDown = fault{"partition", "downstream", nil}
)

// silentToxic drops every byte and swallows the end of the stream until
// it is removed; then the connection closes if either side had closed it,
// as when the peer's RST finally arrives.
type silentToxic struct{}

func (silentToxic) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				<-stub.Interrupt
				return
			}
		}
	}
}

// partitionToxic reads nothing until it is removed.
type partitionToxic struct{}

func (partitionToxic) Pipe(stub *toxics.ToxicStub) { <-stub.Interrupt }

func (f fault) name() string { return f.kind + "_" + f.stream }

// add installs a toxic on every current and future connection.
func (fp *faultProxy) add(f fault) {
	fp.t.Helper()
	body, err := json.Marshal(map[string]any{"name": f.name(), "type": f.kind, "stream": f.stream,
		"toxicity": 1.0, "attributes": f.attrs})
	if err != nil {
		fp.t.Fatal(err)
	}
	if _, err := fp.p.Toxics.AddToxicJson(strings.NewReader(string(body))); err != nil {
		fp.t.Fatalf("toxiproxy %s: add %s: %v", fp.name, f.name(), err)
	}
	fp.mu.Lock()
	fp.active[f.name()] = true
	fp.mu.Unlock()
}

// clear removes every toxic: the fault ends.
func (fp *faultProxy) clear() {
	fp.t.Helper()
	fp.mu.Lock()
	names := make([]string, 0, len(fp.active))
	for n := range fp.active {
		names = append(names, n)
	}
	clear(fp.active)
	fp.mu.Unlock()
	for _, n := range names {
		if err := fp.p.Toxics.RemoveToxic(context.Background(), n); err != nil {
			fp.t.Errorf("toxiproxy %s: remove %s: %v", fp.name, n, err)
		}
	}
}

// faultGroup applies a fault to several proxies at once (the brokers of
// one Kafka cluster).
type faultGroup []*faultProxy

func (g faultGroup) add(fs ...fault) {
	for _, p := range g {
		for _, f := range fs {
			p.add(f)
		}
	}
}

func (g faultGroup) clear() {
	for _, p := range g {
		p.clear()
	}
}

// proxiedKafka is a kfake cluster whose brokers are reached through
// Toxiproxy: each broker advertises its proxy's address in metadata, so
// every client that learns the cluster from it (bridge) goes through the
// proxies, while the test's own clients dial the brokers directly (dial).
type proxiedKafka struct {
	*kfake.Cluster
	proxies faultGroup
	direct  map[string]string // proxy address -> broker address
}

// advertisedListener reports the proxy's address as its own, which is
// what kfake puts in metadata.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

func newProxiedKafka(t testing.TB, fn *faultNet, opts ...kfake.Opt) *proxiedKafka {
	t.Helper()
	pk := &proxiedKafka{direct: map[string]string{}}
	var mu sync.Mutex
	listen := func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		fp := fn.proxy(t, fmt.Sprintf("kafka-%d", len(pk.proxies)), ln.Addr().String())
		pk.proxies = append(pk.proxies, fp)
		pk.direct[fp.addr()] = ln.Addr().String()
		proxyAddr, err := net.ResolveTCPAddr("tcp", fp.addr())
		if err != nil {
			ln.Close()
			return nil, err
		}
		return advertisedListener{Listener: ln, addr: proxyAddr}, nil
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.ListenFn(listen)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	pk.Cluster = c
	return pk
}

// dial is a kgo.Dialer for the test's own clients: straight to the
// brokers, around the faults.
func (pk *proxiedKafka) dial(ctx context.Context, network, host string) (net.Conn, error) {
	if d, ok := pk.direct[host]; ok {
		host = d
	}
	var d net.Dialer
	return d.DialContext(ctx, network, host)
}

// brokersYAML is the cluster's (proxied) addresses as a YAML flow list.
func (pk *proxiedKafka) brokersYAML() string {
	return `["` + strings.Join(pk.ListenAddrs(), `","`) + `"]`
}

// signal sends sig to the bridge process.
func (in *instance) signal(sig syscall.Signal) {
	in.t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		in.t.Fatalf("signal %v: %v", sig, err)
	}
}

// freeze stops the process with SIGSTOP and makes sure it is continued
// when the test ends, whatever happens in between.
func (in *instance) freeze() {
	in.t.Helper()
	in.signal(syscall.SIGSTOP)
	in.t.Cleanup(func() { _ = in.cmd.Process.Signal(syscall.SIGCONT) })
}

// smallDisk returns a directory on a file system of size bytes, removed
// when the test ends: a tmpfs with size= when this process may mount one,
// else a loop-mounted ext4 image. A machine where neither works fails the
// test (BRIDGE_CHAOS_NO_MOUNT=1 skips it, for unprivileged local runs).
func smallDisk(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	tmpfsErr := mountTmpfs(mnt, size)
	if tmpfsErr == nil {
		t.Cleanup(func() { unmount(t, mnt) })
		t.Logf("full-disk fault: tmpfs of %d bytes at %s", size, mnt)
		return mnt
	}
	loopErr := mountLoopExt4(dir, mnt, size)
	if loopErr == nil {
		t.Cleanup(func() { unmount(t, mnt) })
		t.Logf("full-disk fault: loop-mounted ext4 of %d bytes at %s (tmpfs: %v)", size, mnt, tmpfsErr)
		return mnt
	}
	msg := fmt.Sprintf("cannot make a size-limited data dir: tmpfs: %v; loop ext4: %v", tmpfsErr, loopErr)
	if os.Getenv("BRIDGE_CHAOS_NO_MOUNT") == "1" {
		t.Skip(msg + " (BRIDGE_CHAOS_NO_MOUNT=1)")
	}
	t.Fatal(msg + " (run as root, or set BRIDGE_CHAOS_NO_MOUNT=1 to skip)")
	return ""
}

func mountTmpfs(mnt string, size int64) error {
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", mnt).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func mountLoopExt4(dir, mnt string, size int64) error {
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(img, size); err != nil {
		return err
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -o loop: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func unmount(t testing.TB, mnt string) {
	for range 50 {
		out, err := exec.Command("umount", mnt).CombinedOutput()
		if err == nil {
			return
		}
		if !strings.Contains(string(out), "busy") {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("umount %s: still busy", mnt)
}

// fillDisk writes a file of zeros into dir until the file system is full
// (ENOSPC) and returns its path; removing it ends the fault.
func fillDisk(t testing.TB, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for written := int64(0); written < free-leave; {
		n := min(int64(len(chunk)), free-leave-written)
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
		written += n
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	return path
}

// procSample is one look at the bridge process's resources.
type procSample struct {
	at         time.Time
	rssKiB     int64
	fds        int
	goroutines int
}

// sampleProcess reads VmRSS from /proc/PID/status, counts /proc/PID/fd,
// and asks bridge's pprof listener for its goroutine count.
func sampleProcess(pid int, pprofURL string) (procSample, error) {
	s := procSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				s.rssKiB, _ = strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	s.goroutines, err = goroutineCount(pprofURL)
	return s, err
}

// goroutineCount reads "goroutine profile: total N" from
// /debug/pprof/goroutine?debug=1.
func goroutineCount(pprofURL string) (int, error) {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(pprofURL + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	head := make([]byte, 128)
	n, _ := io.ReadFull(resp.Body, head)
	line, _, _ := strings.Cut(string(head[:n]), "\n")
	total, ok := strings.CutPrefix(line, "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("unexpected goroutine profile header %q", line)
	}
	return strconv.Atoi(strings.TrimSpace(total))
}

// moduleVersion is the version of a module as ../go.mod requires it (a
// test binary carries no module list in its build info).
func moduleVersion(path string) string {
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		return "(unknown version)"
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == path {
			return f[1]
		}
	}
	return "(unknown version)"
}
