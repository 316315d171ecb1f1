package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs/httpbridge"
)

// newServer returns the app's HTTP handler:
//
//	access log
//	└─ GET /healthz                   this instance's health, never replayed
//	└─ CrossOriginProtection          refuses cross-site form posts (CSRF)
//	   └─ httpbridge                  replays writes refused on a replica;
//	      │                           read-your-writes with a __txid cookie
//	      └─ the routes
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
	routes.HandleFunc("GET /posts/create", a.create)
	routes.HandleFunc("POST /posts/store", a.store)
	routes.Handle("GET /static/", cacheFor(time.Hour, http.StripPrefix("/static/", http.FileServerFS(static))))

	// Tokens would need state shared by every instance, or a secret; the
	// browser's Sec-Fetch-Site and Origin headers need neither.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(a.forbidden))

	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", a.health)
	root.Handle("/", csrf.Handler(bridge.Handler(routes)))
	return accessLog(log, root), nil
}

// cacheFor lets clients cache the responses of h for d.
func cacheFor(d time.Duration, h http.Handler) http.Handler {
	value := fmt.Sprintf("public, max-age=%d", int(d/time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", value)
		h.ServeHTTP(w, r)
	})
}

// accessLog logs each request once it is answered, with the fly-replay
// header of a replayed write and the Fly-Replay-Src of a replayed request,
// so that a replay can be followed from one instance's log to the other's.
// Health checks and static files are logged at Debug.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/static/") {
			level = slog.LevelDebug
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.Status()),
			slog.Duration("duration", time.Since(start)),
		}
		if v := w.Header().Get(httpbridge.HeaderReplay); v != "" {
			attrs = append(attrs, slog.String("fly_replay", v))
		}
		if v := r.Header.Get(httpbridge.HeaderReplaySrc); v != "" {
			attrs = append(attrs, slog.String("replayed_from", v))
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
