package litefs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
)

// DriverName is the name the package registers with database/sql.
const DriverName = "litefs"

// DefaultClassCacheSize is how many SQL strings each connection remembers the
// read/write verdict of before it forgets them all and starts over.
const DefaultClassCacheSize = 512

func init() {
	sql.Register(DriverName, &Driver{})
	// sqlx binds an unknown driver's placeholders as "?" already; naming
	// the bind type makes sqlx.BindType agree for tools that ask. It costs
	// a program that does not use sqlx about 300 KB (sqlx and regexp).
	sqlx.BindDriver(DriverName, sqlx.QUESTION)
}

// Driver is the database/sql driver registered as "litefs". Its DSNs are
// go-sqlite3's; see [NewConnector] for the options a DSN cannot carry.
type Driver struct {
	// ctr is the Connector this Driver was returned by (Connector.Driver),
	// so that package functions given a *sql.DB reach its Connector through
	// db.Driver() without taking a connection from the pool. nil for the
	// registered Driver.
	ctr *Connector
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open opens a connection with the default options.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	c, err := NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	// A Connector of one connection shares nothing: no source to run.
	c.Close()
	return c.Connect(context.Background())
}

// OpenConnector parses dsn once for every connection of a sql.DB, so that
// sql.Open reports a malformed DSN at once.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	return NewConnector(dsn)
}

// An Option configures a [Connector].
type Option func(*config)

type config struct {
	mountDir       string
	mountDirSet    bool
	sqlite         *sqlite3.SQLiteDriver
	log            *slog.Logger
	classCacheSize int

	// The shared role and position source (watcher.go).
	liteFSAPI    string
	liteFSAPISet bool
	roleEvery    time.Duration
	maxWaiters   int

	// Write forwarding through LiteFS's HALT lock (halt.go).
	forwardWrites bool
	haltLimit     time.Duration // MaxHaltHold; shorter in tests
}

// WithMountDir sets the LiteFS mount directory the node's role is read from.
// The default is the directory of the database file.
func WithMountDir(dir string) Option {
	return func(c *config) { c.mountDir, c.mountDirSet = dir, true }
}

// WithSQLiteDriver makes connections with d, for its ConnectHook and
// Extensions. The driver registers a commit hook on every connection made
// with a ConnectHook (to learn which writes committed), so a commit hook set
// by ConnectHook is replaced as the connection opens. Other connections
// register theirs when they first run for a [Tracker].
func WithSQLiteDriver(d *sqlite3.SQLiteDriver) Option {
	return func(c *config) { c.sqlite = d }
}

// WithLogger sets the logger for events an operator should see, such as an
// invalid .primary file. The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// WithClassCacheSize sets how many SQL strings each connection remembers the
// read/write verdict of; the default is [DefaultClassCacheSize].
func WithClassCacheSize(n int) Option {
	return func(c *config) { c.classCacheSize = n }
}

// WithForwardWrites makes every write of the handle forward itself to the
// primary through LiteFS's HALT lock when it runs on a replica: an
// autocommit write statement takes the lock for its duration, and a
// transaction that is not read-only takes it at BeginTx and keeps it to
// Commit or Rollback. Reads never take it. The DSN parameter
// _forward_writes=1 does the same. Use it for a second handle that a job
// runner or a migration tool writes through; see WithHalt for the cost and
// the waits. A write waits for the lock until its context ends, or for
// DefaultHaltWait.
func WithForwardWrites() Option {
	return func(c *config) { c.forwardWrites = true }
}

func newConfig(opts []Option) (config, error) {
	c := config{
		sqlite:         &sqlite3.SQLiteDriver{},
		log:            slog.Default(),
		classCacheSize: DefaultClassCacheSize,
		roleEvery:      DefaultRoleCheckInterval,
		maxWaiters:     DefaultMaxWaiters,
		haltLimit:      MaxHaltHold,
	}
	for _, opt := range opts {
		if opt == nil {
			return c, errors.New("litefs: nil Option")
		}
		opt(&c)
	}
	switch {
	case c.mountDirSet && c.mountDir == "":
		return c, errors.New("litefs: WithMountDir needs a directory")
	case c.sqlite == nil:
		return c, errors.New("litefs: WithSQLiteDriver needs a driver")
	case c.log == nil:
		return c, errors.New("litefs: WithLogger needs a logger")
	case c.classCacheSize < 1:
		return c, fmt.Errorf("litefs: WithClassCacheSize(%d): want at least 1", c.classCacheSize)
	}
	if err := c.checkSource(); err != nil {
		return c, err
	}
	if c.mountDirSet {
		dir, err := filepath.Abs(c.mountDir)
		if err != nil {
			return c, fmt.Errorf("litefs: mount directory: %w", err)
		}
		c.mountDir = dir
	}
	return c, nil
}

// Connector opens connections to one database; use it with sql.OpenDB when
// options are needed:
//
//	c, err := litefs.NewConnector("/litefs/app.db?_journal_mode=WAL", litefs.WithLogger(log))
//	db := sql.OpenDB(c)
type Connector struct {
	dsn       string
	info      dsnInfo
	cfg       config
	sawLiteFS atomic.Bool // a connection found the database on a LiteFS mount
	epoch     roleEpoch   // demotions seen by its connections and its source
	src       source      // the role and position source its connections share

	holdKeyOnce sync.Once
	holdKeyPath string // see holdKey
	realOnce    sync.Once
	real        string // see realPath
}

// holdKey returns the identity of the database whose position file is pos
// for HALT holds: pos with its directory's symlinks resolved, once per
// Connector, so that handles naming one database through different paths
// share one hold and one semaphore (a nested WithHalt through a symlinked
// mount would otherwise ask LiteFS for the lock it already holds).
func (c *Connector) holdKey(pos string) string {
	c.holdKeyOnce.Do(func() {
		dir := filepath.Dir(pos)
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		c.holdKeyPath = filepath.Join(dir, filepath.Base(pos))
	})
	return c.holdKeyPath
}

var _ driver.Connector = (*Connector)(nil)

// NewConnector validates dsn (any go-sqlite3 DSN) and opts. An in-memory or
// temporary database has no mount and is always writable, unless
// [WithMountDir] names one.
func NewConnector(dsn string, opts ...Option) (*Connector, error) {
	info, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &Connector{dsn: dsn, info: info, cfg: cfg}
	if err := c.checkJournalMode(); err != nil {
		return nil, err
	}
	return c, nil
}

// Connect opens a connection. go-sqlite3 cannot be interrupted while it
// opens a file, so ctx is only checked before.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The directory as it is before the open: a mount over it or under it
	// while SQLite opens the file would otherwise go unseen (newConn).
	dir := c.mountDir()
	before, beforeOK := statDir(dir)
	dc, err := c.cfg.sqlite.Open(c.dsn)
	if err != nil {
		// On a replica, go-sqlite3's set-up pragmas fail while the primary
		// has not created the database yet: that is a refusal too.
		if r := c.openRefusal(ctx, err); r != nil {
			return nil, r
		}
		// The DSN may hold credentials (_auth_pass): name the file only.
		return nil, fmt.Errorf("litefs: open %q: %w", c.info.path, err)
	}
	sc, ok := dc.(*sqlite3.SQLiteConn)
	if !ok {
		dc.Close()
		return nil, fmt.Errorf("litefs: go-sqlite3 returned %T, want *sqlite3.SQLiteConn", dc)
	}
	conn := newConn(sc, c)
	conn.probe.openedIn(dir, before, beforeOK)
	return conn, nil
}

// openRefusal returns the refusal a failed open amounts to (reported to
// ctx's Tracker), or nil. It keeps the prober, so that [WaitPrimary] can
// watch the node that refused.
func (c *Connector) openRefusal(ctx context.Context, err error) error {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrReadonly && se.Code != sqlite3.ErrCantOpen {
		return nil
	}
	dir := c.mountDir()
	if dir == "" {
		return nil
	}
	p := newProber(dir, c.cfg.log, &c.sawLiteFS)
	defer p.close() // WaitPrimary's later checks need no directory held open
	return refusal(ctx, p.check(), err)
}

// Driver returns a [Driver] that remembers c, so that functions given the
// *sql.DB (NodeStatus, WaitTXID) reach c without a pool connection.
func (c *Connector) Driver() driver.Driver { return &Driver{ctr: c} }

// connectorOf returns the Connector behind db, which must have been opened
// with the litefs driver (sql.Open("litefs", ...) or sql.OpenDB of a
// *Connector).
func connectorOf(db *sql.DB) (*Connector, error) {
	if db == nil {
		return nil, errors.New("litefs: nil *sql.DB")
	}
	d, ok := db.Driver().(*Driver)
	if !ok || d.ctr == nil {
		return nil, fmt.Errorf("litefs: the *sql.DB uses driver %T, not the litefs driver", db.Driver())
	}
	return d.ctr, nil
}

// mountDir returns the directory the node's role is read from, or "" for a
// database with no mount (in memory, temporary).
func (c *Connector) mountDir() string {
	if c.cfg.mountDirSet {
		return c.cfg.mountDir
	}
	if c.info.memory {
		return ""
	}
	return filepath.Dir(c.realPath())
}

// realPath returns the database file's absolute path with symbolic links
// resolved, as SQLite opens it ("" when it cannot be made absolute): a DSN
// naming a link to a file in the mount must watch the mount, not the link's
// directory. It is resolved once, as the event stream's source is made
// once: each resolution is several look-ups of the mount, and Connect asks
// for every connection it opens.
func (c *Connector) realPath() string {
	c.realOnce.Do(func() { c.real = resolvePath(c.info.path) })
	return c.real
}

// resolvePath returns path made absolute, with symbolic links resolved
// (through its directory when it does not exist); "" when it cannot be
// made absolute.
func resolvePath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}
