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

// TestCommitAfterTheDirectoryMoved: a transaction wrote while its
// directory was the one the path showed; then the path came to name
// another directory (LiteFS mounting late over it, a deploy swapping it).
// The COMMIT must be refused and the transaction rolled back, not make the
// rows durable in the file the path no longer shows, a write a fresh
// connection (and LiteFS, mounted over it) never sees.
func TestCommitAfterTheDirectoryMoved(t *testing.T) {
	for _, tc := range []struct {
		name  string
		move  func(t *testing.T, dir string)
		mount bool
	}{
		{name: "renamed and replaced", move: func(t *testing.T, dir string) {
			require.NoError(t, os.Rename(dir, dir+".old"))
			require.NoError(t, os.Mkdir(dir, 0o755))
		}},
		{name: "mounted over", mount: true, move: func(t *testing.T, dir string) {
			require.NoError(t, syscall.Mount("remount", dir, "tmpfs", 0, "size=4m"))
			t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mount && os.Geteuid() != 0 {
				t.Skip("needs root to mount")
			}
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			tx, err := db.Begin()
			require.NoError(t, err)
			_, err = tx.Exec("INSERT INTO t(v) VALUES ('in the transaction')")
			require.NoError(t, err, "precondition: the write is admitted before the move")

			tc.move(t, m.Dir())
			dirwatch.Sync(m.Dir())
			if err := tx.Commit(); err == nil {
				t.Errorf("COMMIT acknowledged rows written into a database file %s no longer shows", m.Dir())
			} else {
				assert.ErrorIs(t, err, ErrNoPrimary)
			}
		})
	}
}
