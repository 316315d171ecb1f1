package litefs

import (
	"io/fs"
	"syscall"
	"time"
)

// statMtime reports whether path exists and its modification time. On Linux
// it avoids os.Stat's allocations, since it runs for every write.
func statMtime(path string) (exists bool, mtime time.Time, err error) {
	var st syscall.Stat_t
	for {
		err = syscall.Stat(path, &st)
		if err != syscall.EINTR {
			break
		}
	}
	switch err {
	case nil:
		return true, time.Unix(st.Mtim.Unix()), nil
	case syscall.ENOENT:
		return false, time.Time{}, nil
	default:
		return false, time.Time{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
}
