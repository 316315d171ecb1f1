package litefs

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
)

// TestNotLocalDirectoryRemountedRefusesWrites: a connection whose directory
// is on a file system dirwatch does not watch (ErrNotLocal: NFS, 9p, CIFS)
// has no watch, and the mount table's watch may not run (no other watch in
// the process keeps it): a mount over the directory, or a lazy unmount
// under it, must still be seen, and the connection's writes refused. Not
// parallel: no other test's watch may keep a hub alive.
func TestNotLocalDirectoryRemountedRefusesWrites(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	for _, tc := range []struct {
		name string
		// change makes dir name another directory, and returns its undo.
		change func(t *testing.T, dir string)
	}{
		{name: "mounted over", change: func(t *testing.T, dir string) {
			require.NoError(t, syscall.Mount("remount", dir, "tmpfs", 0, "size=1m"))
			t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
		}},
		{name: "lazily unmounted", change: func(t *testing.T, dir string) {
			require.NoError(t, syscall.Unmount(dir, syscall.MNT_DETACH))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "volume")
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, syscall.Mount("remount", dir, "tmpfs", 0, "size=1m"))
			t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
			p := newProber(dir, discard, new(atomic.Bool))
			t.Cleanup(p.close)
			p.rememberWith(func(dir string) (*dirwatch.Watch, error) {
				return nil, fmt.Errorf("%w: %s is on nfs", dirwatch.ErrNotLocal, dir)
			})
			require.NoError(t, p.check(), "precondition: a plain directory is primary")

			tc.change(t, dir)
			dirwatch.Sync(dir)
			require.NoError(t, newProber(dir, discard, p.sawLiteFS).check(),
				"precondition: the path now shows a writable plain directory")
			for i := range 2 {
				assert.ErrorIs(t, p.check(), ErrNoPrimary,
					"check %d: a write admitted into the file the path no longer shows", i)
			}
		})
	}
}
