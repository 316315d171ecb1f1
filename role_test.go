package litefs

import (
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// A plain directory unchanged for a while remembers a replica's role as it
// does a primary's: one fstat per write, until the directory changes.
func TestDirectoryRememberedAsReplica(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetReplica("node-a")
	backdateDir(t, m)
	p := newProber(m.Dir(), discard, new(atomic.Bool))
	defer p.close()
	if p.dirfd.Load() < 0 {
		t.Skip("no directory cache on this platform")
	}
	for i, want := range []uint64{1, 0, 0} {
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
}

// backdateDir makes the mount directory look unchanged for an hour, as one
// in service is, which lets the driver check a plain directory with one
// fstat.
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
