package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bridgeio/bridge/migrate"
)

const migrateUsage = `usage: bridge migrate --from URL --to URL [--verify] [--report FILE] [--positions FILE]
                      [--filter EXPR] [--key EXPR] [--follow | --limit N] [--state DIR] [--partitions N]

URLs:
  amqp://USER:PASS@HOST:PORT/VHOST?queue=NAME                   RabbitMQ queue (amqps:// for TLS)
  amqp://USER:PASS@HOST:PORT/VHOST?exchange=X&routing_key=K[&queue=Q]   RabbitMQ target (Q: read back by --verify)
  kafka://HOST:PORT[,HOST:PORT...]/TOPIC                          Kafka topic
  sqs://QUEUE_NAME?endpoint=http://HOST:PORT&region=REGION        SQS queue (or its queue URL, https://sqs...)
  bridge://TOPIC?addr=http://127.0.0.1:8080                       topic of a running bridge

Exit status: 0 when the migration finished (and, with --verify, nothing is
missing or altered), 1 otherwise.
`

func cmdMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), migrateUsage, "\nFlags:\n"); fs.PrintDefaults() }
	var cfg migrate.Config
	fs.StringVar(&cfg.From, "from", "", "source URL")
	fs.StringVar(&cfg.To, "to", "", "target URL")
	fs.BoolVar(&cfg.Verify, "verify", false, "read the target back and compare it with what left the source")
	report := fs.String("report", "", "write the verification report as JSON to FILE")
	fs.StringVar(&cfg.PositionsFile, "positions", "", "position map file, JSON lines (default STATE/positions.jsonl)")
	fs.StringVar(&cfg.Filter, "filter", "", "expr selecting the events to move (as a pipeline's filter)")
	fs.StringVar(&cfg.Key, "key", "", "expr computing each event's key at the source (as a source's key)")
	fs.BoolVar(&cfg.Follow, "follow", false, "keep moving new messages until interrupted (SIGINT)")
	fs.Int64Var(&cfg.Limit, "limit", 0, "stop after N messages")
	fs.StringVar(&cfg.StateDir, "state", "", "state dir: the local log and checkpoints (default .bridge-migrate/HASH)")
	fs.IntVar(&cfg.Partitions, "partitions", 0, "partitions of the local log, spread by key (default 1: total order)")
	fs.StringVar(&cfg.Fsync, "fsync", "always", "local log fsync policy: always | interval | never")
	fs.DurationVar(&cfg.Idle, "idle", 2*time.Second, "drain mode: stop once the source has been empty this long")
	logLevel := fs.String("log-level", "warn", "debug | info | warn | error")
	logFormat := fs.String("log-format", "text", "text | json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.From == "" || cfg.To == "" || fs.NArg() > 0 {
		fmt.Fprint(os.Stderr, migrateUsage)
		return errSilent
	}
	if cfg.Follow && cfg.Limit > 0 {
		return errors.New("--follow and --limit exclude each other")
	}
	if cfg.Limit < 0 || cfg.Partitions < 0 {
		return errors.New("--limit and --partitions must not be negative")
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg.Logger = log
	out := newProgressWriter(os.Stderr)
	cfg.Progress, cfg.ProgressInterval = out.update, out.interval
	sum, err := migrate.Run(ctx, cfg)
	out.done()
	if err != nil {
		return err
	}
	printSummary(os.Stdout, sum)
	if sum.Report == nil {
		if cfg.Verify && sum.Stopped == "interrupted" {
			fmt.Println("verification skipped: the migration was interrupted; rerun to continue and verify")
			return errSilent
		}
		return nil
	}
	printReport(os.Stdout, sum.Report)
	if *report != "" {
		data, _ := json.MarshalIndent(sum.Report, "", "  ")
		if err := os.WriteFile(*report, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if !sum.Report.OK {
		return errSilent
	}
	return nil
}

// progressWriter shows progress: one refreshing line on a terminal, a
// plain line every few seconds otherwise.
type progressWriter struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	mu       sync.Mutex
	width    int
}

func newProgressWriter(f *os.File) *progressWriter {
	p := &progressWriter{w: f, interval: 5 * time.Second}
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		p.tty, p.interval = true, 500*time.Millisecond
	}
	return p
}

func (p *progressWriter) update(pr migrate.Progress) {
	line := fmt.Sprintf("moved %d  sent %d", pr.Moved, pr.Sent)
	if pr.Filtered > 0 {
		line += fmt.Sprintf("  filtered %d", pr.Filtered)
	}
	line += fmt.Sprintf("  %.0f msg/s  pending %d", pr.Rate, max(pr.Backlog, 0))
	if pr.Depth >= 0 {
		line += fmt.Sprintf("  source depth %d", pr.Depth)
		if pr.Rate > 0 && pr.Depth > 0 {
			line += "  ETA " + (time.Duration(float64(pr.Depth)/pr.Rate) * time.Second).Round(time.Second).String()
		}
	}
	line += "  elapsed " + pr.Elapsed.Round(time.Second).String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintln(p.w, "migrate:", line)
		return
	}
	pad := max(p.width-len(line), 0)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
}

// done ends the refreshing line.
func (p *progressWriter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}

func printSummary(w io.Writer, s *migrate.Summary) {
	rate := 0.0
	if s.Busy > 0 {
		rate = float64(s.Moved) / s.Busy.Seconds()
	}
	fmt.Fprintf(w, "migrate %s -> %s: %s\n", s.From, s.To, s.Stopped)
	fmt.Fprintf(w, "  moved %d, sent %d, filtered out %d in %s (%.0f msg/s); ledger holds %d events (all runs)\n",
		s.Moved, s.Sent, s.Filtered, s.Elapsed.Round(time.Millisecond), rate, s.Ledger)
	if s.VerifyTime > 0 {
		fmt.Fprintf(w, "  verified in %s\n", s.VerifyTime.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "  state: %s\n", s.StateDir)
}

func printReport(w io.Writer, r *migrate.Report) {
	verdict := "OK"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "verification: %s\n", verdict)
	rows := []struct {
		name string
		n    int64
	}{
		{"source_count", r.SourceCount}, {"filtered_out", r.FilteredOut}, {"expected", r.Expected},
		{"target_count", r.TargetCount}, {"delivered", r.Delivered}, {"missing", r.Missing},
		{"mismatched", r.Mismatched}, {"extra", r.Extra}, {"duplicates", r.Duplicates},
		{"  in the source", r.SourceDuplicates}, {"  in the target", r.TargetDuplicates},
		{"order_violations", r.OrderViolations},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "  %-18s %10d\n", row.name, row.n)
	}
	samples := []struct {
		name string
		ids  []string
	}{{"missing", r.MissingIDs}, {"mismatched", r.MismatchedIDs}, {"extra", r.ExtraIDs}}
	for _, s := range samples {
		if len(s.ids) > 0 {
			fmt.Fprintf(w, "  first %s: %s\n", s.name, strings.Join(s.ids, ", "))
		}
	}
	if r.PositionsFile != "" {
		fmt.Fprintf(w, "  position map: %s\n", r.PositionsFile)
	}
}
