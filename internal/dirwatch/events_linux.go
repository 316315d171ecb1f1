package dirwatch

import (
	"bytes"
	"encoding/binary"
	"syscall"
)

// outcome is what a batch of events means for a watch's generation.
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

// scan reads a buffer of struct inotify_event records, as read(2) returns
// them from an inotify fd. A lost-events overflow counts as a change (a
// role file may have changed unseen); a record that does not fit the
// buffer is taken as a dead watch, so that its users read the files.
func scan(b []byte) outcome {
	out := unchanged
	for len(b) > 0 {
		if len(b) < eventHeader {
			return dead
		}
		mask := binary.NativeEndian.Uint32(b[4:8])
		size := binary.NativeEndian.Uint32(b[12:16])
		if uint64(size) > uint64(len(b)-eventHeader) {
			return dead
		}
		name := b[eventHeader : eventHeader+int(size)]
		b = b[eventHeader+int(size):]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i] // the kernel pads names with NULs
		}
		switch {
		case mask&deadMask != 0:
			return dead
		case mask&syscall.IN_Q_OVERFLOW != 0 || isRoleFile(name):
			out = changed
		}
	}
	return out
}

func isRoleFile(name []byte) bool {
	for _, f := range roleFiles {
		if string(name) == f {
			return true
		}
	}
	return false
}
