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

// TestRemountedConnectionLeavesThePool: once a connection's directory is
// mounted over, the connection refuses every write for good; database/sql
// must drop it (driver.Validator) rather than hand it to every later
// statement, so that a fresh connection, opened where the path now leads,
// writes by the rules of what it shows.
func TestRemountedConnectionLeavesThePool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(1)
	_, err := db.Exec("INSERT INTO t(v) VALUES ('before the mount')")
	require.NoError(t, err)

	require.NoError(t, syscall.Mount("remount", m.Dir(), "tmpfs", 0, "size=4m"))
	t.Cleanup(func() { syscall.Unmount(m.Dir(), syscall.MNT_DETACH) })
	dirwatch.Sync(m.Dir())
	status, err := NodeStatus(t.Context(), db)
	require.NoError(t, err)
	require.Equal(t, RoleNotLiteFS, status.Role, "precondition: the path shows a plain, writable directory")

	var errs []error
	for range 3 {
		_, err := db.Exec("CREATE TABLE IF NOT EXISTS u(x)")
		if err == nil {
			break
		}
		require.ErrorIs(t, err, ErrNoPrimary)
		errs = append(errs, err)
	}
	assert.Less(t, len(errs), 3, "every write of the pool refused by the one remounted connection: %v", errs)
}
