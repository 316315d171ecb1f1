package litefs

import (
	"database/sql"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestLiteFSMountedDuringTheOpen: LiteFS mounts over the plain directory
// while a connection opens its existing WAL database (here, as in
// TestMountDuringTheOpenOfAConnection, from the ConnectHook, after SQLite
// opened the file and its WAL beneath). The connection then finds a FUSE
// mount whose files say "write"; its INSERT must not commit into the plain
// file under the mount, an acknowledged write LiteFS never sees, and the
// connection must leave the pool.
func TestLiteFSMountedDuringTheOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	cluster := litefstest.StartCluster(t, 1)
	dir := t.TempDir()
	path := filepath.Join(dir, litefstest.DefaultDBName)
	seed, err := sql.Open("sqlite3", litefstest.DSN(path))
	require.NoError(t, err)
	_, err = seed.Exec("CREATE TABLE t(x)")
	require.NoError(t, err)
	require.NoError(t, seed.Close())
	mounted := false
	d := &sqlite3.SQLiteDriver{ConnectHook: func(*sqlite3.SQLiteConn) error {
		if !mounted {
			mounted = true
			if err := syscall.Mount(cluster.Primary().MountDir(), dir, "", syscall.MS_BIND, ""); err != nil {
				return err
			}
			t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
		}
		return nil
	}}
	ctr, err := NewConnector(litefstest.DSN(path), WithLogger(discard), WithSQLiteDriver(d))
	require.NoError(t, err)
	db := sql.OpenDB(ctr)
	t.Cleanup(func() { db.Close() })
	conn, c := pinConn(t, db)
	require.True(t, mounted, "precondition: LiteFS was mounted over the directory during the open")
	require.True(t, isFUSE(dir), "precondition: the path shows the LiteFS mount")
	_, err = conn.ExecContext(t.Context(), "INSERT INTO t VALUES (1)")
	assert.ErrorIs(t, err, ErrNoPrimary, "a write into the database file beneath the LiteFS mount")
	assert.False(t, c.IsValid(), "the connection must leave the pool")
}
