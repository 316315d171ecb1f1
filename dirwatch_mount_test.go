package litefs

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

// TestMountOverRememberedDirectory: an application opened its database
// in a plain directory (LiteFS not mounted yet) and wrote, so its connection
// remembers "primary". Then a LiteFS replica's mount appears on that
// directory (here a bind mount of a real replica's mount; in production,
// LiteFS mounting late). Mounting over a directory makes no inotify event on
// the directory beneath, so the remembered role stays: the pooled connection
// writes into the shadowed file, which forks the database, while the path
// now shows a LiteFS replica whose .primary names node-0. The prober's
// liteFS flag was decided once, at the connection's open.
func TestMountOverRememberedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	cluster := litefstest.StartCluster(t, 2)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	pdb := openNode(t, p)
	_, err := pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)

	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	conn, c := pinConn(t, db)
	_, err = conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('before the mount')")
	require.NoError(t, err)
	require.True(t, dirwatch.Watching(m.Dir()), "precondition: the directory's role is remembered under a watch")

	require.NoError(t, syscall.Mount(r.MountDir(), m.Dir(), "", syscall.MS_BIND, ""))
	t.Cleanup(func() { syscall.Unmount(m.Dir(), syscall.MNT_DETACH) })
	primaryID, err := os.ReadFile(filepath.Join(m.Dir(), litefstest.PrimaryFile))
	require.NoError(t, err, "precondition: the directory now shows the replica's .primary")
	require.True(t, isFUSE(m.Dir()), "precondition: the directory is now a FUSE mount")
	dirwatch.Sync(m.Dir()) // whatever the kit would do; there is no event to drain

	_, err = conn.ExecContext(context.Background(), "INSERT INTO t(v) VALUES ('under the mount')")
	assert.ErrorIs(t, err, ErrNotPrimary,
		"a write was admitted on %s, a LiteFS replica of %q (the file written is the one the mount hides)",
		m.Dir(), string(primaryID))
	assert.Error(t, c.CheckPrimary(), "CheckPrimary on a directory that is now a replica's mount")
}

// TestPrimaryRewrittenThroughHardLink: .primary's contents change in
// place through another name of the same file (a hard link in another
// directory). The kernel reports the close after writing to the directory
// of the name used, not to the database's, so the watch does not see it:
// a documented limit of the plain-directory cache (doc.go). What holds:
// the write stays refused, since a remembered replica turns writable only
// by an entry change (LiteFS and litefstest remove .primary); the named
// primary may be the old one until an entry of the directory changes.
func TestPrimaryRewrittenThroughHardLink(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	conn, _ := pinConn(t, db)
	m.SetReplica("node-a")
	_, err := conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('x')")
	wantNotPrimary(t, err, "node-a")

	other := filepath.Join(t.TempDir(), "primary")
	require.NoError(t, os.Link(filepath.Join(m.Dir(), litefstest.PrimaryFile), other))
	for _, content := range []string{"node-b\n", "", "not a hostname!\n"} {
		require.NoError(t, os.WriteFile(other, []byte(content), 0o644)) // truncates and writes in place
		dirwatch.Sync(m.Dir())
		_, err = conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('x')")
		assert.ErrorIs(t, err, ErrNotPrimary, "a write was admitted after .primary was rewritten to %q", content)
	}
	require.NoError(t, os.WriteFile(other, []byte("node-b\n"), 0o644))
	var np *NotPrimaryError
	require.ErrorAs(t, newProber(m.Dir(), discard, new(atomic.Bool)).check(), &np)
	require.Equal(t, "node-b", np.PrimaryID, "precondition: the directory now names node-b")
	_, err = conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('x')")
	require.ErrorAs(t, err, &np)
	assert.Contains(t, []string{"node-a", "node-b"}, np.PrimaryID, "the refusal names neither primary")

	m.SetReplica("node-c") // an entry change: read again
	_, err = conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('x')")
	wantNotPrimary(t, err, "node-c")
}

// TestLazyUnmountKillsTheWatch: the database's directory is a file system
// of its own (a volume) that is unmounted lazily while the database is
// open, as umount -l or a container runtime's teardown does. The open files
// keep the file system alive, so the kernel sends no IN_UNMOUNT; the path
// now names the directory beneath, whose .primary names node-b, and the
// connection must not keep its remembered "primary" and write into the
// detached volume.
func TestLazyUnmountKillsTheWatch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := filepath.Join(t.TempDir(), "volume")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, litefstest.PrimaryFile), []byte("node-b\n"), 0o644))
	require.NoError(t, syscall.Mount("review-volume", dir, "tmpfs", 0, "size=16m"))
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })

	c, err := NewConnector(litefstest.DSN(filepath.Join(dir, litefstest.DefaultDBName)), WithLogger(discard))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	conn, pc := pinConn(t, db)
	_, err = conn.ExecContext(t.Context(), "CREATE TABLE t(v)")
	require.NoError(t, err)
	w := pc.probe.dirw.Load()
	require.NotNil(t, w, "precondition: the volume's role is remembered under a watch")

	require.NoError(t, syscall.Unmount(dir, syscall.MNT_DETACH))
	_, err = os.Stat(filepath.Join(dir, litefstest.PrimaryFile))
	require.NoError(t, err, "precondition: the path now shows the directory beneath, with its .primary")
	dirwatch.Sync(dir)

	_, err = conn.ExecContext(t.Context(), "INSERT INTO t VALUES (1)")
	assert.ErrorIs(t, err, ErrNotPrimary, "a write was admitted on %s, whose .primary names node-b", dir)
	assert.Equal(t, dirwatch.Dead, w.Gen(), "the watch of an unmounted directory is not dead")
}
