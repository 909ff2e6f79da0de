package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/bridgeio/bridge/console"
	"github.com/bridgeio/bridge/console/journey"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/pipelines"
)

// The web console (issue 16, docs/console.md) at /console on the HTTP
// listener: wiring only.

// newJournal returns the message-journey recorder the engine feeds, or nil
// when the console is off (then the engine records nothing).
func newJournal(cfg *pipelines.Config) *journey.Recorder {
	if !cfg.Console.Enabled {
		return nil
	}
	return journey.New(0)
}

// engineJournal keeps a nil recorder a nil interface.
func engineJournal(j *journey.Recorder) engine.Journal {
	if j == nil {
		return nil
	}
	return j
}

type consoleDeps struct {
	backbone    engine.Backbone
	engine      *engine.Engine
	broker      *engine.Broker
	deadLetters *engine.DeadLetters
	journal     *journey.Recorder
	log         *slog.Logger
}

// openConsole builds the console. It returns its handler (nil when off),
// a function that starts its sampler and returns the function that stops
// it and waits, and a close function.
func openConsole(ctx context.Context, cfg *pipelines.Config, d consoleDeps) (http.Handler, func() func(), func(), error) {
	noop := func() {}
	if !cfg.Console.Enabled {
		return nil, func() func() { return noop }, noop, nil
	}
	tokens := map[string]string{}
	for _, t := range cfg.Auth.Tokens {
		tokens[t.Token] = t.Role
	}
	retention := cfg.Backbone.Retention.String()
	if cfg.Backbone.RetentionBytes > 0 {
		retention += fmt.Sprintf(", %d bytes per partition", int64(cfg.Backbone.RetentionBytes))
	}
	if cfg.Backbone.Type == "kafka" {
		retention = "as the Kafka cluster's topic config says"
	}
	con, err := console.Open(console.Options{Backbone: d.backbone, Engine: d.engine, Broker: d.broker, DeadLetters: d.deadLetters,
		Journey: d.journal, Tokens: tokens, Config: cfg.Console, Dir: filepath.Join(cfg.DataDir, "console"),
		Logger: d.log.With("component", "console"), Retention: retention})
	if err != nil {
		return nil, nil, nil, err
	}
	run := func() func() {
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := con.Run(runCtx); err != nil {
				d.log.Error("console stopped", "err", err)
			}
		})
		return func() { cancel(); wg.Wait() }
	}
	closeFn := func() {
		if err := con.Close(); err != nil {
			d.log.Error("close console", "err", err)
		}
	}
	d.log.Info("web console enabled", "path", console.Base+"/", "auth", len(tokens) > 0)
	return con, run, closeFn, nil
}
