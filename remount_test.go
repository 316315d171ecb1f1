package litefs

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

// A connection whose plain directory is lazily unmounted from under it
// refuses its writes even where the directory beneath shows no role files
// (a plain, writable directory): its database file is the detached one,
// not the one the path shows. Under an inotify watch and without one.
func TestLazyUnmountRefusesWrites(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	for _, tc := range []struct {
		name    string
		inotify bool
	}{
		{name: "inotify", inotify: true},
		{name: "mtime, without inotify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "volume")
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, syscall.Mount("remount-test", dir, "tmpfs", 0, "size=1m"))
			t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
			old := time.Now().Add(-time.Hour) // as a directory in service: its mtime trusted
			require.NoError(t, os.Chtimes(dir, old, old))
			p := rememberingProber(t, dir, tc.inotify)
			require.NoError(t, p.check(), "precondition: a plain directory is primary")
			require.NoError(t, p.check())

			require.NoError(t, syscall.Unmount(dir, syscall.MNT_DETACH))
			dirwatch.Sync(dir)
			require.NoError(t, newProber(dir, discard, p.sawLiteFS).check(), "precondition: the directory beneath is a writable plain one")
			for i := range 2 {
				assert.ErrorIs(t, p.check(), ErrNoPrimary, "check %d after the unmount", i)
			}
		})
	}
}

// A LiteFS primary mounted over a plain directory whose connection
// remembers "primary" (LiteFS mounting after the application opened its
// database): the path now shows a LiteFS primary, whose rules say write,
// but the connection's file is the one beneath the mount. Its writes are
// refused, and the Connector's other plain-directory connections too.
func TestLiteFSPrimaryMountedOverRememberedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	cluster := litefstest.StartCluster(t, 1)
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	conn, c := pinConn(t, db)
	conn2, c2 := pinConn(t, db)
	for _, cn := range []*sql.Conn{conn, conn2} {
		_, err := cn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('before the mount')")
		require.NoError(t, err)
	}

	require.NoError(t, syscall.Mount(cluster.Primary().MountDir(), m.Dir(), "", syscall.MS_BIND, ""))
	t.Cleanup(func() { syscall.Unmount(m.Dir(), syscall.MNT_DETACH) })
	require.True(t, isFUSE(m.Dir()), "precondition: the directory is now a FUSE mount")
	dirwatch.Sync(m.Dir())
	litefstest.WaitFor(t, func() error { return newProber(m.Dir(), discard, new(atomic.Bool)).check() })

	_, err := conn.ExecContext(context.Background(), "INSERT INTO t(v) VALUES ('under the mount')")
	assert.ErrorIs(t, err, ErrNoPrimary, "a write into the file beneath a LiteFS primary's mount")
	assert.ErrorIs(t, c.CheckPrimary(), ErrNoPrimary)
	assert.ErrorIs(t, c2.CheckPrimary(), ErrNoPrimary, "another connection of the Connector")
}

// On a file system that is not local (NFS, 9p, virtiofs), another host may
// change the role files unseen by inotify, and the directory's mtime may
// come from a stale attribute cache: every write reads the files.
func TestNotLocalFileSystemReadsEveryWrite(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetReplica("node-a")
	p := newProber(m.Dir(), discard, new(atomic.Bool))
	t.Cleanup(p.close)
	p.rememberWith(func(dir string) (*dirwatch.Watch, error) {
		return nil, fmt.Errorf("%w: %s is on nfs", dirwatch.ErrNotLocal, dir)
	})
	require.Nil(t, p.dirw.Load(), "a watch of a network file system")
	require.Equal(t, int64(-1), p.dirfd.Load(), "a network file system's mtime trusted")
	for i := range 3 {
		before := p.lookups.Load()
		var np *NotPrimaryError
		require.ErrorAs(t, p.check(), &np, "check %d", i)
		assert.Equal(t, "node-a", np.PrimaryID)
		assert.Equal(t, uint64(1), p.lookups.Load()-before, "check %d did not read the files", i)
	}
}
