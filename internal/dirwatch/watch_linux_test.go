package dirwatch

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// event encodes one struct inotify_event as the kernel does, its name
// NUL-padded to a multiple of 16 bytes.
func event(mask uint32, name string) []byte {
	size := 0
	if name != "" {
		size = (len(name) + 16) &^ 15
	}
	b := make([]byte, eventHeader+size)
	binary.NativeEndian.PutUint32(b[0:4], 1) // wd
	binary.NativeEndian.PutUint32(b[4:8], mask)
	binary.NativeEndian.PutUint32(b[12:16], uint32(size))
	copy(b[eventHeader:], name)
	return b
}

func events(evs ...[]byte) []byte {
	var b []byte
	for _, e := range evs {
		b = append(b, e...)
	}
	return b
}

func TestScan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		buf  []byte
		want outcome
	}{
		{name: "nothing", buf: nil, want: unchanged},
		{name: ".primary created", buf: event(syscall.IN_CREATE, ".primary"), want: changed},
		{name: ".primary renamed over", buf: event(syscall.IN_MOVED_TO, ".primary"), want: changed},
		{name: ".primary renamed away", buf: event(syscall.IN_MOVED_FROM, ".primary"), want: changed},
		{name: ".lag removed", buf: event(syscall.IN_DELETE, ".lag"), want: changed},
		{name: ".primary rewritten in place", buf: event(syscall.IN_CLOSE_WRITE, ".primary"), want: changed},
		{name: "a temporary file", buf: event(syscall.IN_CREATE, ".primary.tmp123"), want: unchanged},
		{name: "the WAL closed", buf: event(syscall.IN_CLOSE_WRITE, "app.db-wal"), want: unchanged},
		{name: "a prefix of .primary", buf: event(syscall.IN_CREATE, ".prim"), want: unchanged},
		{name: "a change after others", buf: events(event(syscall.IN_CREATE, "x"), event(syscall.IN_DELETE, ".primary")), want: changed},
		{name: "overflow", buf: event(syscall.IN_Q_OVERFLOW, ""), want: changed},
		{name: "directory removed", buf: event(syscall.IN_DELETE_SELF, ""), want: dead},
		{name: "directory moved", buf: event(syscall.IN_MOVE_SELF, ""), want: dead},
		{name: "unmounted", buf: event(syscall.IN_UNMOUNT, ""), want: dead},
		{name: "watch dropped", buf: event(syscall.IN_IGNORED, ""), want: dead},
		{name: "dead after a change", buf: events(event(syscall.IN_CREATE, ".primary"), event(syscall.IN_IGNORED, "")), want: dead},
		{name: "short header", buf: event(syscall.IN_CREATE, ".primary")[:10], want: dead},
		{name: "name longer than the buffer", buf: event(syscall.IN_CREATE, ".primary")[:20], want: dead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, scanOne(tc.buf))
		})
	}
}

func FuzzScan(f *testing.F) {
	f.Add(event(syscall.IN_CREATE, ".primary"))
	f.Add(events(event(syscall.IN_DELETE, "x"), event(syscall.IN_Q_OVERFLOW, "")))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		scan(b, func(wd int32, out outcome) {
			if out != changed && out != dead {
				t.Fatalf("scan reported %d for watch %d", out, wd)
			}
		})
	})
}

// scanOne is what a buffer of events for one watch (or the whole instance)
// means for it: dead once any event kills it, or the buffer is malformed.
func scanOne(b []byte) outcome {
	out := unchanged
	if !scan(b, func(_ int32, o outcome) { out = max(out, o) }) {
		return dead
	}
	return out
}

// acquire returns dir's watch, released when the test ends.
func acquire(t *testing.T, dir string) *Watch {
	t.Helper()
	w, err := Acquire(dir)
	require.NoError(t, err)
	t.Cleanup(w.Release)
	return w
}

// waitGen waits until cond holds for w's generation.
func waitGen(t *testing.T, w *Watch, cond func(gen uint64) bool, msg string) {
	t.Helper()
	require.Eventually(t, func() bool { return cond(w.Gen()) }, 10*time.Second, time.Millisecond, msg)
}

func TestShared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(dir, link))
	w1 := acquire(t, dir)
	w2 := acquire(t, link+"/.")
	assert.Same(t, w1, w2, "two spellings of one directory share one watch")
	assert.NotSame(t, w1, acquire(t, t.TempDir()), "another directory has its own")
}

func TestSyncShowsRoleFileChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := acquire(t, dir)
	gen := w.Gen()
	for _, step := range []struct {
		name    string
		change  func() error
		changed bool
	}{
		{name: "another file created", change: func() error { return os.WriteFile(filepath.Join(dir, "app.db"), nil, 0o644) }},
		{name: ".primary created", change: func() error { return os.WriteFile(filepath.Join(dir, ".primary"), []byte("a\n"), 0o644) }, changed: true},
		{name: ".primary rewritten", change: func() error { return os.WriteFile(filepath.Join(dir, ".primary"), []byte("b\n"), 0o644) }, changed: true},
		{name: ".primary removed", change: func() error { return os.Remove(filepath.Join(dir, ".primary")) }, changed: true},
		{name: "another file removed", change: func() error { return os.Remove(filepath.Join(dir, "app.db")) }},
		{name: ".lag renamed in", change: func() error {
			tmp := filepath.Join(dir, "tmp")
			if err := os.WriteFile(tmp, nil, 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, filepath.Join(dir, ".lag"))
		}, changed: true},
	} {
		require.NoError(t, step.change(), step.name)
		Sync(dir)
		if step.changed {
			assert.Greater(t, w.Gen(), gen, "%s: no new generation after Sync", step.name)
		} else {
			assert.Equal(t, gen, w.Gen(), "%s: a new generation", step.name)
		}
		gen = w.Gen()
	}
	assert.NotEqual(t, Dead, gen)
}

// A change made without Sync shows once the goroutine has read it.
func TestChangeSeenWithoutSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := acquire(t, dir)
	gen := w.Gen()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".primary"), []byte("a\n"), 0o644))
	waitGen(t, w, func(g uint64) bool { return g > gen && g != Dead }, "the change was never seen")
}

func TestDeadWhenTheDirectoryGoes(t *testing.T) {
	t.Parallel()
	t.Run("removed", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "d")
		require.NoError(t, os.Mkdir(dir, 0o755))
		w := acquire(t, dir)
		require.NoError(t, os.Remove(dir))
		waitGen(t, w, func(g uint64) bool { return g == Dead }, "the watch outlived its directory")
	})
	t.Run("moved", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "d")
		require.NoError(t, os.Mkdir(dir, 0o755))
		w := acquire(t, dir)
		moved := dir + ".moved"
		require.NoError(t, os.Rename(dir, moved))
		waitGen(t, w, func(g uint64) bool { return g == Dead }, "the watch outlived its path")
		assert.False(t, Watching(moved), "a dead watch is not live")
		assert.NotSame(t, w, acquire(t, moved), "a dead watch is not handed out again")
	})
}

// Events lost to a full queue count as a change for every watch: a role
// file may have changed unseen. Not parallel: the queue is the process's,
// and its overflow raises every other test's watch too.
func TestOverflowIsAChange(t *testing.T) {
	dir := t.TempDir()
	w := acquire(t, dir)
	gen := w.Gen()
	limit := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		limit, err = strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(t, err)
	}
	other := acquire(t, t.TempDir())
	otherGen := other.Gen()
	w.hub.mu.Lock() // nothing drains the queue meanwhile
	name := filepath.Join(dir, "x")
	for range limit/2 + 1 { // an event each for the create and the delete
		if err := os.Mkdir(name, 0o755); err != nil {
			w.hub.mu.Unlock()
			require.NoError(t, err)
		}
		if err := os.Remove(name); err != nil {
			w.hub.mu.Unlock()
			require.NoError(t, err)
		}
	}
	w.hub.mu.Unlock()
	Sync(dir)
	assert.Greater(t, w.Gen(), gen, "the overflow raised no generation")
	assert.Greater(t, other.Gen(), otherGen, "the overflow raised no generation of another directory's watch")
	assert.NotEqual(t, Dead, w.Gen(), "an overflow leaves the watch live")
}

// The last Release ends the watch: its goroutine returns and the registry
// forgets it.
func TestLastReleaseEndsTheWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w1, err := Acquire(dir)
	require.NoError(t, err)
	w2, err := Acquire(dir)
	require.NoError(t, err)
	require.Same(t, w1, w2)
	w1.Release()
	assert.True(t, Watching(dir), "released by one of two users")
	select {
	case <-w2.done:
		t.Fatal("the goroutine ended while a user remains")
	default:
	}
	w2.Release()
	assert.False(t, Watching(dir), "released by every user")
	assert.Equal(t, Dead, w2.Gen(), "a released watch must not be trusted")
	select {
	case <-w2.done:
	default:
		t.Fatal("the goroutine outlived the last Release")
	}
	Sync(dir) // no watch: nothing to do, no panic
}

// TestAcquireRacingAnUnmountKeepsNoStaleWatch: Acquire opens dir while
// another directory is bind-mounted over it, and the unmount is applied
// by the hub before the watch exists. Key and watch name the mounted
// directory (they follow one open descriptor), but dir names the one
// beneath by then, and no later mount-table change will kill the watch:
// add must find this as it registers the watch, not hand it out live.
func TestAcquireRacingAnUnmountKeepsNoStaleWatch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir, other := t.TempDir(), t.TempDir()
	_ = acquire(t, t.TempDir()) // a hub that follows the mount table meanwhile
	require.NoError(t, syscall.Mount(other, dir, "", syscall.MS_BIND, ""))
	mounted := true
	t.Cleanup(func() {
		if mounted {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	Sync(dir)

	w, err := acquireOnce(dir, func() {
		require.NoError(t, syscall.Unmount(dir, syscall.MNT_DETACH))
		mounted = false
		Sync(dir) // the unmount is applied before the watch exists
	})
	if err == nil {
		defer w.Release()
	}
	assert.ErrorIs(t, err, errRenamed, "a live watch of the directory that was mounted over %s", dir)

	fresh := acquire(t, dir)
	k, err := keyOf(dir)
	require.NoError(t, err)
	assert.Equal(t, k, fresh.key, "Acquire after the unmount watches the directory beneath")
	assert.NotEqual(t, Dead, fresh.Gen())
}

// TestAcquireUnderAMountedRoleFileIsDead: a role file that is already a
// mount of another file system's file when the directory is first watched
// changes unseen by the watch, and no later mount-table change comes to
// kill it: Acquire hands out a Dead watch, whose users read the files.
func TestAcquireUnderAMountedRoleFileIsDead(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir, vol := t.TempDir(), t.TempDir()
	require.NoError(t, syscall.Mount("dirwatch-test", vol, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { syscall.Unmount(vol, syscall.MNT_DETACH) })
	src, primary := filepath.Join(vol, "primary"), filepath.Join(dir, ".primary")
	require.NoError(t, os.WriteFile(src, []byte("a\n"), 0o644))
	require.NoError(t, os.WriteFile(primary, nil, 0o644))
	require.NoError(t, syscall.Mount(src, primary, "", syscall.MS_BIND, ""))
	t.Cleanup(func() { syscall.Unmount(primary, syscall.MNT_DETACH) })

	w := acquire(t, dir)
	assert.Equal(t, Dead, w.Gen(), "a live watch of %s, whose .primary is another file system's", dir)
}
