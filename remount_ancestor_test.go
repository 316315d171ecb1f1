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

// TestAncestorSwapRefusesWrites: a deploy swaps a parent of the database's
// directory (mv /srv/app /srv/app.old; mv /srv/app.new /srv/app). The
// watched directory itself is neither moved nor changed, so inotify reports
// nothing on it (IN_MOVE_SELF is for the watched inode only), and no mount
// changed: the look at the path (dirwatch) must still refuse writes into
// the file under /srv/app.old, which the path no longer shows.
func TestAncestorSwapRefusesWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		inotify bool
	}{
		{name: "inotify", inotify: true},
		{name: "mtime, without inotify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := filepath.Join(t.TempDir(), "app")
			dir := filepath.Join(app, "data")
			require.NoError(t, os.MkdirAll(dir, 0o755))
			old := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(dir, old, old))
			p := rememberingProber(t, dir, tc.inotify)
			require.NoError(t, p.check(), "precondition: a plain directory is primary")
			require.NoError(t, p.check())

			require.NoError(t, os.MkdirAll(filepath.Join(app+".new", "data"), 0o755))
			require.NoError(t, os.Rename(app, app+".old"))
			require.NoError(t, os.Rename(app+".new", app))
			dirwatch.Sync(dir)
			for i := range 2 {
				assert.ErrorIs(t, p.check(), ErrNoPrimary,
					"check %d: a write admitted into %s.old/data, which %s no longer names", i, app, dir)
			}
		})
	}
}

// TestSymlinkSwapRefusesWrites: the mount directory is named through a
// symbolic link (WithMountDir("/srv/current"), current -> releases/v1) and
// a deploy repoints the link (ln -sfn releases/v2 current, a rename over
// the link). The watched directory (v1) sees no event and no mount
// changed; writes must not keep going into v1's file, which the path no
// longer names.
func TestSymlinkSwapRefusesWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		inotify bool
	}{
		{name: "inotify", inotify: true},
		{name: "mtime, without inotify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for _, v := range []string{"v1", "v2"} {
				require.NoError(t, os.Mkdir(filepath.Join(root, v), 0o755))
				old := time.Now().Add(-time.Hour)
				require.NoError(t, os.Chtimes(filepath.Join(root, v), old, old))
			}
			current := filepath.Join(root, "current")
			require.NoError(t, os.Symlink("v1", current))
			p := rememberingProber(t, current, tc.inotify)
			require.NoError(t, p.check(), "precondition: a plain directory is primary")
			require.NoError(t, p.check())

			require.NoError(t, os.Symlink("v2", current+".tmp"))
			require.NoError(t, os.Rename(current+".tmp", current))
			dirwatch.Sync(current)
			for i := range 2 {
				assert.ErrorIs(t, p.check(), ErrNoPrimary,
					"check %d: a write admitted into v1, which %s no longer names", i, current)
			}
		})
	}
}
