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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// openDB opens the mount's database with the litefs driver and creates the
// schema the tests use, while the node is primary.
func openDB(tb testing.TB, m *litefstest.Mount, dsnSuffix string) *sql.DB {
	tb.Helper()
	c, err := NewConnector(m.DSN()+dsnSuffix, WithLogger(discard))
	if err != nil {
		tb.Fatal(err)
	}
	db := sql.OpenDB(c)
	tb.Cleanup(func() { db.Close() })
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)",
		"CREATE INDEX IF NOT EXISTS t_v ON t(v)",
		"INSERT INTO t(v) VALUES ('seed')",
	} {
		if _, err := db.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

// fingerprint hashes the database and WAL files: any write changes it.
func fingerprint(tb testing.TB, m *litefstest.Mount) [32]byte {
	tb.Helper()
	h := sha256.New()
	for _, name := range []string{m.DBPath(), m.DBPath() + "-wal"} {
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
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
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		tb.Fatalf("BEGIN IMMEDIATE from another connection: %v (a write lock is held)", err)
	}
	tx.Rollback()
}

func wantNotPrimary(tb testing.TB, err error, id string) {
	tb.Helper()
	var np *NotPrimaryError
	if !errors.As(err, &np) {
		tb.Fatalf("got error %v, want a *NotPrimaryError", err)
	}
	if np.PrimaryID != id {
		tb.Fatalf("got PrimaryID %q, want %q", np.PrimaryID, id)
	}
	if !errors.Is(err, ErrNotPrimary) {
		tb.Fatalf("errors.Is(%v, ErrNotPrimary) = false", err)
	}
}

// pinConn holds one connection of db for the test and returns it with the
// driver's Conn beneath it.
func pinConn(tb testing.TB, db *sql.DB) (*sql.Conn, *Conn) {
	tb.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	var c *Conn
	conn.Raw(func(dc any) error { c = dc.(*Conn); return nil })
	return conn, c
}

// failed returns what a statement that failed with err gets on c, outside
// any admission: SQLite's error, or the refusal it reveals.
func failed(c *Conn, ctx context.Context, err error) error {
	r := run{c: c, ctx: ctx}
	return r.end(err)
}

func TestReplicaRefusesWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sql     string
		query   bool // run with Query instead of Exec
		refused bool
		args    []any
		// replicaErr, when set, is the error a case that is not a refusal
		// gets on a replica; primaryErr what a refused case gets on the
		// primary (nil: success).
		replicaErr, primaryErr error
	}{
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
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
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
		})
	}
}

// errSQLite stands for any error from SQLite in a test table.
var errSQLite = errors.New("an error from SQLite")

func TestPreparedStatementAfterDemotion(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	ins, err := db.Prepare("INSERT INTO t(v) VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	sel, err := db.Prepare("SELECT count(*) FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	if _, err := ins.Exec("p1"); err != nil {
		t.Fatal(err)
	}

	m.SetReplica("node-b")
	_, err = ins.Exec("p2")
	wantNotPrimary(t, err, "node-b")
	var n int
	if err := sel.QueryRow().Scan(&n); err != nil {
		t.Fatalf("prepared read on a replica: %v", err)
	}
	if n != 2 {
		t.Fatalf("got %d rows, want 2", n)
	}

	m.SetPrimary()
	if _, err := ins.Exec("p3"); err != nil {
		t.Fatalf("after promotion: %v", err)
	}
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
		{func() {}, ""},
		{func() { m.SetReplica("node-a") }, "node-a"},
		{func() { m.SetReplica("node-c") }, "node-c"},
		{m.SetNoPrimary, "-"},
		{m.SetPrimary, ""},
		{func() { m.SetReplica("node-a") }, "node-a"},
		{m.SetPrimary, ""},
	}
	for i, s := range steps {
		s.set()
		_, err := db.Exec("INSERT INTO t(v) VALUES ('f')")
		switch s.want {
		case "":
			if err != nil {
				t.Fatalf("step %d: got %v, want success", i, err)
			}
		case "-":
			if !errors.Is(err, ErrNoPrimary) || !errors.Is(err, ErrNotPrimary) {
				t.Fatalf("step %d: got %v, want ErrNoPrimary", i, err)
			}
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
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE v = ?", "seed").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := checks(); got != start {
		t.Fatalf("100 reads looked at the mount %d times, want 0", got-start)
	}
	_, err := conn.ExecContext(ctx, "INSERT INTO t(v) VALUES ('w')")
	wantNotPrimary(t, err, "node-a")
	if got := checks(); got != start+1 {
		t.Fatalf("a write looked at the mount %d times, want 1", got-start)
	}
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	t.Run("read-only on a replica with _txlock=immediate", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "&_txlock=immediate")
		m.SetReplica("node-a")
		tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatalf("BeginTx(ReadOnly): %v", err)
		}
		var n int
		if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
			t.Fatalf("got %d, %v; want 1 row", n, err)
		}
		assertNoWriteLock(t, m)
		if _, err := tx.Exec("INSERT INTO t(v) VALUES ('x')"); !errors.Is(err, ErrReadOnlyTx) {
			t.Fatalf("got %v, want ErrReadOnlyTx", err)
		}
		if _, err := tx.Exec("SELECT 1; DELETE FROM t"); !errors.Is(err, ErrReadOnlyTx) {
			t.Fatalf("multi-statement write: got %v, want ErrReadOnlyTx", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	})
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
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var n int
		if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec("UPDATE t SET v = 'x'")
		wantNotPrimary(t, err, "node-a")
		assertNoWriteLock(t, m)
	})
	t.Run("read-only on the primary", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "")
		db.SetMaxOpenConns(1)
		tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("DELETE FROM t"); !errors.Is(err, ErrReadOnlyTx) {
			t.Fatalf("got %v, want ErrReadOnlyTx", err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO t(v) VALUES ('after')"); err != nil {
			t.Fatalf("write after a read-only transaction: %v", err)
		}
	})
	t.Run("demoted inside a write transaction", func(t *testing.T) {
		t.Parallel()
		m := litefstest.NewMount(t)
		db := openDB(t, m, "")
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("INSERT INTO t(v) VALUES ('in')"); err != nil {
			t.Fatal(err)
		}
		m.SetReplica("node-d")
		_, err = tx.Exec("INSERT INTO t(v) VALUES ('late')")
		wantNotPrimary(t, err, "node-d")
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestInvalidPrimaryFailsClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content []byte
		wantID  string // "" when the write must get ErrNoPrimary
	}{
		{"hostname", []byte("node-a\n"), "node-a"},
		{"fly machine id", []byte("3d8d9930b32038\n"), "3d8d9930b32038"},
		{"dotted", []byte("node-a.vm.app.internal\n"), "node-a.vm.app.internal"},
		{"surrounding space", []byte("  node_a \r\n"), "node_a"},
		{"255 bytes", []byte(strings.Repeat("a", 255) + "\n"), strings.Repeat("a", 255)},
		{"empty", nil, ""},
		{"only newline", []byte("\n"), ""},
		{"only spaces", []byte("    "), ""},
		{"inner space", []byte("node a\n"), ""},
		{"CR LF inside", []byte("node-a\r\nX-Evil: 1\n"), ""},
		{"header injection", []byte("node-a;app=evil\n"), ""},
		{"256 bytes", []byte(strings.Repeat("a", 256)), ""},
		{"1 MiB", []byte(strings.Repeat("b", 1<<20)), ""},
		{"binary", []byte{0, 0xff, 0xfe, 'x', '\n'}, ""},
		{"utf-8", []byte("nöde\n"), ""},
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
			if !errors.Is(err, ErrNoPrimary) {
				t.Fatalf("got %v, want ErrNoPrimary", err)
			}
			if len(err.Error()) > 200 || strings.ContainsAny(err.Error(), "\r\n\x00") {
				t.Fatalf("error message carries the file's content: %q", err.Error())
			}
		})
	}
}

func TestOddMountEntriesFailClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, m *litefstest.Mount)
	}{
		{"directory as .primary", func(t *testing.T, m *litefstest.Mount) {
			if err := os.Mkdir(m.Dir()+"/"+primaryFile, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"fifo as .primary", func(t *testing.T, m *litefstest.Mount) {
			if err := mkfifo(m.Dir() + "/" + primaryFile); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		}},
		{"symlink loop as .primary", func(t *testing.T, m *litefstest.Mount) {
			if err := os.Symlink(primaryFile, m.Dir()+"/"+primaryFile); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			tc.setup(t, m)
			if _, err := db.Exec("INSERT INTO t(v) VALUES ('x')"); !errors.Is(err, ErrNoPrimary) {
				t.Fatalf("got %v, want ErrNoPrimary", err)
			}
			var n int
			if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
				t.Fatalf("reads must not depend on the mount: %v", err)
			}
		})
	}
}

func TestLiteFSRefusalBackstop(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	conn, _ := pinConn(t, db)
	liteFSErrors := []struct {
		name string
		err  error
	}{
		{"WAL write denied", sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: 13}},
		{"journal directory read-only", sqlite3.Error{Code: sqlite3.ErrReadonly, ExtendedCode: errReadonlyDirectory}},
	}
	for _, tc := range liteFSErrors {
		conn.Raw(func(dc any) error {
			c := dc.(*Conn)
			m.SetReplica("node-a")
			tr := &Tracker{}
			got := failed(c, WithTracker(t.Context(), tr), tc.err)
			wantNotPrimary(t, got, "node-a")
			if !errors.Is(got, tc.err) {
				t.Errorf("%s: the refusal does not wrap SQLite's error", tc.name)
			}
			if tr.Refusal() == nil {
				t.Errorf("%s: the refusal was not reported to the tracker", tc.name)
			}
			m.SetNoPrimary()
			if got := failed(c, t.Context(), tc.err); !errors.Is(got, ErrNoPrimary) {
				t.Errorf("%s, no primary: got %v, want ErrNoPrimary", tc.name, got)
			}
			m.SetPrimary()
			if got := failed(c, t.Context(), tc.err); got != tc.err {
				t.Errorf("%s on a primary: got %v, want SQLite's error unchanged", tc.name, got)
			}
			return nil
		})
	}
}

func TestTracker(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	tests := []struct {
		name      string
		do        func(ctx context.Context) error
		committed bool
	}{
		{"read", func(ctx context.Context) error {
			return runOn(ctx, db, "SELECT * FROM t", true)
		}, false},
		{"autocommit insert", func(ctx context.Context) error {
			_, err := db.ExecContext(ctx, "INSERT INTO t(v) VALUES ('a')")
			return err
		}, true},
		{"tx commit", func(ctx context.Context) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.Exec("INSERT INTO t(v) VALUES ('b')"); err != nil {
				return err
			}
			return tx.Commit()
		}, true},
		{"tx rollback", func(ctx context.Context) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.Exec("INSERT INTO t(v) VALUES ('c')"); err != nil {
				return err
			}
			return tx.Rollback()
		}, false},
		{"read-only tx", func(ctx context.Context) error {
			tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			return tx.Commit()
		}, false},
		{"raw BEGIN and COMMIT", func(ctx context.Context) error {
			_, err := db.ExecContext(ctx, "BEGIN; INSERT INTO t(v) VALUES ('d'); COMMIT")
			return err
		}, true},
		{"prepared insert", func(ctx context.Context) error {
			s, err := db.PrepareContext(ctx, "INSERT INTO t(v) VALUES (?)")
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.ExecContext(ctx, "e")
			return err
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Tracker{}
			if err := tc.do(WithTracker(t.Context(), tr)); err != nil {
				t.Fatal(err)
			}
			if got := tr.Committed(); got != tc.committed {
				t.Fatalf("Committed() = %v, want %v", got, tc.committed)
			}
			if tr.Refusal() != nil {
				t.Fatalf("Refusal() = %v, want nil", tr.Refusal())
			}
		})
	}
	t.Run("refusal", func(t *testing.T) {
		m.SetReplica("node-a")
		defer m.SetPrimary()
		tr := &Tracker{}
		_, err := db.ExecContext(WithTracker(t.Context(), tr), "DELETE FROM t")
		wantNotPrimary(t, tr.Refusal(), "node-a")
		if tr.Refusal() != err {
			t.Fatalf("Refusal() = %v, want the error Exec returned (%v)", tr.Refusal(), err)
		}
	})
}

func TestCheckPrimary(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	if err := CheckPrimary(t.Context(), db); err != nil {
		t.Fatalf("on the primary: %v", err)
	}
	m.SetReplica("node-a")
	tr := &Tracker{}
	err := CheckPrimary(WithTracker(t.Context(), tr), db)
	wantNotPrimary(t, err, "node-a")
	wantNotPrimary(t, tr.Refusal(), "node-a")

	plain, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := CheckPrimary(t.Context(), plain); err == nil || errors.Is(err, ErrNotPrimary) {
		t.Fatalf("with another driver: got %v, want a plain error", err)
	}
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
		{"plain path", dir + "/a.db", ""},
		{"file uri", "file:" + dir + "/b.db?_journal_mode=WAL&_busy_timeout=100", ""},
		{"memory", ":memory:", ""},
		{"file memory", "file::memory:?cache=shared", ""},
		{"temporary", "", ""},
		{"bad parameters", dir + "/c.db?_txlock=%zz", "invalid DSN parameters"},
		{"bad txlock", dir + "/c.db?_txlock=sometimes", "_txlock"},
		{"bad query_only", dir + "/c.db?_query_only=maybe", "_query_only"},
		{"NUL byte", dir + "/c\x00.db", "NUL"},
		{"missing directory", dir + "/no/such/dir/d.db", "unable to open"},
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
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
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
		{"defaults", nil, ""},
		{"all set", []Option{WithMountDir(t.TempDir()), WithLogger(discard), WithSQLiteDriver(&sqlite3.SQLiteDriver{}), WithClassCacheSize(8)}, ""},
		{"empty mount dir", []Option{WithMountDir("")}, "WithMountDir"},
		{"nil driver", []Option{WithSQLiteDriver(nil)}, "WithSQLiteDriver"},
		{"nil logger", []Option{WithLogger(nil)}, "WithLogger"},
		{"zero cache", []Option{WithClassCacheSize(0)}, "WithClassCacheSize"},
		{"nil option", []Option{nil}, "nil Option"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewConnector(":memory:", tc.opts...)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestMemoryWithMountDir(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	c, err := NewConnector(":memory:", WithMountDir(m.Dir()), WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT twice(21)").Scan(&n); err != nil || n != 42 {
		t.Fatalf("got %d, %v; want 42", n, err)
	}
	if !hooked {
		t.Fatal("ConnectHook did not run")
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		if dc.(*Conn).SQLite().GetFilename("") == "" {
			return errors.New("no file name from the raw connection")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWaitPrimary(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	noPrimary := func() error {
		t.Helper()
		m.SetNoPrimary()
		_, err := db.Exec("INSERT INTO t(v) VALUES ('w')")
		if !errors.Is(err, ErrNoPrimary) {
			t.Fatalf("got %v, want ErrNoPrimary", err)
		}
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
	if r := <-got; r[0] != "node-n" || r[1] != nil {
		t.Fatalf("got %v, want node-n", r)
	}

	refusal = noPrimary()
	got = wait(refusal)
	m.SetPrimary()
	if r := <-got; r[0] != "" || r[1] != nil {
		t.Fatalf("got %v, want this node (\"\")", r)
	}

	refusal = noPrimary()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := WaitPrimary(ctx, refusal); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: got %v, want context.Canceled", err)
	}
	if id, err := WaitPrimary(t.Context(), &NotPrimaryError{PrimaryID: "node-k"}); id != "node-k" || err != nil {
		t.Fatalf("known primary: got %q, %v", id, err)
	}
	if _, err := WaitPrimary(t.Context(), ErrNoPrimary); err == nil {
		t.Fatal("a bare ErrNoPrimary: got no error, want one (nothing to watch)")
	}
}

func TestSQLX(t *testing.T) {
	t.Parallel()
	assert.Equal(t, sqlx.BindType("sqlite3"), sqlx.BindType(DriverName), "sqlx binds litefs as it binds sqlite3")
	assert.Equal(t, sqlx.QUESTION, sqlx.BindType(DriverName))
	m := litefstest.NewMount(t)
	openDB(t, m, "").Close()
	db, err := sqlx.Open(DriverName, m.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type row struct {
		ID int64  `db:"id"`
		V  string `db:"v"`
	}
	if _, err := db.NamedExec("INSERT INTO t(v) VALUES (:v)", row{V: "named"}); err != nil {
		t.Fatal(err)
	}
	var rows []row
	if err := db.Select(&rows, "SELECT id, v FROM t ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].V != "named" {
		t.Fatalf("got %+v, want the seed row and the named one", rows)
	}
	var one row
	if err := db.Get(&one, "SELECT id, v FROM t WHERE v = ?", "named"); err != nil || one.ID != rows[1].ID {
		t.Fatalf("Get: got %+v, %v", one, err)
	}

	m.SetReplica("node-x")
	_, err = db.NamedExecContext(t.Context(), "UPDATE t SET v = :v", row{V: "no"})
	wantNotPrimary(t, err, "node-x")
	if err := db.Get(&one, "SELECT id, v FROM t WHERE id = ?", rows[0].ID); err != nil {
		t.Fatalf("Get on a replica: %v", err)
	}
	tx, err := db.BeginTxx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.Select(&rows, "SELECT id, v FROM t"); err != nil {
		t.Fatalf("Select in a read-only transaction on a replica: %v", err)
	}
}

func TestPlainDirectoryCache(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	conn, c := pinConn(t, db)
	p := c.probe
	if p.dirfd.Load() < 0 {
		t.Skip("no directory cache on this platform")
	}
	write := func() error {
		_, err := conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('c')")
		return err
	}
	backdate := func() {
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(m.Dir(), old, old); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name        string
		before      func()
		wantErr     error
		wantLookups uint64 // full lookups the write makes
	}{
		{"fresh directory", func() {}, nil, 1},
		{"fresh directory again", func() {}, nil, 1}, // changed too recently to trust
		{"unchanged for an hour", backdate, nil, 1},
		{"cached", func() {}, nil, 0},
		{"cached again", func() {}, nil, 0},
		{"became a replica", func() { m.SetReplica("node-a") }, ErrNotPrimary, 1},
		{"back to primary", m.SetPrimary, nil, 1},
		{"unchanged again", backdate, nil, 1},
		{"cached", func() {}, nil, 0},
		{"lost its primary", m.SetNoPrimary, ErrNoPrimary, 1},
		{"still no primary, dir unchanged", backdate, ErrNoPrimary, 1},
	}
	for _, s := range steps {
		s.before()
		before := p.lookups.Load()
		err := write()
		if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.wantErr)
		}
		if got := p.lookups.Load() - before; got != s.wantLookups {
			t.Fatalf("%s: %d lookups of .primary and .lag, want %d", s.name, got, s.wantLookups)
		}
	}
	conn.Close()
	db.Close()
	if p.dirfd.Load() != -1 {
		t.Fatal("closing the connection left the directory open")
	}
}

func TestManagedPragma(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	for _, q := range []string{"PRAGMA query_only = 0", "PRAGMA query_only(1)", `PRAGMA main."query_only" = 1`} {
		if _, err := db.Exec(q); !errors.Is(err, errManagedPragma) {
			t.Errorf("%s: got %v, want errManagedPragma", q, err)
		}
	}
	if err := runOn(t.Context(), db, "PRAGMA query_only", true); err != nil {
		t.Errorf("reading query_only: %v", err)
	}
}

func TestQueryCommitsAreTrackedToTheirEnd(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(1) // the next request gets the same connection

	first := &Tracker{}
	var id int64
	if err := db.QueryRowContext(WithTracker(t.Context(), first), "INSERT INTO t(v) VALUES ('r') RETURNING id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if !first.Committed() {
		t.Fatal("INSERT ... RETURNING through QueryRow: Committed() = false, want true")
	}
	second := &Tracker{}
	if err := runOn(WithTracker(t.Context(), second), db, "SELECT * FROM t", true); err != nil {
		t.Fatal(err)
	}
	if second.Committed() {
		t.Fatal("a later read was credited with the earlier commit")
	}

	third := &Tracker{}
	_, err := db.ExecContext(WithTracker(t.Context(), third), "INSERT INTO t(v) VALUES ('one'); INSERT INTO nosuch VALUES (1)")
	if err == nil {
		t.Fatal("want the second statement's error")
	}
	if !third.Committed() {
		t.Fatal("a string whose first statement committed before the second failed: Committed() = false")
	}
}

func TestCreateIfNotExistsOnAReplicaWithAStaleSchema(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SELECT * FROM t"); err != nil { // load the schema on the connection
		t.Fatal(err)
	}
	// The primary creates a table behind this connection's back.
	other, err := sql.Open("sqlite3", m.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec("CREATE TABLE late(x)"); err != nil {
		t.Fatal(err)
	}
	m.SetReplica("node-a")
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS late(x)"); err != nil {
		t.Fatalf("got %v, want success: the table exists now", err)
	}
	_, err = db.Exec("CREATE TABLE IF NOT EXISTS later(x)")
	wantNotPrimary(t, err, "node-a")
}

func TestLiteFSMountGone(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	c, err := NewConnector(m.DSN(), WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	c.sawLiteFS.Store(true) // as if another connection had found a LiteFS mount here
	if _, err := db.Exec("INSERT INTO t VALUES (1)"); !errors.Is(err, ErrNoPrimary) || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("got %v, want ErrNoPrimary: the LiteFS mount is gone", err)
	}
}

func TestLagStampedByAnotherClock(t *testing.T) {
	t.Parallel()
	// Only LiteFS stamping .lag during the check proves primacy (tested on a
	// real cluster); any stamp written beforehand must not.
	tests := []struct {
		name  string
		mtime time.Time
	}{
		{"an hour ahead", time.Now().Add(time.Hour)},
		{"a second ago", time.Now().Add(-time.Second)},
		{"epoch", time.Unix(0, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			p := newProber(m.Dir(), discard, new(atomic.Bool))
			defer p.close()
			m.WriteLagFile([]byte("+000000000\n"), tc.mtime)
			if err := p.check(); !errors.Is(err, ErrNoPrimary) {
				t.Fatalf("got %v, want ErrNoPrimary", err)
			}
		})
	}
}
