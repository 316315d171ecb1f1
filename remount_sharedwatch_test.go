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

// TestSharedWatchSymlinkSwapRefusesWrites: dirwatch shares one Watch per
// directory inode. When the directory is first watched through its real
// path (releases/v1: another Connector, a status look, a migration tool)
// and then through a symbolic link (current -> v1), repointing the link
// (ln -sfn v2 current) must still be seen: the link's prober must not keep
// admitting writes into v1's file, which its path no longer names.
func TestSharedWatchSymlinkSwapRefusesWrites(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, v), 0o755))
		old := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(filepath.Join(root, v), old, old))
	}
	v1 := filepath.Join(root, "v1")
	current := filepath.Join(root, "current")
	require.NoError(t, os.Symlink("v1", current))

	real := rememberingProber(t, v1, true) // first watch of v1: its path is v1
	require.NoError(t, real.check(), "precondition: a plain directory is primary")
	p := rememberingProber(t, current, true)
	require.Same(t, real.dirw.Load(), p.dirw.Load(), "precondition: one watch shared by both paths")
	require.NoError(t, p.check(), "precondition: a plain directory is primary")

	require.NoError(t, os.Symlink("v2", current+".tmp"))
	require.NoError(t, os.Rename(current+".tmp", current))
	dirwatch.Sync(current)
	for i := range 2 {
		assert.ErrorIs(t, p.check(), ErrNoPrimary,
			"check %d: a write admitted into v1, which %s no longer names", i, current)
	}
	assert.True(t, p.movedNow(), "IsValid/Commit keep a connection to v1 through %s", current)
	assert.NoError(t, real.check(), "v1's own path still names v1")
}
