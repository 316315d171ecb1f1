package litefs

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

// TestReplacedDirectoryLeavesThePoolOnReads: a deploy swaps the database's
// directory for another holding its own database (no mount). A read-only
// workload must not keep reading the moved-away file through its pooled
// connection: once the watch is dead, the pool must drop the connection.
func TestReplacedDirectoryLeavesThePoolOnReads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "app.db")
	c, err := NewConnector(litefstest.DSN(path), WithLogger(discard))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	_, err = db.Exec("CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('old')")
	require.NoError(t, err)
	require.True(t, dirwatch.Watching(dir), "precondition: the directory is watched")

	fresh := filepath.Join(t.TempDir(), "data.new")
	require.NoError(t, os.Mkdir(fresh, 0o755))
	other, err := sql.Open("sqlite3", litefstest.DSN(filepath.Join(fresh, "app.db")))
	require.NoError(t, err)
	_, err = other.Exec("CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('new')")
	require.NoError(t, err)
	require.NoError(t, other.Close())
	require.NoError(t, os.Rename(dir, dir+".old"))
	require.NoError(t, os.Rename(fresh, dir))
	dirwatch.Sync(dir)

	var seen []string
	for range 3 {
		var v string
		require.NoError(t, db.QueryRow("SELECT v FROM t").Scan(&v))
		seen = append(seen, v)
	}
	assert.Equal(t, "new", seen[len(seen)-1],
		"reads after the swap (%v) still come from %s.old, which the path no longer shows", seen, dir)
}
