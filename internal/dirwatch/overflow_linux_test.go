package dirwatch

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOverflowLosingTheWatchsEnd: the kernel drops events once the queue
// is full, IN_IGNORED among them: a directory removed (or unmounted) while
// the reader lags (a starved goroutine; here it waits on hub.mu) loses its
// IN_DELETE_SELF and IN_IGNORED, and the kernel drops the watch. After an
// overflow, a watch the kernel no longer has must die rather than keep a
// generation that never moves again, whatever the directory (recreated at
// the path) shows.
func TestOverflowLosingTheWatchsEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	queued, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	require.NoError(t, err)
	limit, err := strconv.Atoi(string(queued[:len(queued)-1]))
	require.NoError(t, err)
	vol := t.TempDir()
	require.NoError(t, syscall.Mount("overflow", vol, "tmpfs", 0, "size=64m,nr_inodes=0"))
	t.Cleanup(func() { syscall.Unmount(vol, syscall.MNT_DETACH) })
	dir := filepath.Join(vol, "db")
	require.NoError(t, os.Mkdir(dir, 0o755))
	w := acquire(t, dir)
	gen := w.Gen()

	w.hub.mu.Lock()
	locked := true
	defer func() {
		if locked {
			w.hub.mu.Unlock()
		}
	}()
	for i := range limit/2 + 1 { // IN_CREATE and IN_CLOSE_WRITE each
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprint("f", i)), nil, 0o644))
	}
	require.NoError(t, os.RemoveAll(dir))
	w.hub.mu.Unlock()
	locked = false
	Sync(dir)
	require.NotEqual(t, gen, w.Gen(), "precondition: the overflow was seen")

	require.NoError(t, os.Mkdir(dir, 0o755))
	after := w.Gen()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".primary"), []byte("node-b\n"), 0o644))
	Sync(dir)
	assert.True(t, w.Gen() == Dead || w.Gen() != after,
		"the watch of a removed directory is live at generation %d, and a .primary at its path goes unseen", w.Gen())
}
