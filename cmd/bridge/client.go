package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// client talks to a running bridge over its HTTP API.
type client struct {
	addr  string
	token string
	http  *http.Client
}

func clientFlags(fs *flag.FlagSet) (*string, *string, *string) {
	addr := fs.String("addr", envOr("BRIDGE_ADDR", "http://127.0.0.1:8080"), "address of the running bridge's HTTP API")
	token := fs.String("token", os.Getenv("BRIDGE_TOKEN"), "bearer token (default $BRIDGE_TOKEN)")
	output := fs.String("o", "table", "output format: table | json")
	return addr, token, output
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newClient(addr, token string) *client {
	return &client{addr: strings.TrimRight(addr, "/"), token: token, http: &http.Client{Timeout: 60 * time.Second}}
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// do sends a request and decodes a JSON answer into out (when non-nil).
func (c *client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach bridge at %s (is `bridge run` running? set --addr): %w", c.addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return &apiError{resp.StatusCode, e.Error.Code, e.Error.Message}
		}
		return &apiError{resp.StatusCode, "http_error", strings.TrimSpace(string(data))}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table() *tabwriter.Writer { return tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0) }

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ",") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// cmdProduce: bridge produce TOPIC [--key K] [-H name=value]... [VALUE...]
// Without VALUE it reads stdin, one event value per line, in batches.
func cmdProduce(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	key := fs.String("key", "", "event key")
	var headers headerFlags
	fs.Var(&headers, "H", "header name=value (repeatable)")
	batch := fs.Int("batch", 100, "events per request when reading stdin")
	topic, rest, err := parseWithTopic(fs, args, "produce")
	if err != nil {
		return err
	}
	hs := map[string]string{}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, "=")
		if !ok {
			return fmt.Errorf("header %q: want name=value", h)
		}
		hs[name] = value
	}
	c := newClient(*addr, *token)
	mk := func(v string) map[string]any {
		ev := map[string]any{"value": jsonOrText(v)}
		if *key != "" {
			ev["key"] = *key
		}
		if len(hs) > 0 {
			ev["headers"] = hs
		}
		return ev
	}
	var sent int
	send := func(evs []map[string]any) error {
		var out struct {
			Offsets []struct{ Partition, Offset int64 } `json:"offsets"`
		}
		if err := c.do(ctx, "POST", "/v1/topics/"+url.PathEscape(topic)+"/events", evs, &out); err != nil {
			return err
		}
		sent += len(evs)
		if *output == "json" {
			return printJSON(out)
		}
		if len(rest) > 0 {
			for _, o := range out.Offsets {
				fmt.Printf("%s partition %d offset %d\n", topic, o.Partition, o.Offset)
			}
		}
		return nil
	}
	if len(rest) > 0 {
		evs := make([]map[string]any, len(rest))
		for i, v := range rest {
			evs[i] = mk(v)
		}
		return send(evs)
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var pending []map[string]any
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		pending = append(pending, mk(line))
		if len(pending) >= *batch {
			if err := send(pending); err != nil {
				return err
			}
			pending = pending[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(pending) > 0 {
		if err := send(pending); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "produced %d events to %s\n", sent, topic)
	return nil
}

// jsonOrText posts v as JSON when it parses, else as text.
func jsonOrText(v string) any {
	var j json.RawMessage
	if json.Unmarshal([]byte(v), &j) == nil {
		return j
	}
	return v
}

// parseWithTopic parses flags that may come before or after the TOPIC argument.
func parseWithTopic(fs *flag.FlagSet, args []string, cmd string) (string, []string, error) {
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return "", nil, fmt.Errorf("usage: bridge %s TOPIC [flags]", cmd)
	}
	topic := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return "", nil, err
	}
	return topic, fs.Args(), nil
}

type wireEvent struct {
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Key         *string           `json:"key"`
	Headers     map[string]string `json:"headers"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 string            `json:"value_base64,omitempty"`
	Timestamp   string            `json:"timestamp"`
}

type topicWire struct {
	Name       string `json:"name"`
	Partitions []struct {
		Partition   int32 `json:"partition"`
		StartOffset int64 `json:"start_offset"`
		EndOffset   int64 `json:"end_offset"`
	} `json:"partitions"`
}

// cmdTail: bridge tail TOPIC [--partition N] [--from earliest|latest|OFFSET|RFC3339] [--follow] [--filter EXPR]
// [--transform FILE [--pipeline NAME]]
func cmdTail(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	partition := fs.Int("partition", -1, "partition to read (default all)")
	from := fs.String("from", "earliest", "earliest | latest | OFFSET | RFC3339 time")
	follow := fs.Bool("follow", false, "keep waiting for new events")
	limit := fs.Int("limit", 0, "stop after this many events (0 = no limit)")
	filterSrc := fs.String("filter", "", `only events for which this rules expression holds, e.g. 'body.region == "eu"'`)
	transformFile := fs.String("transform", "", "preview: print what a pipeline of this config file would send for each event (nothing is sent)")
	pipelineName := fs.String("pipeline", "", "with --transform: the pipeline (default: the one reading TOPIC)")
	topic, _, err := parseWithTopic(fs, args, "tail")
	if err != nil {
		return err
	}
	filter, err := newEventFilter(*filterSrc)
	if err != nil {
		return err
	}
	var pv *preview
	if *transformFile != "" {
		plan, err := loadPlan(*transformFile)
		if err != nil {
			return err
		}
		if pv, err = newPreview(plan, *pipelineName, topic); err != nil {
			return err
		}
	}
	c := newClient(*addr, *token)
	var ti topicWire
	if err := c.do(ctx, "GET", "/v1/topics/"+url.PathEscape(topic), nil, &ti); err != nil {
		return err
	}
	type cursor struct {
		partition int32
		next      int64
		query     string
	}
	var cursors []*cursor
	for _, p := range ti.Partitions {
		if *partition >= 0 && int(p.Partition) != *partition {
			continue
		}
		cur := &cursor{partition: p.Partition}
		switch {
		case *from == "earliest":
			cur.next = p.StartOffset
		case *from == "latest":
			cur.next = p.EndOffset
		default:
			if o, err := strconv.ParseInt(*from, 10, 64); err == nil {
				cur.next = o
			} else if _, err := time.Parse(time.RFC3339Nano, *from); err == nil {
				cur.next = -1
				cur.query = "&timestamp=" + url.QueryEscape(*from)
			} else {
				return fmt.Errorf("--from %q: want earliest, latest, an offset or an RFC3339 time", *from)
			}
		}
		cursors = append(cursors, cur)
	}
	if len(cursors) == 0 {
		return fmt.Errorf("topic %s has no partition %d", topic, *partition)
	}
	printed := 0
	for {
		got := 0
		for _, cur := range cursors {
			q := fmt.Sprintf("?partition=%d&limit=500", cur.partition)
			if cur.next >= 0 {
				q += fmt.Sprintf("&offset=%d", cur.next)
			} else {
				q += cur.query
			}
			if *follow && len(cursors) == 1 {
				q += "&wait=10s"
			}
			var out struct {
				Events     []wireEvent `json:"events"`
				NextOffset int64       `json:"next_offset"`
			}
			if err := c.do(ctx, "GET", "/v1/topics/"+url.PathEscape(topic)+"/events"+q, nil, &out); err != nil {
				return err
			}
			cur.next = out.NextOffset
			for _, ev := range out.Events {
				if !filter.match(topic, ev) {
					continue
				}
				if pv != nil {
					pv.show(os.Stdout, topic, ev, *output)
				} else {
					printEvent(ev, *output)
				}
				printed++
				if *limit > 0 && printed >= *limit {
					return nil
				}
			}
			got += len(out.Events)
		}
		if got == 0 {
			if !*follow {
				return nil
			}
			if len(cursors) > 1 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func printEvent(ev wireEvent, output string) {
	if output == "json" {
		b, _ := json.Marshal(ev)
		fmt.Println(string(b))
		return
	}
	key := "-"
	if ev.Key != nil {
		key = *ev.Key
	}
	value := string(ev.Value)
	if ev.ValueBase64 != "" {
		value = "base64:" + ev.ValueBase64
	}
	fmt.Printf("%d/%d\t%s\tkey=%s\t%s\n", ev.Partition, ev.Offset, ev.Timestamp, key, value)
}

func cmdTopics(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("topics", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var out struct {
		Topics []topicWire `json:"topics"`
	}
	if err := newClient(*addr, *token).do(ctx, "GET", "/v1/topics", nil, &out); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(out)
	}
	tw := table()
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART\tEND\tEVENTS")
	for _, t := range out.Topics {
		for _, p := range t.Partitions {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", t.Name, p.Partition, p.StartOffset, p.EndOffset, p.EndOffset-p.StartOffset)
		}
	}
	return tw.Flush()
}

func cmdPipelines(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pipelines", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var out struct {
		Pipelines []struct {
			Name, Topic, State, Error string
			Routes                    []struct {
				Name, Target             string
				Read, Matched, Sent, Lag int64
				DeadLettered             int64 `json:"dead_lettered"`
				Dropped, Retries         int64
				RuleErrors               int64 `json:"rule_errors"`
				SendErrors               int64 `json:"send_errors"`
			}
		} `json:"pipelines"`
	}
	if err := newClient(*addr, *token).do(ctx, "GET", "/v1/pipelines", nil, &out); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(out)
	}
	tw := table()
	fmt.Fprintln(tw, "PIPELINE\tTOPIC\tSTATE\tROUTE\tTARGET\tLAG\tREAD\tSENT\tDEAD-LETTERED\tDROPPED\tRETRIES\tERRORS")
	for _, p := range out.Pipelines {
		for _, r := range p.Routes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", p.Name, p.Topic, p.State, r.Name, r.Target,
				r.Lag, r.Read, r.Sent, r.DeadLettered, r.Dropped, r.Retries, r.RuleErrors+r.SendErrors)
		}
		if p.Error != "" {
			fmt.Fprintf(tw, "%s\t\t\terror: %s\n", p.Name, p.Error)
		}
	}
	return tw.Flush()
}

// cmdQueues: bridge queues | bridge queues redrive DLQ [--to QUEUE]
func cmdQueues(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "redrive" {
		return cmdRedrive(ctx, args[1:])
	}
	fs := flag.NewFlagSet("queues", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var out struct {
		Queues []struct {
			Name             string
			FIFO             bool
			Visible, Delayed int
			InFlightJSON     int    `json:"in_flight"`
			DeadLetterQueue  string `json:"dead_letter_queue"`
			// docs/queues.md
			MaxPriority         int    `json:"max_priority,omitempty"`
			MessageTTL          string `json:"message_ttl,omitempty"`
			IdleTimeout         string `json:"idle_timeout,omitempty"`
			ExpiredDropped      int64  `json:"expired_dropped"`
			ExpiredDeadLettered int64  `json:"expired_dead_lettered"`
		} `json:"queues"`
	}
	if err := newClient(*addr, *token).do(ctx, "GET", "/v1/queues", nil, &out); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(out)
	}
	tw := table()
	fmt.Fprintln(tw, "QUEUE\tFIFO\tVISIBLE\tIN-FLIGHT\tDELAYED\tDEAD-LETTER-QUEUE\tMAX-PRIORITY\tTTL\tEXPIRED")
	for _, q := range out.Queues {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n", q.Name, q.FIFO, q.Visible, q.InFlightJSON, q.Delayed, q.DeadLetterQueue,
			dashIfZero(q.MaxPriority), dashIfEmpty(q.MessageTTL), q.ExpiredDropped+q.ExpiredDeadLettered)
	}
	return tw.Flush()
}

func cmdRedrive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("queues redrive", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	to := fs.String("to", "", "destination queue (default: each message's source queue)")
	maxN := fs.Int("max", 0, "move at most this many (0 = all)")
	rate := fs.Int("rate", 0, "at most this many messages per second (0 = unlimited)")
	dlq, _, err := parseWithTopic(fs, args, "queues redrive DLQ")
	if err != nil {
		return err
	}
	var out map[string]any
	body := map[string]any{"to": *to, "max": *maxN, "per_second": *rate}
	if err := newClient(*addr, *token).do(ctx, "POST", "/v1/queues/"+url.PathEscape(dlq)+"/redrive", body, &out); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(out)
	}
	fmt.Printf("moved %v messages out of %s\n", out["moved"], dlq)
	return nil
}

// cmdReplay: bridge replay PIPELINE --from earliest|latest|RFC3339|P:O[,P:O...]
// rewinds the pipeline's checkpoint; with --route R it re-sends a range of
// the log through that route instead (route replay, replay.go).
func cmdReplay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	addr, token, output := clientFlags(fs)
	from := fs.String("from", "", "earliest | latest | RFC3339 time | PARTITION:OFFSET[,PARTITION:OFFSET...] (with --route also OFFSET: every partition)")
	rf := routeReplayFlags(fs)
	name, _, err := parseWithTopic(fs, args, "replay PIPELINE --from ...")
	if err != nil {
		return err
	}
	c := newClient(*addr, *token)
	if rf.route != "" {
		return routeReplay(ctx, c, name, *from, rf, *output)
	}
	if rf.used() {
		return errors.New("--to, --rate, --dlq and --detach replay through a route: give --route")
	}
	if *from == "" {
		return errors.New("replay needs --from")
	}
	body, err := replayBound(*from)
	if err != nil {
		return fmt.Errorf("--from %w", err)
	}
	var out map[string]any
	if err := c.do(ctx, "POST", "/v1/pipelines/"+url.PathEscape(name)+"/replay", body, &out); err != nil {
		return err
	}
	if *output == "json" {
		return printJSON(out)
	}
	fmt.Printf("pipeline %s rewound: %v\n", name, out["offsets"])
	return nil
}

// replayBound turns a --from or --to value into the API's form:
// {"from": earliest|latest}, {"offset": {P: O}} or {"timestamp": T}.
func replayBound(v string) (map[string]any, error) {
	switch {
	case v == "earliest" || v == "latest":
		return map[string]any{"from": v}, nil
	case strings.Contains(v, ":") && !strings.Contains(v, "T"):
		offs := map[string]int64{}
		for _, part := range strings.Split(v, ",") {
			p, o, ok := strings.Cut(part, ":")
			n, err := strconv.ParseInt(o, 10, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("%q: want PARTITION:OFFSET", part)
			}
			offs[p] = n
		}
		return map[string]any{"offset": offs}, nil
	default:
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, fmt.Errorf("%q: want earliest, latest, an RFC3339 time or PARTITION:OFFSET", v)
		}
		return map[string]any{"timestamp": v}, nil
	}
}

func dashIfZero(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
