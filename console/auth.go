package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bridgeio/bridge/console/views"
)

// Authentication (docs/console.md, "Login and roles").
//
// The console accepts the HTTP API's tokens (auth.tokens) in two ways: an
// Authorization: Bearer header (scripts, tests), or a login form that
// exchanges the token for a session: a random 256-bit id in an HttpOnly,
// SameSite=Strict cookie scoped to /console (Secure on TLS). The session
// remembers the token's SHA-256, not the token, and ends after
// console.session_ttl, on logout, or when the process restarts. Every
// state-changing request with a session must carry the session's CSRF
// token (X-CSRF-Token header, which htmx sends, or a csrf form field).
//
// Roles: admin may act (redrive, replay); consumer reads (read-only
// console); producer may not use the console. With no tokens configured
// the console is open and everyone is admin, as the HTTP API is.

const (
	cookieName  = "bridge_console"
	maxSessions = 10000
)

type principal struct {
	role   string // admin | consumer
	who    string // role:fingerprint, for the audit log
	csrf   string
	bearer bool // authenticated by header: no CSRF needed
}

type session struct {
	principal
	tokenSum [32]byte
	expires  time.Time
}

// sessions is the in-memory session store. Lock order: sessions.mu only.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
}

func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// create starts a session for a valid token.
func (s *sessions) create(role, token string, now time.Time, ttl time.Duration) (string, *session) {
	id := randomHex(32)
	sess := &session{principal: principal{role: role, who: role + ":" + fingerprint(token), csrf: randomHex(16)},
		tokenSum: sha256.Sum256([]byte(token)), expires: now.Add(ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= maxSessions {
		s.evictLocked(now)
	}
	s.byID[id] = sess
	return id, sess
}

// evictLocked drops expired sessions, and the soonest to expire if the
// store is still full: the store is bounded whatever the login rate.
func (s *sessions) evictLocked(now time.Time) {
	var soonest string
	for id, sess := range s.byID {
		if now.After(sess.expires) {
			delete(s.byID, id)
			continue
		}
		if soonest == "" || sess.expires.Before(s.byID[soonest].expires) {
			soonest = id
		}
	}
	if len(s.byID) >= maxSessions && soonest != "" {
		delete(s.byID, soonest)
	}
}

func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.byID[id]
	if sess == nil {
		return nil
	}
	if now.After(sess.expires) {
		delete(s.byID, id)
		return nil
	}
	return sess
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

type ctxKey struct{}

func principalOf(ctx context.Context) principal {
	p, _ := ctx.Value(ctxKey{}).(principal)
	return p
}

// lookupToken returns the role of a token, comparing in constant time.
func (s *Server) lookupToken(token string) (string, bool) {
	for t, role := range s.opts.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return role, true
		}
	}
	return "", false
}

// authenticate finds who is asking: no auth, a bearer token, or a session.
func (s *Server) authenticate(r *http.Request) (principal, bool) {
	if len(s.opts.Tokens) == 0 {
		return principal{role: "admin", who: "anonymous", bearer: true}, true
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		role, known := s.lookupToken(tok)
		if !known {
			return principal{}, false
		}
		return principal{role: role, who: role + ":" + fingerprint(tok), bearer: true}, true
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return principal{}, false
	}
	sess := s.sessions.get(c.Value, s.opts.Now())
	if sess == nil {
		return principal{}, false
	}
	// The session is bound to its token: a token removed from the config
	// (after a restart, sessions are gone anyway) no longer authenticates.
	for t := range s.opts.Tokens {
		if sha256.Sum256([]byte(t)) == sess.tokenSum {
			return sess.principal, true
		}
	}
	return principal{}, false
}

// guard wraps a handler with authentication, the role check and, for
// state-changing methods, the CSRF check.
func (s *Server) guard(admin bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(r)
		if !ok {
			if r.Header.Get("Authorization") != "" || r.Header.Get("HX-Request") != "" || r.Header.Get("Accept") == "text/event-stream" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, s.base+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if p.role != "admin" && p.role != "consumer" {
			s.renderStatus(w, r, p, http.StatusForbidden, "role "+p.role+" may not use the console (needs consumer or admin)")
			return
		}
		if admin && p.role != "admin" {
			s.renderStatus(w, r, p, http.StatusForbidden, "this action needs the admin role; you are "+p.role+" (read-only)")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !p.bearer {
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				got = r.PostFormValue("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(p.csrf)) != 1 {
				s.renderStatus(w, r, p, http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	p := s.page(r, "Log in", "")
	s.render(w, r, http.StatusOK, views.Login(p, safeNext(s.base, r.URL.Query().Get("next"))))
}

// safeNext keeps a post-login redirect inside the console.
func safeNext(base, next string) string {
	if strings.HasPrefix(next, base+"/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		return next
	}
	return base + "/"
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	token := r.PostFormValue("token")
	next := safeNext(s.base, r.PostFormValue("next"))
	if !s.loginLimit.allow(clientIP(r), s.opts.Now()) {
		p := s.page(r, "Log in", "")
		p.Error = "too many failed logins; wait a minute"
		s.render(w, r, http.StatusTooManyRequests, views.Login(p, next))
		return
	}
	role, ok := s.lookupToken(token)
	if !ok || len(s.opts.Tokens) == 0 || (role != "admin" && role != "consumer") {
		s.loginLimit.fail(clientIP(r), s.opts.Now())
		p := s.page(r, "Log in", "")
		p.Error = "unknown token"
		if ok {
			p.Error = "role " + role + " may not use the console (needs consumer or admin)"
		}
		s.render(w, r, http.StatusUnauthorized, views.Login(p, next))
		return
	}
	id, _ := s.sessions.create(role, token, s.opts.Now(), s.ttl)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: s.base, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.ttl.Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.sessions.delete(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: s.base, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, s.base+"/login", http.StatusSeeOther)
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return host
}

// limiter allows at most limit failed logins per address per window; its
// map is bounded (cleared when full: an attacker spreading over many
// addresses gains at most one fresh window).
type limiter struct {
	limit  int
	window time.Duration
	mu     sync.Mutex
	fails  map[string][]time.Time
}

func (l *limiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.fails[addr][:0]
	for _, t := range l.fails[addr] {
		if now.Sub(t) < l.window {
			recent = append(recent, t)
		}
	}
	l.fails[addr] = recent
	return len(recent) < l.limit
}

func (l *limiter) fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 10000 {
		clear(l.fails)
	}
	l.fails[addr] = append(l.fails[addr], now)
}
