//go:build linux

// This file needs github.com/pressly/goose/v3 (v3.30.1 was used) in this
// module's go.mod.

package integration_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// migrations are goose SQL migrations: a table, then a row that must exist
// once however many nodes run them.
var migrations = fstest.MapFS{
	"migrations/00001_notes.sql": {Data: []byte(`-- +goose Up
CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
-- +goose Down
DROP TABLE notes;
`)},
	"migrations/00002_seed.sql": {Data: []byte(`-- +goose Up
INSERT INTO notes(body) VALUES ('seeded');
-- +goose Down
DELETE FROM notes WHERE body = 'seeded';
`)},
}

// migrate runs goose's UpContext under WithHalt, as a replica (or the
// primary) would at start-up.
func migrate(ctx context.Context, db *sql.DB) error {
	return litefs.WithHalt(ctx, db, func(ctx context.Context) error {
		return goose.UpContext(ctx, db, "migrations")
	})
}

func openNodeDB(t *testing.T, n *litefstest.Node) *sql.DB {
	t.Helper()
	db, err := sql.Open("litefs", n.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestGooseFromReplicas runs goose on two replicas at once: the migrations
// reach the primary and every replica, each applied once.
func TestGooseFromReplicas(t *testing.T) {
	goose.SetBaseFS(migrations)
	require.NoError(t, goose.SetDialect("sqlite3"))
	goose.SetLogger(goose.NopLogger())

	cluster := litefstest.StartCluster(t, 3)
	pdb := openNodeDB(t, cluster.Primary())
	// LiteFS forwards writes to a database that exists: create it.
	_, err := pdb.Exec("PRAGMA user_version = 1")
	require.NoError(t, err)
	cluster.WaitReplicated(t)

	var wg sync.WaitGroup
	for _, r := range cluster.Replicas() {
		db := openNodeDB(t, r)
		wg.Go(func() { assert.NoError(t, migrate(t.Context(), db), r.Hostname()) })
	}
	wg.Wait()
	require.NoError(t, migrate(t.Context(), pdb), "again, on the primary: nothing to do")

	cluster.WaitReplicated(t)
	for _, n := range cluster.Nodes() {
		db := openNodeDB(t, n)
		var seeded, applied int
		require.NoError(t, db.QueryRow("SELECT count(*) FROM notes WHERE body = 'seeded'").Scan(&seeded))
		assert.Equal(t, 1, seeded, "seed rows on %s", n.Hostname())
		require.NoError(t, db.QueryRow("SELECT count(*) FROM goose_db_version WHERE version_id = 2 AND is_applied").Scan(&applied))
		assert.Equal(t, 1, applied, "migration 2 recorded once on %s", n.Hostname())
		version, err := goose.GetDBVersionContext(t.Context(), db)
		require.NoError(t, err)
		assert.Equal(t, int64(2), version, n.Hostname())
	}
}
