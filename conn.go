package litefs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

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
	sc      *sqlite3.SQLiteConn
	probe   *prober // nil: no mount, always primary
	posPath string  // <db>-pos, where LiteFS shows the TXID
	info    dsnInfo

	classes   map[string]class
	cacheSize int

	queryOnly bool // PRAGMA query_only as the driver last set it
	roTx      bool // inside a transaction begun with TxOptions.ReadOnly
	committed bool // set by the commit hook, cleared once reported
	denied    bool // the guard authorizer denied a statement

	halt connHalt // HALT: write forwarding (halt_conn.go)
}

// The optional interfaces are exactly those *sqlite3.SQLiteConn has, less the
// context-free Execer and Queryer that database/sql no longer needs.
var (
	_ driver.Conn               = (*Conn)(nil)
	_ driver.ConnBeginTx        = (*Conn)(nil)
	_ driver.ConnPrepareContext = (*Conn)(nil)
	_ driver.ExecerContext      = (*Conn)(nil)
	_ driver.QueryerContext     = (*Conn)(nil)
	_ driver.Pinger             = (*Conn)(nil)
)

func newConn(sc *sqlite3.SQLiteConn, ctr *Connector) *Conn {
	c := &Conn{
		sc:        sc,
		info:      ctr.info,
		queryOnly: ctr.info.queryOnly,
		cacheSize: ctr.cfg.classCacheSize,
		// HALT: write forwarding (halt_conn.go)
		halt: connHalt{forward: ctr.cfg.forwardWrites || ctr.info.forwardWrites, cfg: &ctr.cfg},
	}
	file := sc.GetFilename("main")
	switch {
	case ctr.cfg.mountDirSet:
		c.probe = newProber(ctr.cfg.mountDir, ctr.cfg.log, &ctr.sawLiteFS)
	case file != "" && !ctr.info.memory:
		c.probe = newProber(filepath.Dir(file), ctr.cfg.log, &ctr.sawLiteFS)
	}
	if file != "" && c.probe != nil {
		c.posPath = filepath.Join(c.probe.dir, filepath.Base(file)+"-pos")
	}
	// SQLite calls the hook on this goroutine, inside the statement that
	// commits, and only for transactions that wrote.
	sc.RegisterCommitHook(func() int {
		c.committed = true
		return 0
	})
	// A connection opened on a replica starts under query_only, so that a
	// statement SQLite misjudges as a read cannot write either.
	if c.probe.check() != nil {
		c.setQueryOnly(true)
	}
	return c
}

// SQLite returns the go-sqlite3 connection beneath. Statements run on it
// directly bypass the driver's checks: on a replica, write only through c.
func (c *Conn) SQLite() *sqlite3.SQLiteConn { return c.sc }

// CheckPrimary returns nil when this node may write, else the refusal a write
// would get. It touches the mount.
func (c *Conn) CheckPrimary() error { return c.probe.check() }

// classify returns the verdict on query, asking SQLite on a cache miss.
func (c *Conn) classify(ctx context.Context, query string) (class, error) {
	if cl, ok := c.classes[query]; ok {
		return cl, nil
	}
	var cl class
	if isMulti(query) {
		cl = classMaybe
	} else {
		ds, err := c.sc.PrepareContext(ctx, query)
		if err != nil {
			return 0, err
		}
		cl = refine(query, ds.(*sqlite3.SQLiteStmt).Readonly())
		ds.Close()
	}
	c.remember(query, cl)
	return cl, nil
}

func (c *Conn) remember(query string, cl class) {
	if c.classes == nil || len(c.classes) >= c.cacheSize {
		c.classes = make(map[string]class, min(c.cacheSize, 64))
	}
	c.classes[query] = cl
}

// errManagedPragma refuses PRAGMA query_only = x, which would undo the
// driver's own use of it.
var errManagedPragma = errors.New("litefs: PRAGMA query_only is managed by the driver; " +
	"use sql.TxOptions{ReadOnly: true}, or _query_only=1 in the DSN")

// beforeWrite decides whether a statement of class cl may run, touching the
// mount once. It returns the refusal (already reported to ctx's Tracker), or
// nil with query_only set for the statement to run; guard reports that the
// statement relies on query_only, so its gaps must be closed while it runs.
func (c *Conn) beforeWrite(ctx context.Context, cl class) (guard bool, err error) {
	switch {
	case cl == classForbidden:
		return false, errManagedPragma
	case c.roTx && cl == classWrite:
		return false, ErrReadOnlyTx
	case c.roTx:
		return true, nil // query_only is on for the whole transaction
	}
	refusal := c.probe.check()
	if refusal == nil {
		return false, c.setQueryOnly(false)
	}
	// HALT (halt_conn.go): under this database's HALT lock, the write runs
	// here and LiteFS forwards it to the primary.
	if ok, err := c.admitHalted(ctx, refusal); ok || err != nil {
		TrackerFrom(ctx).ReportRefusal(err)
		return false, err
	}
	// This connection is on a replica: keep it under query_only from now on.
	qerr := c.setQueryOnly(true)
	if cl == classMaybe && qerr == nil {
		// Let SQLite find the first statement that writes, if any, against
		// the current schema: a read makes SQLite notice a schema the
		// primary changed (a CREATE ... IF NOT EXISTS that has become a
		// no-op), which query_only would otherwise refuse first.
		if _, err := c.sc.ExecContext(ctx, "SELECT 1 FROM sqlite_schema LIMIT 1", nil); err != nil {
			return false, err
		}
		return true, nil
	}
	TrackerFrom(ctx).ReportRefusal(refusal)
	return false, refusal
}

// guard installs, or with on false removes, an authorizer that denies what
// query_only lets through although it writes or would lift query_only: a
// change of journal mode, a checkpoint, PRAGMA query_only = x. Installing an
// authorizer expires the connection's prepared statements, which SQLite then
// prepares again, so cached statements are checked too.
func (c *Conn) guard(on bool) {
	if !on {
		c.sc.RegisterAuthorizer(nil)
		return
	}
	c.sc.RegisterAuthorizer(func(op int, name, arg, _ string) int {
		if op != sqlite3.SQLITE_PRAGMA {
			return sqlite3.SQLITE_OK
		}
		switch strings.ToLower(name) {
		case "wal_checkpoint":
		case "journal_mode", "query_only":
			if arg == "" {
				return sqlite3.SQLITE_OK
			}
		default:
			return sqlite3.SQLITE_OK
		}
		c.denied = true
		return sqlite3.SQLITE_DENY
	})
}

// setQueryOnly sets PRAGMA query_only unless the DSN set it.
func (c *Conn) setQueryOnly(on bool) error {
	if c.info.queryOnly || c.queryOnly == on {
		return nil
	}
	q := "PRAGMA query_only = 0"
	if on {
		q = "PRAGMA query_only = 1"
	}
	if _, err := c.sc.ExecContext(context.Background(), q, nil); err != nil {
		return fmt.Errorf("litefs: %s: %w", q, err)
	}
	c.queryOnly = on
	return nil
}

// afterRun reports a commit the statement just made to ctx's Tracker.
func (c *Conn) afterRun(ctx context.Context, t *Tracker) {
	if !c.committed {
		return
	}
	c.committed = false
	if t == nil {
		t = TrackerFrom(ctx)
	}
	t.reportCommit(c.posPath)
}

// failed turns err from SQLite into a refusal when it is one: LiteFS
// refusing a write on a replica (EACCES on the WAL, or on the journal's
// directory), or query_only and the guard that the driver set. Other errors
// pass unchanged. A commit made before the failure (an earlier statement of
// the same string) is still reported.
func (c *Conn) failed(ctx context.Context, err error) error {
	c.afterRun(ctx, nil)
	// HALT (halt_conn.go): a write LiteFS failed to forward says so.
	if herr := c.haltFailed(err); herr != nil {
		TrackerFrom(ctx).ReportRefusal(herr)
		return herr
	}
	denied := c.denied
	c.denied = false
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	guarded := se.Code == sqlite3.ErrReadonly && c.queryOnly && !c.info.queryOnly ||
		se.Code == sqlite3.ErrAuth && denied
	switch {
	case c.roTx && (guarded || se.Code == sqlite3.ErrReadonly):
		return fmt.Errorf("%w: %w", ErrReadOnlyTx, err)
	case guarded:
	case se.ExtendedCode == sqlite3.ErrIoErrWrite && deniedErrno(se.SystemErrno):
	case se.ExtendedCode == errReadonlyDirectory:
	default:
		return err
	}
	refusal := c.probe.check()
	if refusal == nil {
		return err // this node may write: the failure is something else
	}
	var np *NotPrimaryError
	if errors.As(refusal, &np) {
		refusal = &NotPrimaryError{PrimaryID: np.PrimaryID, Err: err}
	} else if nope, ok := refusal.(*noPrimaryError); ok {
		refusal = &noPrimaryError{reason: nope.reason, err: err, probe: nope.probe}
	}
	TrackerFrom(ctx).ReportRefusal(refusal)
	return refusal
}

// errReadonlyDirectory is SQLITE_READONLY_DIRECTORY, which go-sqlite3 does
// not name: SQLite could not create a journal beside the database.
var errReadonlyDirectory = sqlite3.ErrReadonly.Extend(6)

func deniedErrno(e syscall.Errno) bool {
	return e == syscall.EACCES || e == syscall.EPERM || e == syscall.EROFS
}

// ExecContext runs query, refusing it first if it writes and this node may
// not. Reads never touch the mount.
func (c *Conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cl, err := c.classify(ctx, query)
	if err != nil {
		return nil, err
	}
	return runClass(c, ctx, cl, func() (driver.Result, error) { return c.sc.ExecContext(ctx, query, args) })
}

// QueryContext is ExecContext for statements that return rows; a write in
// it (RETURNING) is checked the same way, since go-sqlite3 runs the first
// step before returning.
func (c *Conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cl, err := c.classify(ctx, query)
	if err != nil {
		return nil, err
	}
	return queryClass(c, ctx, cl, func() (driver.Rows, error) { return c.sc.QueryContext(ctx, query, args) })
}

// runClass runs do, a statement of class cl: refused first if it may write
// and this node may not, its SQLite errors turned into refusals where they
// are, and a commit it made reported.
func runClass[T any](c *Conn, ctx context.Context, cl class, do func() (T, error)) (T, error) {
	var zero T
	guard := false
	if cl != classRead {
		var err error
		if guard, err = c.beforeWrite(ctx, cl); err != nil {
			return zero, err
		}
	}
	if guard {
		c.guard(true)
	}
	v, err := do()
	if guard {
		c.guard(false)
	}
	if err != nil {
		err = c.failed(ctx, err)
		c.haltStatementDone() // HALT (halt_conn.go)
		return zero, err
	}
	c.afterRun(ctx, nil)
	// HALT (halt_conn.go): a statement's hold ends with it; rows that may
	// still commit end it in Rows.end.
	if _, rows := any(v).(*sqlite3.SQLiteRows); !rows {
		c.haltStatementDone()
	}
	return v, nil
}

// queryClass is runClass for a query. Rows that may write are tracked to
// their end: SQLite commits an INSERT ... RETURNING when its rows are
// exhausted or closed, after QueryContext has returned.
func queryClass(c *Conn, ctx context.Context, cl class, do func() (driver.Rows, error)) (driver.Rows, error) {
	dr, err := runClass(c, ctx, cl, do)
	if err != nil || cl == classRead {
		return dr, err
	}
	if sr, ok := dr.(*sqlite3.SQLiteRows); ok {
		return &Rows{SQLiteRows: sr, c: c, ctx: ctx}, nil
	}
	return dr, nil
}

// PrepareContext prepares the first statement of query, as go-sqlite3 does;
// its verdict is kept, and a write is checked each time it runs.
func (c *Conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	ds, err := c.sc.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	ss := ds.(*sqlite3.SQLiteStmt)
	return &Stmt{ss: ss, c: c, cl: refine(query, ss.Readonly())}, nil
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
	if opts.ReadOnly {
		return c.beginReadOnly(ctx)
	}
	// HALT (halt_conn.go): the transaction takes or inherits its hold
	// before BEGIN, and gives it back with Commit or Rollback.
	if err := c.haltBegin(ctx); err != nil {
		return nil, err
	}
	if c.info.txlockWrites {
		if _, err := c.beforeWrite(ctx, classWrite); err != nil {
			c.haltEnd() // HALT
			return nil, err
		}
	}
	dtx, err := c.sc.BeginTx(ctx, opts)
	if err != nil {
		err = c.failed(ctx, err)
		c.haltEnd() // HALT
		return nil, err
	}
	return &Tx{c: c, parent: dtx, tracker: TrackerFrom(ctx)}, nil
}

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

// Begin is BeginTx with default options.
func (c *Conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// Ping reports whether the connection is open.
func (c *Conn) Ping(ctx context.Context) error { return c.sc.Ping(ctx) }

// Close closes the connection.
func (c *Conn) Close() error {
	c.haltEnd() // HALT (halt_conn.go): never keep the lock past the connection
	c.probe.close()
	return c.sc.Close()
}

// CheckPrimary returns nil when this node may write to db, else the refusal
// a write would get, which it also reports to ctx's [Tracker]. Call it before
// a side effect that must not happen on a replica (an e-mail, a payment).
func CheckPrimary(ctx context.Context, db *sql.DB) error {
	var refusal error
	if err := withConn(ctx, db, func(c *Conn) error { refusal = c.CheckPrimary(); return nil }); err != nil {
		return err
	}
	TrackerFrom(ctx).ReportRefusal(refusal)
	return refusal
}
