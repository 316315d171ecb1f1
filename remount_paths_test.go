package litefs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
)

// TestPathChangeRefusesWrites: the directory a connection opened its
// database in stops being the one its path names, with no mount changed,
// under an inotify watch and under the mtime check that stands in without
// one. After each change, writes must be refused, not admitted into the
// file the path no longer shows.
func TestPathChangeRefusesWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// layout makes the directories under root and returns the path
		// the prober watches, and the change to make.
		layout func(t *testing.T, root string) (path string, change func())
	}{
		{name: "replaced: moved away, another made at its path (a deploy swapping data directories)",
			layout: func(t *testing.T, root string) (string, func()) {
				dir := mkdirOld(t, root, "data")
				return dir, func() {
					require.NoError(t, os.Rename(dir, dir+".old"))
					require.NoError(t, os.Mkdir(dir, 0o755))
				}
			}},
		{name: "moved away, nothing at its path",
			layout: func(t *testing.T, root string) (string, func()) {
				dir := mkdirOld(t, root, "data")
				return dir, func() { require.NoError(t, os.Rename(dir, dir+".old")) }
			}},
		{name: "removed",
			layout: func(t *testing.T, root string) (string, func()) {
				dir := mkdirOld(t, root, "data")
				return dir, func() { require.NoError(t, os.Remove(dir)) }
			}},
		{name: "a parent swapped (mv app app.old; mv app.new app): no event on the directory",
			layout: func(t *testing.T, root string) (string, func()) {
				app := filepath.Join(root, "app")
				require.NoError(t, os.Mkdir(app, 0o755))
				dir := mkdirOld(t, app, "data")
				return dir, func() {
					require.NoError(t, os.MkdirAll(filepath.Join(app+".new", "data"), 0o755))
					require.NoError(t, os.Rename(app, app+".old"))
					require.NoError(t, os.Rename(app+".new", app))
				}
			}},
		{name: "a symbolic link on the path repointed (ln -sfn v2 current)",
			layout: func(t *testing.T, root string) (string, func()) {
				mkdirOld(t, root, "v1")
				mkdirOld(t, root, "v2")
				current := filepath.Join(root, "current")
				require.NoError(t, os.Symlink("v1", current))
				return current, func() {
					require.NoError(t, os.Symlink("v2", current+".tmp"))
					require.NoError(t, os.Rename(current+".tmp", current))
				}
			}},
	}
	for _, tt := range tests {
		for _, inotify := range []bool{true, false} {
			mode := map[bool]string{true: "inotify", false: "mtime"}[inotify]
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				path, change := tt.layout(t, t.TempDir())
				p := rememberingProber(t, path, inotify)
				require.NoError(t, p.check(), "precondition: a plain directory is primary")
				require.NoError(t, p.check())
				change()
				dirwatch.Sync(path)
				for i := range 2 {
					assert.ErrorIs(t, p.check(), ErrNoPrimary,
						"check %d: a write admitted into a directory %s no longer names", i, path)
				}
			})
		}
	}
}

// mkdirOld makes dir/name, unchanged for an hour as one in service is (so
// that the mtime check remembers it), and returns its path.
func mkdirOld(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.Mkdir(path, 0o755))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(path, old, old))
	return path
}
