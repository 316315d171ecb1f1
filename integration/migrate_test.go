package integration

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"testing/fstest"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/database/sqlite3"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
)

// migrateFiles are golang-migrate's migrations.
var migrateFiles = fstest.MapFS{
	"1_posts.up.sql":   {Data: []byte("CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL);")},
	"1_posts.down.sql": {Data: []byte("DROP TABLE posts;")},
	"2_tags.up.sql":    {Data: []byte("CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL);")},
	"2_tags.down.sql":  {Data: []byte("DROP TABLE tags;")},
}

// TestGolangMigrate runs golang-migrate's sqlite3 driver over a litefs
// *sql.DB. It breaks the driver's contract in two ways, which the test
// pins down: its database.Error has no Unwrap, so errors.Is(err,
// litefs.ErrNotPrimary) is false through it, and SetVersion returns
// without a rollback when its DELETE is refused, leaving a transaction open
// (on real LiteFS it stalls replication and keeps the mount busy). The safe
// pattern is to ask litefs.CheckPrimary before migrating.
func TestGolangMigrate(t *testing.T) {
	testTool(t, tool{
		up: func(ctx context.Context, db *sql.DB, n int) error {
			m, err := newMigrate(db)
			if err != nil {
				return err
			}
			err = m.Migrate(uint(n))
			if errors.Is(err, migrate.ErrNoChange) {
				return nil
			}
			return err
		},
		refusal: func(t *testing.T, err error) {
			t.Helper()
			assert.NotErrorIs(t, err, litefs.ErrNotPrimary,
				"database.Error has no Unwrap; if it has one now, use the plain refusal check")
			var dbErr *database.Error
			require.ErrorAs(t, err, &dbErr)
			assert.ErrorIs(t, dbErr.OrigErr, litefs.ErrNotPrimary)
		},
		leaksTx: true,
	})
}

// newMigrate returns a migrator of db. Its Close would close db too, so
// the caller does not call it.
func newMigrate(db *sql.DB) (*migrate.Migrate, error) {
	src, err := iofs.New(migrateFiles, ".")
	if err != nil {
		return nil, err
	}
	drv, err := sqlite3.WithInstance(db, &sqlite3.Config{})
	if err != nil {
		return nil, err
	}
	return migrate.NewWithInstance("iofs", src, "sqlite3", drv)
}
