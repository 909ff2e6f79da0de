package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi"
	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/engine/reload"
	"github.com/bridgeio/bridge/pipelines"
	"github.com/bridgeio/bridge/pipelines/versions"
)

// openVersions opens DATA_DIR/config and records the started config.
func openVersions(cfg *pipelines.Config, started startedConfig) (*versions.Store, int64, error) {
	store, err := versions.Open(filepath.Join(cfg.DataDir, "config"))
	if err != nil {
		return nil, 0, fmt.Errorf("config versions: %w", err)
	}
	v, err := reload.Start(store, started.data, "start")
	if err != nil {
		store.Close()
		return nil, 0, err
	}
	return store, v, nil
}

func newReloader(plan *pipelines.Plan, version int64, eng *engine.Engine, broker *engine.Broker, lg *commitlog.Log,
	store *versions.Store, path string, amqpSrv *atomic.Pointer[amqpapi.Server], log *slog.Logger) *reload.Reloader {
	var createTopic func(string, int) error
	if lg != nil {
		createTopic = lg.CreateTopic
	}
	return reload.New(reload.Options{Engine: eng, Broker: broker, CreateTopic: createTopic, Store: store, File: path,
		Added:  func(cfg *pipelines.Config, diff *pipelines.PlanDiff) { showOverAMQP(amqpSrv.Load(), broker, diff, log) },
		Logger: log.With("component", "reload")}, plan, version)
}

// showOverAMQP makes the exchanges and queues a reload added visible to
// AMQP clients of amqp_api (nil when it is off).
func showOverAMQP(srv *amqpapi.Server, broker *engine.Broker, diff *pipelines.PlanDiff, log *slog.Logger) {
	if srv == nil || broker == nil {
		return
	}
	var xs []amqpapi.ConfigExchange
	for _, name := range diff.ExchangesAdded {
		if x, dlq, ok := broker.Exchange(name); ok {
			xs = append(xs, amqpapi.ConfigExchange{Exchange: x, UnroutableQueue: dlq})
		}
	}
	if err := srv.AddConfig(xs, diff.QueuesAdded); err != nil {
		log.Warn("reload: not all added exchanges are visible over AMQP", "err", err)
	}
}

// onSIGHUP reloads the started config file on every SIGHUP until the
// returned stop is called.
func onSIGHUP(ctx context.Context, r *reload.Reloader, log *slog.Logger) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-hup:
				res, err := r.Reload(ctx, reload.Request{Source: "sighup"})
				if err != nil {
					log.Error("SIGHUP reload failed; the running config is unchanged", "err", err)
					continue
				}
				log.Info("SIGHUP reload", "outcome", res.Outcome, "version", res.Version, "live", res.Live, "plan", strings.TrimSpace(res.Plan))
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

// cmdReload: bridge reload [-c FILE] [--force] [--dry-run] [--shadow]
// [--canary PCT] [--promote] [--rollback].
func cmdReload(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	cfg := fs.String("c", "", "config file to send (default: the running process re-reads the file it was started with)")
	force := fs.Bool("force", false, "allow removing queues that hold messages")
	dry := fs.Bool("dry-run", false, "validate and print the plan diff; change nothing")
	shadow := fs.Bool("shadow", false, "evaluate the new rules beside the live ones without sending")
	canary := fs.Int("canary", 0, "send this percentage of key hashes (1-100) through the new rules")
	promote := fs.Bool("promote", false, "make the shadow or canary version live")
	rollback := fs.Bool("rollback", false, "drop the shadow or canary, or go back to the previous live version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := newClient(*addr, *token)
	path := "/v1/config"
	q := url.Values{"source": {"cli"}}
	var body []byte
	switch {
	case *promote:
		path = "/v1/config/promote"
	case *rollback:
		path = "/v1/config/rollback"
	default:
		if *cfg != "" {
			data, err := os.ReadFile(*cfg)
			if err != nil {
				return err
			}
			body = data
			q.Set("file", *cfg)
		}
		if *shadow {
			q.Set("shadow", "1")
		}
		if *canary != 0 {
			q.Set("canary", strconv.Itoa(*canary))
		}
	}
	if *force {
		q.Set("force", "1")
	}
	if *dry {
		q.Set("dry_run", "1")
	}
	var res struct {
		reload.Result
		Errors   []string `json:"errors"`
		Problems []string `json:"problems"`
	}
	status, raw, err := c.raw(ctx, "POST", path+"?"+q.Encode(), body)
	if err != nil {
		return err
	}
	if *output == "json" {
		fmt.Println(strings.TrimSpace(string(raw)))
	}
	if jerr := json.Unmarshal(raw, &res); jerr != nil {
		return fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(raw)))
	}
	switch {
	case status == 422:
		if *output != "json" {
			for _, e := range res.Errors {
				fmt.Fprintln(os.Stderr, e)
			}
			fmt.Fprintf(os.Stderr, "%d problems; the running config is unchanged\n", len(res.Errors))
		}
		return errSilent
	case status == 409:
		if *output != "json" {
			if res.Diff != nil {
				fmt.Print(res.Diff.String())
			}
			for _, p := range res.Problems {
				fmt.Fprintln(os.Stderr, "refused:", p)
			}
			if len(res.Problems) == 0 {
				fmt.Fprintln(os.Stderr, strings.TrimSpace(string(raw)))
			}
		}
		return errSilent
	case status >= 300 && status != 202:
		return fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(raw)))
	}
	if *output == "json" {
		return nil
	}
	if res.Diff != nil {
		fmt.Print(res.Diff.String())
	}
	fmt.Printf("%s: version %d, live %d", res.Outcome, res.Version, res.Live)
	if len(res.Takeovers) > 0 {
		fmt.Printf(", resumed in %.1f ms", res.ResumeMS)
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, t := range res.Takeovers {
		fmt.Fprintf(tw, "  %s\t%s/%s\tversion %d\t%s\n", t.Action, t.Pipeline, t.Route, t.Version, offsetsText(t.Offsets))
	}
	tw.Flush()
	if status == 202 {
		fmt.Fprintln(os.Stderr, "some routes had not reached a clean point yet; their swaps apply when their batches complete")
	}
	return nil
}

func offsetsText(m map[int32]int64) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for p := range int32(len(m) + 64) {
		if o, ok := m[p]; ok {
			parts = append(parts, fmt.Sprintf("%d:%d", p, o))
		}
	}
	return "at " + strings.Join(parts, ",")
}

// cmdConfig: bridge config versions | bridge config show N | bridge config shadow.
func cmdConfig(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: bridge config versions | show N | shadow")
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("config "+sub, flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	if err := fs.Parse(rest); err != nil {
		return err
	}
	c := newClient(*addr, *token)
	switch sub {
	case "versions":
		var out struct {
			Live     int64              `json:"live"`
			Versions []versions.Version `json:"versions"`
			Journal  []versions.Record  `json:"journal"`
		}
		if err := c.do(ctx, "GET", "/v1/config/versions", nil, &out); err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(out)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tLIVE\tSTORED\tHASH")
		for _, v := range out.Versions {
			live := ""
			if v.Live {
				live = "*"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%.12s\n", v.Version, live, v.Stored.Format("2006-01-02T15:04:05Z"), v.Hash)
		}
		tw.Flush()
		fmt.Println()
		tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tACTION\tVERSION\tLIVE\tSOURCE\tROUTES")
		for _, r := range out.Journal {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\n", r.Time.Format("2006-01-02T15:04:05Z"), r.Action, r.Version, r.Live, r.Source, len(r.Takeovers))
		}
		return tw.Flush()
	case "show":
		if fs.NArg() != 1 {
			return errors.New("usage: bridge config show N")
		}
		n, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return fmt.Errorf("version %q: %w", fs.Arg(0), err)
		}
		status, raw, err := c.raw(ctx, "GET", "/v1/config/versions/"+strconv.FormatInt(n, 10), nil)
		if err != nil {
			return err
		}
		if status != 200 {
			return fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(raw)))
		}
		_, err = os.Stdout.Write(raw)
		return err
	case "shadow":
		var out map[string]any
		if err := c.do(ctx, "GET", "/v1/config/shadow", nil, &out); err != nil {
			return err
		}
		return printJSON(out)
	}
	return fmt.Errorf("unknown config subcommand %q (versions | show N | shadow)", sub)
}

// raw sends a request with a raw body and returns the status and body,
// whatever the status.
func (c *client) raw(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/yaml")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach bridge at %s (is `bridge run` running? set --addr): %w", c.addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}
