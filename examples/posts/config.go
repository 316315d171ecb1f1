package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Defaults of the configuration read from the environment.
const (
	defaultPort       = "8080"
	defaultSchemaWait = 2 * time.Minute
)

// config is the app's configuration; loadConfig reads it from the
// environment.
type config struct {
	// Addr is the address to listen on: $LISTEN_ADDR, else ":" + $PORT.
	Addr string
	// DatabasePath is the SQLite file: $DATABASE_PATH, else posts.db in the
	// user's cache directory. Under LiteFS it must be inside the mount.
	DatabasePath string
	// InstanceID names this instance as LiteFS names the primary (on Fly.io
	// the machine ID): $FLY_MACHINE_ID, else the host name.
	InstanceID string
	// Region is shown in the page footer: $FLY_REGION.
	Region string
	// SchemaWait bounds how long a replica waits at start-up for the primary
	// to create the schema: $SCHEMA_WAIT, a Go duration.
	SchemaWait time.Duration
	// LogLevel is $LOG_LEVEL: debug, info, warn or error.
	LogLevel slog.Level
	// Forward says how to reach the primary off Fly.io (forward.go).
	Forward forwarding
}

// loadConfig reads the configuration through getenv (os.Getenv in main),
// filling in defaults, so that the app runs with no environment at all.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		Addr:         getenv("LISTEN_ADDR"),
		DatabasePath: getenv("DATABASE_PATH"),
		InstanceID:   getenv("FLY_MACHINE_ID"),
		Region:       getenv("FLY_REGION"),
		SchemaWait:   defaultSchemaWait,
	}
	var errs []error
	if cfg.Addr == "" {
		port := getenv("PORT")
		if port == "" {
			port = defaultPort
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("PORT=%q: want a port number", port))
		}
		cfg.Addr = ":" + port
	} else if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		errs = append(errs, fmt.Errorf("LISTEN_ADDR=%q: %v", cfg.Addr, err))
	}
	if cfg.DatabasePath == "" {
		p, err := defaultDatabasePath()
		if err != nil {
			errs = append(errs, err)
		}
		cfg.DatabasePath = p
	}
	if p, err := filepath.Abs(cfg.DatabasePath); err == nil {
		cfg.DatabasePath = p
	}
	if cfg.InstanceID == "" {
		// LiteFS's default lease hostname, so that a replica's .primary
		// names the primary the way its own bridge names itself.
		host, err := os.Hostname()
		if err != nil {
			errs = append(errs, fmt.Errorf("no FLY_MACHINE_ID and no host name: %v", err))
		}
		cfg.InstanceID = host
	}
	if s := getenv("SCHEMA_WAIT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("SCHEMA_WAIT=%q: want a duration such as 90s", s))
		}
		cfg.SchemaWait = d
	}
	if s := getenv("LOG_LEVEL"); s != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(s)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", s))
		}
	}
	var err error
	if cfg.Forward, err = loadForwarding(getenv); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

// defaultDatabasePath is <user cache dir>/litefs-sql/posts/posts.db: a
// writable place that exists on a fresh machine whatever the working
// directory, and keeps the repository clean.
func defaultDatabasePath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no DATABASE_PATH and no user cache directory: %v", err)
	}
	return filepath.Join(dir, "litefs-sql", "posts", "posts.db"), nil
}

// DSN returns the go-sqlite3 DSN for the database: a file: URI (so that any
// character in the path is safe) in WAL mode, waiting up to 5 s for locks.
func (c config) DSN() string {
	u := url.URL{Path: filepath.ToSlash(c.DatabasePath)}
	return "file:" + u.EscapedPath() + "?_journal_mode=WAL&_busy_timeout=5000"
}
