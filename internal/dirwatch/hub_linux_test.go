package dirwatch

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Only a local file system is watched: inotify does not see a change made
// on another host of a network file system.
func TestOnlyLocalFileSystems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		magic uint32
		local bool
	}{
		{name: "ext4", magic: 0xEF53, local: true},
		{name: "tmpfs", magic: 0x01021994, local: true},
		{name: "overlayfs", magic: 0x794C7630, local: true},
		{name: "nfs", magic: 0x6969},
		{name: "9p", magic: 0x01021997},
		{name: "fuse (virtiofs too)", magic: 0x65735546},
		{name: "cifs", magic: 0xFF534D42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			w, err := acquireWith(dir, func(string) (uint32, error) { return tc.magic, nil })
			if !tc.local {
				assert.ErrorIs(t, err, ErrNotLocal)
				assert.Nil(t, w)
				assert.False(t, Watching(dir))
				return
			}
			require.NoError(t, err)
			w.Release()
		})
	}
	_, err := acquireWith(t.TempDir(), func(string) (uint32, error) { return 0, syscall.EIO })
	assert.ErrorIs(t, err, syscall.EIO, "a failed statfs")
}

// The process's one inotify instance and its goroutine end with the last
// watch. Not parallel: no other test's watch may keep the hub alive.
func TestLastWatchEndsTheHub(t *testing.T) {
	w1, err := Acquire(t.TempDir())
	require.NoError(t, err)
	w2, err := Acquire(t.TempDir())
	require.NoError(t, err)
	require.Same(t, w1.hub, w2.hub, "two directories, one instance")
	h := w1.hub
	w1.Release()
	select {
	case <-h.done:
		t.Fatal("the goroutine ended while a watch remains")
	default:
	}
	w2.Release()
	<-h.done // hangs if the goroutine outlives the last watch
	regMu.Lock()
	defer regMu.Unlock()
	assert.Nil(t, current, "no hub once every watch is released")
	assert.True(t, h.closed)
}

// A mount over a watched directory, or over one of its role files, makes
// no inotify event; the mount table's change kills the watch (its path
// names another directory now, or the file is another one) and raises
// MountGen, and leaves other watches as they were.
func TestMountOverAWatchedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	w := acquire(t, dir)
	other := acquire(t, t.TempDir())
	gen, mounts := other.Gen(), MountGen()

	require.NoError(t, syscall.Mount("dirwatch-test", dir, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	Sync(dir)
	assert.Equal(t, Dead, w.Gen(), "the watch of a directory mounted over")
	assert.Equal(t, gen, other.Gen(), "another directory's watch changed")
	assert.Greater(t, MountGen(), mounts)

	fresh := acquire(t, dir)
	assert.NotSame(t, w, fresh, "the mount's root has a watch of its own")
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".primary"), []byte("a\n"), 0o644))
	require.NoError(t, syscall.Unmount(dir, syscall.MNT_DETACH))
	Sync(dir)
	assert.Equal(t, Dead, fresh.Gen(), "the watch of a lazily unmounted directory")

	// Another file system's file bind-mounted over .primary: the directory
	// is the same one, the file is not. (A file of the same file system
	// would go unseen: it has the same device; see stillNamed.)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".primary"), []byte("a\n"), 0o644))
	other2 := t.TempDir()
	require.NoError(t, syscall.Mount("dirwatch-test", other2, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { syscall.Unmount(other2, syscall.MNT_DETACH) })
	src := filepath.Join(other2, "primary")
	require.NoError(t, os.WriteFile(src, []byte("b\n"), 0o644))
	again := acquire(t, dir)
	require.NotEqual(t, Dead, again.Gen())
	require.NoError(t, syscall.Mount(src, filepath.Join(dir, ".primary"), "", syscall.MS_BIND, ""))
	t.Cleanup(func() { syscall.Unmount(filepath.Join(dir, ".primary"), syscall.MNT_DETACH) })
	Sync(dir)
	assert.Equal(t, Dead, again.Gen(), "the watch of a directory whose .primary is a mount point")
}
