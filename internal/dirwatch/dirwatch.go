// Package dirwatch tells the litefs driver whether the role files of a plain
// directory (.primary and .lag, as LiteFS names them) may have changed since
// it last read them, without a system call per write: one inotify watch per
// directory, shared by every user of that directory in the process, whose
// generation grows each time an entry of those names is created, removed,
// renamed or closed after writing.
//
// Changes are noticed by a goroutine woken by the kernel, so a change shows
// in the generation once that goroutine has run, normally a few
// microseconds after it is made, even to the goroutine that made it; [Sync]
// makes it show at once, for the test kit that changes the files itself. Where inotify is unavailable (not
// Linux, or the user's inotify limits reached) [Acquire] fails and the
// driver falls back to checking the directory's mtime.
package dirwatch

// Dead is the generation of a watch that no longer reports changes: its
// directory was removed, moved or unmounted, reading its events failed, or
// its last user released it. Its users read the files at every write.
const Dead = ^uint64(0)
