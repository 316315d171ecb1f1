package litefs

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

// openDBFileDev returns the device of the one database file named app.db
// the process holds open, or 0 if it holds none or several.
func openDBFileDev(t *testing.T) uint64 {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var dev uint64
	for _, e := range ents {
		fd := filepath.Join("/proc/self/fd", e.Name())
		if target, err := os.Readlink(fd); err != nil || !strings.HasSuffix(target, "/"+litefstest.DefaultDBName) {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fd, &st) != nil || dev != 0 {
			return 0
		}
		dev = uint64(st.Dev)
	}
	return dev
}

// TestMountRacingTheOpenOfAConnection: the prober records which directory
// its path names (ident) when the Conn is made, after SQLite has opened
// the database file and go-sqlite3 has run its PRAGMAs. A mount over the
// directory, or an unmount under it, in between gives the connection an
// ident that is not its file's directory: when the path names ident, the
// connection writes the file the path does not show (here a tmpfs bound
// over the directory and back). ident should be taken before the open (or
// from the database file's own fd: its device must be ident's).
func TestMountRacingTheOpenOfAConnection(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir, vol := t.TempDir(), t.TempDir()
	require.NoError(t, syscall.Mount("review4", vol, "tmpfs", 0, "size=8m"))
	t.Cleanup(func() { syscall.Unmount(vol, syscall.MNT_DETACH) })
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			if syscall.Mount(vol, dir, "", syscall.MS_BIND, "") == nil {
				_ = syscall.Unmount(dir, syscall.MNT_DETACH)
			}
		}
	}()
	halt := func() {
		if !stop.Swap(true) {
			<-done
		}
	}
	t.Cleanup(halt)
	var (
		raced *Conn
		db    *sql.DB
	)
	for deadline := time.Now().Add(5 * time.Second); raced == nil && time.Now().Before(deadline); {
		ctr, err := NewConnector(litefstest.DSN(filepath.Join(dir, litefstest.DefaultDBName)), WithLogger(discard))
		require.NoError(t, err)
		db = sql.OpenDB(ctr)
		conn, err := db.Conn(context.Background())
		if err == nil {
			conn.Raw(func(dc any) error {
				if c, dev := dc.(*Conn), openDBFileDev(t); dev != 0 && c.probe.identOK && dev != c.probe.ident.dev && !c.probe.moved.Load() {
					raced = c
				}
				return nil
			})
			conn.Close()
		}
		if raced == nil {
			db.Close()
		}
	}
	halt()
	if raced == nil {
		return // the window was not hit this time
	}
	t.Cleanup(func() { db.Close() })
	fileDev := openDBFileDev(t)
	require.NotZero(t, fileDev, "precondition: one database file open")
	// Make the path name the directory the prober recorded.
	if st, ok := statDir(dir); ok && st.dev != raced.probe.ident.dev {
		require.NoError(t, syscall.Mount(vol, dir, "", syscall.MS_BIND, ""))
		t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	}
	dirwatch.Sync(dir)
	st, _ := statDir(dir)
	require.NotEqual(t, fileDev, st.dev, "precondition: the path shows another directory than the database file's")
	assert.ErrorIs(t, raced.probe.check(), ErrNoPrimary,
		"a write admitted into a database file on device %d while the path names a directory on device %d", fileDev, st.dev)
}
