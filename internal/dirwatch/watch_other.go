//go:build !linux

package dirwatch

import "errors"

// errUnsupported is Acquire's error where inotify does not exist.
var errUnsupported = errors.New("dirwatch: inotify is not available on this platform")

// A Watch is Linux-only; elsewhere Acquire fails and the driver checks the
// directory's mtime instead.
type Watch struct{}

// Acquire fails: inotify is Linux-only.
func Acquire(string) (*Watch, error) { return nil, errUnsupported }

// Gen returns Dead.
func (*Watch) Gen() uint64 { return Dead }

// Release does nothing.
func (*Watch) Release() {}

// Sync does nothing: there are no watches.
func Sync(string) {}

// Watching returns false.
func Watching(string) bool { return false }

// MountGen returns 0: no mount table is watched.
func MountGen() uint64 { return 0 }
