package dirwatch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPathRepointedKillsTheWatch: a symbolic link on the watched path
// repointed to another directory makes no event on the watched one and
// moves no mount; the hub's look at the path (every pathEvery, or at Sync)
// must end the watch, so that its users look at the path again.
func TestPathRepointedKillsTheWatch(t *testing.T) {
	base := t.TempDir()
	v1, v2 := filepath.Join(base, "v1"), filepath.Join(base, "v2")
	require.NoError(t, os.Mkdir(v1, 0o755))
	require.NoError(t, os.Mkdir(v2, 0o755))
	current := filepath.Join(base, "current")
	require.NoError(t, os.Symlink(v1, current))
	w := acquire(t, current)
	require.NotEqual(t, Dead, w.Gen(), "precondition: a live watch")

	// ln -sfn: a new link renamed over the old one.
	require.NoError(t, os.Symlink(v2, current+".new"))
	require.NoError(t, os.Rename(current+".new", current))
	require.Eventually(t, func() bool { return w.Gen() == Dead }, 10*pathEvery, pathEvery/10,
		"the watch of %s still follows v1 after the link was repointed to v2", current)
}
