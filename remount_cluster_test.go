package litefs

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestFreshConnectionsOnLiteFS: on a healthy LiteFS primary, every
// write through a new connection (no idle ones kept: each statement opens
// one, so Connect's stat before the open and IsValid at its return run
// each time) is admitted, through the mount's path and through a symbolic
// link to it; on the replica every one is refused and none lands.
func TestFreshConnectionsOnLiteFS(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(p.MountDir(), link))
	open := func(dsn string) *sql.DB {
		c, err := NewConnector(dsn)
		require.NoError(t, err)
		db := sql.OpenDB(c)
		t.Cleanup(func() { db.Close() })
		db.SetMaxIdleConns(0)
		return db
	}
	primary := open(p.DSN())
	_, err := primary.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	viaLink := open(litefstest.DSN(filepath.Join(link, litefstest.DefaultDBName)))
	cluster.WaitReplicated(t)
	replica := open(r.DSN())

	var refused []error
	for i := range 200 {
		db := primary
		if i%2 == 1 {
			db = viaLink
		}
		if _, err := db.Exec("INSERT INTO t(v) VALUES (?)", i); err != nil {
			refused = append(refused, err)
		}
	}
	assert.Empty(t, refused, "writes refused on a healthy primary")
	for i := range 20 {
		_, err := replica.Exec("INSERT INTO t(v) VALUES (?)", -i)
		var np *NotPrimaryError
		assert.ErrorAs(t, err, &np, "write %d on the replica", i)
	}
	var n int
	require.NoError(t, primary.QueryRow("SELECT count(*) FROM t").Scan(&n))
	assert.Equal(t, 200-len(refused), n)
	assert.Zero(t, primary.Stats().Idle, "precondition: no idle connection kept")
}
