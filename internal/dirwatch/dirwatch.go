// Package dirwatch tells the litefs driver whether the role files of a plain
// directory (.primary and .lag, as LiteFS names them) may have changed since
// it last read them, without a system call per write: one inotify watch per
// directory (a watch descriptor of the process's single inotify instance),
// shared by every user of that directory in the process, whose generation
// grows each time an entry of those names is created, removed, renamed or
// closed after writing, and each time the process's mount table changes.
//
// Changes are noticed by a goroutine woken by the kernel, so a change shows
// in the generation once that goroutine has run, normally a few
// microseconds after it is made, even to the goroutine that made it; [Sync]
// makes it show at once, for the test kit that changes the files itself.
// Where inotify is unavailable (not Linux, the user's inotify limits
// reached, no /proc) [Acquire] fails and the driver falls back to checking
// the directory's mtime; on a file system inotify cannot follow (a network
// one) it fails with [ErrNotLocal].
package dirwatch

import "errors"

// ErrNotLocal is Acquire's error for a directory on a file system that may
// change without inotify seeing it: a network or shared file system (NFS,
// CIFS, 9p, virtiofs, FUSE), which another host can change. Only file
// systems known to be local (ext4, xfs, btrfs, tmpfs, overlayfs, f2fs,
// zfs, bcachefs) are watched.
var ErrNotLocal = errors.New("dirwatch: not a local file system")

// Dead is the generation of a watch that no longer reports changes: its
// directory was removed, moved or unmounted, its path names another
// directory after a mount-table change, events were lost (a queue
// overflow) and the kernel no longer watches the directory its path names,
// reading events failed, or its last user released it. Its users read the files at every write.
const Dead = ^uint64(0)
