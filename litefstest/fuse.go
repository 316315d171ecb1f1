package litefstest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Environment variables read by the helpers that run real LiteFS.
const (
	// EnvRequire set to "1" turns the skips of tests that need real LiteFS
	// (no /dev/fuse, no fusermount3, no litefs binary) into failures, so CI
	// cannot pass by skipping them.
	EnvRequire = "LITEFS_REQUIRE"
	// EnvBinary names the litefs binary to run, overriding the search.
	EnvBinary = "LITEFS_BIN"
)

// skipOrFail skips the test, or fails it when EnvRequire is "1".
func skipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := "litefstest: " + fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("%s (and %s=1)", msg, EnvRequire)
	}
	tb.Skip(msg)
}

// requireFUSE skips (or fails) the test unless [CheckFUSE] passes.
func requireFUSE(tb testing.TB) {
	tb.Helper()
	if err := CheckFUSE(); err != nil {
		skipOrFail(tb, "%v", err)
	}
}

// CheckFUSE returns nil if this machine can run LiteFS: /dev/fuse opens for
// reading and writing, and fusermount3, which LiteFS runs to unmount, is on
// PATH. Otherwise the error says what is missing.
func CheckFUSE() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("LiteFS needs FUSE (Linux; in a container, --device /dev/fuse --cap-add SYS_ADMIN): %v", err)
	}
	f.Close()
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return fmt.Errorf("LiteFS needs fusermount3 (Debian package fuse3): %v", err)
	}
	return nil
}

// mountPoints returns the mount points listed in /proc/self/mountinfo.
func mountPoints() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var points []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// "36 35 98:0 /root /mount/point opts ... - fstype source superopts"
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 {
			points = append(points, unescapeMountPath(fields[4]))
		}
	}
	return points, sc.Err()
}

// Mounted reports whether dir is a mount point, from /proc/self/mountinfo.
func Mounted(dir string) (bool, error) {
	points, err := mountPoints()
	return slices.Contains(points, filepath.Clean(dir)), err
}

// mountedUnder returns the mount points at dir or below it.
func mountedUnder(dir string) ([]string, error) {
	points, err := mountPoints()
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	var under []string
	for _, p := range points {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			under = append(under, p)
		}
	}
	return under, nil
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in a mountinfo path; other bytes are kept as they are.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		// A byte is at most \377, so the first digit is at most 3.
		if s[i] == '\\' && i+3 < len(s) && '0' <= s[i+1] && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }

// unmount detaches a FUSE mount left by a process that did not unmount it
// (killed, or crashed); lazily, so that busy files do not block it.
func unmount(dir string) error {
	out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z %s: %v: %s", dir, err, bytes.TrimSpace(out))
	}
	return nil
}
