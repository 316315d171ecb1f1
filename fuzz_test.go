package litefs

import (
	"database/sql"
	"reflect"
	"strings"
	"testing"

	"github.com/mattn/go-sqlite3"
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
			if !strings.HasPrefix(err.Error(), "litefs: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			return
		}
		if strings.ContainsRune(dsn, 0) {
			t.Fatal("accepted a NUL byte")
		}
		if !strings.Contains(dsn, info.path) {
			t.Fatalf("path %q is not part of the DSN", info.path)
		}
		if info.txlockWrites && !strings.Contains(strings.ToLower(dsn), "_txlock") {
			t.Fatal("txlockWrites without _txlock")
		}
		if info.forwardWrites && !strings.Contains(dsn, "_forward_writes") { // HALT
			t.Fatal("forwardWrites without _forward_writes")
		}
	})
}

func FuzzParsePrimaryID(f *testing.F) {
	for _, s := range []string{"node-a\n", "", "\r\n", " x ", "a b", "3d8d9930b32038", "n\x00", strings.Repeat("z", 300)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := parsePrimaryID(b)
		if !ok {
			if id != "" {
				t.Fatalf("rejected input yielded ID %q", id)
			}
			return
		}
		if len(id) == 0 || len(id) > maxPrimaryID {
			t.Fatalf("accepted an ID of %d bytes", len(id))
		}
		for i := range len(id) {
			if !isIDByte(id[i]) {
				t.Fatalf("accepted byte %q in %q", id[i], id)
			}
		}
		if again, ok := parsePrimaryID([]byte(id)); !ok || again != id {
			t.Fatalf("not idempotent: %q -> %q, %v", id, again, ok)
		}
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
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE t(x)"); err != nil {
		f.Fatal(err)
	}
	conn, err := db.Conn(f.Context())
	if err != nil {
		f.Fatal(err)
	}
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
				if runs && n > 0 && !multi {
					t.Fatalf("isMulti(%q) = false, but SQLite runs a statement in %q", q, rest)
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
