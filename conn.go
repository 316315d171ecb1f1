package litefs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// Conn is a connection of the litefs driver. Reach it, and the go-sqlite3
// connection beneath, through (*sql.Conn).Raw:
//
//	err := conn.Raw(func(dc any) error {
//		sc := dc.(*litefs.Conn).SQLite()
//		return sc.RegisterFunc("slugify", slugify, true)
//	})
//
// Like every driver.Conn it is used by one goroutine at a time.
type Conn struct {
	sc    *sqlite3.SQLiteConn
	probe *prober  // nil: no mount, always primary
	pos   *posFile // <db>-pos, where LiteFS shows the TXID; shared by the Connector
	info  dsnInfo
	log   *slog.Logger

	// attached holds a prober for each attached database file outside the
	// main database's directory (attach.go); refreshed after every run of
	// a string that names ATTACH or DETACH.
	attached []*attachedDB

	classes   map[string]class
	cacheSize int

	// State SQLite keeps for this connection, owned by the statement runs
	// (run.go), which set it before a statement and re-establish it after.
	queryOnly qoState // PRAGMA query_only as the driver last set it
	roTx      bool    // inside a transaction begun with TxOptions.ReadOnly
	committed bool    // set by the commit hook, cleared once a run reports it
	hooked    bool    // the commit hook is registered (hookCommits)
	tx        *Tx     // the open transaction BeginTx began, or nil

	// attachedAny: a database other than main and temp is attached, from
	// any directory (refreshAttached); a commit may have written it.
	attachedAny bool
	prefetch    bool      // the running statement's Tracker wants its TXID: read it in the commit hook
	txidRead    *txidRead // begun by the commit hook while prefetch was set; taken by the run's end
	halt        connHalt  // write forwarding under LiteFS's HALT lock (halt_conn.go)

	epoch     *roleEpoch // the Connector's; nil without a mount
	seenEpoch uint64     // epoch's generation when query_only last followed it
}

// qoState is what the driver knows of PRAGMA query_only on a connection.
type qoState uint8

const (
	qoUnknown qoState = iota // a statement may have changed it: set it again before relying on it
	qoOff
	qoOn
)

// The optional interfaces are exactly those *sqlite3.SQLiteConn has, less the
// context-free Execer and Queryer that database/sql no longer needs.
var (
	_ driver.Conn               = (*Conn)(nil)
	_ driver.ConnBeginTx        = (*Conn)(nil)
	_ driver.ConnPrepareContext = (*Conn)(nil)
	_ driver.ExecerContext      = (*Conn)(nil)
	_ driver.QueryerContext     = (*Conn)(nil)
	_ driver.Pinger             = (*Conn)(nil)
	_ driver.Validator          = (*Conn)(nil)
)

func newConn(sc *sqlite3.SQLiteConn, ctr *Connector) *Conn {
	c := &Conn{
		sc:        sc,
		info:      ctr.info,
		log:       ctr.cfg.log,
		queryOnly: qoOff,
		cacheSize: ctr.cfg.classCacheSize,
		halt:      connHalt{forward: ctr.cfg.forwardWrites || ctr.info.forwardWrites, cfg: &ctr.cfg},
	}
	// What SQLite opened decides, not the DSN's text: go-sqlite3 ignores
	// mode=memory on a plain path, and SQLite reads a URI's last mode.
	// No file name means an in-memory or temporary database.
	file := sc.GetFilename("main")
	switch {
	case ctr.cfg.mountDirSet:
		c.probe = newProber(ctr.cfg.mountDir, ctr.cfg.log, &ctr.sawLiteFS)
	case file != "":
		c.probe = newProber(filepath.Dir(file), ctr.cfg.log, &ctr.sawLiteFS)
	}
	if c.probe != nil {
		c.probe.remember()
		c.probe.epoch = &ctr.epoch
		c.epoch = &ctr.epoch
	}
	c.seenEpoch = c.epoch.current()
	ctr.attach(c, file)
	if ctr.cfg.sqlite.ConnectHook != nil {
		// A commit hook the ConnectHook set is replaced now, not at the
		// first statement for a Tracker: it never runs, rather than runs
		// until some request comes.
		c.hookCommits()
	}
	// A connection opened on a replica starts under query_only, so that a
	// statement SQLite misjudges as a read cannot write either.
	if c.probe.check() != nil {
		c.setQueryOnly(true)
	}
	if ctr.info.queryOnly {
		c.queryOnly = qoOn
	}
	return c
}

// hookCommits registers the commit hook, the first time a statement or a
// transaction of this connection runs for a [Tracker], which hears of its
// commits: a connection that never does pays no callback from SQLite per
// commit (about 2% of a write on a local file). SQLite consults the hook
// when it commits, so registering it inside a transaction is in time.
func (c *Conn) hookCommits() {
	if c.hooked {
		return
	}
	c.hooked = true
	// SQLite calls the hook on this goroutine, inside the statement that
	// commits, and only for transactions that wrote.
	c.sc.RegisterCommitHook(func() int {
		c.committed = true
		switch {
		case c.prefetch && c.txidRead != nil:
			// A string of several statements that commits more than once
			// (a script) would begin a read per commit: TXID reads once
			// after the last instead.
			c.prefetch, c.txidRead = false, nil
		case c.prefetch:
			c.txidRead = startTXIDRead(c.pos, c.probe.watch)
		}
		return 0
	})
}

// IsValid reports whether database/sql may keep the connection in its pool:
// not once its directory was mounted over or unmounted from under it
// (a fresh connection opens the file the path shows now).
func (c *Conn) IsValid() bool { return !c.probe.movedNow() }

// SQLite returns the go-sqlite3 connection beneath. Statements run on it
// directly bypass the driver's checks: on a replica, write only through c.
func (c *Conn) SQLite() *sqlite3.SQLiteConn { return c.sc }

// CheckPrimary returns nil when this node may write, else the refusal a write
// would get. It touches the mount.
// A database attached from another directory is checked too.
func (c *Conn) CheckPrimary() error {
	if err := c.probe.check(); err != nil {
		return err
	}
	return c.checkAttached()
}

// classify returns the verdict on query, from its text or, on a cache miss,
// from SQLite. A statement that SQLite cannot prepare and that would write
// is refused on a replica (its schema trails the primary's); other failures
// return SQLite's error.
func (c *Conn) classify(ctx context.Context, query string) (class, error) {
	if cl, ok := c.classes[query]; ok {
		return cl, nil
	}
	if isMulti(query) {
		c.remember(query, classMaybe)
		return classMaybe, nil
	}
	if cl, ok := textClass(query, c.mountDir()); ok {
		if cl != classBackup { // the file system may change under its target
			c.remember(query, cl)
		}
		return cl, nil
	}
	ss, cl, err := c.compile(ctx, query)
	if err != nil {
		return 0, c.prepareFailed(ctx, query, err)
	}
	ss.Close()
	c.remember(query, cl)
	return cl, nil
}

func (c *Conn) remember(query string, cl class) {
	if c.classes == nil || len(c.classes) >= c.cacheSize {
		c.classes = make(map[string]class, min(c.cacheSize, 64))
	}
	c.classes[query] = cl
}

func (c *Conn) mountDir() string {
	if c.probe == nil {
		return ""
	}
	return c.probe.dir
}

// compile prepares the first statement of query, which textClass has not
// decided, under an authorizer that lets nothing change the connection while
// it compiles and that sees what sqlite3_stmt_readonly does not: a
// table-valued pragma function that writes (pragma_optimize, also inside a
// view), a function SQLite does not build in (registered by a ConnectHook or
// an extension: it may write through the connection), ATTACH and DETACH.
func (c *Conn) compile(ctx context.Context, query string) (*sqlite3.SQLiteStmt, class, error) {
	seen := classRead
	builtin := builtinFunctions()
	c.sc.RegisterAuthorizer(func(op int, arg1, arg2, _ string) int {
		switch op {
		case sqlite3.SQLITE_PRAGMA:
			if arg2 != "" {
				return sqlite3.SQLITE_DENY
			}
		case sqlite3.SQLITE_READ:
			if name, ok := cutPrefixFold(arg1, "pragma_"); ok && knownPragma(strings.ToLower(name)) {
				seen = worse(seen, pragmaFunctionClass(strings.ToLower(name)))
			}
		case sqlite3.SQLITE_FUNCTION:
			if !builtin[strings.ToLower(arg2)] {
				seen = worse(seen, classMaybe)
			}
		case sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH:
			seen = worse(seen, classMaybe)
		}
		return sqlite3.SQLITE_OK
	})
	ds, err := c.sc.PrepareContext(ctx, query)
	c.sc.RegisterAuthorizer(nil)
	if err != nil {
		return nil, 0, err
	}
	ss := ds.(*sqlite3.SQLiteStmt)
	return ss, worse(refine(query, ss.Readonly()), seen), nil
}

// prepareFailed returns what a statement SQLite could not prepare gets: a
// refusal wrapping SQLite's error when it would write (a guess from its
// keywords, see mayWrite) and this node may not, else SQLite's error. On a
// replica a read of a table it does not have yet gets SQLite's error too: the
// driver cannot tell a schema that lags from one that is wrong.
func (c *Conn) prepareFailed(ctx context.Context, query string, err error) error {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrError || !mayWrite(query) {
		return err
	}
	_, aerr := c.admit(ctx, classWrite, err)
	c.haltStatementDone() // nothing runs: end what admit began under a HALT hold
	if aerr != nil {
		return aerr
	}
	return err
}

// errManagedPragma refuses PRAGMA query_only = x, which would undo the
// driver's own use of it.
var errManagedPragma = errors.New("litefs: PRAGMA query_only is managed by the driver; " +
	"use sql.TxOptions{ReadOnly: true}, or _query_only=1 in the DSN")

// setQueryOnly sets PRAGMA query_only unless the DSN set it.
func (c *Conn) setQueryOnly(on bool) error {
	want := qoOff
	if on {
		want = qoOn
	}
	if c.info.queryOnly || c.queryOnly == want {
		return nil
	}
	q := "PRAGMA query_only = 0"
	if on {
		q = "PRAGMA query_only = 1"
	}
	if _, err := c.sc.ExecContext(context.Background(), q, nil); err != nil {
		c.queryOnly = qoUnknown
		return fmt.Errorf("litefs: %s: %w", q, err)
	}
	c.queryOnly = want
	return nil
}

// ExecContext runs query, refusing it first if it writes and this node may
// not. Reads never touch the mount.
func (c *Conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cl, err := c.classify(ctx, query)
	if err != nil {
		return nil, err
	}
	return runClass(c, ctx, cl, query, func() (driver.Result, error) { return c.sc.ExecContext(ctx, query, args) })
}

// QueryContext is ExecContext for statements that return rows; a write in
// it (RETURNING) is checked the same way, since go-sqlite3 runs the first
// step before returning.
func (c *Conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cl, err := c.classify(ctx, query)
	if err != nil {
		return nil, err
	}
	return queryClass(c, ctx, cl, query, func() (driver.Rows, error) { return c.sc.QueryContext(ctx, query, args) })
}

// PrepareContext prepares the first statement of query, as go-sqlite3 does;
// its verdict is kept, and a write is checked each time it runs. A PRAGMA
// that would write is checked here too, since SQLite may apply it while
// compiling, and PRAGMA query_only = x is never compiled.
func (c *Conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	cl, decided := textClass(query, c.mountDir())
	var ss *sqlite3.SQLiteStmt
	var err error
	if decided {
		if cl != classRead && cl != classBackup {
			_, err := c.admit(ctx, cl, nil)
			c.haltStatementDone() // preparing writes nothing: end what admit began under a HALT hold
			if err != nil {
				return nil, err
			}
		}
		var ds driver.Stmt
		if ds, err = c.sc.PrepareContext(ctx, query); err == nil {
			ss = ds.(*sqlite3.SQLiteStmt)
		}
	} else {
		ss, cl, err = c.compile(ctx, query)
	}
	if err != nil {
		return nil, c.prepareFailed(ctx, query, err)
	}
	return &Stmt{ss: ss, c: c, cl: cl, query: query}, nil
}

// Prepare is PrepareContext without a context.
func (c *Conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// BeginTx begins a transaction. A read-only one (TxOptions.ReadOnly) issues a
// plain BEGIN, whatever the DSN's _txlock, and runs under query_only, so it
// works on a replica. Otherwise, when _txlock takes the write lock at BEGIN
// (immediate, exclusive), a replica refuses at Begin; with the default
// deferred BEGIN it refuses at the first write.
func (c *Conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.halt.mu.Lock()
	defer c.halt.mu.Unlock()
	if opts.ReadOnly {
		return c.beginReadOnly(ctx)
	}
	// The transaction takes or inherits its HALT hold before BEGIN, and
	// gives it back with Commit or Rollback (halt_conn.go).
	if err := c.haltBegin(ctx); err != nil {
		return nil, err
	}
	cl := classRead
	if c.info.txlockWrites {
		cl = classWrite
	}
	r, err := c.begin(ctx, cl, "")
	if err != nil {
		c.haltEnd()
		return nil, err
	}
	dtx, err := c.sc.BeginTx(ctx, opts)
	if err = r.end(err); err != nil {
		c.haltEnd()
		return nil, err
	}
	tx := &Tx{c: c, parent: dtx, tracker: TrackerFrom(ctx)}
	c.tx = tx
	if c.halt.engaged != nil {
		c.halt.txw = tx // rolled back by the hold's release if left open
	}
	return tx, nil
}

// beginReadOnly begins a transaction that runs under query_only until
// endReadOnly ends it.
func (c *Conn) beginReadOnly(ctx context.Context) (driver.Tx, error) {
	if _, err := c.sc.ExecContext(ctx, "BEGIN", nil); err != nil {
		return nil, err
	}
	if err := c.setQueryOnly(true); err != nil {
		c.sc.ExecContext(context.Background(), "ROLLBACK", nil)
		return nil, err
	}
	c.roTx = true
	return &Tx{c: c, readOnly: true}, nil
}

// endReadOnly ends the read-only transaction with stmt (COMMIT or ROLLBACK).
// query_only stays on: reads do not mind, and the next write sets it as the
// node's role requires.
func (c *Conn) endReadOnly(stmt string) error {
	c.roTx = false
	_, err := c.sc.ExecContext(context.Background(), stmt, nil)
	if err != nil && !c.sc.AutoCommit() {
		// database/sql treats the transaction as over whatever Commit
		// returns, so do not leave it open in SQLite.
		c.sc.ExecContext(context.Background(), "ROLLBACK", nil)
	}
	return err
}

// Begin is BeginTx with default options.
func (c *Conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// Ping reports whether the connection is open.
func (c *Conn) Ping(ctx context.Context) error { return c.sc.Ping(ctx) }

// Close closes the connection.
func (c *Conn) Close() error {
	c.halt.mu.Lock()
	defer c.halt.mu.Unlock()
	c.haltEnd() // never keep a HALT lock past the connection
	c.probe.close()
	c.closeAttached()
	return c.sc.Close()
}

// CheckPrimary returns nil when this node may write to db, else the refusal
// a write would get, which it also reports to ctx's [Tracker]. Call it before
// a side effect that must not happen on a replica (an e-mail, a payment).
func CheckPrimary(ctx context.Context, db *sql.DB) error {
	var verdict error
	if err := withConn(ctx, db, func(c *Conn) error { verdict = c.CheckPrimary(); return nil }); err != nil {
		return err
	}
	return refusal(ctx, verdict, nil)
}
