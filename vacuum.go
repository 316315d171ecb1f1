package litefs

import (
	"os"
	"path/filepath"
	"strings"
)

// vacuumInto reads the rest of VACUUM [schema] INTO 'file' after the VACUUM
// sc has consumed, and returns the file when the target is a plain string
// literal ending the statement. An expression or a parameter gives false:
// the driver cannot tell where it points.
func vacuumInto(sc *scanner) (string, bool) {
	if !vacuumsInto(sc) {
		return "", false
	}
	if sc.next() != tokOther || len(sc.tok) < 2 || sc.tok[0] != '\'' || sc.tok[len(sc.tok)-1] != '\'' {
		return "", false
	}
	inner := sc.tok[1 : len(sc.tok)-1]
	if strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
		return "", false // unterminated: the last quote was a doubled one
	}
	target := strings.ReplaceAll(inner, "''", "'")
	for {
		switch sc.next() {
		case tokEOF:
			return target, true
		case tokSemi:
		default:
			return "", false
		}
	}
}

// outsideMount reports whether a new file at target (relative to the working
// directory, as SQLite opens it) lies outside mountDir once symbolic links
// are resolved. Anything it cannot tell is inside: a URI (file:...), a
// directory that does not exist, a target that exists already, and a path
// with a ".." element: the kernel resolves "link/.." through the link, where
// filepath.Abs would drop both lexically.
func outsideMount(target, mountDir string) bool {
	if target == "" || mountDir == "" || strings.IndexByte(target, 0) >= 0 ||
		len(target) >= 5 && strings.EqualFold(target[:5], "file:") || hasDotDot(target) {
		return false
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return false
	}
	if _, err := os.Lstat(abs); !os.IsNotExist(err) {
		return false
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return false
	}
	mount, err := filepath.EvalSymlinks(mountDir)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(mount, dir)
	return err == nil && (rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// hasDotDot reports whether some element of path is "..".
func hasDotDot(path string) bool {
	for _, e := range strings.Split(filepath.ToSlash(path), "/") {
		if e == ".." {
			return true
		}
	}
	return false
}
