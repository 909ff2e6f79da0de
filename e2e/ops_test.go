package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const dlqConfig = `
data_dir: ${DATA}
http: { listen: "${HTTP}" }
backbone:
  type: embedded
  topics:
    in:  { partitions: 1 }
    out: { partitions: 1 }
    dlq: { partitions: 1 }
pipelines:
  - name: p
    from: in
    routes:
      - name: main
        to: { topic: out, key: 'string(body.n * 2)' }
    on_error: dead_letter
    dead_letter: { topic: dlq }
`

// bridgeCLI runs a client subcommand against in and returns its output.
func bridgeCLI(t *testing.T, in *instance, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cmd.Environ(), "BRIDGE_ADDR="+in.httpURL)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDeadLetterCLI: events whose rule fails become dead letters with
// provenance; bridge dlq list/show browse them with a filter; bridge dlq
// redrive sends them once (a second redrive skips them, also after a
// restart); bridge tail --filter selects client-side.
func TestDeadLetterCLI(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	cfg, httpAddr, sqsAddr := writeConfig(t, data, dlqConfig)
	in := start(t, cfg, httpAddr, sqsAddr, data)
	code, _, err := postEvents(t.Context(), in.httpURL, "in",
		[]map[string]any{{"value": map[string]any{"n": 1}}, {"value": map[string]any{"n": "x"}}, {"value": map[string]any{"n": 3}}, {"value": map[string]any{"n": "y"}}})
	if err != nil || code != 200 {
		t.Fatalf("POST: %d %v", code, err)
	}
	var list struct {
		DeadLetters []struct {
			ID         string `json:"id"`
			Pipeline   string `json:"pipeline"`
			Route      string `json:"route"`
			EventID    string `json:"event_id"`
			ErrorClass string `json:"error_class"`
			Redriven   bool   `json:"redriven"`
		} `json:"deadletters"`
	}
	waitFor(t, 10*time.Second, func() error {
		out, err := bridgeCLI(t, in, "dlq", "list", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		if len(list.DeadLetters) != 2 {
			return fmt.Errorf("%d dead letters", len(list.DeadLetters))
		}
		return nil
	})
	for _, d := range list.DeadLetters {
		if d.Pipeline != "p" || d.Route != "main" || d.ErrorClass != "permanent" || !strings.HasPrefix(d.EventID, "in/0/") || d.Redriven {
			t.Fatalf("dead letter %+v lacks provenance", d)
		}
	}
	out, err := bridgeCLI(t, in, "dlq", "list", "--filter", `body.n == "y"`)
	if err != nil || strings.Count(out, "dlq/0/") != 1 || !strings.Contains(out, "in/0/3") {
		t.Fatalf("dlq list --filter: %v\n%s", err, out)
	}
	out, err = bridgeCLI(t, in, "dlq", "show", list.DeadLetters[0].ID)
	if err != nil || !strings.Contains(out, "bridge-error-class: permanent") || !strings.Contains(out, `"n":"x"`) {
		t.Fatalf("dlq show: %v\n%s", err, out)
	}
	out, err = bridgeCLI(t, in, "dlq", "redrive", "--to", "topic:out", "--rate", "50")
	if err != nil || !strings.Contains(out, "redriven 2, skipped 0") {
		t.Fatalf("dlq redrive: %v\n%s", err, out)
	}
	out, err = bridgeCLI(t, in, "dlq", "redrive", "--to", "topic:out")
	if err != nil || !strings.Contains(out, "redriven 0, skipped 2") {
		t.Fatalf("second dlq redrive: %v\n%s", err, out)
	}
	// out holds the two delivered events and the two redriven ones, which
	// keep their original ids.
	outEvents := readAll(t, in.httpURL, "out")
	if len(outEvents) != 4 || outEvents[2].Headers["bridge-event-id"] != "in/0/1" || outEvents[2].Headers["bridge-error"] != "" {
		t.Fatalf("topic out: %+v", outEvents)
	}
	out, err = bridgeCLI(t, in, "tail", "in", "--filter", `body.n == 3`, "-o", "json")
	if err != nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, `"offset":2`) {
		t.Fatalf("tail --filter: %v\n%s", err, out)
	}

	if code := in.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	in = start(t, cfg, httpAddr, sqsAddr, data)
	out, err = bridgeCLI(t, in, "dlq", "redrive")
	if err != nil || !strings.Contains(out, "redriven 0, skipped 2") {
		t.Fatalf("redrive after restart: %v\n%s", err, out)
	}
}

// TestCLIBridgeNotRunning: a client command against an address where no
// bridge listens fails with a hint, not a bare dial error.
func TestCLIBridgeNotRunning(t *testing.T) {
	t.Parallel()
	addr := "http://" + freeAddr(t)
	for _, args := range [][]string{{"topics"}, {"pipelines", "-o", "json"}, {"dlq", "list"}, {"tail", "x"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(binary, append(args, "--addr", addr)...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("succeeded without a bridge: %s", out)
			}
			if !strings.Contains(string(out), "cannot reach bridge at "+addr) || !strings.Contains(string(out), "bridge run") {
				t.Fatalf("unhelpful error: %s", out)
			}
		})
	}
}
