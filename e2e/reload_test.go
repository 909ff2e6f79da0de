package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

const reloadTemplate = `
data_dir: ${DATA}
http: { listen: ${HTTP} }
backbone: { topics: { in: { partitions: 2 }, out: { partitions: 1 } } }
pipelines:
  - name: p
    from: in
    routes:
      - name: r
        when: 'WHEN'
        to: { topic: out }
`

// bridgeCLI runs a client subcommand against in and returns its output
// and exit code.
func reloadCLI(t *testing.T, in *instance, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "BRIDGE_ADDR="+in.httpURL)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestReloadCLIAndSIGHUP drives issue 17 through the binary: an invalid
// config sent with `bridge reload -c` prints every error FILE:LINE:COL and
// exits 1 with nothing changed; --dry-run prints the plan; SIGHUP re-reads
// the started file and swaps the route, whose outputs then carry the new
// bridge-rules-version; `bridge config versions` and `show` list the
// stored versions; a restart with the same file keeps the version.
func TestReloadCLIAndSIGHUP(t *testing.T) {
	dataDir := t.TempDir()
	cfgPath, httpAddr, sqsAddr := writeConfig(t, dataDir, strings.Replace(reloadTemplate, "WHEN", "body.n % 2 == 0", 1))
	// The race-enabled build: a reload runs beside every live goroutine.
	bin := raceBinary(t)
	in := startBinary(t, bin, cfgPath, httpAddr, sqsAddr, dataDir)
	ctx := context.Background()
	post := func(from, to int) {
		var evs []map[string]any
		for i := from; i < to; i++ {
			evs = append(evs, map[string]any{"key": fmt.Sprint(i), "value": map[string]int{"n": i}})
		}
		if code, body, err := postEvents(ctx, in.httpURL, "in", evs); err != nil || code != 200 {
			t.Fatalf("post: %d %v %v", code, body, err)
		}
	}
	post(0, 10)
	waitFor(t, 10*time.Second, func() error {
		if n := len(readAll(t, in.httpURL, "out")); n != 5 {
			return fmt.Errorf("%d outputs", n)
		}
		return nil
	})

	bad := t.TempDir() + "/bad.yaml"
	os.WriteFile(bad, []byte(strings.NewReplacer("WHEN", "body.n %", "from: in", "from: nope").Replace(
		strings.NewReplacer("${DATA}", dataDir, "${HTTP}", httpAddr).Replace(reloadTemplate))), 0o644)
	out, code := reloadCLI(t, in, "reload", "-c", bad)
	if code != 1 || !strings.Contains(out, bad+":7:11: pipelines[0].from") || !strings.Contains(out, bad+":10:") ||
		!strings.Contains(out, "2 problems") {
		t.Fatalf("invalid reload: exit %d\n%s", code, out)
	}

	odd := strings.Replace(mustRead(t, cfgPath), "body.n % 2 == 0", "body.n % 2 == 1", 1)
	if err := os.WriteFile(cfgPath, []byte(odd), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = reloadCLI(t, in, "reload", "--dry-run")
	if code != 0 || !strings.Contains(out, "~ route p/r") || !strings.Contains(out, "dry_run: version 1, live 1") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if !strings.Contains(in.stderr.String(), `msg="SIGHUP reload" outcome=applied version=2`) {
			return fmt.Errorf("no SIGHUP reload logged")
		}
		return nil
	})
	post(10, 20)
	waitFor(t, 10*time.Second, func() error {
		if n := len(readAll(t, in.httpURL, "out")); n != 10 {
			return fmt.Errorf("%d outputs", n)
		}
		return nil
	})
	for _, ev := range readAll(t, in.httpURL, "out") {
		var n int
		fmt.Sscanf(string(ev.Value), `{"n":%d}`, &n)
		want := "1"
		if n >= 10 {
			want = "2"
		}
		if ev.Headers["bridge-rules-version"] != want || (n < 10) != (n%2 == 0) {
			t.Fatalf("output %s: bridge-rules-version %q, want %s", ev.Value, ev.Headers["bridge-rules-version"], want)
		}
	}
	out, code = reloadCLI(t, in, "config", "versions")
	if code != 0 || !strings.Contains(out, "apply   2        2     sighup") {
		t.Fatalf("config versions: exit %d\n%s", code, out)
	}
	out, code = reloadCLI(t, in, "config", "show", "1")
	if code != 0 || !strings.Contains(out, "body.n % 2 == 0") {
		t.Fatalf("config show 1: exit %d\n%s", code, out)
	}
	if code := in.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// The same file again: still version 2.
	in = startBinary(t, bin, cfgPath, httpAddr, sqsAddr, dataDir)
	if !strings.Contains(in.stderr.String(), "config_version=2") {
		t.Fatalf("restart with the same file:\n%s", in.stderr.String())
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReloadAddsExchangeOverAMQP: an exchange and a queue that a reload
// adds are at once usable by AMQP clients of amqp_api, and the pipeline's
// events reach them under the new version.
func TestReloadAddsExchangeOverAMQP(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	amqpAddr := freeAddr(t)
	const before = `
data_dir: ${DATA}
http:     { listen: ${HTTP} }
sqs_api:  { listen: ${SQS} }
amqp_api: { listen: AMQPADDR }
backbone: { topics: { in: { partitions: 1 } } }
pipelines:
  - name: p
    from: in
    routes:
      - name: r
        to: { topic: in-copy }
`
	cfgText := strings.ReplaceAll(before, "AMQPADDR", amqpAddr)
	cfgText = strings.Replace(cfgText, "topics: { in: { partitions: 1 } }", "topics: { in: { partitions: 1 }, in-copy: {} }", 1)
	cfgPath, httpAddr, sqsAddr := writeConfig(t, data, cfgText)
	in := start(t, cfgPath, httpAddr, sqsAddr, data)

	after := strings.Replace(mustRead(t, cfgPath), "        to: { topic: in-copy }", `        to: { exchange: jobs, routing_key: '"job." + body.kind' }
broker:
  queues: { jobs-q: {} }
  exchanges:
    jobs: { type: topic, bindings: [ { queue: jobs-q, key: "job.*" } ] }`, 1)
	newPath := t.TempDir() + "/after.yaml"
	if err := os.WriteFile(newPath, []byte(after), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := reloadCLI(t, in, "reload", "-c", newPath); code != 0 {
		t.Fatalf("reload: exit %d\n%s", code, out)
	}

	conn, err := amqp091.Dial("amqp://guest:guest@" + amqpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("jobs", "job.amqp", true, false, amqp091.Publishing{Body: []byte(`{"kind":"amqp"}`)})
	if err != nil {
		t.Fatalf("publish to the exchange the reload added: %v", err)
	}
	if !dc.Wait() {
		t.Fatal("publish to the added exchange was nacked")
	}
	if code, body, err := postEvents(context.Background(), in.httpURL, "in", []map[string]any{{"value": map[string]string{"kind": "pipeline"}}}); err != nil || code != 200 {
		t.Fatalf("post: %d %v %v", code, body, err)
	}
	ds, err := ch.Consume("jobs-q", "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume the queue the reload added: %v", err)
	}
	got := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(got) < 2 {
		select {
		case d := <-ds:
			got[string(d.Body)] = true
		case <-deadline:
			t.Fatalf("received %v, want the AMQP publish and the pipeline's event", got)
		}
	}
	if !got[`{"kind":"amqp"}`] || !got[`{"kind":"pipeline"}`] {
		t.Fatalf("received %v", got)
	}
}
