package litefstest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litefs-sql/litefs/internal/dirwatch"
)

// Names of the files LiteFS shows next to its databases.
const (
	// PrimaryFile holds the primary's hostname and a newline on a replica
	// connected to a primary; it is absent everywhere else.
	PrimaryFile = ".primary"
	// LagFile exists on every LiteFS mount; its modification time is the
	// current time on the primary.
	LagFile = ".lag"
	// DefaultDBName is the database file name used by [Mount] and [Node].
	DefaultDBName = "app.db"
	// DefaultBusyTimeout is the busy timeout, in milliseconds, put in DSNs.
	DefaultBusyTimeout = 5000
)

// noPrimaryLag is what a reader gets from .lag on a LiteFS node without a
// primary: the largest int32 (milliseconds), cut to the 11 bytes the file's
// size claims, so without the newline LiteFS formats.
const noPrimaryLag = "+2147483647"

// A Mount is a temporary directory that imitates the files of a LiteFS mount,
// without FUSE, so the driver's role detection can be driven from a test.
// It starts as a plain directory, which the driver treats as a single
// primary. Its methods fail the test on I/O errors and must be called from
// the test's goroutine; the directory is removed when the test ends.
type Mount struct {
	tb  testing.TB
	dir string
}

// NewMount returns a Mount in a new temporary directory of tb.
func NewMount(tb testing.TB) *Mount {
	tb.Helper()
	return &Mount{tb: tb, dir: tb.TempDir()}
}

// Dir returns the mount directory, which holds the database and the role files.
func (m *Mount) Dir() string { return m.dir }

// DBPath returns the path of the database file, <dir>/app.db.
func (m *Mount) DBPath() string { return filepath.Join(m.dir, DefaultDBName) }

// PosPath returns the path of the database's position file, <dir>/app.db-pos.
func (m *Mount) PosPath() string { return m.DBPath() + "-pos" }

// DSN returns a go-sqlite3 DSN for DBPath in WAL journal mode with a busy
// timeout of DefaultBusyTimeout.
func (m *Mount) DSN() string { return DSN(m.DBPath()) }

// SetPrimary makes the directory a plain one again (no .primary, no .lag),
// which the driver treats as a single primary.
func (m *Mount) SetPrimary() {
	m.tb.Helper()
	m.remove(PrimaryFile)
	m.remove(LagFile)
}

// SetReplica makes the node a replica of primaryID, as LiteFS shows it: a
// .primary file holding primaryID and a newline. primaryID must be a
// non-empty single line; use WritePrimaryFile for other contents.
func (m *Mount) SetReplica(primaryID string) {
	m.tb.Helper()
	if primaryID == "" || strings.ContainsAny(primaryID, "\r\n") {
		m.tb.Fatalf("litefstest: SetReplica(%q): want a non-empty single-line ID (use WritePrimaryFile for odd contents)", primaryID)
	}
	m.WritePrimaryFile([]byte(primaryID + "\n"))
}

// SetNoPrimary makes the node a LiteFS node that knows no primary, as LiteFS
// v0.5.14 shows it before its first sync with a primary: no .primary, and a
// .lag reading "+2147483647" (11 bytes) stamped with the Unix epoch.
func (m *Mount) SetNoPrimary() {
	m.tb.Helper()
	m.remove(PrimaryFile)
	m.WriteLagFile([]byte(noPrimaryLag), time.Unix(0, 0))
}

// WritePrimaryFile replaces .primary with content, byte for byte, for tests
// of odd contents (empty, CR LF, spaces, binary, very long).
func (m *Mount) WritePrimaryFile(content []byte) {
	m.tb.Helper()
	m.write(PrimaryFile, content, time.Time{})
}

// WriteLagFile replaces .lag with content and modification time mtime. A
// mtime in the future imitates a LiteFS primary (which stamps .lag with the
// time of each look); a past one, a replica's last heartbeat.
func (m *Mount) WriteLagFile(content []byte, mtime time.Time) {
	m.tb.Helper()
	m.write(LagFile, content, mtime)
}

// SetTXID writes the database's position file with txid and a checksum
// derived from it, as LiteFS does after each transaction.
func (m *Mount) SetTXID(txid uint64) {
	m.tb.Helper()
	m.SetPos(Pos{TXID: txid, Checksum: fakeChecksum(txid)})
}

// SetPos writes the database's position file with pos.
func (m *Mount) SetPos(pos Pos) {
	m.tb.Helper()
	m.write(filepath.Base(m.PosPath()), []byte(pos.String()+"\n"), time.Time{})
}

// fakeChecksum spreads txid over 64 bits so that positions differ in both
// halves; LiteFS's real checksum is a CRC of the database pages.
func fakeChecksum(txid uint64) uint64 { return (txid + 1) * 0x9e3779b97f4a7c15 }

// write replaces dir/name atomically: a concurrent reader sees the old file
// or the new one, never a half-written one. A non-zero mtime is set before
// the rename, so the new file never shows another time.
func (m *Mount) write(name string, content []byte, mtime time.Time) {
	m.tb.Helper()
	if err := writeFileAtomic(filepath.Join(m.dir, name), content, mtime); err != nil {
		m.tb.Fatalf("litefstest: %v", err)
	}
	m.sync()
}

func (m *Mount) remove(name string) {
	m.tb.Helper()
	err := os.Remove(filepath.Join(m.dir, name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.tb.Fatalf("litefstest: %v", err)
	}
	m.sync()
}

// sync makes the driver's connections on this directory see the change
// just made at their next write: they remember the role of a plain
// directory until its inotify watch reports a change, which otherwise
// arrives microseconds later.
func (m *Mount) sync() { dirwatch.Sync(m.dir) }

func writeFileAtomic(path string, content []byte, mtime time.Time) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(content); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(f.Name(), mtime, mtime); err != nil {
			return err
		}
	}
	return os.Rename(f.Name(), path)
}

// DSN returns a go-sqlite3 DSN for the database file at path: a file: URI in
// WAL journal mode with a busy timeout of DefaultBusyTimeout milliseconds.
// Characters that SQLite would read as URI syntax are escaped.
func DSN(path string) string {
	var b bytes.Buffer
	b.WriteString("file:")
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	fmt.Fprintf(&b, "?_journal_mode=WAL&_busy_timeout=%d", DefaultBusyTimeout)
	return b.String()
}
