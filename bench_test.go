package litefs

import (
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/litefs-sql/litefs/litefstest"
)

// benchDB opens a fresh WAL database in a temp mount with driver ("sqlite3"
// for the raw baseline, "litefs" for this driver) and 1000 rows.
func benchDB(b *testing.B, driverName string) (*sql.DB, *litefstest.Mount) {
	b.Helper()
	m := litefstest.NewMount(b)
	db, err := sql.Open(driverName, m.DSN())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000)
		INSERT INTO t(v) SELECT 'row ' || i FROM n`); err != nil {
		b.Fatal(err)
	}
	// A database directory in service has not changed for a while, which
	// lets the driver check the role of a plain directory with one fstat.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(m.Dir(), old, old); err != nil {
		b.Fatal(err)
	}
	return db, m
}

func BenchmarkPointRead(b *testing.B) {
	for _, name := range []string{"raw", "litefs"} {
		b.Run(name, func(b *testing.B) {
			driverName := map[string]string{"raw": "sqlite3", "litefs": DriverName}[name]
			db, _ := benchDB(b, driverName)
			var v string
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := db.QueryRow("SELECT v FROM t WHERE id = ?", i%1000+1).Scan(&v); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkPrimaryWrite(b *testing.B) {
	for _, name := range []string{"raw", "litefs"} {
		b.Run(name, func(b *testing.B) {
			driverName := map[string]string{"raw": "sqlite3", "litefs": DriverName}[name]
			db, _ := benchDB(b, driverName)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.Exec("INSERT INTO t(v) VALUES (?)", "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplicaRefusal compares a refused write on a replica with a raw
// local write, measured in the same run.
func BenchmarkReplicaRefusal(b *testing.B) {
	b.Run("raw-write", func(b *testing.B) {
		db, _ := benchDB(b, "sqlite3")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.Exec("INSERT INTO t(v) VALUES (?)", "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("litefs-refusal", func(b *testing.B) {
		db, m := benchDB(b, DriverName)
		m.SetReplica("node-a")
		before := fingerprint(b, m)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.Exec("INSERT INTO t(v) VALUES (?)", "bench"); !errors.Is(err, ErrNotPrimary) {
				b.Fatalf("got %v, want a refusal", err)
			}
		}
		b.StopTimer()
		if fingerprint(b, m) != before {
			b.Fatal("a refusal changed the database")
		}
	})
}
