package litefs

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

// TestSelfBindMountKeepsTheCache: a directory bind-mounted onto itself
// (a container runtime making it a mount point) still names the same
// directory: its connection keeps writing, and a later role change is seen.
func TestSelfBindMountKeepsTheCache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	m := litefstest.NewMount(t)
	conn, c := pinConn(t, openDB(t, m, ""))
	_, err := conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('before')")
	require.NoError(t, err)
	require.NoError(t, syscall.Mount(m.Dir(), m.Dir(), "", syscall.MS_BIND, ""))
	t.Cleanup(func() { syscall.Unmount(m.Dir(), syscall.MNT_DETACH) })
	dirwatch.Sync(m.Dir())
	_, err = conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('after the bind')")
	assert.NoError(t, err, "the same directory, bound onto itself")
	assert.True(t, dirwatch.Watching(m.Dir()))
	m.SetReplica("node-b")
	_, err = conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES ('replica')")
	wantNotPrimary(t, err, "node-b")
	m.SetPrimary()
	assert.NoError(t, c.CheckPrimary())
}
