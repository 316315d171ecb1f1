//go:build !linux

package litefs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// statMtime reports whether path exists and its modification time.
func statMtime(path string) (exists bool, mtime time.Time, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, time.Time{}, nil
	}
	if err != nil {
		return false, time.Time{}, err
	}
	return true, fi.ModTime(), nil
}

// readSmall reads up to len(buf) bytes of the regular file at path.
func readSmall(path string, buf []byte) (n int, exists bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return 0, true, err
	} else if !fi.Mode().IsRegular() {
		return 0, true, &fs.PathError{Op: "read", Path: path, Err: errNotRegular}
	}
	n, err = io.ReadFull(f, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, true, err
}

// isFUSE is Linux-only: LiteFS runs on Linux.
func isFUSE(string) bool { return false }

// openDir is Linux-only; elsewhere every write reads the mount files.
func openDir(string) int { return -1 }

func statDir(string) (dirState, bool) { return dirState{}, false }

func closeFD(int) {}

// openKept is Linux-only: files are kept open on LiteFS mounts only.
func openKept(string) (int, bool) { return -1, true }

func preadKept(int, []byte) (int, error) { return 0, errNotRegular }
