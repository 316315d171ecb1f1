package dirwatch

import (
	"bytes"
	"encoding/binary"
	"syscall"
)

// outcome is what an event means for its watch's generation.
type outcome int

const (
	unchanged outcome = iota // nothing about the role files
	changed                  // a role file changed, or events were lost
	dead                     // the watch reports nothing any more
)

// deadMask: the directory was removed, moved or unmounted, or the kernel
// dropped the watch; a moved directory's old path no longer names it.
const deadMask = syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_UNMOUNT | syscall.IN_IGNORED

// roleFiles are the names whose changes raise a watch's generation.
var roleFiles = [...]string{".primary", ".lag"}

// eventHeader is the size of struct inotify_event without its name.
const eventHeader = 16

// anyWatch is the watch descriptor of an event about the whole instance
// (IN_Q_OVERFLOW): it concerns every watch, each of which may have lost
// its end too (see hub.stillWatched).
const anyWatch = -1

// scan reads a buffer of struct inotify_event records, as read(2) returns
// them from an inotify fd, and calls each with every record's watch
// descriptor and what it means. A lost-events overflow (anyWatch) counts as
// a change: a role file may have changed unseen. It returns false if a
// record does not fit the buffer (the kernel never sends one); the records
// from there on are not reported.
func scan(b []byte, each func(wd int32, o outcome)) bool {
	for len(b) > 0 {
		if len(b) < eventHeader {
			return false
		}
		wd := int32(binary.NativeEndian.Uint32(b[0:4]))
		mask := binary.NativeEndian.Uint32(b[4:8])
		size := binary.NativeEndian.Uint32(b[12:16])
		if uint64(size) > uint64(len(b)-eventHeader) {
			return false
		}
		name := b[eventHeader : eventHeader+int(size)]
		b = b[eventHeader+int(size):]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i] // the kernel pads names with NULs
		}
		switch {
		case mask&syscall.IN_Q_OVERFLOW != 0:
			each(anyWatch, changed)
		case mask&deadMask != 0:
			each(wd, dead)
		case isRoleFile(name):
			each(wd, changed)
		}
	}
	return true
}

func isRoleFile(name []byte) bool {
	for _, f := range roleFiles {
		if string(name) == f {
			return true
		}
	}
	return false
}
