package dirwatch

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// watchMask asks for changes to the directory's entries, files closed after
// writing (an existing .primary rewritten in place changes no entry), and
// the directory itself going away. IN_MODIFY is left out on purpose: the
// database and its WAL are written at every commit, and waking for each
// would cost more than the stat this package replaces. IN_UNMOUNT,
// IN_Q_OVERFLOW and IN_IGNORED are always reported.
const watchMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM |
	syscall.IN_MOVED_TO | syscall.IN_CLOSE_WRITE | syscall.IN_DELETE_SELF |
	syscall.IN_MOVE_SELF | syscall.IN_ONLYDIR

// noWD is the watch descriptor of a watch that has none any more.
const noWD = -1

// A Watch is one directory's watch descriptor in the process's inotify
// instance (its hub), shared by every user of that directory in the
// process (refs counts them).
//
// Invariants: gen only grows, except to Dead, which is final; it is written
// only with hub.mu held. done is closed when gen becomes Dead: nothing
// reads events for the watch any more.
type Watch struct {
	key  dirKey
	path string // as first acquired, to see what it names after a mount change
	refs int    // guarded by regMu
	// aliases are the other spellings it was acquired by (a symbolic
	// link, a parent's): each must keep naming the directory, or the
	// watch ends. Guarded by hub.mu; at most maxAliases.
	aliases []string

	gen  atomic.Uint64
	hub  *hub
	wd   int32 // guarded by hub.mu; noWD once dead
	done chan struct{}
}

// dirKey names a directory however it is spelled: its device and inode.
type dirKey struct{ dev, ino uint64 }

// The registry of live watches, one per directory, and the hub that new
// watches join. It is process-wide because the inotify instance is: every
// connection of every *sql.DB on a directory shares one watch, and the
// test kit reaches it by path alone.
var (
	regMu   sync.Mutex
	watches = map[dirKey]*Watch{}
	current *hub // nil until the first Acquire, and after the last Release
)

func keyOf(dir string) (dirKey, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return dirKey{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return dirKey{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// oPath is O_PATH (010000000 on every Linux architecture Go supports),
// which package syscall does not define on all of them.
const oPath = 0x200000

// acquireTries bounds the retries of an Acquire whose directory's path
// changed meaning (a mount over it) while its watch was added.
const acquireTries = 3

// errRenamed is Acquire's error when dir's path kept naming another
// directory than the one opened: the watch would not see the files the
// path names.
var errRenamed = errors.New("dirwatch: the directory's path names another directory than the one watched")

// Acquire returns the watch of dir, starting one if the process has no live
// one. Each successful Acquire needs a Release. It fails with an error
// matching [ErrNotLocal] where dir is on a file system that may change
// without inotify seeing it (a network file system).
func Acquire(dir string) (*Watch, error) { return acquireWith(dir, statfsType) }

// acquireWith is Acquire with the source of dir's file-system type, which tests
// replace.
func acquireWith(dir string, fsType func(dir string) (uint32, error)) (*Watch, error) {
	t, err := fsType(dir)
	if err != nil {
		return nil, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	if !localFS(t) {
		return nil, fmt.Errorf("%w: %s is on file system type %#x", ErrNotLocal, dir, t)
	}
	for range acquireTries {
		w, err := acquireOnce(dir, nil)
		if err != errRenamed {
			return w, err
		}
	}
	return nil, fmt.Errorf("%w: %s", errRenamed, dir)
}

// acquireOnce keys and watches the directory dir names through one open
// descriptor of it, so that the key and the watch name the same inode
// whatever is mounted at dir meanwhile. Tests pass opened to act between
// the open and the watch.
func acquireOnce(dir string, opened func()) (*Watch, error) {
	fd, err := syscall.Open(dir, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: dir, Err: err}
	}
	k := dirKey{dev: uint64(st.Dev), ino: st.Ino}
	if opened != nil {
		opened()
	}
	regMu.Lock()
	defer regMu.Unlock()
	if w := watches[k]; w != nil && w.gen.Load() != Dead {
		if !w.alias(dir) {
			return nil, errTooManyAliases
		}
		w.refs++
		return w, nil
	}
	h := current
	if h == nil || h.failed.Load() {
		// A failed hub stays with its watches' holders until they release.
		if h, err = startHub(); err != nil {
			return nil, err
		}
		current = h
	}
	w, err := h.add(dir, fd, k)
	if err != nil {
		if h.users == 0 {
			current = nil
			h.stop()
		}
		return nil, err
	}
	h.users++
	watches[k] = w // a dead one stays with its holders until they release it
	return w, nil
}

// maxAliases bounds the spellings of one watched directory that the hub
// looks at; an acquirer past it gets no watch (and checks the path itself).
const maxAliases = 8

var errTooManyAliases = errors.New("dirwatch: too many spellings of one directory")

// alias records dir as a spelling w was acquired by, unless it is w's own
// path or one already recorded; it reports false when there is no room.
func (w *Watch) alias(dir string) bool {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	if dir == w.path || slices.Contains(w.aliases, dir) {
		return true
	}
	if len(w.aliases) >= maxAliases {
		return false
	}
	w.aliases = append(w.aliases, dir)
	return true
}

var errWDInUse = errors.New("dirwatch: inotify returned a watch descriptor already in use")

// add gives the directory open as fd, keyed k and named dir, a watch
// descriptor of h. The watch is added through /proc/self/fd, so that it
// follows the inode keyed, not whatever dir names by then.
//
// It looks at dir once the watch is in h.wds, as mountsLocked does after a
// mount-table change: a change before the look shows in it, and one after
// it finds the watch in h.wds. Without the look, a mount over dir at the
// open, gone (and applied) before the watch joined h.wds, would leave a
// live watch of the directory that was mounted there.
func (h *hub) add(dir string, fd int, k dirKey) (*Watch, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wd, err := syscall.InotifyAddWatch(h.ino, "/proc/self/fd/"+strconv.Itoa(fd), watchMask)
	if err != nil {
		return nil, &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	if h.wds[int32(wd)] != nil {
		// Never: every live watch of h is registered under its inode's
		// key, which Acquire looked up under regMu, and a watch leaves
		// h.wds (under regMu too, on Release) as it dies.
		return nil, errWDInUse
	}
	w := &Watch{key: k, path: dir, refs: 1, hub: h, wd: int32(wd), done: make(chan struct{})}
	h.wds[w.wd] = w
	if !w.namesKey() {
		h.killLocked(w)
		return nil, errRenamed
	}
	if !w.roleFilesLocal() {
		// A role file mounted from another file system changes unseen:
		// its users read the files at every write (fail closed), where
		// an error would leave them to the directory's mtime, which an
		// in-place rewrite does not move.
		h.killLocked(w)
	}
	return w, nil
}

// Gen returns the watch's generation, or Dead. It makes no system call.
func (w *Watch) Gen() uint64 { return w.gen.Load() }

// Release gives up one Acquire. The last one removes the watch descriptor
// and leaves the watch Dead for any check still holding it; the last watch
// of the process closes the inotify instance and ends its goroutine.
//
// The descriptor is removed before regMu is released: an Acquire of the
// same directory that found no registered watch would otherwise get the
// dying one's descriptor back from the kernel.
func (w *Watch) Release() {
	regMu.Lock()
	w.refs--
	if w.refs > 0 {
		regMu.Unlock()
		return
	}
	if watches[w.key] == w {
		delete(watches, w.key)
	}
	h := w.hub
	h.users--
	last := h.users == 0
	if last && current == h {
		current = nil
	}
	h.mu.Lock()
	h.killLocked(w)
	h.mu.Unlock()
	regMu.Unlock()
	if last {
		h.stop()
	}
}

// Sync applies every event the kernel has queued, and any change of the
// mount table, before it returns: a change to a watched directory's role
// files made before the call shows in its watch's Gen when it returns, and
// a mount made before the call shows in MountGen. dir is not needed: the
// process has one instance.
func Sync(dir string) {
	regMu.Lock()
	h := current
	regMu.Unlock()
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed && !h.failed.Load() {
		h.drainLocked()
		h.mountsLocked()
		h.pathsLocked()
	}
}

// Watching reports whether the process has a live watch of dir.
func Watching(dir string) bool {
	k, err := keyOf(dir)
	if err != nil {
		return false
	}
	regMu.Lock()
	defer regMu.Unlock()
	w := watches[k]
	return w != nil && w.gen.Load() != Dead
}
