package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bridgeio/bridge/connectors/kafka"
	"github.com/bridgeio/bridge/embedded-broker/amqpapi"
	"github.com/bridgeio/bridge/embedded-broker/commitlog"
	"github.com/bridgeio/bridge/embedded-broker/queue"
	"github.com/bridgeio/bridge/embedded-broker/sqsapi"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/engine/httpapi"
	"github.com/bridgeio/bridge/internal/leanhttp"
	"github.com/bridgeio/bridge/pipelines"
)

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// loadPlan loads and validates a config; problems are printed one per line
// as FILE:LINE:COL: path: message and reported as errSilent.
func loadPlan(path string) (*pipelines.Plan, error) {
	plan, err := pipelines.Load(path)
	if err != nil {
		printProblems(err)
		return nil, errSilent
	}
	return plan, nil
}

func printProblems(err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			fmt.Fprintln(os.Stderr, e)
		}
		return
	}
	fmt.Fprintln(os.Stderr, err)
}

func cmdValidate(args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	cfg := fs.String("c", "", "config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfg == "" {
		return errors.New("usage: bridge validate -c FILE")
	}
	plan, err := loadPlan(*cfg)
	if err != nil {
		return err
	}
	fmt.Printf("%s: valid (%d pipelines, %d topics, %d queues, %d exchanges)\n", *cfg, len(plan.Pipelines),
		len(plan.Config.Backbone.Topics), len(plan.Config.Broker.Queues), len(plan.Config.Broker.Exchanges))
	return nil
}

func cmdTest(args []string) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg := fs.String("c", "", "config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfg == "" {
		return errors.New("usage: bridge test -c FILE [CASES.yaml...]")
	}
	plan, err := loadPlan(*cfg)
	if err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		// Default: FILE's sibling NAME.cases.yaml.
		guess := strings.TrimSuffix(*cfg, filepath.Ext(*cfg)) + ".cases.yaml"
		if _, err := os.Stat(guess); err != nil {
			return fmt.Errorf("no CASES.yaml given and %s does not exist", guess)
		}
		files = []string{guess}
	}
	var passed, failed int
	for _, f := range files {
		p, fl, err := pipelines.RunCases(plan, f, os.Stdout)
		if err != nil {
			return err
		}
		passed += p
		failed += fl
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return errSilent
	}
	return nil
}

func cmdRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("c", "", "config file")
	logFormat := fs.String("log-format", "text", "text | json")
	logLevel := fs.String("log-level", "info", "debug | info | warn | error")
	pprofAddr := fs.String("pprof", "", "serve Go's net/http/pprof profiles on this address (e.g. 127.0.0.1:6060); off when empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return errors.New("usage: bridge run -c FILE")
	}
	// SIGHUP reloads once everything runs (reload.go); until then it must
	// not end the process, which is its default action.
	signal.Ignore(syscall.SIGHUP)
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	if *pprofAddr != "" {
		bound, stop, err := servePprof(*pprofAddr)
		if err != nil {
			return fmt.Errorf("--pprof %s: %w", *pprofAddr, err)
		}
		defer stop()
		log.Info("pprof listening", "addr", bound)
	}
	// The bytes are read once: they are what the version store records.
	data, err := os.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	plan, err := pipelines.Parse(*cfgPath, data, os.LookupEnv)
	if err != nil {
		printProblems(err)
		return errSilent
	}
	return run(ctx, plan, log, startedConfig{path: *cfgPath, data: data})
}

// startedConfig is the config file bridge run was started with: SIGHUP
// and `bridge reload` without -c re-read it (reload.go).
type startedConfig struct {
	path string
	data []byte
}

// run opens the stores, starts the listeners and the engine, and on ctx
// cancellation stops in order: ingest first, then pipelines (drain and final
// checkpoints), then the stores.
func run(ctx context.Context, plan *pipelines.Plan, log *slog.Logger, started startedConfig) error {
	cfg := plan.Config
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return err
	}
	// Config versions (issue 17, reload.go): the started file is version 1,
	// the newest stored version if unchanged, or a new version.
	store, version, err := openVersions(cfg, started)
	if err != nil {
		return err
	}
	defer store.Close()
	// Telemetry (cmd/bridge/telemetry.go): providers from telemetry:.
	tel, stopTelemetry, err := newTelemetry(cfg, log)
	if err != nil {
		return err
	}
	defer stopTelemetry()
	onSync, err := tel.FsyncObserver()
	if err != nil {
		log.Error("fsync metric not registered", "err", err)
	}
	backbone, embeddedLog, closeBackbone, err := openBackbone(ctx, plan, log, onSync)
	if err != nil {
		return err
	}
	defer closeBackbone()

	qm, err := queue.Open(queue.Options{
		Dir:           filepath.Join(cfg.DataDir, "queues"),
		Fsync:         cfg.Backbone.Fsync,
		FsyncInterval: time.Duration(cfg.Backbone.FsyncInterval),
		Logger:        log.With("component", "queue"),
	})
	if err != nil {
		return fmt.Errorf("open queues: %w", err)
	}
	defer func() {
		if err := qm.Close(); err != nil {
			log.Error("close queues", "err", err)
		}
	}()
	broker, err := engine.DeclareBroker(cfg, qm)
	if err != nil {
		return err
	}
	conns := connectors{log: log.With("component", "connector")}
	journal := newJournal(cfg) // console.go: the console's message journey; nil when the console is off
	eng, err := engine.Build(plan, engine.Deps{Backbone: backbone, Broker: broker, External: conns.sink, Source: conns.source,
		Options: engine.Options{Logger: log.With("component", "engine"), ShutdownTimeout: time.Duration(cfg.ShutdownTimeout), Telemetry: tel,
			Journal: engineJournal(journal), Version: version}})
	if err != nil {
		return err
	}
	defer observeEngine(tel, eng, broker, backbone, log)() // telemetry gauges
	// Startup line per connection, no secrets (startup.go).
	logConnections(cfg, log)
	// Dead letters (issue 7, dlq.go): browse and redrive over the HTTP API.
	deadLetters, closeDeadLetters, err := openDeadLetters(cfg, eng, log)
	if err != nil {
		return err
	}
	defer closeDeadLetters()

	var amqpShown atomic.Pointer[amqpapi.Server] // set once amqp_api serves; reloads add to it
	reloader := newReloader(plan, version, eng, broker, embeddedLog, store, started.path, &amqpShown, log)
	tokens := map[string]httpapi.Role{}
	for _, t := range cfg.Auth.Tokens {
		tokens[t.Token] = httpapi.Role(t.Role)
	}
	// The web console (console.go): /console on the HTTP listener.
	con, runConsole, closeConsole, err := openConsole(ctx, cfg, consoleDeps{backbone: backbone, engine: eng, broker: broker,
		deadLetters: deadLetters, journal: journal, log: log})
	if err != nil {
		return err
	}
	defer closeConsole()
	api := httpapi.New(httpapi.Options{Backbone: backbone, Pipelines: eng, Queues: broker, Tokens: tokens,
		MaxRequestSize: int64(cfg.HTTP.MaxRequestSize), Logger: log.With("component", "http"),
		Telemetry: tel, Metrics: tel.Handler(), DeadLetters: deadLetters, Console: con, // telemetry: ingest spans, /metrics; /v1/deadletters
		Replays: eng,       // route replays: /v1/pipelines/{name}/replays, /v1/replays
		Config:  reloader}) // reload.go: /v1/config
	httpTLS, err := optionalListenerTLS(cfg.HTTP.TLS)
	if err != nil {
		return fmt.Errorf("http.tls: %w", err)
	}
	httpSrv, err := listen(cfg.HTTP.Listen, api, httpTLS, log.With("component", "http"))
	if err != nil {
		return fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	if s, ok := con.(interface{ StopStreams() }); ok {
		httpSrv.srv.RegisterOnShutdown(s.StopStreams) // SSE streams never go idle: end them so Shutdown can finish
	}
	log.Info("HTTP API listening", "addr", httpSrv.addr, "tls", cfg.HTTP.TLS != nil, "auth", len(tokens) > 0)
	var sqsSrv *server
	if cfg.SQSAPI.Listen != "" {
		var creds []sqsapi.Credential
		for _, c := range cfg.SQSAPI.Credentials {
			creds = append(creds, sqsapi.Credential{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey})
		}
		sqsTLS, err := optionalListenerTLS(cfg.SQSAPI.TLS)
		if err != nil {
			return fmt.Errorf("sqs_api.tls: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.SQSAPI.Listen)
		if err != nil {
			return fmt.Errorf("sqs_api.listen %s: %w", cfg.SQSAPI.Listen, err)
		}
		sqs := sqsapi.New(qm, sqsapi.Options{Addr: ln.Addr().String(), Credentials: creds, Logger: log.With("component", "sqsapi"),
			TracerProvider: spanProvider(tel)}) // telemetry: receive/delete spans
		sqsSrv = serveLean(ln, sqs, sqsTLS)
		log.Info("SQS API listening", "addr", sqsSrv.addr, "tls", cfg.SQSAPI.TLS != nil, "signature_v4", len(creds) > 0)
	}
	kafkaSrv, err := startKafkaAPI(cfg, embeddedLog, log) // kafkaapi.go: Kafka clients on the embedded log
	if err != nil {
		return err
	}

	amqpSrv, err := startAMQP(cfg, qm, broker, log) // issue 19: amqp.go
	if err != nil {
		return err
	}
	if amqpSrv != nil {
		amqpShown.Store(amqpSrv.srv)
	}

	engineDone := make(chan error, 1)
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	go func() { engineDone <- eng.Run(engineCtx) }()
	defer runConsole()()                 // samples until shutdown; waits for its goroutine
	defer onSIGHUP(ctx, reloader, log)() // reload.go: SIGHUP re-reads the config file
	log.Info("bridge running", "pipelines", len(plan.Pipelines), "config_version", version)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-engineDone:
		engineDone <- runErr
		log.Error("engine stopped", "err", runErr)
	}
	// Stop intake first so that nothing new is acknowledged, then drain.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	httpSrv.shutdown(shutdownCtx)
	if sqsSrv != nil {
		sqsSrv.shutdown(shutdownCtx)
	}
	amqpSrv.shutdown(shutdownCtx, log)
	kafkaSrv.stop()
	stopEngine()
	if err := <-engineDone; err != nil {
		runErr = err
	}
	log.Info("stopped")
	return runErr
}

// openBackbone opens the embedded log, or connects to Kafka when
// backbone.type is kafka, and creates the configured topics. The
// *commitlog.Log is nil for a Kafka backbone.
func openBackbone(ctx context.Context, plan *pipelines.Plan, log *slog.Logger, onSync func(time.Duration)) (engine.Backbone, *commitlog.Log, func(), error) {
	cfg := plan.Config
	started := time.Now()
	if cfg.Backbone.Type == "kafka" {
		conn := cfg.Connections[cfg.Backbone.Connection]
		topics := map[string]int{}
		for name, t := range cfg.Backbone.Topics {
			topics[name] = t.Partitions
		}
		kb, err := kafka.NewBackbone(ctx, kafka.BackboneConfig{Client: kafkaClient(conn), Topics: topics,
			Logger: log.With("component", "kafka-backbone")})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("open Kafka backbone (connection %s): %w", cfg.Backbone.Connection, err)
		}
		log.Info("backbone open", "type", "kafka", "connection", cfg.Backbone.Connection, "brokers", conn.Brokers,
			"topics", len(topics), "took", time.Since(started).Round(time.Millisecond))
		return kb, nil, func() { _ = kb.Close() }, nil
	}
	lg, err := commitlog.Open(commitlog.Options{
		Dir:            filepath.Join(cfg.DataDir, "log"),
		Fsync:          commitlog.FsyncPolicy(cfg.Backbone.Fsync),
		FsyncInterval:  time.Duration(cfg.Backbone.FsyncInterval),
		SegmentBytes:   int64(cfg.Backbone.SegmentBytes),
		Retention:      time.Duration(cfg.Backbone.Retention),
		RetentionBytes: int64(cfg.Backbone.RetentionBytes),
		Logger:         log.With("component", "commitlog"),
		OnSync:         onSync,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open backbone: %w", err)
	}
	closeLog := func() {
		if err := lg.Close(); err != nil {
			log.Error("close backbone", "err", err)
		}
	}
	for _, name := range sortedKeys(cfg.Backbone.Topics) {
		if err := lg.CreateTopic(name, cfg.Backbone.Topics[name].Partitions); err != nil {
			closeLog()
			return nil, nil, nil, fmt.Errorf("topic %s: %w", name, err)
		}
	}
	for _, tr := range lg.Truncations() {
		log.Warn("recovery cut a torn tail", "truncation", fmt.Sprintf("%+v", tr))
	}
	log.Info("backbone open", "type", "embedded", "dir", filepath.Join(cfg.DataDir, "log"), "fsync", cfg.Backbone.Fsync,
		"topics", len(cfg.Backbone.Topics), "took", time.Since(started).Round(time.Millisecond))
	return engine.Embedded(lg), lg, closeLog, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// server is an http.Server, or for the SQS API a leanhttp.Server, running
// on its own listener.
type server struct {
	srv  *http.Server
	lean *leanhttp.Server
	addr string
	done chan error
}

// serveLean serves the SQS API with internal/leanhttp: the same handler as
// under net/http at less CPU per request (docs/sqs-api.md, "The server's
// own CPU per message"). Limits: 16 KiB of request head; bodies are
// bounded by the SQS API itself (2 MiB, answered with SQS's
// RequestTooLarge error, so no MaxBodyBytes here); 10 s to send a head, a
// minute for a whole request or an answer, 2 minutes idle.
func serveLean(ln net.Listener, h http.Handler, tlsCfg *tls.Config) *server {
	ls := &leanhttp.Server{Handler: h, MaxHeaderBytes: 16 << 10,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		WriteTimeout: time.Minute, TLSConfig: tlsCfg}
	s := &server{lean: ls, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() {
		err := ls.Serve(ln) // TLS when TLSConfig is set
		if errors.Is(err, leanhttp.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s
}

func listen(addr string, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return serve(ln, h, tlsCfg, log), nil
}

// serve runs net/http on ln; its own errors (failed TLS handshakes, a
// panicking handler) go to log as warnings, not to the standard logger.
func serve(ln net.Listener, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) *server {
	s := &server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: tlsCfg, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() {
		var err error
		if tlsCfg != nil {
			err = s.srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			err = s.srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s
}

func (s *server) shutdown(ctx context.Context) {
	if s.lean != nil {
		_ = s.lean.Shutdown(ctx) // closes what is left when ctx ends
		<-s.done
		return
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}
