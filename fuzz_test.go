package litefs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"app.db", "/litefs/app.db?_journal_mode=WAL&_txlock=immediate", "file:app.db?mode=ro",
		":memory:", "file::memory:?cache=shared", "?", "?_txlock=exclusive", "a?%zz", "a?_query_only=yes",
		"a?_txlock=IMMEDIATE&_txlock=deferred", "file:", "a\x00b",
		"a?_forward_writes=1", "a?_forward_writes=maybe", // HALT
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		info, err := parseDSN(dsn)
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "litefs: "), "error %q lacks the package prefix", err)
			return
		}
		require.False(t, strings.ContainsRune(dsn, 0), "accepted a NUL byte")
		require.Contains(t, dsn, info.path, "the path is part of the DSN")
		if info.txlockWrites {
			require.Contains(t, strings.ToLower(dsn), "_txlock", "txlockWrites without _txlock")
		}
		if info.forwardWrites && !strings.Contains(dsn, "_forward_writes") { // HALT
			t.Fatal("forwardWrites without _forward_writes")
		}
	})
}

func FuzzParsePrimaryID(f *testing.F) {
	for _, s := range []string{"node-a\n", "", "\r\n", " x ", "a b", "3d8d9930b32038", "n\x00", strings.Repeat("z", 300),
		"   " + strings.Repeat("a", 255) + "b\n", strings.Repeat(" ", 300) + "a\n", strings.Repeat("a", 255) + "\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := parsePrimaryID(b)
		if !ok {
			require.Empty(t, id, "a rejected input yielded an ID")
			return
		}
		require.NotEmpty(t, id)
		require.LessOrEqual(t, len(id), maxPrimaryID, "accepted an ID too long")
		require.LessOrEqual(t, len(b), maxPrimaryFile, "accepted more bytes of .primary than a valid one can have")
		for i := range len(id) {
			require.True(t, isIDByte(id[i]), "accepted byte %q in %q", id[i], id)
		}
		again, ok := parsePrimaryID([]byte(id))
		require.True(t, ok, "not idempotent: %q rejected", id)
		require.Equal(t, id, again, "not idempotent")
	})
}

// FuzzIsMulti checks isMulti against SQLite: whenever SQLite finds a second
// statement that runs, isMulti must have said so. (Its other errors, toward
// true, only cost a mount check.)
func FuzzIsMulti(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "SELECT 1; SELECT 2", "SELECT ';'", `SELECT ";"`, "SELECT [;]", "SELECT `;`",
		"SELECT 1 -- ;\n", "SELECT 1 /* ; */", "SELECT 1; -- x", "SELECT 'a''; b'", "SELECT 1;;",
		"CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END", "SELECT 1 /* unterminated ;",
		"SELECT x'00'; SELECT 2", "SELECT 1;/**/SELECT 2", "SELECT \"a\"\"; SELECT 2\"",
		"SELECT $a(--);SELECT 2", "SELECT @a(/*);SELECT 2", "SELECT :a::b(');SELECT 2", "SELECT #a;SELECT 2",
	} {
		f.Add(s)
	}
	db, err := sql.Open("sqlite3", ":memory:")
	require.NoError(f, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.Exec("CREATE TABLE t(x)")
	require.NoError(f, err)
	conn, err := db.Conn(f.Context())
	require.NoError(f, err)
	defer conn.Close()
	f.Fuzz(func(t *testing.T, q string) {
		if strings.ContainsRune(q, 0) {
			return
		}
		multi := isMulti(q)
		conn.Raw(func(dc any) error {
			sc := dc.(*sqlite3.SQLiteConn)
			rest := q
			for n := 0; rest != ""; n++ {
				ds, err := sc.Prepare(rest)
				if err != nil {
					return nil // SQLite stops here too
				}
				v := reflect.ValueOf(ds).Elem()
				runs := !v.FieldByName("s").IsNil()
				tail := v.FieldByName("t").String()
				ds.Close()
				if runs && n > 0 {
					require.True(t, multi, "isMulti(%q) = false, but SQLite runs a statement in %q", q, rest)
				}
				if tail == rest {
					return nil
				}
				rest = tail
			}
			return nil
		})
	})
}

// classifySeeds are statements from every case the replica tests cover.
var classifySeeds = []string{
	"SELECT * FROM t", "SELECT 1; INSERT INTO t(v) VALUES (1)", "PRAGMA query_only = 0",
	"EXPLAIN PRAGMA query_only = 0", "EXPLAIN QUERY PLAN PRAGMA main.query_only = false",
	`PRAGMA/**/"main"./**/[query_only]/**/=/**/0`, "PRAGMA query_only(1)", "PRAGMA foreign_keys = 0",
	"PRAGMA writable_schema = 1", "PRAGMA recursive_triggers = 1", "PRAGMA trusted_schema = 0",
	"PRAGMA defer_foreign_keys = 1", "PRAGMA ignore_check_constraints = 1", "PRAGMA journal_mode",
	"PRAGMA journal_mode = DELETE", "PRAGMA wal_checkpoint", "PRAGMA optimize", "PRAGMA incremental_vacuum",
	"PRAGMA locking_mode = EXCLUSIVE", "PRAGMA temp.user_version = 3", "PRAGMA table_info(t)",
	"SELECT * FROM pragma_optimize(65538)", `SELECT count(*) FROM "pragma_optimize"(65538)`,
	"WITH o AS (SELECT * FROM pragma_optimize(65538)) SELECT * FROM o", "SELECT * FROM optimizer",
	"SELECT * FROM pragma_journal_mode", "SELECT * FROM pragma_table_info('t')", "SELECT bump()",
	"BEGIN; INSERT INTO t(v) VALUES (1); COMMIT", "SAVEPOINT s", "BEGIN IMMEDIATE", "ATTACH ':memory:' AS aux",
	"VACUUM INTO '/tmp/x.db'", "VACUUM", "ANALYZE", "REINDEX", "CREATE TEMP TABLE tt(x)",
	"CREATE TABLE IF NOT EXISTS t(x)", "INSERT INTO nosuch VALUES (1)", "EXPLAIN INSERT INTO t(v) VALUES (1)",
	"DELETE FROM t RETURNING id", "WITH n(x) AS (SELECT 1) INSERT INTO t(v) SELECT x FROM n",
}

// FuzzReadsDoNotWrite checks the classifier against SQLite: a statement the
// driver classifies as a read, run on a connection without query_only and
// again with it, commits nothing, leaves the files as they were, and leaves
// query_only as it was.
func FuzzReadsDoNotWrite(f *testing.F) {
	for _, s := range classifySeeds {
		f.Add(s)
	}
	for _, k := range writeKinds {
		f.Add(strings.NewReplacer("{mount}", "/litefs", "{tmp}", "/tmp").Replace(k.sql))
	}
	m := litefstest.NewMount(f)
	ctr, err := NewConnector(m.DSN(), WithLogger(discard), WithSQLiteDriver(bumpDriver()))
	require.NoError(f, err)
	db := sql.OpenDB(ctr)
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v);" +
		"INSERT INTO t(v) VALUES ('a'), ('b'); CREATE VIEW optimizer AS SELECT * FROM pragma_optimize(65538)")
	require.NoError(f, err)
	conn, err := db.Conn(f.Context())
	require.NoError(f, err)
	defer conn.Close()
	f.Fuzz(func(t *testing.T, q string) {
		if strings.ContainsRune(q, 0) || len(q) > 2000 {
			return
		}
		require.NoError(t, conn.Raw(func(dc any) error {
			c := dc.(*Conn)
			if cl, err := c.classify(t.Context(), q); err != nil || cl != classRead {
				return nil
			}
			for _, on := range []bool{false, true} {
				checkRead(t, m, c, q, on)
			}
			return nil
		}))
	})
}

// checkRead runs q, classified as a read, on c with query_only set to on.
func checkRead(t *testing.T, m *litefstest.Mount, c *Conn, q string, on bool) {
	require.NoError(t, c.setQueryOnly(on))
	before := fingerprint(t, m)
	tr := &Tracker{}
	ctx, cancel := context.WithTimeout(WithTracker(t.Context(), tr), 100*time.Millisecond)
	defer cancel()
	c.ExecContext(ctx, q, nil)
	if !c.sc.AutoCommit() {
		_, err := c.sc.Exec("ROLLBACK", nil) // a read may BEGIN; the next input starts afresh
		require.NoError(t, err)
	}
	assert.False(t, tr.Committed(), "%q (query_only %v) committed a write", q, on)
	assert.Equal(t, before, fingerprint(t, m), "%q (query_only %v) changed the files", q, on)
	rows, err := c.sc.Query("PRAGMA query_only", nil)
	require.NoError(t, err)
	v := make([]driver.Value, 1)
	require.NoError(t, rows.Next(v))
	rows.Close()
	assert.Equal(t, on, v[0] == int64(1), "%q changed query_only", q)
}

// FuzzStatementScans runs the driver's other scans of SQL text on anything:
// none may panic, and what they return must come from the text.
func FuzzStatementScans(f *testing.F) {
	for _, s := range classifySeeds {
		f.Add(s)
	}
	for _, s := range []string{
		"VACUUM INTO 'a''b.db'", "VACUUM main INTO '/x'", "SELECT 1; VACUUM", "/* c */ COMMIT", "RELEASE sp", `VACUUM "main" INTO '/x';;`, "VACUUM INTO ?",
		"PRAGMA foreign_keys = OFF; ALTER TABLE t ADD x", "ATTACH 'a' AS b; DETACH b", "WITH x AS (DELETE) SELECT 1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		mayWrite(q)
		detaches(q)
		if saves, exact := stringSavepoints(q); !exact {
			require.Empty(t, saves)
		}
		names, _ := statePragmas(q)
		for _, n := range names {
			require.True(t, pragmaSettings[n.name], "statePragmas returned %q, not a setting", n)
		}
		sc := scanner{s: q}
		if strings.EqualFold(sc.word(), "VACUUM") {
			if target, ok := vacuumInto(&sc); ok {
				require.Contains(t, q, "'"+strings.ReplaceAll(target, "'", "''")+"'", "the target comes from the text")
			}
		}
		cl, ok := textClass(q, "/litefs")
		if ok {
			require.Contains(t, []class{classRead, classWrite, classForbidden, classBackup}, cl)
		}
		if vacuums(q) {
			require.Contains(t, strings.ToUpper(q), "VACUUM", "vacuums found a VACUUM the text does not have")
		}
		if mayCommit(q) {
			u := strings.ToUpper(q)
			require.True(t, strings.Contains(u, "COMMIT") || strings.Contains(u, "END") || strings.Contains(u, "RELEASE"),
				"mayCommit found a commit the text does not have")
		}
	})
}
