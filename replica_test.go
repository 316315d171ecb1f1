package litefs

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// execQuerier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// runOn executes q on eq with Exec, or with Query when query is set,
// draining the rows.
func runOn(ctx context.Context, eq execQuerier, q string, query bool, args ...any) error {
	if !query {
		_, err := eq.ExecContext(ctx, q, args...)
		return err
	}
	rows, err := eq.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}

// queryOnly reads PRAGMA query_only on conn.
func queryOnly(t *testing.T, conn *sql.Conn) bool {
	t.Helper()
	var on bool
	require.NoError(t, conn.QueryRowContext(t.Context(), "PRAGMA query_only").Scan(&on))
	return on
}

// inTx reports whether conn's SQLite connection is inside a transaction.
func inTx(t *testing.T, conn *sql.Conn) bool {
	t.Helper()
	var in bool
	require.NoError(t, conn.Raw(func(dc any) error { in = !dc.(*Conn).sc.AutoCommit(); return nil }))
	return in
}

// assertRefusedCleanly checks what a statement refused on a replica must
// leave as it was: the files, the write lock, query_only on, and the
// connection outside any transaction (a BEGIN then succeeds).
func assertRefusedCleanly(t *testing.T, m *litefstest.Mount, conn *sql.Conn, before [32]byte) {
	t.Helper()
	assert.Equal(t, before, fingerprint(t, m), "the database or WAL changed on a replica")
	assertNoWriteLock(t, m)
	assert.True(t, queryOnly(t, conn), "query_only was lifted on a replica")
	assert.False(t, inTx(t, conn), "the refusal left the connection inside a transaction")
	tx, err := conn.BeginTx(t.Context(), nil)
	if assert.NoError(t, err, "BEGIN after the refusal") {
		assert.NoError(t, tx.Rollback())
	}
}

// connStep is one thing done on a pinned connection.
type connStep struct {
	name string
	do   func(ctx context.Context, conn *sql.Conn) error
}

// execStep is the connStep named name that runs query with ExecContext.
func execStep(name, query string) connStep {
	return connStep{name: name, do: func(ctx context.Context, conn *sql.Conn) error {
		_, err := conn.ExecContext(ctx, query)
		return err
	}}
}

// lifters try to lift query_only on a replica, each in its own way.
var lifters = []connStep{
	execStep("exec", "PRAGMA query_only = 0"),
	{name: "prepare", do: func(ctx context.Context, conn *sql.Conn) error {
		s, err := conn.PrepareContext(ctx, "PRAGMA query_only = 0")
		if err == nil {
			s.Close()
		}
		return err
	}},
	{name: "explain", do: func(ctx context.Context, conn *sql.Conn) error {
		return runOn(ctx, conn, "EXPLAIN PRAGMA query_only = 0", true)
	}},
	{name: "explain query plan", do: func(ctx context.Context, conn *sql.Conn) error {
		return runOn(ctx, conn, "EXPLAIN QUERY PLAN PRAGMA main.query_only = false", true)
	}},
	execStep("multi", "SELECT 1; PRAGMA query_only = 0"),
	execStep("comments and quotes", `PRAGMA/**/"main"./**/[query_only]/**/=/**/0`),
}

// liftedWrites are writes that query_only alone stops on a replica.
var liftedWrites = []connStep{
	execStep("multi", "SELECT 1; INSERT INTO t(v) VALUES ('lifted')"),
	execStep("create if not exists", "CREATE TABLE IF NOT EXISTS lifted(x)"),
	{name: "delete in a read-only tx", do: func(ctx context.Context, conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		_, err = tx.ExecContext(ctx, "SELECT 1; DELETE FROM t")
		return err
	}},
}

func TestQueryOnlyCannotBeLifted(t *testing.T) {
	t.Parallel()
	for _, lc := range lifters {
		for _, wc := range liftedWrites {
			t.Run(lc.name+"/"+wc.name, func(t *testing.T) {
				t.Parallel()
				m, conn := pinnedMount(t)
				m.SetReplica("node-a")
				require.ErrorIs(t, runOn(t.Context(), conn, "INSERT INTO t(v) VALUES ('x')", false), ErrNotPrimary)
				before := fingerprint(t, m)

				assert.Error(t, lc.do(t.Context(), conn), "lifting query_only")
				assert.True(t, queryOnly(t, conn), "query_only is off after the attempt")
				err := wc.do(t.Context(), conn)
				assert.True(t, errors.Is(err, ErrNotPrimary) || errors.Is(err, ErrReadOnlyTx), "got %v, want a refusal", err)
				assert.Equal(t, before, fingerprint(t, m), "a replica wrote")
			})
		}
	}
}

func TestManagedPragmaLeavesThePrimaryWritable(t *testing.T) {
	t.Parallel()
	for _, q := range []string{
		"PRAGMA query_only(1)", "PRAGMA query_only = 1", "EXPLAIN PRAGMA query_only = 1",
		"SELECT 1; PRAGMA query_only = 1",
	} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			_, conn := pinnedMount(t)
			assert.ErrorIs(t, runOn(t.Context(), conn, q, false), errManagedPragma)
			s, err := conn.PrepareContext(t.Context(), q)
			if err == nil {
				s.Close()
			}
			assert.False(t, queryOnly(t, conn), "the primary's connection became read-only")
			assert.NoError(t, runOn(t.Context(), conn, "INSERT INTO t(v) VALUES ('still')", false))
		})
	}
}

func TestRefusedStringLeavesNoTransaction(t *testing.T) {
	t.Parallel()
	for _, q := range []string{
		"BEGIN; INSERT INTO t(v) VALUES ('b'); COMMIT",
		"BEGIN IMMEDIATE; INSERT INTO t(v) VALUES ('b'); COMMIT",
		"SAVEPOINT s; INSERT INTO t(v) VALUES ('s'); RELEASE s",
		"BEGIN; SELECT count(*) FROM t; DELETE FROM t",
		"BEGIN; INSERT INTO nosuch VALUES (1); COMMIT",
	} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			m, conn := pinnedMount(t)
			m.SetReplica("node-a")
			before := fingerprint(t, m)
			wantNotPrimary(t, runOn(t.Context(), conn, q, false), "node-a")
			assertRefusedCleanly(t, m, conn, before)
		})
	}
	t.Run("a user's transaction is left to the user", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "")
		tx, err := db.Begin()
		require.NoError(t, err)
		m.SetReplica("node-a")
		_, err = tx.Exec("SAVEPOINT s; INSERT INTO t(v) VALUES ('s')")
		wantNotPrimary(t, err, "node-a")
		var n int
		assert.NoError(t, tx.QueryRow("SELECT count(*) FROM t").Scan(&n), "the transaction is still usable")
		_, err = tx.Exec("RELEASE s")
		assert.Error(t, err, "the refused string's savepoint is still open")
		assert.NoError(t, tx.Rollback())
	})
	t.Run("a user's savepoint outlives a refused string", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "")
		tx, err := db.Begin()
		require.NoError(t, err)
		_, err = tx.Exec("SAVEPOINT s")
		require.NoError(t, err)
		m.SetReplica("node-a")
		for _, q := range []string{
			"SAVEPOINT s; SAVEPOINT u; SAVEPOINT s; INSERT INTO t(v) VALUES ('s')",
			"SAVEPOINT v; RELEASE v; INSERT INTO t(v) VALUES ('s')", // refused before it runs
		} {
			_, err = tx.Exec(q)
			wantNotPrimary(t, err, "node-a")
		}
		for _, q := range []string{"RELEASE u", "RELEASE v"} {
			_, err = tx.Exec(q)
			assert.Error(t, err, "%s: a savepoint of a refused string is still open", q)
		}
		_, err = tx.Exec("RELEASE s")
		assert.NoError(t, err, "the user's own savepoint is gone")
		_, err = tx.Exec("RELEASE s")
		assert.Error(t, err, "a savepoint of a refused string is still open")
		assert.NoError(t, tx.Rollback())
	})
}

func TestSchemaLagIsARefusal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sql     string
		refused bool // on a replica; on the primary every case is SQLite's error
	}{
		{name: "insert into a missing table", sql: "INSERT INTO nosuch(x) VALUES (1)", refused: true},
		{name: "missing column", sql: "INSERT INTO t(nocol) VALUES (1)", refused: true},
		{name: "update a missing column", sql: "UPDATE t SET nocol = 1", refused: true},
		{name: "delete from a missing table", sql: "DELETE FROM nosuch", refused: true},
		{name: "table already exists", sql: "CREATE TABLE t(x)", refused: true},
		{name: "index on a missing column", sql: "CREATE INDEX t_nocol ON t(nocol)", refused: true},
		{name: "alter a missing table", sql: "ALTER TABLE nosuch ADD COLUMN y", refused: true},
		{name: "duplicate column", sql: "ALTER TABLE t ADD COLUMN v TEXT", refused: true},
		{name: "drop a missing table", sql: "DROP TABLE nosuch", refused: true},
		{name: "cte insert", sql: "WITH n(x) AS (SELECT 1) INSERT INTO nosuch SELECT x FROM n", refused: true},
		{name: "multi, second statement", sql: "SELECT 1; INSERT INTO nosuch VALUES (1)", refused: true},
		{name: "read of a missing table", sql: "SELECT * FROM nosuch"},
		{name: "cte read", sql: "WITH n(x) AS (SELECT 1) SELECT * FROM nosuch"},
		{name: "syntax error", sql: "SELEKT 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, conn := pinnedMount(t)
			var se sqlite3.Error
			err := runOn(t.Context(), conn, tc.sql, false)
			assert.ErrorAs(t, err, &se, "on the primary")
			assert.NotErrorIs(t, err, ErrNotPrimary, "on the primary")

			m.SetReplica("node-a")
			before := fingerprint(t, m)
			for _, prepare := range []bool{false, true} {
				if prepare && isMulti(tc.sql) {
					continue // Prepare keeps the first statement only
				}
				err := runOn(t.Context(), conn, tc.sql, false)
				if prepare {
					var s *sql.Stmt
					if s, err = conn.PrepareContext(t.Context(), tc.sql); err == nil {
						s.Close()
					}
				}
				assert.ErrorAs(t, err, &se, "prepare=%v: SQLite's error is kept", prepare)
				if !tc.refused {
					assert.NotErrorIs(t, err, ErrNotPrimary, "prepare=%v", prepare)
					continue
				}
				wantNotPrimary(t, err, "node-a")
			}
			if tc.refused {
				assertRefusedCleanly(t, m, conn, before)
			}
		})
	}
}

func TestFunctionsThatWriteOnAReplica(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sql     string
		refused bool
	}{
		{name: "pragma_optimize", sql: "SELECT * FROM pragma_optimize(65538)", refused: true},
		{name: "pragma_optimize in a cte", sql: "WITH o AS (SELECT * FROM pragma_optimize(65538)) SELECT count(*) FROM o", refused: true},
		{name: "pragma_optimize, quoted", sql: `SELECT count(*) FROM "pragma_optimize"(65538)`, refused: true},
		{name: "pragma_optimize through a view", sql: "SELECT * FROM optimizer", refused: true},
		{name: "pragma_journal_mode", sql: "SELECT * FROM pragma_journal_mode"},
		{name: "user function that writes", sql: "SELECT bump()", refused: true},
		{name: "pragma_table_info", sql: "SELECT * FROM pragma_table_info('t')"},
		{name: "pragma_user_version", sql: "SELECT * FROM pragma_user_version"},
		{name: "builtin functions", sql: "SELECT abs(-1), count(*), group_concat(v) FROM t"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			c, err := NewConnector(m.DSN(), WithLogger(discard), WithSQLiteDriver(bumpDriver()))
			require.NoError(t, err)
			db := sql.OpenDB(c)
			t.Cleanup(func() { db.Close() })
			conn, _ := pinConn(t, db)
			for _, q := range []string{
				"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", "CREATE INDEX t_v ON t(v)",
				"INSERT INTO t(v) VALUES ('a'), ('b'), ('c')",
				"CREATE VIEW optimizer AS SELECT * FROM pragma_optimize(65538)",
			} {
				require.NoError(t, runOn(t.Context(), conn, q, false), q)
			}
			// The connection was opened on the primary and has not written
			// since the demotion: only the driver's checks stand in the way.
			m.SetReplica("node-a")
			before := fingerprint(t, m)
			err = runOn(t.Context(), conn, tc.sql, true)
			if tc.refused {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, before, fingerprint(t, m), "a replica wrote")
			assertNoWriteLock(t, m)
			assert.False(t, inTx(t, conn), "left inside a transaction")
		})
	}
}

func TestGuardRefusalOutlivesARoleFlip(t *testing.T) {
	t.Parallel()
	m, conn := pinnedMount(t)
	m.SetReplica("node-a")
	const q = "SELECT 1; INSERT INTO t(v) VALUES ('flip')"
	require.NoError(t, conn.Raw(func(dc any) error {
		c := dc.(*Conn)
		r, err := c.begin(t.Context(), classMaybe, q)
		require.NoError(t, err)
		m.SetPrimary() // promoted after admission, before SQLite refuses
		_, err = c.sc.ExecContext(t.Context(), q, nil)
		var se sqlite3.Error
		require.ErrorAs(t, err, &se, "query_only refused the write")
		err = r.end(err)
		wantNotPrimary(t, err, "node-a")
		assert.ErrorIs(t, err, se, "the refusal wraps SQLite's error")
		return nil
	}))
}

func TestOpenRefusal(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	// mode=ro on a file the replica does not have yet fails to open, as a
	// database LiteFS has not replicated yet does.
	c, err := NewConnector("file:"+m.DBPath()+"?mode=ro", WithLogger(discard))
	require.NoError(t, err)
	m.SetNoPrimary()
	tr := &Tracker{}
	_, err = c.Connect(WithTracker(t.Context(), tr))
	require.ErrorIs(t, err, ErrNoPrimary)
	assert.Equal(t, err, tr.Refusal(), "Connect reports its refusal to the context's Tracker")

	got := make(chan string, 1)
	go func() {
		id, werr := WaitPrimary(t.Context(), err)
		assert.NoError(t, werr, "WaitPrimary accepts a refusal from Connect")
		got <- id
	}()
	m.SetReplica("node-b")
	assert.Equal(t, "node-b", <-got)
}

// bumpDriver registers bump(), a function that writes through the
// connection it runs on, as a ConnectHook may.
func bumpDriver() *sqlite3.SQLiteDriver {
	return &sqlite3.SQLiteDriver{ConnectHook: func(sc *sqlite3.SQLiteConn) error {
		return sc.RegisterFunc("bump", func() (int64, error) {
			_, err := sc.Exec("INSERT INTO t(v) VALUES ('bump')", nil)
			return 1, err
		}, false)
	}}
}

func TestRefusedStringRestoresConnectionSettings(t *testing.T) {
	t.Parallel()
	m, conn := pinnedMount(t)
	ctx := t.Context()
	for _, q := range []string{"PRAGMA foreign_keys = ON", "PRAGMA cache_size = -3000", "PRAGMA recursive_triggers = 0"} {
		require.NoError(t, runOn(ctx, conn, q, false), q)
	}
	m.SetReplica("node-a")
	for _, q := range []string{
		"PRAGMA foreign_keys = OFF; INSERT INTO t(v) VALUES ('fk')",
		"PRAGMA cache_size = 7; PRAGMA main.recursive_triggers = 1; DELETE FROM t",
		"ATTACH ':memory:' AS aux; INSERT INTO t(v) VALUES ('aux')",
	} {
		wantNotPrimary(t, runOn(ctx, conn, q, false), "node-a")
	}
	read := func(q string) (v string) {
		require.NoError(t, conn.QueryRowContext(ctx, q).Scan(&v), q)
		return v
	}
	assert.Equal(t, "1", read("PRAGMA foreign_keys"))
	assert.Equal(t, "-3000", read("PRAGMA cache_size"))
	assert.Equal(t, "0", read("PRAGMA recursive_triggers"))
	assert.Equal(t, "0", read("SELECT count(*) FROM pragma_database_list WHERE name = 'aux'"), "aux is still attached")
}

func TestStatementsPreparedBeforeADemotion(t *testing.T) {
	t.Parallel()
	m, conn := pinnedMount(t)
	var stmts []*sql.Stmt
	for _, q := range []string{
		"SELECT * FROM pragma_optimize(65538)", "PRAGMA user_version = 3", "CREATE TABLE IF NOT EXISTS u(x)",
		"INSERT INTO t(v) VALUES ('p') RETURNING id", "VACUUM INTO '" + m.Dir() + "/copy.db'",
		"SELECT 1; DELETE FROM t", // Prepare keeps the first statement: a read
	} {
		s, err := conn.PrepareContext(t.Context(), q)
		require.NoError(t, err, q)
		t.Cleanup(func() { s.Close() })
		stmts = append(stmts, s)
	}
	m.SetReplica("node-a") // query_only is still off on this connection
	before := fingerprint(t, m)
	for i, s := range stmts[:len(stmts)-1] {
		rows, err := s.QueryContext(t.Context())
		if err == nil {
			for rows.Next() {
			}
			err = rows.Close()
		}
		wantNotPrimary(t, err, "node-a")
		assert.Equal(t, before, fingerprint(t, m), "statement %d wrote on a replica", i)
	}
	_, err := stmts[len(stmts)-1].ExecContext(t.Context())
	assert.NoError(t, err, "the first statement of a string, a read")
	assertRefusedCleanly(t, m, conn, before)
}

// VACUUM INTO "link/../x.db", where link points into the mount, is inside
// the mount: the kernel follows the link before "..".
func TestVacuumIntoThroughSymlinkDotDotIsRefused(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	sub := filepath.Join(m.Dir(), "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(sub, link))
	m.SetReplica("node-a")

	_, err := db.Exec("VACUUM INTO '" + link + "/../escaped.db'")
	assert.ErrorIs(t, err, ErrNotPrimary)
	assert.NoFileExists(t, filepath.Join(m.Dir(), "escaped.db"), "VACUUM INTO wrote inside the mount on a replica")
}

// Whether a connection has a role check follows what SQLite opened, not
// mode=memory in the DSN's text: go-sqlite3 ignores it on a plain path, and
// SQLite reads the last mode of a URI.
func TestModeMemoryInTheDSNStillChecksTheRole(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dsn  func(path string) string
	}{
		{name: "plain path", dsn: func(p string) string { return p + "?mode=memory" }},
		{name: "uri with a later mode", dsn: func(p string) string { return "file:" + p + "?mode=memory&mode=rw" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			openDB(t, m, "").Close()
			m.SetReplica("node-a")
			before := fingerprint(t, m)

			db, err := sql.Open(DriverName, tc.dsn(m.DBPath()))
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			_, err = db.Exec("INSERT INTO t(v) VALUES ('replica write')")
			assert.ErrorIs(t, err, ErrNotPrimary)
			assert.Equal(t, before, fingerprint(t, m), "the replica's database changed")
		})
	}
}

// A URI that SQLite does open in memory needs no role check.
func TestURIInMemoryWrites(t *testing.T) {
	t.Parallel()
	db, err := sql.Open(DriverName, "file:/nonexistent-dir/app.db?mode=memory")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec("CREATE TABLE t(v)")
	assert.NoError(t, err)
}

// A write to a database attached from a LiteFS mount reads that mount's
// role, whatever the main database is.
func TestWriteToAttachedMountDatabaseIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{name: "memory main", dsn: func(*testing.T) string { return ":memory:" }},
		{name: "local main", dsn: func(t *testing.T) string { return filepath.Join(t.TempDir(), "local.db") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			openDB(t, m, "").Close()
			db, err := sql.Open(DriverName, tc.dsn(t))
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			db.SetMaxOpenConns(1)
			_, err = db.Exec("ATTACH '" + m.DBPath() + "' AS lfs")
			require.NoError(t, err)
			_, err = db.Exec("INSERT INTO lfs.t(v) VALUES ('on the primary')")
			require.NoError(t, err, "the attached mount is the primary")

			m.SetReplica("node-a")
			before := fingerprint(t, m)
			_, err = db.Exec("INSERT INTO lfs.t(v) VALUES ('via attach')")
			assert.ErrorIs(t, err, ErrNotPrimary)
			_, err = db.Exec("CREATE TABLE IF NOT EXISTS lfs.u(x); INSERT INTO lfs.t(v) VALUES ('multi')")
			assert.ErrorIs(t, err, ErrNotPrimary)
			assert.Equal(t, before, fingerprint(t, m), "a replica's LiteFS database was written through ATTACH")

			_, err = db.Exec("DETACH lfs")
			require.NoError(t, err)
			_, err = db.Exec("CREATE TABLE main_t(x)")
			assert.NoError(t, err, "once detached, the mount's role no longer applies")
		})
	}
}

// ATTACH of a file that does not exist yet creates it, which query_only
// does not stop: on a replica it is a write.
func TestAttachCreatingAFileOnAReplicaIsRefused(t *testing.T) {
	t.Parallel()
	m, conn := pinnedMount(t)
	m.SetReplica("node-a")
	tests := []struct {
		name   string
		sql    string
		target string
	}{
		{name: "path", sql: "ATTACH '{mount}/new.db' AS n", target: "new.db"},
		{name: "uri", sql: "ATTACH 'file:{mount}/uri.db?mode=rwc' AS n", target: "uri.db"},
		{name: "in a string", sql: "SELECT 1; ATTACH '{mount}/multi.db' AS n", target: "multi.db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := conn.ExecContext(t.Context(), strings.ReplaceAll(tc.sql, "{mount}", m.Dir()))
			assert.ErrorIs(t, err, ErrNotPrimary)
			assert.NoFileExists(t, filepath.Join(m.Dir(), tc.target), "a replica created a database in the mount")
		})
	}
	_, err := conn.ExecContext(t.Context(), "ATTACH '"+m.DBPath()+"' AS existing")
	assert.NoError(t, err, "attaching a file that exists creates nothing")
}

// A verdict cached as a read (a view the primary has since redefined to call
// pragma_optimize) cannot write on a connection opened on the primary once
// the driver has seen the node demoted: that connection runs its next
// statement, a read included, under query_only.
func TestCachedReadAfterADemotionRunsUnderQueryOnly(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	conn, _ := pinConn(t, db)
	ctx := t.Context()
	_, err := db.Exec("CREATE TABLE v(a)")
	require.NoError(t, err)
	require.NoError(t, runOn(ctx, conn, "SELECT 1 FROM v", true), "cached as a read")
	for range 50 {
		_, err = db.Exec("INSERT INTO t(v) VALUES ('z')")
		require.NoError(t, err)
	}
	_, err = db.Exec("DROP TABLE v; CREATE VIEW v AS SELECT * FROM pragma_optimize(0x10002)")
	require.NoError(t, err)
	m.SetReplica("node-a")
	_, err = db.Exec("INSERT INTO t(v) VALUES ('refused')") // another connection sees the demotion
	require.ErrorIs(t, err, ErrNotPrimary)
	before := fingerprint(t, m)

	err = runOn(ctx, conn, "SELECT 1 FROM v", true)
	assert.ErrorIs(t, err, ErrNotPrimary)
	assert.Equal(t, before, fingerprint(t, m), "a replica wrote (ANALYZE through a cached read)")
}

// A refused string leaves case_sensitive_like (which SQLite cannot read
// back) as the DSN set it, and a setting of an attached schema as it was.
func TestRefusedStringRestoresUnreadableAndSchemaSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		suffix   string
		wantLike bool // 'a' LIKE 'A' as the connection opens
	}{
		{name: "default", wantLike: true},
		{name: "dsn sets it", suffix: "&_cslike=1", wantLike: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			db := openDB(t, m, tc.suffix)
			conn, _ := pinConn(t, db)
			ctx := t.Context()
			_, err := conn.ExecContext(ctx, "ATTACH '"+filepath.Join(t.TempDir(), "aux.db")+"' AS aux")
			require.NoError(t, err)
			m.SetReplica("node-a")
			like := func() (b bool) {
				require.NoError(t, conn.QueryRowContext(ctx, "SELECT 'a' LIKE 'A'").Scan(&b))
				return b
			}
			auxSync := func() (v int) {
				require.NoError(t, conn.QueryRowContext(ctx, "PRAGMA aux.synchronous").Scan(&v))
				return v
			}
			require.Equal(t, tc.wantLike, like())
			syncBefore := auxSync()

			set := "PRAGMA case_sensitive_like = 1"
			if !tc.wantLike {
				set = "PRAGMA case_sensitive_like = 0"
			}
			_, err = conn.ExecContext(ctx, set+"; PRAGMA aux.synchronous = 0; INSERT INTO t(v) VALUES ('x')")
			require.ErrorIs(t, err, ErrNotPrimary)
			assert.Equal(t, tc.wantLike, like(), "case_sensitive_like was left changed")
			assert.Equal(t, syncBefore, auxSync(), "aux.synchronous was left changed")
		})
	}
}

// On a replica a string that detaches a database and may write is refused
// before it runs: restoring the database afterwards would lose the URI
// parameters it was attached with (mode=ro).
func TestRefusedStringWithDetachRunsNothing(t *testing.T) {
	t.Parallel()
	m, conn := pinnedMount(t)
	ctx := t.Context()
	aux := filepath.Join(t.TempDir(), "aux.db")
	_, err := conn.ExecContext(ctx, "ATTACH '"+aux+"' AS w; CREATE TABLE w.x(a); DETACH w")
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "ATTACH 'file:"+aux+"?mode=ro' AS aux")
	require.NoError(t, err)
	m.SetReplica("node-a")

	_, err = conn.ExecContext(ctx, "DETACH aux; INSERT INTO t(v) VALUES ('x')")
	require.ErrorIs(t, err, ErrNotPrimary)
	m.SetPrimary()
	_, err = conn.ExecContext(ctx, "INSERT INTO aux.x(a) VALUES (1)")
	assert.Error(t, err, "aux was attached read-only")
	_, err = conn.ExecContext(ctx, "DETACH aux")
	assert.NoError(t, err, "aux is still attached")
}
