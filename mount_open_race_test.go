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

// TestMountDuringTheOpenOfAConnection: the prober records which directory
// its path names when the Conn is made, after SQLite has opened the file.
// A mount over the directory in between (here by the ConnectHook, which
// runs at that point) gives the path another directory than the file's:
// the connection must refuse its writes. (Two mount-table changes within
// one open, a mount and its unmount, are not seen: doc.go.)
func TestMountDuringTheOpenOfAConnection(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir, vol := t.TempDir(), t.TempDir()
	require.NoError(t, syscall.Mount("opened", vol, "tmpfs", 0, "size=8m"))
	t.Cleanup(func() { syscall.Unmount(vol, syscall.MNT_DETACH) })
	mounted := false
	d := &sqlite3.SQLiteDriver{ConnectHook: func(*sqlite3.SQLiteConn) error {
		if !mounted {
			mounted = true
			if err := syscall.Mount(vol, dir, "", syscall.MS_BIND, ""); err != nil {
				return err
			}
			t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
		}
		return nil
	}}
	ctr, err := NewConnector(litefstest.DSN(filepath.Join(dir, litefstest.DefaultDBName)), WithLogger(discard), WithSQLiteDriver(d))
	require.NoError(t, err)
	db := sql.OpenDB(ctr)
	t.Cleanup(func() { db.Close() })
	conn, c := pinConn(t, db)
	require.True(t, mounted, "precondition: the directory was mounted over during the open")
	_, err = conn.ExecContext(t.Context(), "CREATE TABLE t(x)")
	assert.ErrorIs(t, err, ErrNoPrimary, "a write into the database file the path no longer shows")
	assert.False(t, c.IsValid(), "the connection must leave the pool")
}
