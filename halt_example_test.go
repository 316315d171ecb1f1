//go:build linux

package litefs_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/litefs-sql/litefs"
)

// A job on a replica writes through LiteFS's HALT lock. Here a temp
// directory stands in for a LiteFS mount: .primary makes it a replica, and
// app.db-lock is the file LiteFS locks (the kernel locks the regular file
// just as well, but nothing forwards the write: it lands in the local file).
func ExampleWithHalt() {
	dir, err := os.MkdirTemp("", "litefs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for name, data := range map[string]string{".primary": "node-a\n", "app.db-lock": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	db, err := sql.Open("litefs", filepath.Join(dir, "app.db")+"?_journal_mode=WAL")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	err = litefs.WithHalt(ctx, db, func(ctx context.Context) error {
		// Only writes made with this ctx are let through.
		_, err := db.ExecContext(ctx, "CREATE TABLE jobs(name TEXT); INSERT INTO jobs(name) VALUES ('cleanup')")
		return err
	})
	fmt.Println("job:", err)
	_, err = db.ExecContext(ctx, "INSERT INTO jobs(name) VALUES ('outside')")
	fmt.Println("outside:", err)
	// Output:
	// job: <nil>
	// outside: litefs: not the primary; writes go to "node-a"
}
