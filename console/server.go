// Package console is bridge's web console: the operator's view of the
// backbone's topics, the embedded broker's queues, the pipelines, dead
// letters and each event's journey, served by `bridge run` at /console on
// the HTTP listener behind the HTTP API's tokens and roles.
//
// Pages are rendered on the server (templ components in console/views);
// htmx swaps fragments, its SSE extension keeps the overview live, and
// uPlot draws charts. All three are pinned files embedded in the binary
// (console/static): no internet and no npm at run time or build time.
//
// Live data comes from a sampler (sampler.go) that reads the engine's
// counters once per tick and keeps the newest Snapshot; pages render from
// it, so the cost of an open tab does not depend on the event rate. The
// SSE hub renders each tick's fragments once for all tabs.
//
// Lifecycle: Open loads the audit log and the history file and starts
// nothing; Run samples until its context ends; Close saves the history and
// closes the audit log (idempotent).
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"
	"github.com/bridgeio/bridge/console/audit"
	"github.com/bridgeio/bridge/console/history"
	"github.com/bridgeio/bridge/console/journey"
	"github.com/bridgeio/bridge/console/mask"
	"github.com/bridgeio/bridge/console/sse"
	"github.com/bridgeio/bridge/console/static"
	"github.com/bridgeio/bridge/console/views"
	"github.com/bridgeio/bridge/engine"
	"github.com/bridgeio/bridge/pipelines"
)

// Options configure the console.
type Options struct {
	Backbone    engine.Backbone
	Engine      *engine.Engine      // nil: no pipelines
	Broker      *engine.Broker      // nil: no embedded broker
	DeadLetters *engine.DeadLetters // nil: no dead-letter topics
	Journey     *journey.Recorder   // nil: journeys show checkpoints only
	// Tokens maps each API token to its role (admin, producer, consumer);
	// empty means no auth, as for the HTTP API.
	Tokens map[string]string
	Config pipelines.Console
	// Retention describes the backbone's retention for the topic pages,
	// e.g. "168h, 10GiB per partition".
	Retention string
	// Dir holds audit.log and history.bin (DATA/console); "" keeps both in
	// memory only.
	Dir    string
	Logger *slog.Logger
	Now    func() time.Time
	// Tick is the sampling period (default 1s); Keepalive the SSE comment
	// interval on idle streams (default 15s).
	Tick      time.Duration
	Keepalive time.Duration
}

// Base is the URL prefix the console is served under.
const Base = "/console"

// Server is the console. It is an http.Handler for Base and everything
// below it; safe for concurrent use.
type Server struct {
	opts       Options
	base       string
	log        *slog.Logger
	mux        *http.ServeMux
	ttl        time.Duration
	masker     *mask.Masker
	sessions   sessions
	loginLimit *limiter
	audit      *audit.Log
	history    *history.Ring
	hub        *sse.Hub
	live       *liveRing
	jobs       *jobs

	snap atomic.Pointer[Snapshot]
	// sampleMu serialises sampling (Run's ticks and on-demand samples for
	// pages) and guards prev, the previous raw counters.
	sampleMu sync.Mutex
	prev     *counters

	closeOnce sync.Once
	stop      context.CancelFunc // ends jobs and streams; set by Open
	ctx       context.Context
}

// Open builds the console: it opens the audit log and loads the history
// file under opts.Dir. It starts no goroutine.
func Open(opts Options) (*Server, error) {
	if opts.Backbone == nil {
		return nil, errors.New("console: no backbone")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.Keepalive <= 0 {
		opts.Keepalive = 15 * time.Second
	}
	if opts.Config.SessionTTL <= 0 {
		opts.Config.SessionTTL = pipelines.Duration(pipelines.DefaultSessionTTL)
	}
	if opts.Config.MaxRedriveRate <= 0 {
		opts.Config.MaxRedriveRate = pipelines.DefaultMaxRedriveRate
	}
	s := &Server{opts: opts, base: Base, log: opts.Logger, mux: http.NewServeMux(),
		ttl:        time.Duration(opts.Config.SessionTTL),
		masker:     mask.New(opts.Config.Mask.Fields, opts.Config.Mask.Headers),
		sessions:   sessions{byID: map[string]*session{}},
		loginLimit: &limiter{limit: 10, window: time.Minute, fails: map[string][]time.Time{}},
		history:    history.New(history.Options{}),
		hub:        sse.NewHub(32),
		live:       newLiveRing(300),
		jobs:       newJobs(100),
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	auditPath := ""
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
		auditPath = filepath.Join(opts.Dir, "audit.log")
		if err := s.history.Load(filepath.Join(opts.Dir, "history.bin")); err != nil {
			// A damaged history costs charts, not operation: start empty.
			s.log.Warn("console history not loaded; starting empty", "err", err)
			s.history = history.New(history.Options{})
		}
	}
	a, err := audit.Open(auditPath, 10000)
	if err != nil {
		return nil, fmt.Errorf("console audit log: %w", err)
	}
	s.audit = a
	s.routes()
	s.resample(opts.Now())
	return s, nil
}

// Run samples every Tick, publishes the overview's live fragments to open
// tabs, and writes a history point per minute, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	lastSave := s.opts.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			return nil
		case <-t.C:
			now := s.opts.Now()
			live := s.hub.Subscribers() > 0
			if !live && now.Sub(s.snapshot().At) < idleSample {
				continue // nobody watches: sample less often (pages sample on demand)
			}
			snap := s.resample(now)
			s.record(snap)
			if live {
				s.publish(snap)
			}
			if s.opts.Dir != "" && now.Sub(lastSave) >= time.Minute {
				lastSave = now
				if err := s.history.Save(filepath.Join(s.opts.Dir, "history.bin")); err != nil {
					s.log.Warn("console history not saved", "err", err)
				}
			}
		}
	}
}

// Close ends running jobs and streams, saves the history and closes the
// audit log. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stop()
		s.jobs.wait()
		if s.opts.Dir != "" {
			err = s.history.Save(filepath.Join(s.opts.Dir, "history.bin"))
		}
		err = errors.Join(err, s.audit.Close())
	})
	return err
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Only this origin: scripts, styles, the SSE connection. This is also
	// what keeps a console page from reaching anything off the machine.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := s.mux
	read := func(pattern string, h http.HandlerFunc) { m.HandleFunc(pattern, s.guard(false, h)) }
	act := func(pattern string, h http.HandlerFunc) { m.HandleFunc(pattern, s.guard(true, h)) }
	b := s.base
	m.Handle("GET "+b+"/static/", http.StripPrefix(b+"/static", static.Handler()))
	m.HandleFunc("GET "+b, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, b+"/", http.StatusMovedPermanently) })
	m.HandleFunc("GET "+b+"/login", s.loginPage)
	m.HandleFunc("POST "+b+"/login", s.login)
	m.HandleFunc("POST "+b+"/logout", s.guard(false, s.logout))
	m.HandleFunc("GET "+b+"/theme", s.theme)
	read("GET "+b+"/{$}", s.overview)
	read("GET "+b+"/sse/overview", s.overviewStream)
	read("GET "+b+"/api/live.json", s.liveJSON)
	read("GET "+b+"/api/history.json", s.historyJSON)
	read("GET "+b+"/topics", s.topics)
	read("GET "+b+"/topics/{topic}", s.topic)
	read("GET "+b+"/topics/{topic}/tail", s.tail)
	read("GET "+b+"/topics/{topic}/export", s.export)
	read("GET "+b+"/queues", s.queues)
	read("GET "+b+"/queues/{queue}", s.queuePage)
	act("POST "+b+"/queues/{queue}/redrive/preview", s.queueRedrivePreview)
	act("POST "+b+"/queues/{queue}/redrive", s.queueRedrive)
	read("GET "+b+"/deadletters", s.deadLetters)
	act("POST "+b+"/deadletters/redrive/preview", s.deadLetterRedrivePreview)
	act("POST "+b+"/deadletters/redrive", s.deadLetterRedrive)
	read("GET "+b+"/jobs/{id}", s.jobPage)
	act("POST "+b+"/jobs/{id}/cancel", s.jobCancel)
	read("GET "+b+"/pipelines", s.pipelinesPage)
	read("GET "+b+"/pipelines/{name}", s.pipelinePage)
	read("POST "+b+"/pipelines/{name}/playground", s.playground)
	act("POST "+b+"/pipelines/{name}/replay/preview", s.replayPreview)
	act("POST "+b+"/pipelines/{name}/replay", s.replay)
	read("GET "+b+"/journey", s.journeyPage)
	read("GET "+b+"/history", s.historyPage)
	read("GET "+b+"/audit", s.auditPage)
	m.HandleFunc(b+"/", s.guard(false, func(w http.ResponseWriter, r *http.Request) {
		s.renderStatus(w, r, principalOf(r.Context()), http.StatusNotFound, "no such page: "+r.URL.Path)
	}))
}

// page builds the layout data for a request.
func (s *Server) page(r *http.Request, title, nav string) views.Page {
	p := principalOf(r.Context())
	theme := "auto"
	if c, err := r.Cookie("bridge_theme"); err == nil && (c.Value == "light" || c.Value == "dark") {
		theme = c.Value
	}
	return views.Page{Title: title, Nav: nav, Base: s.base, Who: p.who, Role: p.role, AuthOff: len(s.opts.Tokens) == 0,
		CSRF: p.csrf, Theme: theme, Path: r.URL.RequestURI(), Static: func(name string) string { return static.Path(s.base+"/static", name) }}
}

// theme sets the theme cookie and goes back to the page it came from.
func (s *Server) theme(w http.ResponseWriter, r *http.Request) {
	set := r.URL.Query().Get("set")
	if set != "light" && set != "dark" && set != "auto" {
		set = "auto"
	}
	http.SetCookie(w, &http.Cookie{Name: "bridge_theme", Value: set, Path: s.base, MaxAge: 365 * 24 * 3600,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, safeNext(s.base, r.URL.Query().Get("back")), http.StatusSeeOther)
}

// render writes a component; a render error after the header is logged.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil && r.Context().Err() == nil {
		s.log.Warn("console render failed", "path", r.URL.Path, "err", err)
	}
}

// renderStatus shows an error page (or a fragment for htmx requests).
func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, p principal, status int, msg string) {
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, p))
	if r.Header.Get("HX-Request") != "" {
		s.render(w, r, status, views.ErrorFragment(msg))
		return
	}
	pg := s.page(r, http.StatusText(status), "")
	pg.Error = msg
	s.render(w, r, status, views.StatusPage(pg, status))
}

// idleSample is the sampling period while no tab streams the overview;
// it bounds what an idle console costs (a sample of 5,000 topics and
// 5,000 queues takes tens of milliseconds).
const idleSample = 5 * time.Second

// snapshot returns the newest sample.
func (s *Server) snapshot() *Snapshot { return s.snap.Load() }

// resample takes and stores a new sample.
func (s *Server) resample(now time.Time) *Snapshot {
	s.sampleMu.Lock()
	defer s.sampleMu.Unlock()
	snap := s.sample(now)
	s.snap.Store(snap)
	return snap
}

// freshSnapshot is the newest sample, taken now if it is older than two
// ticks (the sampler slows down while no tab is live).
func (s *Server) freshSnapshot() *Snapshot {
	now := s.opts.Now()
	if snap := s.snapshot(); now.Sub(snap.At) <= 2*s.opts.Tick {
		return snap
	}
	return s.resample(now)
}

// who names the requester for the audit log.
func who(r *http.Request) string { return principalOf(r.Context()).who }

func trimLower(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// StopStreams ends every open SSE stream and running job (at shutdown:
// streams never go idle, so http.Server.Shutdown would wait for them).
func (s *Server) StopStreams() { s.stop() }
