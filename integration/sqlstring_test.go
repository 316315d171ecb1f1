package integration

import (
	"context"
	"database/sql"
	"testing"
)

// sqlStringMigrations are start-up migrations as an app without a tool
// writes them: one string each, wrapped in BEGIN … COMMIT.
var sqlStringMigrations = []string{
	"BEGIN; CREATE TABLE IF NOT EXISTS posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL); COMMIT;",
	"BEGIN; CREATE TABLE IF NOT EXISTS tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL); COMMIT;",
}

// TestSQLStrings runs one-string BEGIN … COMMIT migrations through
// database/sql alone: on a replica, the refusal must not leave the
// connection inside the transaction that BEGIN opened.
func TestSQLStrings(t *testing.T) {
	testTool(t, tool{
		up: func(ctx context.Context, db *sql.DB, n int) error {
			for _, m := range sqlStringMigrations[:n] {
				if _, err := db.ExecContext(ctx, m); err != nil {
					return err
				}
			}
			return nil
		},
		refusal: refused,
	})
}
