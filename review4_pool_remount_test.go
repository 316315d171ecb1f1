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
// mounted over, the connection refuses every write for good and its error
// says "reopen the connection". But the application cannot reopen one
// pooled connection: the Conn implements neither driver.Validator nor
// driver.SessionResetter, so database/sql keeps it idle and hands it to
// every later statement. With the default pool, a *sql.DB whose
// directory was mounted over refuses writes until it is closed, though a
// fresh connection (opened where the path now leads, by the rules of what
// it shows) would write. Fix: IsValid (or ResetSession returning
// driver.ErrBadConn) reports false once the prober is moved.
func TestRemountedConnectionLeavesThePool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(1)
	_, err := db.Exec("INSERT INTO t(v) VALUES ('before the mount')")
	require.NoError(t, err)

	require.NoError(t, syscall.Mount("review4", m.Dir(), "tmpfs", 0, "size=4m"))
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
