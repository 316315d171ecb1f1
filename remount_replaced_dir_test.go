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

// TestReplacedDirectoryRefusesWrites: the directory a connection opened
// its database in is moved away and another directory takes its path (a
// deploy swapping data directories). No mount changed. Without inotify,
// the mtime check stats the path, sees another directory and refuses for
// good; under a watch, IN_MOVE_SELF makes the watch Dead and every write
// reads the files at the path, where a plain directory says "primary":
// the write goes to the moved file, which the path no longer shows. The
// two caches disagree on one event; the Dead watch should look again
// (lookAgain) before reading the files.
func TestReplacedDirectoryRefusesWrites(t *testing.T) {
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
			dir := filepath.Join(t.TempDir(), "data")
			require.NoError(t, os.Mkdir(dir, 0o755))
			old := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(dir, old, old))
			p := rememberingProber(t, dir, tc.inotify)
			require.NoError(t, p.check(), "precondition: a plain directory is primary")
			require.NoError(t, p.check())

			require.NoError(t, os.Rename(dir, dir+".old"))
			require.NoError(t, os.Mkdir(dir, 0o755))
			dirwatch.Sync(dir)
			for i := range 2 {
				assert.ErrorIs(t, p.check(), ErrNoPrimary,
					"check %d: a write admitted into %s.old, which the path no longer shows", i, dir)
			}
		})
	}
}
