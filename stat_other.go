//go:build !linux

package litefs

import (
	"errors"
	"io/fs"
	"os"
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
