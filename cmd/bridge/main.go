// Command bridge is the event gateway: `bridge run -c FILE` runs it, the
// other subcommands validate configs, test rules, and talk to a running
// bridge over its HTTP API. Wiring only: the work is in the packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `bridge: one event backbone, bridged to Kafka, RabbitMQ and SQS.

Usage:
  bridge run -c FILE [--log-format text|json] [--log-level info]
  bridge validate -c FILE
  bridge test -c FILE [CASES.yaml...]
  bridge produce TOPIC [--key K] [-H name=value]... [VALUE...]   (stdin: one value per line)
  bridge tail TOPIC [--from earliest|latest|OFFSET|RFC3339] [--follow] [--partition N] [--filter EXPR]
            [--transform FILE [--pipeline NAME]]   (preview a pipeline's outputs; nothing is sent)
  bridge topics | bridge pipelines | bridge queues [redrive DLQ [--to QUEUE]]
  bridge replay PIPELINE --from earliest|latest|RFC3339|P:O[,P:O...]       (rewind the checkpoint)
  bridge replay PIPELINE --route R --from OFFSET|RFC3339|P:O[,...] [--to ...] [--rate N] [--detach]
  bridge replay PIPELINE --route R --dlq QUEUE [--rate N]   (re-send through one route; the checkpoint stays)
  bridge replays [ID] | bridge replays cancel ID
  bridge reload [-c FILE] [--dry-run] [--force] [--shadow | --canary PCT] | --promote | --rollback
  bridge config versions | bridge config show N | bridge config shadow   (docs/reload.md)
  bridge dlq list [--pipeline P] [--filter EXPR] | dlq show ID | dlq redrive [--filter EXPR] [--to T] [--rate N]
  bridge migrate --from URL --to URL [--verify] [--report FILE] [--filter EXPR] [--key EXPR] [--follow|--limit N]
  bridge version

Client subcommands talk to a running bridge: --addr (default http://127.0.0.1:8080,
or $BRIDGE_ADDR), --token (or $BRIDGE_TOKEN), -o table|json.
`

func main() {
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, rest)
	case "validate":
		err = cmdValidate(rest)
	case "test":
		err = cmdTest(rest)
	case "produce":
		err = cmdProduce(ctx, rest)
	case "tail":
		err = cmdTail(ctx, rest)
	case "topics":
		err = cmdTopics(ctx, rest)
	case "pipelines":
		err = cmdPipelines(ctx, rest)
	case "queues":
		err = cmdQueues(ctx, rest)
	case "replay":
		err = cmdReplay(ctx, rest)
	case "replays":
		err = cmdReplays(ctx, rest)
	case "reload":
		err = cmdReload(ctx, rest)
	case "config":
		err = cmdConfig(ctx, rest)
	case "dlq":
		err = cmdDLQ(ctx, rest)
	case "migrate":
		err = cmdMigrate(ctx, rest)
	case "version", "--version", "-v":
		printVersion()
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "bridge: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errSilent):
		return 1
	default:
		fmt.Fprintf(os.Stderr, "bridge %s: %v\n", cmd, err)
		return 1
	}
}

// errSilent is returned by commands that already printed their failure.
var errSilent = errors.New("failed")

func printVersion() {
	fmt.Printf("bridge %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
				fmt.Printf("  %s=%s\n", s.Key, s.Value)
			}
		}
	}
}
