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

// TestDirectoryGoneFromItsPathRefusesWrites: the directory a connection
// opened its database in is moved away (or removed) and nothing takes its
// path, so the open file is one the path no longer shows. Without inotify
// the stat of the path fails, and the files' absence (ENOENT from a
// missing parent) must not read as a plain directory, primary.
func TestDirectoryGoneFromItsPathRefusesWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		inotify bool
		remove  bool
	}{
		{name: "inotify, moved away", inotify: true},
		{name: "mtime, moved away"},
		{name: "mtime, removed", remove: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			require.NoError(t, os.Mkdir(dir, 0o755))
			old := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(dir, old, old))
			p := rememberingProber(t, dir, tc.inotify)
			require.NoError(t, p.check(), "precondition: a plain directory is primary")
			require.NoError(t, p.check())

			if tc.remove {
				require.NoError(t, os.Remove(dir))
			} else {
				require.NoError(t, os.Rename(dir, dir+".old"))
			}
			dirwatch.Sync(dir)
			for i := range 2 {
				assert.ErrorIs(t, p.check(), ErrNoPrimary,
					"check %d: a write admitted into a directory %s no longer names", i, dir)
			}
		})
	}
}
