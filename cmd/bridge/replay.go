package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Route replays (docs/queues.md): bridge replay PIPELINE --route R
// --from OFFSET|TIME [--to ...] [--rate N] [--dlq QUEUE] [--detach]
// starts a task on the running bridge that re-sends a range of the log (or
// the events a dead-letter queue's messages name) through one route, and
// follows it until it ends, printing its progress. Ctrl-C cancels the task
// unless --detach was given, which only starts it. bridge replays [ID]
// lists tasks or shows one; bridge replays cancel ID stops one.

type routeReplayOptions struct {
	route, to, dlq string
	rate           int
	detach         bool
	fs             *flag.FlagSet
}

func routeReplayFlags(fs *flag.FlagSet) *routeReplayOptions {
	o := &routeReplayOptions{fs: fs}
	fs.StringVar(&o.route, "route", "", "replay through this route into its target (a task; the route's checkpoint does not move)")
	fs.StringVar(&o.to, "to", "", "with --route: stop before this RFC3339 time or PARTITION:OFFSET[,...] or OFFSET (default: the end of the log)")
	fs.IntVar(&o.rate, "rate", 1000, "with --route: events read per second, 0 = unlimited")
	fs.StringVar(&o.dlq, "dlq", "", "with --route: replay the events this dead-letter queue's messages name (bridge-event-id), instead of --from/--to")
	fs.BoolVar(&o.detach, "detach", false, "with --route: start the task and return its id")
	return o
}

// used reports whether a route-replay-only flag was given.
func (o *routeReplayOptions) used() bool {
	set := false
	o.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "to", "rate", "dlq", "detach":
			set = true
		}
	})
	return set
}

// replayStatus is the API's ReplayStatus, as the CLI reads it.
type replayStatus struct {
	ID           string `json:"id"`
	Pipeline     string `json:"pipeline"`
	Route        string `json:"route"`
	State        string `json:"state"`
	Error        string `json:"error"`
	PerSecond    int    `json:"per_second"`
	DLQ          string `json:"dead_letter_queue"`
	StartedAt    string `json:"started_at"`
	Total        int64  `json:"total"`
	Read         int64  `json:"read"`
	Sent         int64  `json:"sent"`
	DeadLettered int64  `json:"dead_lettered"`
	Dropped      int64  `json:"dropped"`
	RuleErrors   int64  `json:"rule_errors"`
	Skipped      int64  `json:"skipped"`
	Partitions   []struct {
		Partition int32 `json:"partition"`
		From      int64 `json:"from"`
		To        int64 `json:"to"`
		Next      int64 `json:"next"`
	} `json:"partitions"`
}

func routeReplay(ctx context.Context, c *client, pipeline, from string, o *routeReplayOptions, output string) error {
	body := map[string]any{"route": o.route, "per_second": o.rate}
	switch {
	case o.dlq != "":
		if from != "" || o.to != "" {
			return errors.New("--dlq replays the events the queue's messages name: no --from or --to")
		}
		body["dead_letter_queue"] = o.dlq
	case from == "":
		return errors.New("replay --route needs --from (or --dlq)")
	default:
		b, err := routeBound(ctx, c, pipeline, from)
		if err != nil {
			return fmt.Errorf("--from %w", err)
		}
		for k, v := range b {
			body[k] = v
		}
		if o.to != "" {
			to, err := routeBound(ctx, c, pipeline, o.to)
			if err != nil {
				return fmt.Errorf("--to %w", err)
			}
			if _, ok := to["from"]; ok {
				return errors.New("--to is a time or offsets (omit it for the end of the log)")
			}
			body["to"] = to
		}
	}
	var st replayStatus
	if err := c.do(ctx, "POST", "/v1/pipelines/"+url.PathEscape(pipeline)+"/replays", body, &st); err != nil {
		return err
	}
	if o.detach {
		if output == "json" {
			return printJSON(st)
		}
		fmt.Printf("%s started: follow it with `bridge replays %s`\n", st.ID, st.ID)
		return nil
	}
	return followReplay(ctx, c, st, output)
}

// routeBound is replayBound plus a bare OFFSET, which applies to every
// partition of the pipeline's topic.
func routeBound(ctx context.Context, c *client, pipeline, v string) (map[string]any, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return replayBound(v)
	}
	var p struct {
		Topic string `json:"topic"`
	}
	if err := c.do(ctx, "GET", "/v1/pipelines/"+url.PathEscape(pipeline), nil, &p); err != nil {
		return nil, err
	}
	var t topicWire
	if err := c.do(ctx, "GET", "/v1/topics/"+url.PathEscape(p.Topic), nil, &t); err != nil {
		return nil, err
	}
	offs := map[string]int64{}
	for _, part := range t.Partitions {
		offs[strconv.Itoa(int(part.Partition))] = n
	}
	return map[string]any{"offset": offs}, nil
}

// followReplay polls a task until it ends, printing its progress to
// stderr once a second; Ctrl-C cancels it.
func followReplay(ctx context.Context, c *client, st replayStatus, output string) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for st.State == "running" {
		select {
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.do(cctx, "DELETE", "/v1/replays/"+url.PathEscape(st.ID), nil, &st); err != nil {
				return fmt.Errorf("interrupted; cancelling %s failed: %w", st.ID, err)
			}
			fmt.Fprintf(os.Stderr, "\ninterrupted: %s cancelled\n", st.ID)
			return printReplay(st, output)
		case <-tick.C:
		}
		if err := c.do(ctx, "GET", "/v1/replays/"+url.PathEscape(st.ID), nil, &st); err != nil && ctx.Err() == nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\r%s", progressLine(st))
	}
	fmt.Fprintln(os.Stderr)
	if err := printReplay(st, output); err != nil {
		return err
	}
	if st.State != "done" {
		return fmt.Errorf("%s %s: %s", st.ID, st.State, st.Error)
	}
	return nil
}

func progressLine(st replayStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: read %d", st.ID, st.State, st.Read)
	if st.Total > 0 {
		fmt.Fprintf(&b, " of %d (%.0f%%)", st.Total, 100*float64(st.Read)/float64(st.Total))
		if st.PerSecond > 0 && st.State == "running" {
			fmt.Fprintf(&b, ", ETA %s", (time.Duration(st.Total-st.Read) * time.Second / time.Duration(st.PerSecond)).Round(time.Second))
		}
	}
	fmt.Fprintf(&b, ", sent %d, dead-lettered %d, skipped %d   ", st.Sent, st.DeadLettered, st.Skipped)
	return b.String()
}

func printReplay(st replayStatus, output string) error {
	if output == "json" {
		return printJSON(st)
	}
	fmt.Printf("%s %s/%s %s: read %d, sent %d, dead-lettered %d, dropped %d, rule errors %d, skipped %d\n",
		st.ID, st.Pipeline, st.Route, st.State, st.Read, st.Sent, st.DeadLettered, st.Dropped, st.RuleErrors, st.Skipped)
	for _, p := range st.Partitions {
		fmt.Printf("  partition %d: %d..%d, next %d\n", p.Partition, p.From, p.To, p.Next)
	}
	if st.Error != "" {
		fmt.Printf("  error: %s\n", st.Error)
	}
	return nil
}

// cmdReplays: bridge replays [ID] | bridge replays cancel ID.
func cmdReplays(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replays", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := newClient(*addr, *token)
	rest := fs.Args()
	switch {
	case len(rest) == 2 && rest[0] == "cancel":
		var st replayStatus
		if err := c.do(ctx, "DELETE", "/v1/replays/"+url.PathEscape(rest[1]), nil, &st); err != nil {
			return err
		}
		return printReplay(st, *output)
	case len(rest) == 1:
		var st replayStatus
		if err := c.do(ctx, "GET", "/v1/replays/"+url.PathEscape(rest[0]), nil, &st); err != nil {
			return err
		}
		return printReplay(st, *output)
	case len(rest) > 0:
		return errors.New("usage: bridge replays [ID] | bridge replays cancel ID")
	}
	var out struct {
		Replays []replayStatus `json:"replays"`
	}
	if err := c.do(ctx, "GET", "/v1/replays", nil, &out); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(out)
	}
	w := table()
	fmt.Fprintln(w, "ID\tPIPELINE\tROUTE\tSTATE\tREAD\tTOTAL\tSENT\tDEAD-LETTERED\tSKIPPED\tSTARTED")
	for _, st := range out.Replays {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", st.ID, st.Pipeline, st.Route, st.State, st.Read, st.Total,
			st.Sent, st.DeadLettered, st.Skipped, st.StartedAt)
	}
	return w.Flush()
}
