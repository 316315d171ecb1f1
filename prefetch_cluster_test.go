package litefs

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// Real-cluster tests of the TXID read begun in the commit hook (prefetch.go).

// streamAt waits until db's event stream has reported the position in
// <db>-pos at path, so that a commit's hook then samples a stream that has
// caught up.
func streamAt(t *testing.T, db *sql.DB, path string) TXID {
	t.Helper()
	var at TXID
	require.Eventually(t, func() bool {
		pos, err := readPos(path)
		if err != nil {
			return false
		}
		hint, ok := TXIDHint(db)
		at = pos
		return ok && hint == pos
	}, 10*time.Second, time.Millisecond, "the stream never caught up with <db>-pos")
	return at
}

// TestPrefetchNoOpCommitNamesNoFutureTXID: SQLite calls the commit
// hook for every transaction that opened a write transaction on any
// database, including ones that changed no page of the main database (an
// UPDATE or DELETE matching no row, INSERT OR IGNORE of a duplicate, BEGIN
// IMMEDIATE; COMMIT, a write to a temp table or to an attached database).
// LiteFS makes no transaction of those ("no transaction" in CommitWAL), so
// the hook's read returns the current TXID, and one more is a transaction
// that does not exist: a replica given it in the bridge's cookie would
// wait for it (TXIDWait), then replay or fail the read. Tracker.TXID must
// name an existing TXID.
func TestPrefetchNoOpCommitNamesNoFutureTXID(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	p := cluster.Primary()
	posPath := p.DBPath() + "-pos"
	db, _ := openWithAPI(t, p, p.URL())
	_, err := db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(id, v) VALUES (1, 'one')")
	require.NoError(t, err)

	conn, _ := pinConn(t, db)
	ctx := context.Background()
	_, err = conn.ExecContext(ctx, "CREATE TEMP TABLE scratch(x)")
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "ATTACH DATABASE ? AS aux", filepath.Join(t.TempDir(), "aux.db"))
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "CREATE TABLE aux.a(x)")
	require.NoError(t, err)

	tests := []struct {
		name  string
		query string
	}{
		{name: "UPDATE matching no row", query: "UPDATE t SET v = 'x' WHERE id = -1"},
		{name: "DELETE matching no row", query: "DELETE FROM t WHERE id = -1"},
		{name: "INSERT OR IGNORE of a duplicate", query: "INSERT OR IGNORE INTO t(id, v) VALUES (1, 'dup')"},
		{name: "BEGIN IMMEDIATE then COMMIT", query: "BEGIN IMMEDIATE; COMMIT"},
		{name: "write to a temp table", query: "INSERT INTO scratch(x) VALUES (1)"},
		{name: "write to an attached database", query: "INSERT INTO aux.a(x) VALUES (1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := streamAt(t, db, posPath)
			tr := &Tracker{}
			tr.PrefetchTXID()
			_, err := conn.ExecContext(WithTracker(ctx, tr), tt.query)
			require.NoError(t, err)
			after, err := readPos(posPath)
			require.NoError(t, err)
			require.Equal(t, before, after, "the statement made a LiteFS transaction: not a no-op")

			id, ok, err := tr.TXID()
			require.NoError(t, err)
			if !ok {
				return // no commit reported: nothing to name
			}
			assert.LessOrEqual(t, id, after, "Tracker.TXID named TXID %v, which does not exist (the node is at %v)", id, after)
		})
	}
}

// TestPrefetchTrackerSharedByTwoPools: one request's Tracker, used by two
// goroutines on two *sql.DB opened on the same database (a write pool and
// a read pool, say). Commit A (pool 1) lands first but is reported last,
// after commit B (pool 2): a TXID from A's read alone would be below B's,
// and read-your-writes broken for B.
func TestPrefetchTrackerSharedByTwoPools(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	p := cluster.Primary()
	posPath := p.DBPath() + "-pos"

	entered, release := make(chan struct{}), make(chan struct{})
	d := &sqlite3.SQLiteDriver{ConnectHook: func(sc *sqlite3.SQLiteConn) error {
		return sc.RegisterFunc("pause", func() int {
			entered <- struct{}{}
			<-release
			return 1
		}, false)
	}}
	ca, err := NewConnector(p.DSN(), WithLogger(discard), WithLiteFSAPI(p.URL()), WithSQLiteDriver(d))
	require.NoError(t, err)
	dbA := sql.OpenDB(ca)
	t.Cleanup(func() { dbA.Close() })
	require.NoError(t, dbA.Ping())
	dbB, _ := openWithAPI(t, p, p.URL())
	_, err = dbB.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)

	misses := 0
	for i := range 20 {
		streamAt(t, dbA, posPath)
		tr := &Tracker{}
		tr.PrefetchTXID()
		ctx := WithTracker(context.Background(), tr)
		errA := make(chan error, 1)
		go func() {
			_, err := dbA.ExecContext(ctx, "INSERT INTO t(v) VALUES ('a'); SELECT pause()")
			errA <- err
		}()
		<-entered // commit A is done; its report is not
		_, err := dbB.ExecContext(ctx, "INSERT INTO t(v) VALUES ('b')")
		require.NoError(t, err)
		txB, err := readPos(posPath)
		require.NoError(t, err)
		release <- struct{}{}
		require.NoError(t, <-errA)

		id, ok, err := tr.TXID()
		require.NoError(t, err)
		require.True(t, ok)
		if id < txB {
			misses++
			t.Logf("round %d: Tracker.TXID = %v, below commit B's TXID %v", i, id, txB)
		}
	}
	assert.Zero(t, misses, "rounds where the tracker's TXID was below its own commit's")
}

// TestPrefetchReadsBoundedPerTracker: a Tracker keeps at most maxTXIDReads
// reads, and TXID reads <db>-pos after the commits once a request commits
// more often than that; a commit past the bound must begin no read (a
// goroutine and a FUSE round trip while LiteFS ships the commit) that
// nothing will look at. The reads begun stay within the bound, plus TXID's
// own read.
func TestPrefetchReadsBoundedPerTracker(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	p := cluster.Primary()
	c, err := NewConnector(p.DSN(), WithLogger(discard), WithLiteFSAPI(p.URL()), WithRoleCheckInterval(time.Hour))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	streamAt(t, db, p.DBPath()+"-pos")
	conn, dc := pinConn(t, db)

	const commits = 5 * maxTXIDReads
	tr := &Tracker{}
	tr.PrefetchTXID()
	ctx := WithTracker(context.Background(), tr)
	before := dc.pos.reads.Load()
	for range commits {
		_, err := conn.ExecContext(ctx, "INSERT INTO t(v) VALUES ('x')")
		require.NoError(t, err)
	}
	_, ok, err := tr.TXID()
	require.NoError(t, err)
	require.True(t, ok)
	reads := dc.pos.reads.Load() - before
	// The bound, TXID's own read, and one spare for a stream that
	// reconnects (its init reads the file).
	assert.LessOrEqual(t, reads, uint64(maxTXIDReads+2), "%d commits with one tracker read <db>-pos %d times", commits, reads)
}
