package dirwatch

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// watchMask asks for changes to the directory's entries, files closed after
// writing (an existing .primary rewritten in place changes no entry), and
// the directory itself going away. IN_MODIFY is left out on purpose: the
// database and its WAL are written at every commit, and waking for each
// would cost more than the fstat this package replaces. IN_UNMOUNT,
// IN_Q_OVERFLOW and IN_IGNORED are always reported.
const watchMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM |
	syscall.IN_MOVED_TO | syscall.IN_CLOSE_WRITE | syscall.IN_DELETE_SELF |
	syscall.IN_MOVE_SELF | syscall.IN_ONLYDIR

// A Watch is one inotify instance watching one directory, shared by every
// user of that directory in the process (refs counts them).
//
// Invariants: gen only grows, except to Dead, which is final; it is written
// only with mu held, and an event read from the kernel raises it before mu
// is released, so whoever next holds mu (Sync) sees every event the kernel
// had queued when it took mu.
type Watch struct {
	key  dirKey
	refs int // guarded by regMu

	gen  atomic.Uint64
	mu   sync.Mutex // held from reading events to raising gen
	file *os.File
	raw  syscall.RawConn
	done chan struct{} // closed when the reading goroutine returns
}

// dirKey names a directory however it is spelled: its device and inode.
type dirKey struct{ dev, ino uint64 }

// The registry of live watches, one per directory. It is process-wide
// because the watch is: every connection of every *sql.DB on a directory
// shares one inotify instance, and the test kit reaches it by path alone.
var (
	regMu   sync.Mutex
	watches = map[dirKey]*Watch{}
)

func keyOf(dir string) (dirKey, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return dirKey{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return dirKey{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// Acquire returns the watch of dir, starting one if the process has no live
// one. Each successful Acquire needs a Release.
func Acquire(dir string) (*Watch, error) {
	k, err := keyOf(dir)
	if err != nil {
		return nil, err
	}
	regMu.Lock()
	defer regMu.Unlock()
	if w := watches[k]; w != nil && w.gen.Load() != Dead {
		w.refs++
		return w, nil
	}
	w, err := start(dir, k)
	if err != nil {
		return nil, err
	}
	watches[k] = w // a dead one stays with its holders until they release it
	return w, nil
}

func start(dir string, k dirKey) (*Watch, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("dirwatch: inotify_init1: %w", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, watchMask); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	// A non-blocking fd given to os.NewFile joins the runtime's poller, so
	// the goroutine waits for events without holding a thread.
	f := os.NewFile(uintptr(fd), "inotify:"+dir)
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dirwatch: %w", err)
	}
	w := &Watch{key: k, refs: 1, file: f, raw: raw, done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// Gen returns the watch's generation, or Dead. It makes no system call.
func (w *Watch) Gen() uint64 { return w.gen.Load() }

// Release gives up one Acquire. The last one closes the inotify instance,
// waits for the reading goroutine to return, and leaves the watch Dead for
// any check still holding it.
func (w *Watch) Release() {
	regMu.Lock()
	w.refs--
	last := w.refs == 0
	if last && watches[w.key] == w {
		delete(watches, w.key)
	}
	regMu.Unlock()
	if !last {
		return
	}
	w.mu.Lock()
	w.gen.Store(Dead)
	w.mu.Unlock()
	w.file.Close() // wakes the goroutine's Read, which then returns
	<-w.done
}

// loop reads events until the file is closed or the watch dies. Read calls
// the function again each time the fd becomes readable.
func (w *Watch) loop() {
	defer close(w.done)
	_ = w.raw.Read(func(fd uintptr) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.drainLocked(int(fd))
		return w.gen.Load() == Dead
	})
	// Nothing reads events any more, whatever ended Read (the poller
	// refusing the fd, say): the generation must not be trusted.
	w.mu.Lock()
	w.gen.Store(Dead)
	w.mu.Unlock()
}

// Sync applies every event the kernel has queued for dir's watch, if the
// process has one, before it returns: a change to dir's role files made
// before the call shows in Gen when it returns.
func Sync(dir string) {
	k, err := keyOf(dir)
	if err != nil {
		return
	}
	regMu.Lock()
	w := watches[k]
	regMu.Unlock()
	if w == nil {
		return
	}
	// Control, not Read: the goroutine holds the fd's read lock while it
	// waits. A closed file (a concurrent last Release) has no events left.
	_ = w.raw.Control(func(fd uintptr) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.drainLocked(int(fd))
	})
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

// drainLocked reads events until none is queued, raising gen for those that
// concern the role files; any failure leaves the watch Dead, so that its
// users read the files. mu must be held.
func (w *Watch) drainLocked(fd int) {
	// Room for at least one event with the longest name (16 + 256 bytes).
	var buf [4096]byte
	for w.gen.Load() != Dead {
		n, err := syscall.Read(fd, buf[:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return
		case err != nil || n <= 0:
			w.gen.Store(Dead)
			return
		}
		switch scan(buf[:n]) {
		case changed:
			w.gen.Add(1)
		case dead:
			w.gen.Store(Dead)
		}
	}
}
