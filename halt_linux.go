package litefs

import (
	"io/fs"
	"sync/atomic"
	"syscall"
)

// LiteFS's HALT lock is an OFD write lock on one byte of <db>-lock, taken
// with the blocking F_OFD_SETLKW only: LiteFS answers the non-blocking
// F_OFD_SETLK and read locks with ENOSYS, and other bytes with EINVAL.
const (
	fOFDSetlkw = 38 // F_OFD_SETLKW, which package syscall does not name
	haltByte   = 72 // litefs.LockTypeHalt
)

// lockFile is an open <db>-lock. Its lock belongs to the open file
// description (OFD), shared by fd and its duplicate abortFD: closing either
// makes the kernel send LiteFS a FLUSH, on which LiteFS cancels a pending
// request for the lock and releases a granted one. Closing abortFD from
// another goroutine is how a wait is cut short, since F_OFD_SETLKW takes no
// deadline; fd stays open (its number cannot be reused) until close.
type lockFile struct {
	fd      int
	abortFD int
	aborted atomic.Bool
}

func openLockFile(path string) (*lockFile, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = syscall.Open(path, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	dup, err := syscall.Dup(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "dup", Path: path, Err: err}
	}
	syscall.CloseOnExec(dup)
	return &lockFile{fd: fd, abortFD: dup}, nil
}

// lock blocks until LiteFS grants the HALT lock or refuses it. A signal
// makes LiteFS answer EINTR (and drop the request): it is asked again,
// unless abort was called.
func (l *lockFile) lock() error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: haltByte, Len: 1}
	for {
		err := syscall.FcntlFlock(uintptr(l.fd), fOFDSetlkw, &lk)
		if err != syscall.EINTR || l.aborted.Load() {
			return err
		}
	}
}

// abort cancels a pending lock; it may run concurrently with lock, once.
func (l *lockFile) abort() {
	if l.aborted.CompareAndSwap(false, true) {
		syscall.Close(l.abortFD)
	}
}

// unlock releases the lock, retrying a signal's EINTR.
func (l *lockFile) unlock() error {
	lk := syscall.Flock_t{Type: syscall.F_UNLCK, Whence: 0, Start: haltByte, Len: 1}
	return retry(func() error { return syscall.FcntlFlock(uintptr(l.fd), fOFDSetlkw, &lk) })
}

// close closes the file, which releases the lock if still held.
func (l *lockFile) close() {
	l.abort()
	syscall.Close(l.fd)
}
