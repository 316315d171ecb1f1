package main

import (
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs/httpbridge"
)

// newServer returns the app's HTTP handler:
//
//	access log
//	└─ security headers                  nosniff, no framing, Cache-Control
//	   ├─ GET /healthz                   this instance's health, never replayed
//	   ├─ GET /status                    role, TXID, lag and the bridge's counts (httpbridge)
//	   └─ Host allow-list                refuses names of other sites (DNS rebinding)
//	      └─ CrossOriginProtection       refuses cross-site form posts (CSRF)
//	         └─ httpbridge               replays writes refused on a replica;
//	            │                        read-your-writes with a __txid cookie
//	            └─ the routes
//
// No route is marked as a write: the bridge learns from the driver, through
// each request's context, that a write was refused.
func newServer(cfg config, db *sqlx.DB, log *slog.Logger) (http.Handler, error) {
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := staticFiles()
	if err != nil {
		return nil, err
	}
	// With DB, the bridge also gives read-your-writes: a __txid cookie after
	// a write, which a replica waits for before it serves that client.
	// Off Fly.io (deploy/compose, deploy/kubernetes) it forwards writes to
	// the primary itself instead of answering with fly-replay.
	replay, err := cfg.Forward.replayer(log)
	if err != nil {
		return nil, fmt.Errorf("forwarding: %w", err)
	}
	bridge, err := httpbridge.New(httpbridge.Config{InstanceID: cfg.InstanceID, DB: db.DB, Logger: log, Replay: replay})
	if err != nil {
		return nil, fmt.Errorf("httpbridge: %w", err)
	}
	a := &app{cfg: cfg, db: db, posts: postStore{db: db}, pages: pages, log: log, now: time.Now}

	routes := http.NewServeMux()
	routes.HandleFunc("GET /{$}", a.home)
	routes.HandleFunc("GET /posts", a.list)
	routes.HandleFunc("GET /posts/{id}", a.show)
	routes.HandleFunc("GET /nodes", a.nodes)
	routes.HandleFunc("GET /posts/create", a.create)
	routes.HandleFunc("POST /posts/store", a.store)
	routes.Handle("GET /static/", cacheFor(time.Hour, http.StripPrefix("/static/", http.FileServerFS(noDirs{static}))))

	// Tokens would need state shared by every instance, or a secret; the
	// browser's Sec-Fetch-Site and Origin headers need neither.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(a.forbidden))

	// The health check answers whatever Host the checker names (Fly.io's
	// checks do not use the app's public name); it changes nothing.
	root := http.NewServeMux()
	root.Handle("GET /healthz", http.HandlerFunc(a.health))
	root.Handle("GET /status", bridge.StatusHandler())
	root.Handle("/", hostCheck(cfg.AllowedHosts, log, csrf.Handler(bridge.Handler(routes))))
	return accessLog(log, securityHeaders(root)), nil
}

// cacheFor lets clients cache the responses of h for d.
func cacheFor(d time.Duration, h http.Handler) http.Handler {
	value := fmt.Sprintf("public, max-age=%d", int(d/time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", value)
		h.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows the app's own stylesheet and forms, and no
// framing by any site (frame-ancestors; X-Frame-Options for old browsers).
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries. Cache-Control
// is a default that handlers replace: static files may be cached, and a
// response that sets or clears the flash cookie must not be stored.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// hostCheck answers 400 to a request whose Host is not in allowed (nil
// allows any). CrossOriginProtection compares Origin with Host, so it
// cannot see DNS rebinding: there the attacker's page and the Host header
// both name the attacker's domain, which resolves to this machine.
func hostCheck(allowed []string, log *slog.Logger, next http.Handler) http.Handler {
	if allowed == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(allowed, normalHost(r.Host)) {
			log.WarnContext(r.Context(), "request for an unknown host refused", "host", capped(r.Host),
				"method", r.Method, "path", capped(r.URL.Path))
			http.Error(w, "Unknown host: this app answers only to the names in ALLOWED_HOSTS.", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noDirs is a file system in which directories do not exist, so that
// http.FileServer serves files and never lists a directory.
type noDirs struct{ fs.FS }

func (n noDirs) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}

// maxLogValue bounds, in bytes, a client-controlled value in a log line.
const maxLogValue = 256

// capped returns s, cut to maxLogValue bytes (at a character boundary) with
// a note of how much was left out, so that a client cannot write long lines
// into the log.
func capped(s string) string {
	if len(s) <= maxLogValue {
		return s
	}
	cut := maxLogValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes more)", s[:cut], len(s)-cut)
}

// accessLog logs each request once it is answered, with the fly-replay
// header of a replayed write and the Fly-Replay-Src of a replayed request,
// so that a replay can be followed from one instance's log to the other's.
// Health checks and static files are logged at Debug. Values the client
// chose are capped in length.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/status" || strings.HasPrefix(r.URL.Path, "/static/") {
			level = slog.LevelDebug
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", capped(r.Method)),
			slog.String("path", capped(r.URL.Path)),
			slog.Int("status", rec.Status()),
			slog.Duration("duration", time.Since(start)),
		}
		if v := w.Header().Get(httpbridge.HeaderReplay); v != "" {
			attrs = append(attrs, slog.String("fly_replay", capped(v)))
		}
		if v := r.Header.Get(httpbridge.HeaderReplaySrc); v != "" {
			attrs = append(attrs, slog.String("replayed_from", capped(v)))
		}
		log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// statusRecorder remembers the status of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Status returns the status sent, 200 if the handler sent none.
func (s *statusRecorder) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach the underlying writer, for
// Flush and the deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
