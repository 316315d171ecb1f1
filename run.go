package litefs

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// A statement's passage through a connection has three phases, each with one
// owner:
//
//  1. admit decides whether it may run here and now, and how (the one
//     write-admission decision);
//  2. begin sets the connection up for it: query_only, the guard authorizer;
//  3. end, once it has run (for rows that may write, once they are closed),
//     removes the guard, reports a commit, turns a failure into a refusal
//     where it is one, and puts the connection back as it was when the
//     driver refused: query_only on, no transaction the statement began.

// admission is admit's verdict on a statement that may run.
type admission struct {
	// verdict is the role check's refusal when the statement runs on a
	// replica anyway (under query_only and the guard); nil on the primary.
	// A failure the guard causes is a refusal because of it, whatever the
	// role is by the time the failure is seen.
	verdict   error
	queryOnly bool // run under query_only
	guard     bool // run under the guard authorizer
	backup    bool // VACUUM INTO outside the mount on a replica: lift query_only for it alone
}

// admit decides whether a statement of class cl may run on this connection
// now. It reads the node's role for anything but a read, and returns the
// refusal (reported to ctx's Tracker and wrapping cause, the error that
// revealed the statement, if any) or how the statement must run. Every
// statement and Begin that may write passes here. On a replica, a write
// under this database's HALT lock is admitted as on the primary; a hold
// that cannot be written under is a [*HaltError].
func (c *Conn) admit(ctx context.Context, cl class, cause error) (admission, error) {
	switch {
	case cl == classRead:
		return admission{}, nil
	case cl == classForbidden:
		return admission{}, errManagedPragma
	case c.roTx && cl == classMaybe:
		return admission{queryOnly: true, guard: true}, nil
	case c.roTx && cause != nil:
		return admission{}, fmt.Errorf("%w: %w", ErrReadOnlyTx, cause)
	case c.roTx:
		return admission{}, ErrReadOnlyTx
	}
	verdict := c.probe.check()
	if verdict == nil {
		// A database attached from another mount has a role of its own;
		// its refusal is no HALT hold of this database's.
		if verdict = c.checkAttached(); verdict != nil {
			return c.admitReplica(ctx, cl, verdict, cause)
		}
	}
	switch {
	case verdict == nil:
		return admission{guard: cl == classMaybe}, nil
	case cl == classBackup && cause == nil:
		return admission{verdict: verdict, guard: true, backup: true}, nil
	}
	// Under this database's HALT lock the write runs here as on the
	// primary, and LiteFS forwards it (halt_conn.go).
	halted, herr := c.admitHalted(ctx, verdict)
	switch {
	case halted:
		return admission{guard: cl == classMaybe}, nil
	case herr == nil && cl == classMaybe:
		return admission{verdict: verdict, queryOnly: true, guard: true}, nil
	}
	// This connection is on a replica: keep it under query_only from now on.
	c.setQueryOnly(true)
	if herr != nil {
		TrackerFrom(ctx).ReportRefusal(herr)
		return admission{}, herr
	}
	return admission{}, refusal(ctx, verdict, cause)
}

// admitReplica is admit's verdict on a statement of class cl, not a read,
// when verdict refuses writes and no HALT hold applies.
func (c *Conn) admitReplica(ctx context.Context, cl class, verdict, cause error) (admission, error) {
	switch {
	case cl == classBackup && cause == nil:
		return admission{verdict: verdict, guard: true, backup: true}, nil
	case cl == classMaybe:
		return admission{verdict: verdict, queryOnly: true, guard: true}, nil
	}
	c.setQueryOnly(true)
	return admission{}, refusal(ctx, verdict, cause)
}

// run is one statement's passage through the connection, from begin to end.
// Its zero value (a read) costs nothing.
type run struct {
	c          *Conn
	ctx        context.Context
	tracker    *Tracker // reports the commit instead of ctx's, when set
	query      string   // the SQL text, to guess whether a statement that failed would write
	adm        admission
	wasAuto    bool      // a string of several statements began outside a transaction
	attach     bool      // the string names ATTACH or DETACH: re-read the attached databases at end
	vacuum     bool      // the string VACUUMs, for a Tracker: SQLite commits that without the commit hook
	g          *guard    // the guard authorizer's record, while it is installed
	snap       *snapshot // settings a string may change before it is refused, or nil
	savepoints []string  // opened by the string inside the caller's transaction: undone on a refusal
}

// begin admits a statement of class cl and sets the connection up for it.
func (c *Conn) begin(ctx context.Context, cl class, query string) (run, error) {
	r := run{c: c, ctx: ctx, query: query}
	if g := c.epoch.current(); g != c.seenEpoch {
		// The node has been seen turning into a replica since this
		// connection last looked: reads too run under query_only now.
		c.seenEpoch = g
		c.setQueryOnly(true)
	}
	// The context's Tracker, looked up once, and for a read only when it
	// matters: a read's context chain is not walked in steady state.
	var t *Tracker
	if cl != classRead || !c.hooked || c.tx != nil && c.tx.tracker == nil {
		t = TrackerFrom(ctx)
	}
	if t != nil && !c.hooked {
		// Even for a read: SQLite takes COMMIT, END and RELEASE for
		// reads, and they commit what the transaction wrote before.
		c.hookCommits()
	}
	if c.tx != nil && c.tx.tracker == nil {
		// A transaction begun without a context (db.Begin) reports its
		// commit to the Tracker its statements ran for.
		c.tx.tracker = t
	}
	if cl == classRead {
		if c.probe.movedNow() && mayCommit(query) {
			// SQLite takes COMMIT for a read, yet it would make durable,
			// in a file the path no longer shows, what the transaction
			// wrote before its directory moved: as Tx.Commit does.
			c.sc.ExecContext(context.Background(), "ROLLBACK", nil)
			return r, refusal(ctx, c.probe.checkMoved(), nil)
		}
		return r, nil
	}
	adm, err := c.admit(ctx, cl, nil)
	if err != nil {
		return r, err
	}
	r.adm, r.attach = adm, mentionsAttach(query)
	c.prefetch = c.prefetchFor(t)
	r.vacuum = t != nil && vacuums(query)
	if cl == classMaybe {
		// Only a string of several statements can be stopped inside a
		// transaction it began; asking SQLite is a cgo call per write.
		r.wasAuto = c.sc.AutoCommit()
	}
	if err := c.setQueryOnly(adm.queryOnly); err != nil {
		return r, err
	}
	if adm.queryOnly && adm.verdict != nil {
		// Let SQLite find the first statement that writes, if any, against
		// the current schema: a read makes SQLite notice a schema the
		// primary changed (a CREATE ... IF NOT EXISTS that has become a
		// no-op), which query_only would otherwise refuse first.
		if _, err := c.sc.ExecContext(ctx, "SELECT 1 FROM sqlite_schema LIMIT 1", nil); err != nil {
			return r, err
		}
	}
	if adm.verdict != nil && cl == classMaybe && isMulti(query) && detaches(query) {
		// A database detached by a string refused later could only be
		// attached again by file name, without the URI parameters
		// (mode=ro) it had: refuse such a string before it runs.
		return r, refusal(ctx, adm.verdict, nil)
	}
	if adm.verdict != nil && cl == classMaybe && !r.wasAuto {
		// Inside the caller's transaction: undo the savepoints the string
		// opens if it is refused, or refuse it now when that cannot be
		// done exactly.
		saves, exact := stringSavepoints(query)
		if !exact {
			return r, refusal(ctx, adm.verdict, nil)
		}
		r.savepoints = saves
	}
	if cl == classMaybe {
		r.snap = c.takeSnapshot(ctx, query)
	}
	if adm.guard {
		r.g = c.installGuard(adm.verdict != nil || c.roTx, adm.backup)
	}
	return r, nil
}

// end finishes the run whose statement returned err, and returns the error
// for the caller.
func (r *run) end(err error) error {
	c := r.c
	if c == nil {
		return err
	}
	if r.g != nil {
		c.sc.RegisterAuthorizer(nil)
		c.queryOnly = qoUnknown // denied or not, set it again before relying on it
	}
	if r.adm.backup {
		c.setQueryOnly(true)
	}
	rd := c.txidRead
	c.prefetch, c.txidRead = false, nil
	if r.vacuum && err == nil {
		// LiteFS ships the rebuilt database as a transaction, which SQLite
		// commits without the hook: its TXID is read after it.
		c.committed, rd = true, nil
	}
	if c.committed {
		c.committed = false
		t := r.tracker
		if t == nil {
			t = TrackerFrom(r.ctx)
		}
		if err != nil {
			rd = nil // a commit that failed may not have happened: read after it
		}
		t.reportCommit(c.pos, c.halt.key, rd, c.attachedAny)
	}
	if err == nil {
		if r.attach {
			c.refreshAttached(context.Background())
		}
		return nil
	}
	err, refused := r.failure(err)
	if refused && r.wasAuto && !c.sc.AutoCommit() {
		// A string that began a transaction (BEGIN; ...; SAVEPOINT ...)
		// was stopped in it: database/sql does not know of it.
		c.sc.ExecContext(context.Background(), "ROLLBACK", nil)
	}
	if refused && !r.wasAuto && len(r.savepoints) > 0 {
		c.undoSavepoints(context.Background(), r.savepoints)
	}
	if refused && r.snap != nil {
		c.restore(context.Background(), r.snap)
	}
	if r.attach {
		c.refreshAttached(context.Background())
	}
	return err
}

// failure turns err, what the statement returned, into a refusal when it is
// one, and reports whether the driver refused it: query_only or the guard
// set for this run (a refusal because of the admission's verdict, hole or
// no hole in the role since), a write that SQLite could not prepare on a
// replica, or LiteFS refusing a write that raced a demotion (EACCES on the
// WAL, or on the journal's directory). Other errors pass unchanged.
func (r *run) failure(err error) (error, bool) {
	c := r.c
	if herr := c.haltFailed(err); herr != nil {
		TrackerFrom(r.ctx).ReportRefusal(herr)
		return herr, true
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err, false
	}
	guarded := se.Code == sqlite3.ErrReadonly && r.adm.queryOnly && !c.info.queryOnly ||
		se.Code == sqlite3.ErrAuth && r.g != nil && r.g.denied != 0
	switch {
	case se.Code == sqlite3.ErrAuth && r.g != nil && r.g.denied == classForbidden && r.adm.verdict == nil:
		return fmt.Errorf("%w: %w", errManagedPragma, err), true
	case c.roTx && (guarded || se.Code == sqlite3.ErrReadonly):
		return fmt.Errorf("%w: %w", ErrReadOnlyTx, err), true
	case guarded && r.adm.verdict != nil:
		return refusal(r.ctx, r.adm.verdict, err), true
	case se.Code == sqlite3.ErrError && r.adm.verdict != nil && !r.adm.backup && mayWrite(r.query):
		return refusal(r.ctx, r.adm.verdict, err), true // a later statement's schema lags
	case se.ExtendedCode == sqlite3.ErrIoErrWrite && deniedErrno(se.SystemErrno):
	case se.ExtendedCode == errReadonlyDirectory:
	case liteFSMayHaveGone(se.Code):
	default:
		return err, false
	}
	verdict := c.probe.recheck(err)
	if verdict == nil {
		return err, false // this node may write: the failure is something else
	}
	c.setQueryOnly(true)
	return refusal(r.ctx, verdict, err), true
}

// errReadonlyDirectory is SQLITE_READONLY_DIRECTORY, which go-sqlite3 does
// not name: SQLite could not create a journal beside the database.
var errReadonlyDirectory = sqlite3.ErrReadonly.Extend(6)

func deniedErrno(e syscall.Errno) bool {
	return e == syscall.EACCES || e == syscall.EPERM || e == syscall.EROFS
}

// guard records what the guard authorizer denied: 0, classForbidden (PRAGMA
// query_only = x) or classWrite (a pragma that writes, on a replica).
type guard struct{ denied class }

// installGuard installs, for one run, an authorizer that denies PRAGMA
// query_only = x everywhere and, on a replica (or in a read-only
// transaction), every pragma that writes, including what query_only lets
// through: a change of journal mode, a checkpoint, and an ATTACH that may
// create a file (but for VACUUM INTO's own attach of a backup target outside
// the mount, which admit has vetted). SQLite asks it while the
// statements of a string compile and when a table-valued pragma function
// runs its pragma. Installing an authorizer expires the connection's
// prepared statements, which SQLite then prepares again, so cached
// statements are checked too.
func (c *Conn) installGuard(replica, backup bool) *guard {
	g := &guard{}
	c.sc.RegisterAuthorizer(func(op int, name, arg, _ string) int {
		if op == sqlite3.SQLITE_ATTACH && replica && !backup && attachCreates(name) {
			// query_only does not stop ATTACH creating a file.
			g.denied = classWrite
			return sqlite3.SQLITE_DENY
		}
		if op != sqlite3.SQLITE_PRAGMA {
			return sqlite3.SQLITE_OK
		}
		switch cl := pragmaClass(strings.ToLower(name), arg != ""); {
		case cl == classForbidden, cl == classWrite && replica:
			g.denied = cl
			return sqlite3.SQLITE_DENY
		}
		return sqlite3.SQLITE_OK
	})
	return g
}

// runClass runs do, a statement of class cl: refused first if it may write
// and this node may not, its SQLite errors turned into refusals where they
// are, and a commit it made reported.
func runClass[T any](c *Conn, ctx context.Context, cl class, query string, do func() (T, error)) (T, error) {
	c.halt.mu.Lock()
	defer c.halt.mu.Unlock()
	var v T
	r, err := c.begin(ctx, cl, query)
	if err == nil {
		v, err = do()
		err = r.end(err)
	}
	// A HALT hold the statement was let through under ends with it.
	c.haltStatementDone()
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// queryClass is runClass for a query. Rows that may write are tracked to
// their end: SQLite commits an INSERT ... RETURNING when its rows are
// exhausted or closed, after QueryContext has returned, and a failure then
// is judged by the same admission as one now.
func queryClass(c *Conn, ctx context.Context, cl class, query string, do func() (driver.Rows, error)) (driver.Rows, error) {
	c.halt.mu.Lock()
	defer c.halt.mu.Unlock()
	r, err := c.begin(ctx, cl, query)
	if err != nil {
		c.haltStatementDone()
		return nil, err
	}
	dr, err := do()
	if err = r.end(err); err != nil {
		c.haltStatementDone()
		return nil, err
	}
	if cl == classRead {
		return dr, nil
	}
	if sr, ok := dr.(*sqlite3.SQLiteRows); ok {
		// The guard and a lifted query_only end with the call; a HALT
		// hold ends with the rows, which may still commit.
		r.g, r.adm.backup = nil, false
		rows := &Rows{SQLiteRows: sr, r: r}
		// SQLite commits an INSERT ... RETURNING when its rows end: read
		// its TXID in that commit's hook (the first end cleared it).
		c.prefetch = c.prefetchFor(TrackerFrom(ctx))
		if c.halt.engaged != nil && c.halt.tx == nil {
			c.halt.rows = rows // ended by the hold's release if left open
		}
		return rows, nil
	}
	c.haltStatementDone()
	return dr, nil
}

// builtinFunctions is the set of functions SQLite itself provides: any other
// function was registered by a ConnectHook or an extension, and may write
// through the connection. Computed once, it is constant afterwards.
var builtinFunctions = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	dc, err := (&sqlite3.SQLiteDriver{}).Open(":memory:")
	if err != nil {
		return m // every function counts as one that may write: fail closed
	}
	defer dc.Close()
	rows, err := dc.(*sqlite3.SQLiteConn).Query("SELECT name FROM pragma_function_list", nil)
	if err != nil {
		return m
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	for rows.Next(dest) == nil {
		if name, ok := dest[0].(string); ok {
			m[strings.ToLower(name)] = true
		}
	}
	return m
})

// knownPragma reports whether name is a pragma SQLite has, so that a table
// named pragma_something is not mistaken for one.
func knownPragma(name string) bool {
	return name == "query_only" || name == "optimize" || name == "wal_checkpoint" ||
		name == "incremental_vacuum" || pragmaSettings[name] || pragmaReads[name] ||
		pragmaValues[name] || pragmaArgs[name]
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
