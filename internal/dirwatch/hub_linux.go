package dirwatch

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// mountInfo lists the process's mounts; polling it reports POLLPRI (with
// POLLERR) once after each change to the mount table, and re-arms itself.
const mountInfo = "/proc/self/mountinfo"

// mountGen counts the changes to the mount table seen by the hub; see
// [MountGen].
var mountGen atomic.Uint64

// MountGen returns a number that grows each time the process's mount
// table changes (something mounted or unmounted anywhere) while a watch is
// live; it makes no system call. A mount over a watched directory, or a
// lazy unmount under it, makes no inotify event: a user that remembers what
// a directory holds compares this number with the one it last saw, and
// looks at the directory again when they differ.
func MountGen() uint64 { return mountGen.Load() }

// A hub is the process's inotify instance, with a watch descriptor per
// watched directory, and the goroutine that reads its events and the
// mount table's changes. Instances are a per-user budget
// (fs.inotify.max_user_instances); one hub costs one.
//
// Invariants: an event read from the kernel, or a mount-table change seen
// on mounts, is applied to the watches' generations before mu is released,
// so whoever next holds mu (Sync) sees every change queued when it took
// mu. mounts is polled only under mu; the goroutine waits on wake, another
// open of the same file, whose readiness it consumes without mu. Whoever
// holds both locks takes regMu first (Acquire's add, Release).
type hub struct {
	mu     sync.Mutex
	closed bool             // guarded by mu: the fds below are closed
	wds    map[int32]*Watch // guarded by mu: the live watches
	ino    int              // the inotify instance, non-blocking
	mounts int              // /proc/self/mountinfo, polled under mu
	wake   int              // /proc/self/mountinfo, polled by the goroutine
	stopR  int              // readable once stop is asked
	stopW  int

	users  int         // guarded by regMu: watches not yet fully released
	failed atomic.Bool // reading failed: every watch is dead, the goroutine gone
	done   chan struct{}
	paths  sync.WaitGroup // pathLoop
}

// pathEvery is how often the hub looks at each watched path: a change above
// the directory (a parent renamed, a symbolic link on the path repointed)
// makes no event on it and moves no mount, yet the path then names another
// directory.
const pathEvery = 250 * time.Millisecond

func startHub() (*hub, error) {
	h := &hub{wds: map[int32]*Watch{}, ino: -1, mounts: -1, wake: -1, stopR: -1, stopW: -1, done: make(chan struct{})}
	var err error
	if h.ino, err = syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC); err != nil {
		h.closeFDs()
		return nil, fmt.Errorf("dirwatch: inotify_init1: %w", err)
	}
	// Without the mount table, a mount over a watched directory would go
	// unseen: no watch then, and the driver checks the path's mtime.
	for _, fd := range []*int{&h.mounts, &h.wake} {
		if *fd, err = syscall.Open(mountInfo, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err != nil {
			h.closeFDs()
			return nil, fmt.Errorf("dirwatch: open %s: %w", mountInfo, err)
		}
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		h.closeFDs()
		return nil, fmt.Errorf("dirwatch: pipe2: %w", err)
	}
	h.stopR, h.stopW = p[0], p[1]
	go h.loop()
	h.paths.Go(h.pathLoop)
	return h, nil
}

// pathLoop looks at every watched path each pathEvery until the hub stops.
func (h *hub) pathLoop() {
	t := time.NewTicker(pathEvery)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		h.mu.Lock()
		if !h.closed {
			h.pathsLocked()
		}
		h.mu.Unlock()
	}
}

// pathsLocked ends each watch whose path names another directory now.
func (h *hub) pathsLocked() {
	for _, w := range h.wds {
		if !w.namesKey() {
			h.killLocked(w)
		}
	}
}

// loop waits in ppoll (holding a thread, not a P) for events, a mount-table
// change or stop, and applies what it woke for under mu.
func (h *hub) loop() {
	defer close(h.done)
	fds := [...]pollFd{
		{fd: int32(h.ino), events: pollIn},
		{fd: int32(h.wake), events: pollPri},
		{fd: int32(h.stopR), events: pollIn},
	}
	for {
		if err := ppoll(fds[:], true); err != nil || fds[2].revents != 0 {
			if err != nil {
				h.mu.Lock()
				h.failLocked()
				h.mu.Unlock()
			}
			return
		}
		h.mu.Lock()
		h.drainLocked()
		h.mountsLocked()
		h.mu.Unlock()
		if h.failed.Load() {
			return
		}
	}
}

// stop ends the goroutine and closes the instance, once no watch uses it.
func (h *hub) stop() {
	_, _ = syscall.Write(h.stopW, []byte{0})
	<-h.done
	h.paths.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.wds {
		h.killLocked(w)
	}
	h.closeFDs()
	h.closed = true
}

func (h *hub) closeFDs() {
	for _, fd := range []*int{&h.ino, &h.mounts, &h.wake, &h.stopR, &h.stopW} {
		if *fd >= 0 {
			syscall.Close(*fd)
			*fd = -1
		}
	}
}

// drainLocked reads events until none is queued and applies them; any
// failure leaves every watch Dead, so that their users read the files.
func (h *hub) drainLocked() {
	// Room for at least one event with the longest name (16 + 256 bytes).
	var buf [4096]byte
	for !h.failed.Load() {
		n, err := syscall.Read(h.ino, buf[:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return
		case err != nil || n <= 0:
			h.failLocked()
			return
		}
		if !scan(buf[:n], h.applyLocked) {
			h.failLocked()
		}
	}
}

// applyLocked applies one event's outcome to the watch of wd, or to every
// watch for anyWatch (an overflow: events were lost).
func (h *hub) applyLocked(wd int32, o outcome) {
	if wd == anyWatch {
		for _, w := range h.wds {
			w.gen.Add(1)
			if !h.stillWatched(w) {
				h.killLocked(w)
			}
		}
		return
	}
	w := h.wds[wd]
	switch {
	case w == nil: // a watch already ended; its IN_IGNORED comes after
	case o == changed:
		w.gen.Add(1)
	case o == dead:
		h.killLocked(w)
	}
}

// mountsLocked applies a change of the mount table, if one happened since
// the last look: MountGen grows, and a watch whose path names another
// directory now (mounted over, or lazily unmounted), or whose role files
// are mount points, dies. Other watches keep their generation: their
// directory and its role files are the ones watched, and a mount anywhere
// on the host would otherwise make every user read the files again.
func (h *hub) mountsLocked() {
	fds := [...]pollFd{{fd: int32(h.mounts), events: pollPri}}
	if err := ppoll(fds[:], false); err != nil {
		h.failLocked()
		return
	}
	if fds[0].revents == 0 {
		return
	}
	mountGen.Add(1)
	for _, w := range h.wds {
		if !w.stillNamed() {
			h.killLocked(w)
		}
	}
}

// stillNamed reports whether w's path names the directory watched, and
// whether each of its role files that exists is on that directory's file
// system (roleFilesLocal).
func (w *Watch) stillNamed() bool { return w.namesKey() && w.roleFilesLocal() }

// namesKey reports whether w's path, and each of its aliases, names the
// directory watched; h.mu is held.
func (w *Watch) namesKey() bool {
	if k, err := keyOf(w.path); err != nil || k != w.key {
		return false
	}
	for _, a := range w.aliases {
		if k, err := keyOf(a); err != nil || k != w.key {
			return false
		}
	}
	return true
}

// roleFilesLocal reports whether each of w's role files that exists is on
// its directory's file system (not a mount of another file system's file,
// whose changes the watch would not see). A file of the same file system
// bind-mounted over a role file goes unseen: it has the same device.
func (w *Watch) roleFilesLocal() bool {
	for _, name := range roleFiles {
		var st syscall.Stat_t
		switch err := syscall.Lstat(w.path+"/"+name, &st); {
		case err == syscall.ENOENT:
		case err != nil || uint64(st.Dev) != w.key.dev:
			return false
		}
	}
	return true
}

// stillWatched reports whether the kernel still watches, under w's
// descriptor, the directory w's path names, after an overflow: the lost
// events may include the watch's end (IN_DELETE_SELF, IN_UNMOUNT,
// IN_IGNORED). inotify_add_watch of an inode the instance already watches
// returns its descriptor (the mask is the same); a descriptor the kernel
// dropped is not handed out again before the numbers wrap, so w.wd back
// means the same inode, still watched, still at the path. Any other
// answer ends w: fail closed. A descriptor added for another inode, that
// no watch owns, is removed at once. The events lost on a live watch are
// covered by the caller's raise of its generation.
func (h *hub) stillWatched(w *Watch) bool {
	wd, err := syscall.InotifyAddWatch(h.ino, w.path, watchMask)
	if err != nil {
		return false
	}
	if int32(wd) == w.wd {
		return true
	}
	if h.wds[int32(wd)] == nil {
		_, _ = syscall.InotifyRmWatch(h.ino, uint32(wd))
	}
	return false
}

// killLocked makes w Dead for good and removes its watch descriptor.
func (h *hub) killLocked(w *Watch) {
	if w.wd != noWD {
		delete(h.wds, w.wd)
		if !h.closed {
			// EINVAL once the kernel has dropped it (IN_IGNORED): harmless.
			_, _ = syscall.InotifyRmWatch(h.ino, uint32(w.wd))
		}
		w.wd = noWD
	}
	if w.gen.Load() != Dead {
		w.gen.Store(Dead)
		close(w.done)
	}
}

// failLocked ends every watch: events can no longer be read.
func (h *hub) failLocked() {
	h.failed.Store(true)
	for _, w := range h.wds {
		h.killLocked(w)
	}
}

// pollFd is struct pollfd.
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

const (
	pollIn  = 0x1
	pollPri = 0x2
)

// ppoll waits for fds (block) or looks at them once.
func ppoll(fds []pollFd, block bool) error {
	var zero syscall.Timespec
	ts := &zero
	if block {
		ts = nil
	}
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])),
			uintptr(len(fds)), uintptr(unsafe.Pointer(ts)), 0, 0, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return e
		}
	}
}
