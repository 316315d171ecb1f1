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

// TestFreshConnectionAfterLiteFSMountedOver: once LiteFS has mounted over
// a plain directory that connections remembered as primary, a fresh
// connection of the same *sql.DB follows LiteFS's rules: it writes on a
// primary, and is refused with the primary's ID on a replica; NodeStatus
// says the same.
func TestFreshConnectionAfterLiteFSMountedOver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	cluster := litefstest.StartCluster(t, 2)
	for _, tc := range []struct {
		name    string
		node    *litefstest.Node
		primary bool
	}{
		{name: "primary", node: cluster.Primary(), primary: true},
		{name: "replica", node: cluster.Replicas()[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			db.SetMaxIdleConns(0) // every statement on a fresh connection
			require.NoError(t, syscall.Mount(tc.node.MountDir(), m.Dir(), "", syscall.MS_BIND, ""))
			t.Cleanup(func() { syscall.Unmount(m.Dir(), syscall.MNT_DETACH) })
			dirwatch.Sync(m.Dir())
			st, err := NodeStatus(t.Context(), db)
			require.NoError(t, err)
			if tc.primary {
				litefstest.WaitFor(t, func() error { _, err := db.Exec("CREATE TABLE IF NOT EXISTS fresh(x)"); return err })
				st, err = NodeStatus(t.Context(), db)
				require.NoError(t, err)
				assert.Equal(t, RolePrimary, st.Role)
				return
			}
			cluster.WaitReplicated(t)
			_, err = db.Exec("INSERT INTO fresh VALUES (1)")
			wantNotPrimary(t, err, cluster.Primary().Hostname())
			assert.Equal(t, RoleReplica, st.Role)
		})
	}
}
