package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of the configuration read from the environment.
const (
	defaultHost       = "127.0.0.1" // loopback: the deploy kit sets LISTEN_ADDR=:8080
	defaultPort       = "8080"
	defaultSchemaWait = 2 * time.Minute
	// defaultDatabasePath is relative to the working directory: run from
	// the clone's root, the database is the clone's own (data/ is ignored
	// by git).
	defaultDatabasePath = "data/posts.db"
)

// loopbackHosts are the host names a browser on this machine uses to reach a
// local instance; they are always in the default AllowedHosts.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// config is the app's configuration; loadConfig reads it from the
// environment.
type config struct {
	// Addr is the address to listen on: $LISTEN_ADDR, else
	// "127.0.0.1:" + $PORT, loopback only.
	Addr string
	// AllowedHosts are the host names (ports aside) that requests may name
	// in their Host header: $ALLOWED_HOSTS, comma-separated, "*" for any;
	// else the loopback names and the listen address's host. They stop DNS
	// rebinding: a page on another site whose name resolves to 127.0.0.1
	// reaches the app with its own name as Host, and a same-origin Origin.
	// Nil means any host.
	AllowedHosts []string
	// DatabasePath is the SQLite file: $DATABASE_PATH, else data/posts.db
	// in the working directory. Under LiteFS it must be inside the mount.
	DatabasePath string
	// InstanceID names this instance as LiteFS names the primary (on Fly.io
	// the machine ID): $FLY_MACHINE_ID, else the host name.
	InstanceID string
	// Region is shown in the page footer: $FLY_REGION.
	Region string
	// SchemaWait bounds how long a replica waits at start-up for the primary
	// to create the schema: $SCHEMA_WAIT, a Go duration.
	SchemaWait time.Duration
	// CheckinEvery is $CHECKIN_EVERY, how often the instance records its
	// check-in (checkin.go); 0 turns the job off.
	CheckinEvery time.Duration
	// LogLevel is $LOG_LEVEL: debug, info, warn or error.
	LogLevel slog.Level
	// Forward says how to reach the primary off Fly.io (forward.go).
	Forward forwarding
	// LiteFSAPI is $LITEFS_HTTP_ADDR, LiteFS's HTTP API (the addr of
	// litefs.yml's http: section, which LiteFS's exec child inherits). The
	// driver follows the node's role from its event stream instead of
	// reading the mount on every write.
	LiteFSAPI string
}

// loadConfig reads the configuration through getenv (os.Getenv in main),
// filling in defaults, so that the app runs with no environment at all.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		Addr:         getenv("LISTEN_ADDR"),
		DatabasePath: getenv("DATABASE_PATH"),
		InstanceID:   getenv("FLY_MACHINE_ID"),
		Region:       getenv("FLY_REGION"),
		LiteFSAPI:    getenv("LITEFS_HTTP_ADDR"),
		SchemaWait:   defaultSchemaWait,
		CheckinEvery: defaultCheckinEvery,
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
		cfg.Addr = net.JoinHostPort(defaultHost, port)
	} else if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		errs = append(errs, fmt.Errorf("LISTEN_ADDR=%q: %v", cfg.Addr, err))
	}
	cfg.AllowedHosts = allowedHosts(getenv("ALLOWED_HOSTS"), cfg.Addr)
	if cfg.AllowedHosts != nil && len(cfg.AllowedHosts) == 0 {
		errs = append(errs, fmt.Errorf("ALLOWED_HOSTS=%q: want host names, or *", getenv("ALLOWED_HOSTS")))
	}
	if cfg.DatabasePath == "" {
		cfg.DatabasePath = defaultDatabasePath
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
	errs = append(errs, envDuration(getenv, "SCHEMA_WAIT", "90s", &cfg.SchemaWait),
		envDuration(getenv, "CHECKIN_EVERY", "1m, or 0 for none", &cfg.CheckinEvery))
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

// allowedHosts returns the host allow-list: the comma-separated names of
// value (empty if it names none), nil if one of them is "*", or by default the loopback names and the host of the
// listen address addr, unless that host is empty or unspecified (0.0.0.0
// names no host a browser would use).
func allowedHosts(value, addr string) []string {
	value = strings.TrimSpace(value)
	if value == "*" {
		return nil
	}
	hosts := []string{} // not nil, which would allow any host
	if value != "" {
		for h := range strings.SplitSeq(value, ",") {
			switch h = normalHost(h); h {
			case "*":
				return nil
			case "":
			default:
				hosts = append(hosts, h)
			}
		}
		return hosts
	}
	hosts = append(hosts, loopbackHosts...)
	if host, _, err := net.SplitHostPort(addr); err == nil {
		ip := net.ParseIP(host)
		if h := normalHost(host); h != "" && !slices.Contains(hosts, h) && (ip == nil || !ip.IsUnspecified()) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// envDuration sets *d from the variable name when it is set, to a
// duration of at least 0; example shows a good value in the error.
func envDuration(getenv func(string) string, name, example string, d *time.Duration) error {
	s := getenv(name)
	if s == "" {
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%s=%q: want a duration such as %s", name, s, example)
	}
	*d = v
	return nil
}

// normalHost is the host name of a Host header value or an allow-list
// entry, without its port or IPv6 brackets, in lower case, without a final
// dot.
func normalHost(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// DSN returns the go-sqlite3 DSN for the database: a file: URI (so that any
// character in the path is safe) in WAL mode, waiting up to 5 s for locks.
func (c config) DSN() string {
	u := url.URL{Path: filepath.ToSlash(c.DatabasePath)}
	dsn := "file:" + u.EscapedPath() + "?_journal_mode=WAL&_busy_timeout=5000"
	if c.LiteFSAPI != "" {
		dsn += "&_litefs_api=" + url.QueryEscape(c.LiteFSAPI)
	}
	return dsn
}
