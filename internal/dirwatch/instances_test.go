package dirwatch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inotifyInstances counts the process's open inotify instances.
func inotifyInstances(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// TestOneInstancePerProcess: inotify instances are a per-user budget
// (fs.inotify.max_user_instances, 128 by default), shared by every process
// of the user, and in containers by every container running as root. One
// instance per watched directory lets a process with a database in each of
// many directories (one per tenant) spend the whole budget: the process
// falls back to the mtime cache, and every other program of the user
// (systemd, file watchers, other services) then fails inotify_init with
// EMFILE. One instance with a watch per directory costs one instance.
func TestOneInstancePerProcess(t *testing.T) {
	const dirs = 8
	before := inotifyInstances(t)
	for range dirs {
		w, err := Acquire(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(w.Release)
	}
	assert.LessOrEqual(t, inotifyInstances(t)-before, 1,
		"%d directories watched: one inotify instance each, out of the user's max_user_instances", dirs)
}
