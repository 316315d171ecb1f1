package dirwatch

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchedInode returns the inode the kernel watches under w's descriptor,
// from the inotify instance's fdinfo, or 0 if w has none.
func watchedInode(t *testing.T, w *Watch) uint64 {
	t.Helper()
	w.hub.mu.Lock()
	fd, wd := w.hub.ino, w.wd
	w.hub.mu.Unlock()
	f, err := os.Open(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var gotWD int32
		var ino string
		if _, err := fmt.Sscanf(sc.Text(), "inotify wd:%d ino:%s", &gotWD, &ino); err != nil || gotWD != wd {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(ino), 16, 64)
		require.NoError(t, err)
		return n
	}
	return 0
}

// TestAcquireRacingAMountWatchesAnotherDirectory: Acquire stats dir for
// its key, then asks inotify to watch dir by path. A bind mount over dir
// between the two (LiteFS mounting, a volume attached) gives the registry
// a watch keyed on the directory beneath whose descriptor follows the
// mounted one. The mount-table change that follows may be applied before
// the watch exists, and once the mount is gone stillNamed finds the key
// right again: the watch lives on, shared by every later Acquire of the
// directory, and sees none of its role files' changes. Acquire should
// watch the inode it keyed (open dir, fstat the fd, watch /proc/self/fd/N).
func TestAcquireRacingAMountWatchesAnotherDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir, other := t.TempDir(), t.TempDir()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			if syscall.Mount(other, dir, "", syscall.MS_BIND, "") == nil {
				_ = syscall.Unmount(dir, syscall.MNT_DETACH)
			}
		}
	}()
	t.Cleanup(func() {
		stop.Store(true)
		<-done
		syscall.Unmount(dir, syscall.MNT_DETACH)
	})
	var stale *Watch
	for deadline := time.Now().Add(3 * time.Second); stale == nil && time.Now().Before(deadline); {
		w, err := Acquire(dir)
		if err != nil {
			continue
		}
		if ino := watchedInode(t, w); ino != 0 && ino != w.key.ino && w.Gen() != Dead {
			stale = w
			break
		}
		w.Release()
	}
	stop.Store(true)
	<-done
	if stale == nil {
		return // the window was not hit this time
	}
	defer stale.Release()
	Sync(dir)
	k, err := keyOf(dir)
	require.NoError(t, err)
	require.Equal(t, stale.key, k, "precondition: dir names the keyed directory again")
	gen := stale.Gen()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".primary"), []byte("node-b\n"), 0o644))
	Sync(dir)
	assert.NotEqual(t, gen, stale.Gen(),
		"a live watch of %s (inode %d) follows inode %d: .primary written there went unseen",
		dir, k.ino, watchedInode(t, stale))
}
