package litefs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/litefs-sql/litefs"
)

// A write on a replica is refused before it reaches SQLite, with the primary
// to send it to. Here a temp directory stands in for a LiteFS mount; its
// files are in place before the first write, since on a plain directory the
// driver sees a change made by hand only microseconds later (see "How the
// role is detected").
func Example() {
	dir, err := os.MkdirTemp("", "litefs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// LiteFS shows .primary on a replica, holding the primary's hostname.
	if err := os.WriteFile(filepath.Join(dir, ".primary"), []byte("node-a\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	db, err := sql.Open("litefs", filepath.Join(dir, "app.db")+"?_journal_mode=WAL")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec("CREATE TABLE posts(title TEXT)")
	var np *litefs.NotPrimaryError
	if errors.As(err, &np) {
		fmt.Println("refused; writes go to", np.PrimaryID)
	}

	var n int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("reads still work:", n, "tables")
	// Output:
	// refused; writes go to node-a
	// reads still work: 0 tables
}

// NewConnector takes the options a DSN cannot carry.
func ExampleNewConnector() {
	dir, err := os.MkdirTemp("", "litefs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	c, err := litefs.NewConnector(filepath.Join(dir, "app.db"),
		litefs.WithMountDir(dir), // where LiteFS shows .primary; the default
	)
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	fmt.Println(db.Ping())
	// Output: <nil>
}

// Reach the go-sqlite3 connection through (*sql.Conn).Raw.
func ExampleConn_SQLite() {
	db, err := sql.Open("litefs", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		return dc.(*litefs.Conn).SQLite().RegisterFunc("twice", func(x int) int { return 2 * x }, true)
	})
	if err != nil {
		log.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(context.Background(), "SELECT twice(21)").Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// Output: 42
}

// A Tracker in the context hears what the driver did for it.
func ExampleTracker() {
	db, err := sql.Open("litefs", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database

	t := &litefs.Tracker{}
	ctx := litefs.WithTracker(context.Background(), t)
	if _, err := db.ExecContext(ctx, "CREATE TABLE kv(k, v)"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed:", t.Committed(), "refused:", t.Refusal())
	// Output: committed: true refused: <nil>
}
