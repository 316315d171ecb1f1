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

// TestReview5AncestorSwapRefusesWrites: a deploy swaps a parent of the
// database's directory (mv /srv/app /srv/app.old; mv /srv/app.new
// /srv/app). The watched directory itself is neither moved nor changed,
// so inotify reports nothing (IN_MOVE_SELF is for the watched inode only),
// and no mount changed: the remembered role admits writes into the file
// under /srv/app.old, which the path no longer shows. Without inotify,
// the mtime check stats the path and refuses.
func TestReview5AncestorSwapRefusesWrites(t *testing.T) {
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

// TestReview5SymlinkSwapRefusesWrites: the mount directory is named through
// a symbolic link (WithMountDir("/srv/current"), current -> releases/v1)
// and a deploy repoints the link (ln -sfn releases/v2 current, a rename
// over the link). The watched directory (v1) sees no event and no mount
// changed: under inotify, writes keep going into v1's file, which the path
// no longer names. Without inotify, the stat of the path sees v2 and
// refuses. Same root cause as TestReview5AncestorSwapRefusesWrites.
func TestReview5SymlinkSwapRefusesWrites(t *testing.T) {
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
