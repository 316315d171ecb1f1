package litefs

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// openDB opens the mount's database with the litefs driver and creates the
// schema the tests use, while the node is primary.
func openDB(tb testing.TB, m *litefstest.Mount, dsnSuffix string) *sql.DB {
	tb.Helper()
	c, err := NewConnector(m.DSN()+dsnSuffix, WithLogger(discard))
	require.NoError(tb, err)
	db := sql.OpenDB(c)
	tb.Cleanup(func() { db.Close() })
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)",
		"CREATE INDEX IF NOT EXISTS t_v ON t(v)",
		"INSERT INTO t(v) VALUES ('seed')",
	} {
		_, err := db.Exec(q)
		require.NoError(tb, err, q)
	}
	return db
}

// fingerprint hashes the database and WAL files: any write changes it.
func fingerprint(tb testing.TB, m *litefstest.Mount) [32]byte {
	tb.Helper()
	h := sha256.New()
	for _, name := range []string{m.DBPath(), m.DBPath() + "-wal"} {
		b, err := os.ReadFile(name)
		if !os.IsNotExist(err) {
			require.NoError(tb, err)
		}
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// assertNoWriteLock fails if some connection holds the database's write lock.
func assertNoWriteLock(tb testing.TB, m *litefstest.Mount) {
	tb.Helper()
	raw, err := sql.Open("sqlite3", m.DBPath()+"?_busy_timeout=0&_txlock=immediate")
	require.NoError(tb, err)
	defer raw.Close()
	tx, err := raw.Begin()
	require.NoError(tb, err, "BEGIN IMMEDIATE from another connection (a write lock is held)")
	tx.Rollback()
}

func wantNotPrimary(tb testing.TB, err error, id string) {
	tb.Helper()
	var np *NotPrimaryError
	require.ErrorAs(tb, err, &np)
	require.Equal(tb, id, np.PrimaryID, "PrimaryID")
	require.ErrorIs(tb, err, ErrNotPrimary)
}

// pinConn holds one connection of db for the test and returns it with the
// driver's Conn beneath it.
func pinConn(tb testing.TB, db *sql.DB) (*sql.Conn, *Conn) {
	tb.Helper()
	conn, err := db.Conn(context.Background())
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close() })
	var c *Conn
	conn.Raw(func(dc any) error { c = dc.(*Conn); return nil })
	return conn, c
}

// pinnedMount returns a temp mount and a connection pinned by pinConn on its
// database, opened by openDB.
func pinnedMount(tb testing.TB) (*litefstest.Mount, *sql.Conn) {
	tb.Helper()
	m := litefstest.NewMount(tb)
	conn, _ := pinConn(tb, openDB(tb, m, ""))
	return m, conn
}

// failed returns what a statement that failed with err gets on c, outside
// any admission: SQLite's error, or the refusal it reveals.
func failed(c *Conn, ctx context.Context, err error) error {
	r := run{c: c, ctx: ctx}
	return r.end(err)
}

// writeKind is a statement run on a replica, and what it must get.
type writeKind struct {
	name    string
	sql     string // {mount} and {tmp} stand for the mount and a directory outside it
	query   bool   // run with Query instead of Exec
	refused bool
	args    []any
	// replicaErr, when set, is the error a case that is not a refusal
	// gets on a replica; primaryErr what a refused case gets on the
	// primary (nil: success).
	replicaErr, primaryErr error
}

// writeKinds is the write-kind table: every way a statement may try to
// write on a replica, and reads that must still work there.
var writeKinds = []writeKind{
	{name: "insert", sql: "INSERT INTO t(v) VALUES ('x')", refused: true},
	{name: "update", sql: "UPDATE t SET v = 'y'", refused: true},
	{name: "delete", sql: "DELETE FROM t", refused: true},
	{name: "replace", sql: "REPLACE INTO t(id, v) VALUES (1, 'r')", refused: true},
	{name: "upsert", sql: "INSERT INTO t(id, v) VALUES (1, 'u') ON CONFLICT(id) DO UPDATE SET v = excluded.v", refused: true},
	{name: "cte insert", sql: "WITH n(v) AS (SELECT 'c') INSERT INTO t(v) SELECT v FROM n", refused: true},
	{name: "insert returning via Query", sql: "INSERT INTO t(v) VALUES ('q') RETURNING id", query: true, refused: true},
	{name: "delete returning via Query", sql: "DELETE FROM t RETURNING id", query: true, refused: true},
	{name: "create table", sql: "CREATE TABLE u(x)", refused: true},
	{name: "create table if not exists, new", sql: "CREATE TABLE IF NOT EXISTS u(x)", refused: true},
	{name: "create index", sql: "CREATE INDEX t_id_v ON t(id, v)", refused: true},
	{name: "create trigger", sql: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = 'z'; END", refused: true},
	{name: "drop table", sql: "DROP TABLE t", refused: true},
	{name: "alter table", sql: "ALTER TABLE t ADD COLUMN w TEXT", refused: true},
	{name: "pragma set", sql: "PRAGMA user_version = 7", refused: true},
	{name: "pragma optimize", sql: "PRAGMA optimize", refused: true},
	{name: "pragma wal_checkpoint", sql: "PRAGMA wal_checkpoint(TRUNCATE)", refused: true},
	{name: "vacuum", sql: "VACUUM", refused: true},
	{name: "analyze", sql: "ANALYZE", refused: true},
	{name: "reindex", sql: "REINDEX", refused: true},
	{name: "begin immediate", sql: "BEGIN IMMEDIATE", refused: true},
	{name: "begin exclusive", sql: "BEGIN EXCLUSIVE", refused: true},
	{name: "temp table", sql: "CREATE TEMP TABLE tt(x)", refused: true},
	{name: "multi exec, write second", sql: "SELECT 1; INSERT INTO t(v) VALUES ('m')", refused: true},
	{name: "multi query, write second", sql: "SELECT 1; INSERT INTO t(v) VALUES ('m') RETURNING id", query: true, refused: true},
	{name: "multi exec, write first", sql: "INSERT INTO t(v) VALUES ('m'); SELECT 1", refused: true},
	{name: "multi query, write first", sql: "INSERT INTO t(v) VALUES ('m'); SELECT 1", query: true, refused: true},
	{name: "multi exec, write in the middle", sql: "SELECT 1; DELETE FROM t; SELECT 2", refused: true},

	{name: "select", sql: "SELECT * FROM t", query: true},
	{name: "select via Exec", sql: "SELECT count(*) FROM t"},
	{name: "read cte", sql: "WITH n(x) AS (SELECT 1) SELECT x FROM n", query: true},
	{name: "pragma read", sql: "PRAGMA user_version", query: true},
	{name: "multi read", sql: "SELECT 1; SELECT 2", query: true},
	{name: "multi read via Exec", sql: "SELECT 1; SELECT 2;"},
	{name: "explain insert", sql: "EXPLAIN INSERT INTO t(v) VALUES ('e')", query: true},
	{name: "create table if not exists, present", sql: "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)"},
	{name: "create index if not exists, present", sql: "CREATE INDEX IF NOT EXISTS t_v ON t(v)"},
	{name: "drop if exists, absent", sql: "DROP TABLE IF EXISTS nothere"},
	{name: "journal_mode read", sql: "PRAGMA journal_mode", query: true},
	{name: "journal_mode set, even unchanged", sql: "PRAGMA journal_mode = WAL", query: true, refused: true},
	{name: "journal_mode changed", sql: "PRAGMA journal_mode = DELETE", refused: true},
	{name: "quoted pragma name", sql: `PRAGMA "optimize"(0x10002)`, refused: true},
	{name: "bracketed pragma name", sql: "PRAGMA main.[optimize]", refused: true},
	{name: "multi, journal_mode", sql: "SELECT 1; PRAGMA journal_mode = DELETE", refused: true},
	{name: "multi, checkpoint", sql: "SELECT 1; PRAGMA wal_checkpoint(TRUNCATE)", refused: true},
	{name: "multi, lifting query_only", sql: "SELECT 1; PRAGMA query_only = 0; INSERT INTO t(v) VALUES ('q')", refused: true, primaryErr: errManagedPragma},
	{name: "semicolon inside a $var(...)", sql: "SELECT $a(--);INSERT INTO t(v) VALUES ('tcl')", refused: true, args: []any{1}},
	{name: "comment start inside a $var(...)", sql: "SELECT $a(/*);INSERT INTO t(v) VALUES ('tcl')", refused: true, args: []any{1}},
	{name: "quote inside a @var(...)", sql: "SELECT @a(');INSERT INTO t(v) VALUES ('tcl')--')", refused: true, args: []any{1}},
	{name: "semicolon in a literal", sql: "SELECT ';INSERT INTO t VALUES(1)' FROM t", query: true},
	{name: "trailing comment", sql: "SELECT 1; -- INSERT INTO t VALUES(1)", query: true},
	{name: "deferred begin and commit", sql: "BEGIN; SELECT 1; COMMIT"},

	{name: "one-string transaction", sql: "BEGIN; INSERT INTO t(v) VALUES ('b'); COMMIT", refused: true},
	{name: "one-string immediate transaction", sql: "BEGIN IMMEDIATE; INSERT INTO t(v) VALUES ('b'); COMMIT", refused: true},
	{name: "savepoint", sql: "SAVEPOINT s; INSERT INTO t(v) VALUES ('s'); RELEASE s", refused: true},
	{name: "table-valued optimize", sql: "SELECT * FROM pragma_optimize(65538)", query: true, refused: true},
	{name: "table-valued optimize in a cte", sql: "WITH o AS (SELECT * FROM pragma_optimize(65538)) SELECT * FROM o", query: true, refused: true},
	{name: "table-valued journal_mode", sql: "SELECT * FROM pragma_journal_mode('main')", query: true},
	{name: "table-valued table_info", sql: "SELECT name FROM pragma_table_info('t')", query: true},
	{name: "schema-qualified pragma set", sql: "PRAGMA main.user_version = 3", refused: true},
	{name: "temp schema pragma set", sql: "PRAGMA temp.user_version = 3", refused: true},
	{name: "pragma locking_mode exclusive", sql: "PRAGMA locking_mode = EXCLUSIVE", refused: true},
	{name: "pragma incremental_vacuum", sql: "PRAGMA incremental_vacuum", refused: true},
	{name: "pragma wal_checkpoint bare", sql: "PRAGMA wal_checkpoint", refused: true},
	{name: "pragma unknown set", sql: "PRAGMA no_such_pragma = 1", refused: true},
	{name: "explain pragma set", sql: "EXPLAIN PRAGMA user_version = 3", query: true, refused: true},
	{name: "pragma foreign_keys", sql: "PRAGMA foreign_keys = ON"},
	{name: "pragma recursive_triggers", sql: "PRAGMA recursive_triggers = 1"},
	{name: "pragma defer_foreign_keys", sql: "PRAGMA defer_foreign_keys = 1"},
	{name: "pragma ignore_check_constraints", sql: "PRAGMA ignore_check_constraints = 1"},
	{name: "pragma trusted_schema", sql: "PRAGMA trusted_schema = 0"},
	{name: "pragma writable_schema", sql: "PRAGMA writable_schema = 1"},
	{name: "pragma shrink_memory", sql: "PRAGMA shrink_memory"},
	{name: "pragma table_info", sql: "PRAGMA table_info(t)", query: true},
	{name: "pragma query_only set", sql: "PRAGMA query_only = 0", replicaErr: errManagedPragma},
	{name: "explain pragma query_only set", sql: "EXPLAIN PRAGMA query_only = 0", query: true, replicaErr: errManagedPragma},
	{name: "attach", sql: "ATTACH ':memory:' AS aux"},
	{name: "insert into a missing table", sql: "INSERT INTO nosuch VALUES (1)", refused: true, primaryErr: errSQLite},
	{name: "insert into a missing column", sql: "INSERT INTO t(nocol) VALUES (1)", refused: true, primaryErr: errSQLite},
	{name: "vacuum into the mount", sql: "VACUUM INTO '{mount}/copy.db'", refused: true},
	{name: "vacuum into a parameter", sql: "VACUUM INTO ?", refused: true, args: []any{"{tmp}/p.db"}},
	{name: "vacuum into an expression", sql: "VACUUM INTO '{tmp}/' || 'e.db'", refused: true},
	{name: "vacuum into a uri", sql: "VACUUM INTO 'file:{tmp}/u.db'", refused: true},
	{name: "vacuum into outside the mount", sql: "VACUUM INTO '{tmp}/backup.db'"},
	{name: "vacuum schema into outside the mount", sql: "VACUUM main INTO '{tmp}/backup2.db'"},
}

func TestReplicaRefusesWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range writeKinds {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkWriteKind(t, tc)
		})
	}
}

// checkWriteKind runs tc on a replica, on a connection opened on the
// primary (the hardest case), and then, if refused there, on the primary.
func checkWriteKind(t *testing.T, tc writeKind) {
	m := litefstest.NewMount(t)
	tmp := t.TempDir()
	expand := strings.NewReplacer("{mount}", m.Dir(), "{tmp}", tmp).Replace
	q, args := expand(tc.sql), make([]any, len(tc.args))
	for i, a := range tc.args {
		if s, ok := a.(string); ok {
			a = expand(s)
		}
		args[i] = a
	}
	db := openDB(t, m, "")
	conn, _ := pinConn(t, db) // opened on the primary: the hardest case
	before := fingerprint(t, m)
	m.SetReplica("node-a")

	err := runOn(t.Context(), conn, q, tc.query, args...)
	switch {
	case tc.refused:
		wantNotPrimary(t, err, "node-a")
		assertRefusedCleanly(t, m, conn, before)
	case tc.replicaErr != nil:
		assert.ErrorIs(t, err, tc.replicaErr)
	default:
		assert.NoError(t, err, "want no error on a replica")
	}
	assert.Equal(t, before, fingerprint(t, m), "the database or WAL changed on a replica")
	assertNoWriteLock(t, m)
	if !tc.refused {
		return
	}
	m.SetPrimary()
	err = runOn(t.Context(), conn, q, tc.query, args...)
	switch {
	case tc.primaryErr == errSQLite:
		var se sqlite3.Error
		assert.ErrorAs(t, err, &se, "on the primary")
	case tc.primaryErr != nil:
		assert.ErrorIs(t, err, tc.primaryErr, "on the primary")
	default:
		assert.NoError(t, err, "on the primary")
	}
}

// errSQLite stands for any error from SQLite in a test table.
var errSQLite = errors.New("an error from SQLite")

func TestPreparedStatementAfterDemotion(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	ins, err := db.Prepare("INSERT INTO t(v) VALUES (?)")
	require.NoError(t, err)
	defer ins.Close()
	sel, err := db.Prepare("SELECT count(*) FROM t")
	require.NoError(t, err)
	defer sel.Close()
	_, err = ins.Exec("p1")
	require.NoError(t, err)

	m.SetReplica("node-b")
	_, err = ins.Exec("p2")
	wantNotPrimary(t, err, "node-b")
	var n int
	require.NoError(t, sel.QueryRow().Scan(&n), "prepared read on a replica")
	assert.Equal(t, 2, n, "rows")

	m.SetPrimary()
	_, err = ins.Exec("p3")
	assert.NoError(t, err, "after promotion")
}

func TestRoleChangeSeenByNextWrite(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(1) // one connection, so no fresh state hides a stale one
	steps := []struct {
		set  func()
		want string // "" for success, else the primary named by the refusal; "-" for no primary
	}{
		{set: func() {}, want: ""},
		{set: func() { m.SetReplica("node-a") }, want: "node-a"},
		{set: func() { m.SetReplica("node-c") }, want: "node-c"},
		{set: m.SetNoPrimary, want: "-"},
		{set: m.SetPrimary, want: ""},
		{set: func() { m.SetReplica("node-a") }, want: "node-a"},
		{set: m.SetPrimary, want: ""},
	}
	for i, s := range steps {
		s.set()
		_, err := db.Exec("INSERT INTO t(v) VALUES ('f')")
		switch s.want {
		case "":
			require.NoError(t, err, "step %d", i)
		case "-":
			require.ErrorIs(t, err, ErrNoPrimary, "step %d", i)
			require.ErrorIs(t, err, ErrNotPrimary, "step %d", i)
		default:
			wantNotPrimary(t, err, s.want)
		}
	}
}

func TestReadsDoNotTouchTheMount(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	ctx := t.Context()
	conn, c := pinConn(t, db)
	checks := c.probe.checks.Load
	m.SetReplica("node-a")
	start := checks()
	for range 50 {
		var n int
		require.NoError(t, conn.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE v = ?", "seed").Scan(&n))
		_, err := conn.ExecContext(ctx, "SELECT 1")
		require.NoError(t, err)
	}
	require.Equal(t, start, checks(), "100 reads looked at the mount")
	_, err := conn.ExecContext(ctx, "INSERT INTO t(v) VALUES ('w')")
	wantNotPrimary(t, err, "node-a")
	assert.Equal(t, start+1, checks(), "a write looks at the mount once")
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	t.Run("read-only on a replica with _txlock=immediate", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "&_txlock=immediate")
		m.SetReplica("node-a")
		tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err, "BeginTx(ReadOnly)")
		var n int
		require.NoError(t, tx.QueryRow("SELECT count(*) FROM t").Scan(&n))
		require.Equal(t, 1, n, "rows")
		assertNoWriteLock(t, m)
		_, err = tx.Exec("INSERT INTO t(v) VALUES ('x')")
		require.ErrorIs(t, err, ErrReadOnlyTx)
		_, err = tx.Exec("SELECT 1; DELETE FROM t")
		require.ErrorIs(t, err, ErrReadOnlyTx, "multi-statement write")
		require.NoError(t, tx.Commit())
	})
}

func TestWriteTransactions(t *testing.T) {
	t.Parallel()
	t.Run("write transaction with _txlock=immediate refused at Begin", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "&_txlock=immediate")
		m.SetReplica("node-a")
		_, err := db.BeginTx(t.Context(), nil)
		wantNotPrimary(t, err, "node-a")
		assertNoWriteLock(t, m)
	})
	t.Run("deferred transaction refused at its first write", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "")
		m.SetReplica("node-a")
		tx, err := db.Begin()
		require.NoError(t, err)
		defer tx.Rollback()
		var n int
		require.NoError(t, tx.QueryRow("SELECT count(*) FROM t").Scan(&n))
		_, err = tx.Exec("UPDATE t SET v = 'x'")
		wantNotPrimary(t, err, "node-a")
		assertNoWriteLock(t, m)
	})
	t.Run("demoted inside a write transaction", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "")
		tx, err := db.Begin()
		require.NoError(t, err)
		_, err = tx.Exec("INSERT INTO t(v) VALUES ('in')")
		require.NoError(t, err)
		m.SetReplica("node-d")
		_, err = tx.Exec("INSERT INTO t(v) VALUES ('late')")
		wantNotPrimary(t, err, "node-d")
		require.NoError(t, tx.Rollback())
	})
}

func TestReadOnlyTransactionOnThePrimary(t *testing.T) {
	t.Parallel()
	t.Run("read-only on the primary", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "")
		db.SetMaxOpenConns(1)
		tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		_, err = tx.Exec("DELETE FROM t")
		require.ErrorIs(t, err, ErrReadOnlyTx)
		require.NoError(t, tx.Rollback())
		_, err = db.Exec("INSERT INTO t(v) VALUES ('after')")
		require.NoError(t, err, "write after a read-only transaction")
	})
}

func TestInvalidPrimaryFailsClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content []byte
		wantID  string // "" when the write must get ErrNoPrimary
	}{
		{name: "hostname", content: []byte("node-a\n"), wantID: "node-a"},
		{name: "fly machine id", content: []byte("3d8d9930b32038\n"), wantID: "3d8d9930b32038"},
		{name: "dotted", content: []byte("node-a.vm.app.internal\n"), wantID: "node-a.vm.app.internal"},
		{name: "surrounding space", content: []byte("  node_a \r\n"), wantID: "node_a"},
		{name: "255 bytes", content: []byte(strings.Repeat("a", 255) + "\n"), wantID: strings.Repeat("a", 255)},
		{name: "empty", content: nil, wantID: ""},
		{name: "only newline", content: []byte("\n"), wantID: ""},
		{name: "only spaces", content: []byte("    "), wantID: ""},
		{name: "inner space", content: []byte("node a\n"), wantID: ""},
		{name: "CR LF inside", content: []byte("node-a\r\nX-Evil: 1\n"), wantID: ""},
		{name: "header injection", content: []byte("node-a;app=evil\n"), wantID: ""},
		{name: "256 bytes", content: []byte(strings.Repeat("a", 256)), wantID: ""},
		{name: "1 MiB", content: []byte(strings.Repeat("b", 1<<20)), wantID: ""},
		{name: "binary", content: []byte{0, 0xff, 0xfe, 'x', '\n'}, wantID: ""},
		{name: "utf-8", content: []byte("nöde\n"), wantID: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			m.WritePrimaryFile(tc.content)
			_, err := db.Exec("INSERT INTO t(v) VALUES ('x')")
			if tc.wantID != "" {
				wantNotPrimary(t, err, tc.wantID)
				return
			}
			require.ErrorIs(t, err, ErrNoPrimary)
			assert.LessOrEqual(t, len(err.Error()), 200, "the error message carries the file's content")
			assert.False(t, strings.ContainsAny(err.Error(), "\r\n\x00"), "the error message carries the file's content: %q", err.Error())
		})
	}
}

func TestOddMountEntriesFailClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, m *litefstest.Mount)
	}{
		{name: "directory as .primary", setup: func(t *testing.T, m *litefstest.Mount) {
			require.NoError(t, os.Mkdir(m.Dir()+"/"+primaryFile, 0o755))
		}},
		{name: "fifo as .primary", setup: func(t *testing.T, m *litefstest.Mount) {
			if err := mkfifo(m.Dir() + "/" + primaryFile); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		}},
		{name: "symlink loop as .primary", setup: func(t *testing.T, m *litefstest.Mount) {
			require.NoError(t, os.Symlink(primaryFile, m.Dir()+"/"+primaryFile))
		}},
		{name: "dangling symlink as .primary", setup: func(t *testing.T, m *litefstest.Mount) {
			require.NoError(t, os.Symlink("/nonexistent/node-a", m.Dir()+"/"+primaryFile))
		}},
		{name: "symlink to a regular file as .primary", setup: func(t *testing.T, m *litefstest.Mount) {
			target := filepath.Join(t.TempDir(), "primary")
			require.NoError(t, os.WriteFile(target, []byte("node-a"), 0o644))
			require.NoError(t, os.Symlink(target, m.Dir()+"/"+primaryFile))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			tc.setup(t, m)
			dirwatch.Sync(m.Dir()) // made by hand: wait for the watch, as the kit does
			_, err := db.Exec("INSERT INTO t(v) VALUES ('x')")
			require.ErrorIs(t, err, ErrNoPrimary)
			var n int
			require.NoError(t, db.QueryRow("SELECT count(*) FROM t").Scan(&n), "reads must not depend on the mount")
		})
	}
}

func TestLiteFSRefusalBackstop(t *testing.T) {
	t.Parallel()
	m, conn := pinnedMount(t)
	liteFSErrors := []struct {
		name string
		err  error
	}{
		{name: "WAL write denied", err: sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: 13}},
		{name: "journal directory read-only", err: sqlite3.Error{Code: sqlite3.ErrReadonly, ExtendedCode: errReadonlyDirectory}},
	}
	for _, tc := range liteFSErrors {
		require.NoError(t, conn.Raw(func(dc any) error {
			c := dc.(*Conn)
			m.SetReplica("node-a")
			tr := &Tracker{}
			got := failed(c, WithTracker(t.Context(), tr), tc.err)
			wantNotPrimary(t, got, "node-a")
			assert.ErrorIs(t, got, tc.err, "%s: the refusal wraps SQLite's error", tc.name)
			assert.Error(t, tr.Refusal(), "%s: the refusal is reported to the tracker", tc.name)
			m.SetNoPrimary()
			assert.ErrorIs(t, failed(c, t.Context(), tc.err), ErrNoPrimary, "%s, no primary", tc.name)
			m.SetPrimary()
			assert.Equal(t, tc.err, failed(c, t.Context(), tc.err), "%s on a primary: SQLite's error unchanged", tc.name)
			return nil
		}))
	}
}

// trackerCases are what a Tracker must hear of, statement by statement.
var trackerCases = []struct {
	name      string
	do        func(ctx context.Context, db *sql.DB) error
	committed bool
}{
	{name: "read", do: func(ctx context.Context, db *sql.DB) error {
		return runOn(ctx, db, "SELECT * FROM t", true)
	}, committed: false},
	{name: "autocommit insert", do: func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, "INSERT INTO t(v) VALUES ('a')")
		return err
	}, committed: true},
	{name: "tx commit", do: func(ctx context.Context, db *sql.DB) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.Exec("INSERT INTO t(v) VALUES ('b')"); err != nil {
			return err
		}
		return tx.Commit()
	}, committed: true},
	{name: "tx rollback", do: func(ctx context.Context, db *sql.DB) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.Exec("INSERT INTO t(v) VALUES ('c')"); err != nil {
			return err
		}
		return tx.Rollback()
	}, committed: false},
	{name: "read-only tx", do: func(ctx context.Context, db *sql.DB) error {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		return tx.Commit()
	}, committed: false},
	{name: "raw BEGIN and COMMIT", do: func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, "BEGIN; INSERT INTO t(v) VALUES ('d'); COMMIT")
		return err
	}, committed: true},
	{name: "prepared insert", do: func(ctx context.Context, db *sql.DB) error {
		s, err := db.PrepareContext(ctx, "INSERT INTO t(v) VALUES (?)")
		if err != nil {
			return err
		}
		defer s.Close()
		_, err = s.ExecContext(ctx, "e")
		return err
	}, committed: true},
}

func TestTracker(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	for _, tc := range trackerCases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Tracker{}
			require.NoError(t, tc.do(WithTracker(t.Context(), tr), db))
			assert.Equal(t, tc.committed, tr.Committed(), "Committed()")
			assert.NoError(t, tr.Refusal(), "Refusal()")
		})
	}
	t.Run("refusal", func(t *testing.T) {
		m.SetReplica("node-a")
		defer m.SetPrimary()
		tr := &Tracker{}
		_, err := db.ExecContext(WithTracker(t.Context(), tr), "DELETE FROM t")
		wantNotPrimary(t, tr.Refusal(), "node-a")
		assert.Equal(t, err, tr.Refusal(), "Refusal() is the error Exec returned")
	})
}

func TestCheckPrimary(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	require.NoError(t, CheckPrimary(t.Context(), db), "on the primary")
	m.SetReplica("node-a")
	tr := &Tracker{}
	err := CheckPrimary(WithTracker(t.Context(), tr), db)
	wantNotPrimary(t, err, "node-a")
	wantNotPrimary(t, tr.Refusal(), "node-a")

	plain, err := sql.Open("sqlite3", ":memory:")
	require.NoError(t, err)
	defer plain.Close()
	err = CheckPrimary(t.Context(), plain)
	assert.Error(t, err, "with another driver")
	assert.NotErrorIs(t, err, ErrNotPrimary, "with another driver: a plain error")
}

// flipWrites are the statement kinds the role-flip tests run: each inserts
// exactly one row when it succeeds, and none when it is refused.
var flipWrites = []string{
	"INSERT INTO t(v) VALUES (?)",
	"SELECT 1; INSERT INTO t(v) VALUES (?)",
	"BEGIN; INSERT INTO t(v) VALUES (?); COMMIT",
	"SAVEPOINT s; INSERT INTO t(v) VALUES (?); RELEASE s",
	"CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t(v) VALUES (?)",
}

// writeAcrossFlips runs writers goroutines of perWriter writes of every
// flipWrites kind on db, and returns the writes acknowledged and the errors
// that are neither success nor a refusal.
func writeAcrossFlips(db *sql.DB, writers, perWriter int) (acked int, odd []error) {
	type result struct {
		acked int
		odd   []error
	}
	results := make(chan result, writers)
	for w := range writers {
		go func() {
			var r result
			for i := range perWriter {
				q := flipWrites[(w+i)%len(flipWrites)]
				_, err := db.Exec(q, w*1000+i)
				switch {
				case err == nil:
					r.acked++
				case !errors.Is(err, ErrNotPrimary):
					r.odd = append(r.odd, fmt.Errorf("%s: %w", q, err))
				}
			}
			results <- r
		}()
	}
	for range writers {
		r := <-results
		acked += r.acked
		odd = append(odd, r.odd...)
	}
	return acked, odd
}

func TestConcurrentWritersAcrossRoleFlips(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	var seed int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM t").Scan(&seed))
	const writers, perWriter = 4, 60
	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			switch i % 3 {
			case 0:
				m.SetReplica("node-a")
			case 1:
				m.SetNoPrimary()
			default:
				m.SetPrimary()
			}
		}
	}()
	total, odd := writeAcrossFlips(db, writers, perWriter)
	close(stop)
	<-flipped
	assert.Empty(t, odd, "every error is a refusal: no third kind")
	m.SetPrimary()
	var rows int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM t").Scan(&rows))
	assert.Equal(t, total, rows-seed, "rows written = writes acknowledged")
	t.Logf("%d of %d writes acknowledged across role flips", total, writers*perWriter)
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		dsn     string
		wantErr string // substring; "" for success
	}{
		{name: "plain path", dsn: dir + "/a.db", wantErr: ""},
		{name: "file uri", dsn: "file:" + dir + "/b.db?_journal_mode=WAL&_busy_timeout=100", wantErr: ""},
		{name: "memory", dsn: ":memory:", wantErr: ""},
		{name: "file memory", dsn: "file::memory:?cache=shared", wantErr: ""},
		{name: "temporary", dsn: "", wantErr: ""},
		{name: "bad parameters", dsn: dir + "/c.db?_txlock=%zz", wantErr: "invalid DSN parameters"},
		{name: "bad txlock", dsn: dir + "/c.db?_txlock=sometimes", wantErr: "_txlock"},
		{name: "bad query_only", dsn: dir + "/c.db?_query_only=maybe", wantErr: "_query_only"},
		{name: "NUL byte", dsn: dir + "/c\x00.db", wantErr: "NUL"},
		{name: "missing directory", dsn: dir + "/no/such/dir/d.db", wantErr: "unable to open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, err := sql.Open(DriverName, tc.dsn)
			if err == nil {
				defer db.Close()
				_, err = db.Exec("CREATE TABLE IF NOT EXISTS x(y); INSERT INTO x VALUES (1)")
			}
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestNewConnectorOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []Option
		wantErr string
	}{
		{name: "defaults", opts: nil, wantErr: ""},
		{name: "all set", opts: []Option{WithMountDir(t.TempDir()), WithLogger(discard), WithSQLiteDriver(&sqlite3.SQLiteDriver{}), WithClassCacheSize(8)}, wantErr: ""},
		{name: "empty mount dir", opts: []Option{WithMountDir("")}, wantErr: "WithMountDir"},
		{name: "nil driver", opts: []Option{WithSQLiteDriver(nil)}, wantErr: "WithSQLiteDriver"},
		{name: "nil logger", opts: []Option{WithLogger(nil)}, wantErr: "WithLogger"},
		{name: "zero cache", opts: []Option{WithClassCacheSize(0)}, wantErr: "WithClassCacheSize"},
		{name: "nil option", opts: []Option{nil}, wantErr: "nil Option"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewConnector(":memory:", tc.opts...)
			if tc.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.wantErr)
			}
		})
	}
}

func TestMemoryWithMountDir(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	c, err := NewConnector(":memory:", WithMountDir(m.Dir()), WithLogger(discard))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	defer db.Close()
	m.SetReplica("node-m")
	_, err = db.Exec("CREATE TABLE x(y)")
	wantNotPrimary(t, err, "node-m")
}

func TestConnectHookAndRaw(t *testing.T) {
	t.Parallel()
	hooked := false
	d := &sqlite3.SQLiteDriver{ConnectHook: func(sc *sqlite3.SQLiteConn) error {
		hooked = true
		return sc.RegisterFunc("twice", func(x int) int { return 2 * x }, true)
	}}
	c, err := NewConnector(t.TempDir()+"/h.db", WithSQLiteDriver(d))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow("SELECT twice(21)").Scan(&n))
	assert.Equal(t, 42, n)
	assert.True(t, hooked, "ConnectHook ran")
	conn, err := db.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		if dc.(*Conn).SQLite().GetFilename("") == "" {
			return errors.New("no file name from the raw connection")
		}
		return nil
	})
	require.NoError(t, err)
}

func TestWaitPrimary(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	noPrimary := func() error {
		t.Helper()
		m.SetNoPrimary()
		_, err := db.Exec("INSERT INTO t(v) VALUES ('w')")
		require.ErrorIs(t, err, ErrNoPrimary)
		return err
	}
	wait := func(refusal error) <-chan [2]any {
		ch := make(chan [2]any, 1)
		go func() {
			id, err := WaitPrimary(t.Context(), refusal)
			ch <- [2]any{id, err}
		}()
		return ch
	}

	refusal := noPrimary()
	got := wait(refusal)
	m.SetReplica("node-n")
	assert.Equal(t, [2]any{"node-n", nil}, <-got)

	refusal = noPrimary()
	got = wait(refusal)
	m.SetPrimary()
	assert.Equal(t, [2]any{"", nil}, <-got, "this node")

	refusal = noPrimary()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := WaitPrimary(ctx, refusal)
	assert.ErrorIs(t, err, context.Canceled, "canceled")
	id, err := WaitPrimary(t.Context(), &NotPrimaryError{PrimaryID: "node-k"})
	assert.NoError(t, err, "known primary")
	assert.Equal(t, "node-k", id, "known primary")
	_, err = WaitPrimary(t.Context(), ErrNoPrimary)
	assert.Error(t, err, "a bare ErrNoPrimary: nothing to watch")
}

func TestSQLX(t *testing.T) {
	t.Parallel()
	assert.Equal(t, sqlx.BindType("sqlite3"), sqlx.BindType(DriverName), "sqlx binds litefs as it binds sqlite3")
	assert.Equal(t, sqlx.QUESTION, sqlx.BindType(DriverName))
	m := litefstest.NewMount(t)
	openDB(t, m, "").Close()
	db, err := sqlx.Open(DriverName, m.DSN())
	require.NoError(t, err)
	defer db.Close()
	type row struct {
		ID int64  `db:"id"`
		V  string `db:"v"`
	}
	_, err = db.NamedExec("INSERT INTO t(v) VALUES (:v)", row{V: "named"})
	require.NoError(t, err)
	var rows []row
	require.NoError(t, db.Select(&rows, "SELECT id, v FROM t ORDER BY id"))
	require.Len(t, rows, 2, "the seed row and the named one")
	require.Equal(t, "named", rows[1].V)
	var one row
	require.NoError(t, db.Get(&one, "SELECT id, v FROM t WHERE v = ?", "named"), "Get")
	assert.Equal(t, rows[1].ID, one.ID, "Get")

	m.SetReplica("node-x")
	_, err = db.NamedExecContext(t.Context(), "UPDATE t SET v = :v", row{V: "no"})
	wantNotPrimary(t, err, "node-x")
	require.NoError(t, db.Get(&one, "SELECT id, v FROM t WHERE id = ?", rows[0].ID), "Get on a replica")
	tx, err := db.BeginTxx(t.Context(), &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	defer tx.Rollback()
	require.NoError(t, tx.Select(&rows, "SELECT id, v FROM t"), "Select in a read-only transaction on a replica")
}

// A connection on a plain directory remembers its role from the first
// write and reads the files again only after the test kit changes them;
// a directory with .lag is read at every write. Closing the last database
// on the directory ends its watch.
func TestPlainDirectoryCache(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	conn, c := pinConn(t, db)
	p := c.probe
	if p.dirw.Load() == nil {
		t.Skip("no inotify watch on this platform")
	}
	write := func() error {
		_, err := conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('c')")
		return err
	}
	steps := []struct {
		name        string
		before      func()
		wantErr     error
		wantLookups uint64 // full lookups the write makes
	}{
		{name: "fresh directory", before: func() {}, wantErr: nil, wantLookups: 0}, // read when the table was made
		{name: "cached", before: func() {}, wantErr: nil, wantLookups: 0},
		{name: "became a replica", before: func() { m.SetReplica("node-a") }, wantErr: ErrNotPrimary, wantLookups: 1},
		{name: "cached replica", before: func() {}, wantErr: ErrNotPrimary, wantLookups: 0},
		{name: "back to primary", before: m.SetPrimary, wantErr: nil, wantLookups: 1},
		{name: "another file changed", before: func() { m.SetTXID(7) }, wantErr: nil, wantLookups: 0},
		{name: "lost its primary", before: m.SetNoPrimary, wantErr: ErrNoPrimary, wantLookups: 1},
		{name: "still no primary: .lag is read every time", before: func() {}, wantErr: ErrNoPrimary, wantLookups: 1},
		{name: "primary again", before: m.SetPrimary, wantErr: nil, wantLookups: 1},
		{name: "cached again", before: func() {}, wantErr: nil, wantLookups: 0},
	}
	for _, s := range steps {
		s.before()
		before := p.lookups.Load()
		err := write()
		if s.wantErr == nil {
			require.NoError(t, err, s.name)
		} else {
			require.ErrorIs(t, err, s.wantErr, s.name)
		}
		require.Equal(t, s.wantLookups, p.lookups.Load()-before, "%s: lookups of .primary and .lag", s.name)
	}
	require.True(t, dirwatch.Watching(m.Dir()))
	conn.Close()
	db.Close()
	assert.Nil(t, p.dirw.Load(), "closing the connection kept its watch")
	assert.False(t, dirwatch.Watching(m.Dir()), "closing every database of the directory left its watch running")
}

// Every database on a directory shares its watch, which ends with the last
// of them.
func TestWatchSharedByDatabases(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db1, db2 := openDB(t, m, ""), openDB(t, m, "")
	db1.SetMaxIdleConns(4)
	var conns []*sql.Conn
	for range 3 {
		conn, err := db1.Conn(t.Context()) // several connections of one pool
		require.NoError(t, err)
		conns = append(conns, conn)
	}
	if !dirwatch.Watching(m.Dir()) {
		t.Skip("no inotify watch on this platform")
	}
	for _, conn := range conns {
		require.NoError(t, conn.Close())
	}
	require.NoError(t, db1.Close())
	assert.True(t, dirwatch.Watching(m.Dir()), "the watch ended while a database remained open")
	m.SetReplica("node-a")
	_, err := db2.Exec("INSERT INTO t(v) VALUES ('x')")
	wantNotPrimary(t, err, "node-a")
	require.NoError(t, db2.Close())
	assert.False(t, dirwatch.Watching(m.Dir()), "closing every database of the directory left its watch running")
}

// A role change made through the test kit is seen by the very next write,
// every time: the kit drains the watch before it returns.
func TestKitRoleChangeSeenAtOnce(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(2)
	write := func() error {
		_, err := db.Exec("UPDATE t SET v = 'flip' WHERE id = 1")
		return err
	}
	for i := range 200 {
		m.SetReplica("node-a")
		require.ErrorIs(t, write(), ErrNotPrimary, "flip %d: a write right after SetReplica", i)
		m.SetPrimary()
		require.NoError(t, write(), "flip %d: a write right after SetPrimary", i)
		m.SetNoPrimary()
		require.ErrorIs(t, write(), ErrNoPrimary, "flip %d: a write right after SetNoPrimary", i)
		m.SetPrimary()
		require.NoError(t, write(), "flip %d: a write right after SetPrimary", i)
	}
}

// A change to .primary made by other means than the test kit (another
// process, os.WriteFile) is seen once the watch's goroutine has read its
// event, microseconds later: within a deadline, not at once.
func TestHandMadeRoleChangeSeen(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	primary := filepath.Join(m.Dir(), ".primary")
	writeSees := func(want error) func() error {
		return func() error {
			_, err := db.Exec("UPDATE t SET v = 'hand' WHERE id = 1")
			if want == nil && err == nil || want != nil && errors.Is(err, want) {
				return nil
			}
			return fmt.Errorf("a write got %v, want %v", err, want)
		}
	}
	for _, step := range []struct {
		name   string
		change func() error
		want   error
	}{
		{name: "os.WriteFile creates .primary", change: func() error { return os.WriteFile(primary, []byte("node-a\n"), 0o644) }, want: ErrNotPrimary},
		{name: "os.Remove removes it", change: func() error { return os.Remove(primary) }},
		{name: "a rename puts it in place", change: func() error {
			tmp := filepath.Join(m.Dir(), "primary.tmp")
			if err := os.WriteFile(tmp, []byte("node-b\n"), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, primary)
		}, want: ErrNotPrimary},
		{name: "an empty rewrite in place", change: func() error { return os.WriteFile(primary, nil, 0o644) }, want: ErrNoPrimary},
		{name: "a rename takes it away", change: func() error { return os.Rename(primary, primary+".old") }},
	} {
		require.NoError(t, step.change(), step.name)
		litefstest.WaitFor(t, writeSees(step.want))
	}
}

func TestManagedPragma(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	for _, q := range []string{"PRAGMA query_only = 0", "PRAGMA query_only(1)", `PRAGMA main."query_only" = 1`} {
		_, err := db.Exec(q)
		assert.ErrorIs(t, err, errManagedPragma, q)
	}
	assert.NoError(t, runOn(t.Context(), db, "PRAGMA query_only", true), "reading query_only")
}

func TestQueryCommitsAreTrackedToTheirEnd(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(1) // the next request gets the same connection

	first := &Tracker{}
	var id int64
	require.NoError(t, db.QueryRowContext(WithTracker(t.Context(), first), "INSERT INTO t(v) VALUES ('r') RETURNING id").Scan(&id))
	require.True(t, first.Committed(), "INSERT ... RETURNING through QueryRow: Committed()")
	second := &Tracker{}
	require.NoError(t, runOn(WithTracker(t.Context(), second), db, "SELECT * FROM t", true))
	require.False(t, second.Committed(), "a later read was credited with the earlier commit")

	third := &Tracker{}
	_, err := db.ExecContext(WithTracker(t.Context(), third), "INSERT INTO t(v) VALUES ('one'); INSERT INTO nosuch VALUES (1)")
	require.Error(t, err, "the second statement's error")
	assert.True(t, third.Committed(), "a string whose first statement committed before the second failed: Committed()")
}

func TestCreateIfNotExistsOnAReplicaWithAStaleSchema(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(1)
	_, err := db.Exec("SELECT * FROM t") // load the schema on the connection
	require.NoError(t, err)
	// The primary creates a table behind this connection's back.
	other, err := sql.Open("sqlite3", m.DBPath())
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Exec("CREATE TABLE late(x)")
	require.NoError(t, err)
	m.SetReplica("node-a")
	_, err = db.Exec("CREATE TABLE IF NOT EXISTS late(x)")
	require.NoError(t, err, "the table exists now")
	_, err = db.Exec("CREATE TABLE IF NOT EXISTS later(x)")
	wantNotPrimary(t, err, "node-a")
}

func TestLiteFSMountGone(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	c, err := NewConnector(m.DSN(), WithLogger(discard))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	defer db.Close()
	_, err = db.Exec("CREATE TABLE t(x)")
	require.NoError(t, err)
	c.sawLiteFS.Store(true) // as if another connection had found a LiteFS mount here
	_, err = db.Exec("INSERT INTO t VALUES (1)")
	require.ErrorIs(t, err, ErrNoPrimary)
	assert.ErrorContains(t, err, "gone", "the LiteFS mount is gone")
}

func TestLagStampedByAnotherClock(t *testing.T) {
	t.Parallel()
	// Only LiteFS stamping .lag during the check proves primacy (tested on a
	// real cluster); any stamp written beforehand must not.
	tests := []struct {
		name  string
		mtime time.Time
	}{
		{name: "an hour ahead", mtime: time.Now().Add(time.Hour)},
		{name: "a second ago", mtime: time.Now().Add(-time.Second)},
		{name: "epoch", mtime: time.Unix(0, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			p := newProber(m.Dir(), discard, new(atomic.Bool))
			defer p.close()
			m.WriteLagFile([]byte("+000000000\n"), tc.mtime)
			assert.ErrorIs(t, p.check(), ErrNoPrimary)
		})
	}
}

// A DSN that would change a mount's journal mode at every open is refused
// at NewConnector: go-sqlite3 runs the pragma before the driver can refuse
// it, and on a replica it rewrites the database.
func TestJournalModeInTheDSNOfAMount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		suffix  string
		replica bool
		mountOK bool // allowed on a mount
	}{
		{name: "delete on a replica", suffix: "?_journal_mode=DELETE", replica: true},
		{name: "short name on a replica", suffix: "?_journal=truncate", replica: true},
		{name: "delete on the primary's mount", suffix: "?_journal_mode=DELETE&_txlock=immediate"},
		{name: "wal", suffix: "?_journal_mode=wal", replica: true, mountOK: true},
		{name: "none", suffix: "", replica: true, mountOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			openDB(t, m, "").Close()
			if tc.replica {
				m.SetReplica("node-a")
			}
			before := fingerprint(t, m)
			var opts []Option
			if !tc.replica {
				opts = append(opts, WithMountDir(m.Dir())) // no .primary to show the mount
			}
			_, err := NewConnector(m.DBPath()+tc.suffix, opts...)
			if tc.mountOK {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, errJournalMode)
			}
			assert.Equal(t, before, fingerprint(t, m))

			_, err = NewConnector(filepath.Join(t.TempDir(), "local.db") + tc.suffix)
			assert.NoError(t, err, "a plain directory is no mount")
		})
	}
}
