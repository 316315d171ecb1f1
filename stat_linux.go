package litefs

import (
	"io/fs"
	"syscall"
	"time"
)

// The mount is read with bare system calls on Linux, to keep the write path
// free of os.File and error allocations.

// statMtime reports whether path exists and its modification time.
func statMtime(path string) (exists bool, mtime time.Time, err error) {
	var st syscall.Stat_t
	err = retry(func() error { return syscall.Stat(path, &st) })
	switch err {
	case nil:
		return true, time.Unix(st.Mtim.Unix()), nil
	case syscall.ENOENT:
		return false, time.Time{}, nil
	default:
		return false, time.Time{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
}

// readSmall reads up to len(buf) bytes of the regular file at path. It
// opens without blocking, so a FIFO planted there cannot hang a write, and
// without following a symbolic link: a dangling one is an entry, not absence.
func readSmall(path string, buf []byte) (n int, exists bool, err error) {
	var fd int
	err = retry(func() (err error) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
		return err
	})
	if err == syscall.ENOENT {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	// The kernel may keep a dentry for a file LiteFS has since removed
	// (LiteFS does not invalidate .primary's), so ENOENT can come late.
	var st syscall.Stat_t
	err = retry(func() error { return syscall.Fstat(fd, &st) })
	if err == syscall.ENOENT {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return 0, true, &fs.PathError{Op: "read", Path: path, Err: errNotRegular}
	}
	for n < len(buf) {
		var m int
		err := retry(func() (err error) {
			m, err = syscall.Read(fd, buf[n:])
			return err
		})
		if err == syscall.ENOENT {
			return 0, false, nil
		}
		if err != nil {
			return n, true, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, true, nil
}

func retry(f func() error) error {
	for {
		if err := f(); err != syscall.EINTR {
			return err
		}
	}
}

// fuseSuperMagic is the f_type statfs reports for FUSE file systems.
const fuseSuperMagic = 0x65735546

// isFUSE reports whether dir is on a FUSE file system, as a LiteFS mount is.
func isFUSE(dir string) bool {
	var sfs syscall.Statfs_t
	err := retry(func() error { return syscall.Statfs(dir, &sfs) })
	return err == nil && sfs.Type == fuseSuperMagic
}

// openDir opens dir, or returns -1: held while the directory's mtime
// stands in for an inotify watch.
func openDir(dir string) int {
	var fd int
	err := retry(func() (err error) {
		fd, err = syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1
	}
	return fd
}

// statDir returns what a stat of path shows, and whether it succeeded.
func statDir(path string) (dirState, bool) {
	var st syscall.Stat_t
	if err := retry(func() error { return syscall.Stat(path, &st) }); err != nil {
		return dirState{}, false
	}
	return dirState{dev: uint64(st.Dev), ino: st.Ino, mtime: st.Mtim.Nano()}, true
}

func closeFD(fd int) { syscall.Close(fd) }

// openKept opens path read-only for preadKept, or returns -1 and whether it
// exists.
func openKept(path string) (fd int, exists bool) {
	err := retry(func() (err error) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
		return err
	})
	if err != nil {
		return -1, err != syscall.ENOENT
	}
	return fd, true
}

// preadKept reads from offset 0 of fd.
func preadKept(fd int, buf []byte) (n int, err error) {
	err = retry(func() (err error) {
		n, err = syscall.Pread(fd, buf, 0)
		return err
	})
	return n, err
}
