package litefs

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

// An over-long .primary fails closed whatever surrounds the ID: a read cut
// at the buffer's end must not be trimmed into a valid one.
func TestOverLongPrimaryFailsClosed(t *testing.T) {
	t.Parallel()
	id255 := strings.Repeat("a", 255)
	for _, tc := range []struct {
		name    string
		content string
		want    string // the primary named; "" for ErrNoPrimary
	}{
		{name: "255 bytes, CR LF", content: id255 + "\r\n", want: id255},
		{name: "padded, within the limit", content: "  node-a \t\n", want: "node-a"},
		{name: "leading spaces push it over", content: "   " + id255 + "b\n"},
		{name: "trailing spaces push it over", content: id255 + "   \n"},
		{name: "spaces then a short ID", content: strings.Repeat(" ", 300) + "a\n"},
		{name: "a short ID then spaces", content: "a" + strings.Repeat(" ", 300)},
		{name: "newlines", content: strings.Repeat("\n", 258) + "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			m.WritePrimaryFile([]byte(tc.content))
			p := newProber(m.Dir(), discard, new(atomic.Bool))
			defer p.close()
			err := p.check()
			if tc.want == "" {
				assert.ErrorIs(t, err, ErrNoPrimary)
				return
			}
			var np *NotPrimaryError
			require.ErrorAs(t, err, &np)
			assert.Equal(t, tc.want, np.PrimaryID)
		})
	}
}

// A remembered plain directory keeps a replica's role as it does a
// primary's, from the first write: the files are read again only when the
// directory's watch reports a change to .primary or .lag. Without inotify
// the directory's mtime stands in, once it is older than dirMtimeSlack.
func TestDirectoryRememberedAsReplica(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		inotify  bool
		backdate bool
	}{
		{name: "inotify", inotify: true},
		{name: "mtime, without inotify", backdate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			m.SetReplica("node-a")
			p := rememberingProber(t, m.Dir(), tc.inotify)
			for i, want := range []uint64{1, 0, 0} {
				if i == 1 && tc.backdate {
					backdateDir(t, m) // the first look found it changed too recently
					p.check()
				}
				before := p.lookups.Load()
				var np *NotPrimaryError
				require.ErrorAs(t, p.check(), &np, "write %d", i)
				assert.Equal(t, "node-a", np.PrimaryID)
				assert.Equal(t, want, p.lookups.Load()-before, "lookups for write %d", i)
			}
			m.SetReplica("node-b")
			var np *NotPrimaryError
			require.ErrorAs(t, p.check(), &np)
			assert.Equal(t, "node-b", np.PrimaryID, "a replaced .primary is read again")
			m.SetPrimary()
			assert.NoError(t, p.check(), "a removed .primary is seen")
		})
	}
}

// rememberingProber returns a prober of dir that remembers its role, as a
// connection's does: under an inotify watch, or with inotify made
// unavailable, under the directory's mtime. It is closed when the test ends.
func rememberingProber(tb testing.TB, dir string, inotify bool) *prober {
	tb.Helper()
	p := newProber(dir, discard, new(atomic.Bool))
	tb.Cleanup(p.close)
	if !inotify {
		p.rememberWith(func(string) (*dirwatch.Watch, error) { return nil, errors.New("no inotify here") })
		require.Nil(tb, p.dirw.Load(), "a watch without inotify")
		if runtime.GOOS != "linux" {
			tb.Skip("no directory cache on this platform")
		}
		require.GreaterOrEqual(tb, p.dirfd.Load(), int64(0), "without inotify, the directory is not held open for its mtime")
		return p
	}
	p.remember()
	if runtime.GOOS != "linux" {
		tb.Skip("no inotify watch on this platform")
	}
	require.NotNil(tb, p.dirw.Load(), "no inotify watch of the directory")
	require.Equal(tb, int64(-1), p.dirfd.Load(), "the directory held open beside its watch")
	return p
}

// backdateDir makes the mount directory look unchanged for an hour, as one
// in service is, which lets the driver without inotify check a plain
// directory with one stat.
func backdateDir(tb testing.TB, m *litefstest.Mount) {
	tb.Helper()
	old := time.Now().Add(-time.Hour)
	require.NoError(tb, os.Chtimes(m.Dir(), old, old))
}

// LiteFS denying a write (EACCES) is a refusal on a LiteFS mount even while
// its files still say primary, as they do for a moment after LiteFS gives
// up the lease; anywhere else EACCES is a permission problem.
func TestRecheckTrustsLiteFSDenial(t *testing.T) {
	t.Parallel()
	denied := sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.EACCES}
	journal := sqlite3.Error{Code: sqlite3.ErrReadonly, ExtendedCode: sqlite3.ErrReadonly.Extend(6)}
	other := sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.EIO}
	for _, tc := range []struct {
		name    string
		liteFS  bool
		failure error
		refused bool
	}{
		{name: "LiteFS denied the WAL", liteFS: true, failure: denied, refused: true},
		{name: "LiteFS denied the journal", liteFS: true, failure: journal, refused: true},
		{name: "another I/O error on LiteFS", liteFS: true, failure: other},
		{name: "EACCES on a plain directory", failure: denied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			p := newProber(m.Dir(), discard, new(atomic.Bool))
			p.close()
			p.liteFS = tc.liteFS
			// What a LiteFS primary shows: .lag stamped as it is read. The
			// stamp must be within 10 ms of the look, so a sample counts
			// only when a control (an error that is no denial) found this
			// node primary.
			var err error
			require.Eventually(t, func() bool {
				m.WriteLagFile([]byte("+000000000\n"), time.Now())
				control := p.recheck(other)
				m.WriteLagFile([]byte("+000000000\n"), time.Now())
				err = p.recheck(tc.failure)
				return control == nil
			}, 10*time.Second, time.Millisecond, "the mount never read as primary")
			if tc.refused {
				assert.ErrorIs(t, err, ErrNoPrimary)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// A write that meets LiteFS shutting down fails with SQLITE_PROTOCOL,
// SQLITE_BUSY or an I/O error (seen on a real cluster): where the mount no
// longer lets this node write, that is a refusal, not SQLite's error.
func TestWriteMeetingLiteFSGoneIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  sqlite3.Error
	}{
		{name: "locking protocol", err: sqlite3.Error{Code: sqlite3.ErrProtocol, ExtendedCode: sqlite3.ErrNoExtended(sqlite3.ErrProtocol)}},
		{name: "database is locked", err: sqlite3.Error{Code: sqlite3.ErrBusy, ExtendedCode: sqlite3.ErrNoExtended(sqlite3.ErrBusy)}},
		{name: "transport endpoint is not connected", err: sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.ENOTCONN}},
		{name: "software caused connection abort", err: sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrFstat, SystemErrno: syscall.ECONNABORTED}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			_, c := pinConn(t, db)
			assert.Equal(t, tc.err, failed(c, t.Context(), tc.err), "on a primary: SQLite's error as it is")
			m.SetNoPrimary()
			err := failed(c, t.Context(), tc.err)
			assert.ErrorIs(t, err, ErrNoPrimary)
			assert.ErrorIs(t, err, tc.err, "SQLite's error is kept")
		})
	}
}

// A LiteFS mount whose .lag has gone is LiteFS gone (unmounted, the plain
// directory beneath showing): writing there would fork the database.
func TestLiteFSMountWithoutLagRefuses(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	p := newProber(m.Dir(), discard, new(atomic.Bool))
	p.close()
	p.liteFS = true
	err := p.check()
	assert.ErrorIs(t, err, ErrNoPrimary)
	assert.ErrorContains(t, err, "LiteFS is gone")
}

// The watch's generation is read before the files: a change that lands
// after the files were read but before their role is remembered must not
// be remembered as the old role.
func TestChangeRacingAReadIsReadAgain(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	p := rememberingProber(t, m.Dir(), true)
	p.afterLookup = func() {
		p.afterLookup = nil
		m.SetReplica("node-a") // the files now say replica; the read said primary
	}
	require.NoError(t, p.check(), "the read before the change")
	var np *NotPrimaryError
	require.ErrorAs(t, p.check(), &np, "the change during the read was remembered over")
	assert.Equal(t, "node-a", np.PrimaryID)
}

// A watch that dies (its directory moved away, as here, or removed or
// unmounted) remembers nothing: every write reads the files at the path.
func TestDeadWatchReadsTheFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o755))
	p := rememberingProber(t, dir, true)
	require.NoError(t, p.check())
	before := p.lookups.Load()
	require.NoError(t, p.check())
	require.Equal(t, before, p.lookups.Load(), "the role was not remembered")

	require.NoError(t, os.Rename(dir, dir+".old"))
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, primaryFile), []byte("node-a\n"), 0o644))
	w := p.dirw.Load()
	litefstest.WaitFor(t, func() error {
		if w.Gen() != dirwatch.Dead {
			return errors.New("the watch has not seen its directory move")
		}
		return nil
	})
	for i := range 3 {
		before := p.lookups.Load()
		var np *NotPrimaryError
		require.ErrorAs(t, p.check(), &np, "check %d", i)
		assert.Equal(t, "node-a", np.PrimaryID)
		assert.Equal(t, uint64(1), p.lookups.Load()-before, "check %d did not read the files", i)
	}
}
