package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/pipelines"
)

// openDeadLetters opens the dead-letter browser and its redrive ledger
// (DATA_DIR/deadletters/redriven.log) for bridge run.
func openDeadLetters(cfg *pipelines.Config, eng *engine.Engine, log *slog.Logger) (*engine.DeadLetters, func(), error) {
	d, err := engine.OpenDeadLetters(eng, filepath.Join(cfg.DataDir, "deadletters"))
	if err != nil {
		return nil, func() {}, fmt.Errorf("open dead-letter ledger: %w", err)
	}
	return d, func() {
		if err := d.Close(); err != nil {
			log.Error("close dead-letter ledger", "err", err)
		}
	}, nil
}

const dlqUsage = `usage:
  bridge dlq list [--pipeline P] [--filter EXPR] [--limit N]
  bridge dlq show ID
  bridge dlq redrive [--pipeline P] [--filter EXPR] [--id ID]... [--to topic:NAME|route:PIPELINE/ROUTE] [--rate N] [--max N]`

// cmdDLQ: bridge dlq list|show|redrive.
func cmdDLQ(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(dlqUsage)
	}
	switch args[0] {
	case "list":
		return cmdDLQList(ctx, args[1:])
	case "show":
		return cmdDLQShow(ctx, args[1:])
	case "redrive":
		return cmdDLQRedrive(ctx, args[1:])
	}
	return fmt.Errorf("unknown dlq command %q\n%s", args[0], dlqUsage)
}

// deadLetterWire is a dead letter as the API sends it.
type deadLetterWire struct {
	ID         string    `json:"id"`
	Pipeline   string    `json:"pipeline"`
	Route      string    `json:"route"`
	EventID    string    `json:"event_id"`
	Error      string    `json:"error"`
	ErrorClass string    `json:"error_class"`
	Attempts   int       `json:"attempts"`
	TraceID    string    `json:"trace_id,omitempty"`
	Redriven   bool      `json:"redriven"`
	Event      wireEvent `json:"event"`
}

func cmdDLQList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dlq list", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	pipeline := fs.String("pipeline", "", "only this pipeline's dead letters")
	filter := fs.String("filter", "", `rules expression over the dead letter, e.g. 'headers["bridge-route"] == "fulfillment"'`)
	limit := fs.Int("limit", 100, "at most this many")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	if *pipeline != "" {
		q.Set("pipeline", *pipeline)
	}
	if *filter != "" {
		q.Set("filter", *filter)
	}
	q.Set("limit", strconv.Itoa(*limit))
	var out struct {
		DeadLetters []deadLetterWire `json:"deadletters"`
	}
	if err := newClient(*addr, *token).do(ctx, "GET", "/v1/deadletters?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(out)
	}
	tw := table()
	fmt.Fprintln(tw, "ID\tPIPELINE\tROUTE\tCLASS\tATTEMPTS\tREDRIVEN\tEVENT-ID\tERROR")
	for _, d := range out.DeadLetters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\t%s\t%s\n", d.ID, d.Pipeline, d.Route, d.ErrorClass, d.Attempts, d.Redriven,
			d.EventID, oneLine(d.Error, 80))
	}
	return tw.Flush()
}

// oneLine keeps an error message on one table row.
func oneLine(s string, maxLen int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > maxLen {
		return s[:maxLen-3] + "..."
	}
	return s
}

func cmdDLQShow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dlq show", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	id, _, err := parseWithTopic(fs, args, "dlq show ID")
	if err != nil {
		return err
	}
	var d deadLetterWire
	// The id's slashes are path separators of the endpoint on purpose
	// (GET /v1/deadletters/TOPIC/PARTITION/OFFSET); only the parts are escaped.
	parts := strings.Split(id, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	if err := newClient(*addr, *token).do(ctx, "GET", "/v1/deadletters/"+strings.Join(parts, "/"), nil, &d); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(d)
	}
	tw := table()
	for _, row := range [][2]string{{"id", d.ID}, {"pipeline", d.Pipeline}, {"route", d.Route}, {"event id", d.EventID},
		{"error class", d.ErrorClass}, {"attempts", strconv.Itoa(d.Attempts)}, {"trace id", d.TraceID},
		{"redriven", strconv.FormatBool(d.Redriven)}, {"error", d.Error}} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Println("event:")
	printEvent(d.Event, "table")
	for _, k := range sortedKeys(d.Event.Headers) {
		fmt.Printf("  %s: %s\n", k, d.Event.Headers[k])
	}
	return nil
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func cmdDLQRedrive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dlq redrive", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	pipeline := fs.String("pipeline", "", "only this pipeline's dead letters")
	filter := fs.String("filter", "", "rules expression selecting dead letters")
	var ids repeated
	fs.Var(&ids, "id", "redrive this dead letter (repeatable)")
	to := fs.String("to", "", "topic:NAME or route:PIPELINE/ROUTE (default: each dead letter's own route)")
	rate := fs.Int("rate", 100, "at most this many per second")
	maxN := fs.Int("max", 0, "redrive at most this many (0 = all selected)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), dlqUsage)
	}
	body := map[string]any{"pipeline": *pipeline, "filter": *filter, "ids": []string(ids), "to": *to, "rate": *rate, "max": *maxN}
	var out struct {
		Redriven int      `json:"redriven"`
		Skipped  int      `json:"skipped"`
		Failed   int      `json:"failed"`
		Errors   []string `json:"errors"`
	}
	c := newClient(*addr, *token)
	c.http.Timeout = 0 // a rate-limited redrive may take long; Ctrl-C (ctx) ends it
	if err := c.do(ctx, "POST", "/v1/deadletters/redrive", body, &out); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(out)
	}
	fmt.Printf("redriven %d, skipped %d (redriven before), failed %d\n", out.Redriven, out.Skipped, out.Failed)
	for _, e := range out.Errors {
		fmt.Println("  " + e)
	}
	if out.Failed > 0 {
		return errSilent
	}
	return nil
}
