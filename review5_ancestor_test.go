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
