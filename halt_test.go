//go:build linux

package litefs

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// These tests drive the driver's side of write forwarding on a temp mount
// made a replica by hand, with a regular <db>-lock file: the kernel locks
// it for real (OFD locks work on any file), so only LiteFS's part, sending
// writes to the primary, is missing. The writes land in the local file.

// haltMount returns a replica mount with a database, a <db>-lock file, and
// a handle opened with extra options.
func haltMount(t *testing.T, dsnSuffix string, opts ...Option) (*litefstest.Mount, *sql.DB) {
	t.Helper()
	m := litefstest.NewMount(t)
	openDB(t, m, "")
	require.NoError(t, os.WriteFile(m.DBPath()+"-lock", nil, 0o644))
	c, err := NewConnector(m.DSN()+dsnSuffix, append([]Option{WithLogger(discard)}, opts...)...)
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	m.SetReplica("node-a")
	return m, db
}

// withHaltLimit sets how long a hold may be written under.
func withHaltLimit(d time.Duration) Option { return func(c *config) { c.haltLimit = d } }

// lockHeld reports whether some other open file description holds the HALT
// byte of the mount's lock file.
func lockHeld(t *testing.T, m *litefstest.Mount) bool {
	t.Helper()
	f, err := os.OpenFile(m.DBPath()+"-lock", os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Start: haltByte, Len: 1}
	err = syscall.FcntlFlock(f.Fd(), fOFDSetlkw-1, &lk) // F_OFD_SETLK: does not wait
	if errors.Is(err, syscall.EAGAIN) {
		return true
	}
	require.NoError(t, err)
	return false // closing f drops the lock just taken
}

// holdLock takes the HALT byte as another holder would, until the returned
// function runs.
func holdLock(t *testing.T, m *litefstest.Mount) (release func()) {
	t.Helper()
	lf, err := openLockFile(m.DBPath() + "-lock")
	require.NoError(t, err)
	require.NoError(t, lf.lock())
	var once sync.Once
	release = func() { once.Do(lf.close) }
	t.Cleanup(release)
	return release
}

func insert(ctx context.Context, db *sql.DB, v string) error {
	_, err := db.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v)
	return err
}

func count(t *testing.T, db *sql.DB, v string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM t WHERE v = ?", v).Scan(&n))
	return n
}

func TestWithHaltOnAPrimaryCallsFnDirectly(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	db := openDB(t, m, "")
	called := false
	err := WithHalt(t.Context(), db, func(ctx context.Context) error {
		called = true
		assert.Nil(t, ctx.Value(haltKey{}), "no lock on the primary")
		return insert(ctx, db, "p")
	})
	require.NoError(t, err)
	assert.True(t, called)
	assert.Equal(t, 1, count(t, db, "p"))
}

func TestWithHaltOnAReplica(t *testing.T) {
	t.Parallel()
	m, db := haltMount(t, "")
	db.SetMaxOpenConns(1) // one connection, so query_only is observed on it
	var inside context.Context
	err := WithHalt(t.Context(), db, func(ctx context.Context) error {
		inside = ctx
		assert.True(t, lockHeld(t, m), "fn runs under the lock")
		require.NoError(t, insert(ctx, db, "halted"))
		var qo int
		require.NoError(t, db.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo))
		assert.Equal(t, 1, qo, "query_only back on after the forwarded write")
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.Exec("INSERT INTO t(v) VALUES ('in tx')") // no ctx: the transaction's hold
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		wantNotPrimary(t, insert(t.Context(), db, "other ctx"), "node-a")
		return nil
	})
	require.NoError(t, err)
	assert.False(t, lockHeld(t, m), "released after fn")
	assert.Equal(t, 1, count(t, db, "halted"))
	assert.Equal(t, 1, count(t, db, "in tx"))
	assert.Equal(t, 0, count(t, db, "other ctx"))

	err = insert(inside, db, "late")
	var he *HaltError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, HaltReleased, he.Reason)
	assert.ErrorIs(t, err, ErrNotPrimary)
	wantNotPrimary(t, err, "node-a")
}

func TestWithHaltReleasesOnEveryPath(t *testing.T) {
	t.Parallel()
	errFn := errors.New("fn failed")
	tests := []struct {
		name string
		fn   func(ctx context.Context, cancel context.CancelFunc) error
		want error
	}{
		{name: "error", fn: func(context.Context, context.CancelFunc) error { return errFn }, want: errFn},
		{name: "panic", fn: func(context.Context, context.CancelFunc) error { panic(errFn) }, want: errFn},
		{name: "ctx cancelled inside fn", fn: func(ctx context.Context, cancel context.CancelFunc) error {
			cancel()
			return ctx.Err()
		}, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, db := haltMount(t, "")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			err := func() (err error) {
				defer func() {
					if p := recover(); p != nil {
						err = p.(error)
					}
				}()
				return WithHalt(ctx, db, func(ctx context.Context) error { return tc.fn(ctx, cancel) })
			}()
			assert.ErrorIs(t, err, tc.want)
			assert.False(t, lockHeld(t, m), "lock released")
			require.NoError(t, WithHalt(t.Context(), db, func(ctx context.Context) error {
				return insert(ctx, db, "next")
			}), "the next holder gets the lock")
		})
	}
}

func TestWithHaltContextEndsWhileWaiting(t *testing.T) {
	t.Parallel()
	m, db := haltMount(t, "")
	release := holdLock(t, m) // another process's hold, as far as the kernel knows
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	called := false
	err := WithHalt(ctx, db, func(context.Context) error { called = true; return nil })
	assert.False(t, called, "fn never runs without the lock")
	var he *HaltError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, HaltTimeout, he.Reason)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	wantNotPrimary(t, err, "node-a")

	// The request still pending in the kernel is granted once the other
	// holder goes, and given back at once: the next WithHalt gets it.
	release()
	ctx, cancel = context.WithTimeout(t.Context(), litefstest.DefaultWaitTimeout)
	defer cancel()
	require.NoError(t, WithHalt(ctx, db, func(ctx context.Context) error {
		return insert(ctx, db, "after")
	}))
	assert.False(t, lockHeld(t, m))
}

func TestWithHaltSerializesAndNests(t *testing.T) {
	t.Parallel()
	_, db := haltMount(t, "")
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			err := WithHalt(t.Context(), db, func(ctx context.Context) error {
				n := inside.Add(1)
				defer inside.Add(-1)
				if n > most.Load() {
					most.Store(n)
				}
				// A nested call reuses the hold; taking it again would wait
				// for ever on this process's own lock.
				nctx, cancel := context.WithTimeout(ctx, litefstest.DefaultWaitTimeout)
				defer cancel()
				return WithHalt(nctx, db, func(ctx context.Context) error { return insert(ctx, db, "nested") })
			})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), most.Load(), "one holder at a time")
	assert.Equal(t, 4, count(t, db, "nested"))
}

func TestHaltExpired(t *testing.T) {
	t.Parallel()
	m, db := haltMount(t, "", withHaltLimit(time.Nanosecond))
	err := WithHalt(t.Context(), db, func(ctx context.Context) error {
		err := insert(ctx, db, "expired")
		var he *HaltError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, HaltExpired, he.Reason)
		assert.ErrorIs(t, err, ErrHaltExpired)
		assert.ErrorIs(t, err, ErrNotPrimary)
		return err
	})
	assert.ErrorIs(t, err, ErrHaltExpired)
	assert.False(t, lockHeld(t, m))
	assert.Equal(t, 0, count(t, db, "expired"))
}

func TestHaltExpiredAtCommit(t *testing.T) {
	t.Parallel()
	_, db := haltMount(t, "", withHaltLimit(time.Hour))
	var tr Tracker
	err := WithHalt(t.Context(), db, func(ctx context.Context) error {
		tx, err := db.BeginTx(WithTracker(ctx, &tr), nil)
		require.NoError(t, err)
		_, err = tx.Exec("INSERT INTO t(v) VALUES ('tx')")
		require.NoError(t, err)
		h := holdFrom(ctx, lockedPos(t, db))
		require.NotNil(t, h)
		h.limit = 0 // as if the hold had outlived LiteFS's TTL
		return tx.Commit()
	})
	assert.ErrorIs(t, err, ErrHaltExpired)
	assert.Equal(t, 0, count(t, db, "tx"), "rolled back")
	assert.ErrorIs(t, tr.Refusal(), ErrHaltExpired, "reported to the transaction's Tracker")
}

// A write let through under a hold that LiteFS fails to forward (an I/O
// error) gets a *HaltError, reported to the Tracker like every refusal.
func TestHaltForwardFailed(t *testing.T) {
	t.Parallel()
	_, db := haltMount(t, "")
	_, c := pinConn(t, db)
	var tr Tracker
	ctx := WithTracker(t.Context(), &tr)
	c.halt.admitted = true // as inside a statement let through under a hold
	ioErr := sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite}
	err := failed(c, ctx, ioErr)
	var he *HaltError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, HaltForwardFailed, he.Reason)
	assert.ErrorIs(t, err, ErrNotPrimary)
	assert.ErrorIs(t, err, ioErr)
	assert.Equal(t, err, tr.Refusal())

	c.halt.admitted = false
	assert.NotErrorAs(t, failed(c, ctx, ioErr), &he, "outside a hold: the replica's refusal")
}

// lockedPos returns the position-file path that db's connections use.
func lockedPos(t *testing.T, db *sql.DB) string {
	t.Helper()
	var pos string
	require.NoError(t, withConn(t.Context(), db, func(c *Conn) error { pos = c.posPath(); return nil }))
	return pos
}

func TestWithHaltFailures(t *testing.T) {
	t.Parallel()
	t.Run("no primary", func(t *testing.T) {
		t.Parallel()
		m, db := haltMount(t, "")
		m.SetNoPrimary()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		called := false
		err := WithHalt(ctx, db, func(context.Context) error { called = true; return nil })
		assert.False(t, called)
		var he *HaltError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, HaltNoPrimary, he.Reason)
		assert.ErrorIs(t, err, ErrNoPrimary)
		assert.ErrorIs(t, err, ErrNotPrimary)
	})
	t.Run("no lock file", func(t *testing.T) {
		t.Parallel()
		m, db := haltMount(t, "")
		require.NoError(t, os.Remove(m.DBPath()+"-lock"))
		called := false
		err := WithHalt(t.Context(), db, func(context.Context) error { called = true; return nil })
		assert.False(t, called)
		var he *HaltError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, HaltRefused, he.Reason)
		assert.ErrorIs(t, err, os.ErrNotExist)
		wantNotPrimary(t, err, "node-a")
	})
	t.Run("not a litefs handle", func(t *testing.T) {
		t.Parallel()
		raw, err := sql.Open("sqlite3", ":memory:")
		require.NoError(t, err)
		defer raw.Close()
		assert.Error(t, WithHalt(t.Context(), raw, func(context.Context) error { return nil }))
	})
}

func TestForwardWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		suffix string
		opts   []Option
	}{
		{name: "option", opts: []Option{WithForwardWrites()}},
		{name: "DSN", suffix: "&_forward_writes=1"},
		{name: "DSN with _txlock=immediate", suffix: "&_forward_writes=1&_txlock=immediate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, db := haltMount(t, tc.suffix, tc.opts...)
			require.NoError(t, insert(t.Context(), db, "auto"))
			assert.False(t, lockHeld(t, m), "an autocommit write gives the lock back")
			assert.Equal(t, 1, count(t, db, "auto"))

			tx, err := db.BeginTx(t.Context(), nil)
			require.NoError(t, err)
			assert.True(t, lockHeld(t, m), "taken at BeginTx")
			_, err = tx.Exec("INSERT INTO t(v) VALUES ('tx')")
			require.NoError(t, err)
			require.NoError(t, tx.Commit())
			assert.False(t, lockHeld(t, m), "given back at Commit")

			tx, err = db.BeginTx(t.Context(), nil)
			require.NoError(t, err)
			require.NoError(t, tx.Rollback())
			assert.False(t, lockHeld(t, m), "given back at Rollback")

			var got string
			rows, err := db.QueryContext(t.Context(), "INSERT INTO t(v) VALUES ('returning') RETURNING v")
			require.NoError(t, err)
			assert.True(t, lockHeld(t, m), "held while rows that may commit are open")
			for rows.Next() {
				require.NoError(t, rows.Scan(&got))
			}
			require.NoError(t, rows.Close())
			assert.False(t, lockHeld(t, m))
			assert.Equal(t, 1, count(t, db, "returning"))

			// Reads and read-only transactions never take the lock: they
			// run while another holder has it.
			release := holdLock(t, m)
			assert.Equal(t, 1, count(t, db, "tx"))
			ro, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
			require.NoError(t, err)
			require.NoError(t, ro.Commit())
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
			defer cancel()
			err = insert(ctx, db, "blocked")
			var he *HaltError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, HaltTimeout, he.Reason)
			release()
		})
	}
}

func TestHaltErrorReasons(t *testing.T) {
	t.Parallel()
	for r := HaltNoPrimary; r < numHaltReasons; r++ {
		assert.NotContains(t, r.String(), "HaltReason(", "reason %d has a name", r)
	}
	assert.Equal(t, "HaltReason(0)", HaltReason(0).String())
	err := &HaltError{Reason: HaltTimeout, Refusal: &NotPrimaryError{PrimaryID: "node-a"}, Err: context.DeadlineExceeded}
	assert.Equal(t, "litefs: write not forwarded: HALT lock not granted in time: context deadline exceeded", err.Error())
	assert.NotErrorIs(t, err, ErrHaltExpired)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestForwardWritesDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dsn     string
		want    bool
		wantErr bool
	}{
		{dsn: "a.db?_forward_writes=1", want: true},
		{dsn: "a.db?_forward_writes=true", want: true},
		{dsn: "a.db?_forward_writes=0"},
		{dsn: "a.db"},
		{dsn: "a.db?_forward_writes=maybe", wantErr: true},
	} {
		info, err := parseDSN(tc.dsn)
		if tc.wantErr {
			assert.ErrorContains(t, err, "_forward_writes", tc.dsn)
			continue
		}
		require.NoError(t, err, tc.dsn)
		assert.Equal(t, tc.want, info.forwardWrites, tc.dsn)
	}
}

func TestWithHaltWaitsForTheReplicaToCatchUp(t *testing.T) {
	t.Parallel()
	m, db := haltMount(t, "")
	m.SetTXID(7) // the last transaction applied, stamped now
	lagAt := func(at time.Time) { m.WriteLagFile([]byte("+000000001\n"), at) }
	job := func(timeout time.Duration) (called bool, err error) {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		err = WithHalt(ctx, db, func(ctx context.Context) error { called = true; return insert(ctx, db, "job") })
		return called, err
	}

	lagAt(time.Now().Add(-time.Hour)) // the last heartbeat came before the last transaction
	called, err := job(50 * time.Millisecond)
	assert.False(t, called, "no lock while transactions may be on their way")
	var he *HaltError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, HaltTimeout, he.Reason)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, lockHeld(t, m))

	lagAt(time.Now().Add(time.Second)) // a heartbeat after it
	called, err = job(litefstest.DefaultWaitTimeout)
	assert.True(t, called)
	require.NoError(t, err)

	// Released with -pos unchanged, the replica was at the primary's
	// position: the next job needs no new heartbeat, until a transaction
	// from the primary arrives.
	lagAt(time.Now().Add(-time.Hour))
	called, err = job(litefstest.DefaultWaitTimeout)
	assert.True(t, called)
	require.NoError(t, err)
	m.SetTXID(8)
	called, err = job(50 * time.Millisecond)
	assert.False(t, called)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// Admissions that run nothing (Prepare, a write SQLite cannot prepare) give
// back a lock taken for them and leave the connection under query_only.
func TestForwardWritesAdmissionsThatRunNothing(t *testing.T) {
	t.Parallel()
	m, db := haltMount(t, "", WithForwardWrites())
	conn, c := pinConn(t, db)
	ctx := t.Context()
	queryOnly := func() int {
		var qo int
		require.NoError(t, conn.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo))
		return qo
	}

	st, err := conn.PrepareContext(ctx, "PRAGMA user_version = 7")
	require.NoError(t, err)
	assert.False(t, lockHeld(t, m), "a prepare gives the lock back")
	assert.False(t, c.halt.admitted)
	assert.Equal(t, 1, queryOnly())
	_, err = st.ExecContext(ctx)
	require.NoError(t, err)
	assert.False(t, lockHeld(t, m), "and so does the prepared statement's run")
	assert.Equal(t, 1, queryOnly())
	require.NoError(t, st.Close())

	_, err = conn.ExecContext(ctx, "INSERT INTO missing(v) VALUES (1)")
	assert.ErrorContains(t, err, "no such table")
	assert.NotErrorIs(t, err, ErrNotPrimary, "under the lock the schema is the primary's: SQLite's error")
	assert.False(t, lockHeld(t, m), "a write SQLite could not prepare gives the lock back")
	assert.Equal(t, 1, queryOnly())

	var v int
	require.NoError(t, conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v))
	assert.Equal(t, 7, v)
}

// TestWithHaltNestedThroughASymlink: a nested WithHalt on the same database
// reached through a symlinked directory reuses the hold; taking the lock
// again would wait on this process's own lock.
func TestWithHaltNestedThroughASymlink(t *testing.T) {
	t.Parallel()
	m, db := haltMount(t, "")
	link := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Symlink(m.Dir(), link))
	c, err := NewConnector(litefstest.DSN(filepath.Join(link, litefstest.DefaultDBName)), WithLogger(discard))
	require.NoError(t, err)
	linked := sql.OpenDB(c)
	t.Cleanup(func() { linked.Close() })
	err = WithHalt(t.Context(), db, func(ctx context.Context) error {
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return WithHalt(nctx, linked, func(ctx context.Context) error { return insert(ctx, linked, "linked") })
	})
	assert.NoError(t, err)
	assert.Equal(t, 1, count(t, db, "linked"))
}
