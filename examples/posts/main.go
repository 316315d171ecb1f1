// Command posts is the reference app of github.com/litefs-sql/litefs: a
// small blog on one SQLite database that LiteFS replicates to every
// instance. Any instance serves reads; a write that reaches a replica is
// refused by the litefs driver and replayed on the primary by httpbridge.
//
// It runs with no setup (go run ./examples/posts) on a local file, and on
// Fly.io with the files in deploy/. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs"
)

// shutdownTimeout bounds the wait for requests in flight at shutdown. It
// fits in fly.toml's kill_timeout, after which the machine is killed.
const shutdownTimeout = 5 * time.Second

func main() {
	// LiteFS passes SIGINT or SIGTERM on to the app it started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "posts:", err)
		os.Exit(1)
	}
}

// run serves the app until ctx ends, then shuts it down gracefully.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))

	// The directory exists under LiteFS (the mount); locally it may not.
	if err := os.MkdirAll(filepath.Dir(cfg.DatabasePath), 0o755); err != nil {
		return err
	}
	db, err := sqlx.Open(litefs.DriverName, cfg.DSN())
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("starting", "instance", cfg.InstanceID, "database", cfg.DatabasePath)
	if err := migrate(ctx, db, cfg.SchemaWait, log); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped while waiting for the schema")
			return nil
		}
		return err
	}

	defer startJobs(ctx, cfg, db, log)() // stops them before db.Close

	handler, err := newServer(cfg, db, log)
	if err != nil {
		return err
	}
	srv := newHTTPServer(handler, log)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "url", localURL(ln.Addr()))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// startJobs starts the app's background jobs, and returns a function that
// stops them and waits until they have.
func startJobs(ctx context.Context, cfg config, db *sqlx.DB, log *slog.Logger) (stop func()) {
	if cfg.CheckinEvery <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runCheckins(ctx, db, cfg.InstanceID, cfg.CheckinEvery, log)
	}()
	return func() { cancel(); <-done }
}

// newHTTPServer returns the server for handler, with timeouts that bound
// what a slow or idle client can hold.
func newHTTPServer(handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// localURL is a URL to open in a browser for a listener's address.
func localURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return ""
	}
	host := "localhost"
	if !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port)) + "/"
}
