package litefs

import (
	"context"
	"database/sql"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// commitsForTracker are transactions whose writes ran on a pool
// connection with no Tracker and whose commit statement (COMMIT, END, or the
// RELEASE of the outermost savepoint) runs for one. SQLite judges those
// statements read-only, so run.begin returns before hookCommits: on a
// connection that never ran for a Tracker no hook is registered, and the
// Tracker never hears of the commit it made. Before e0a4577 it did.
var commitsForTracker = []struct {
	name   string
	open   string
	commit string
}{
	{name: "BEGIN then COMMIT", open: "BEGIN", commit: "COMMIT"},
	{name: "BEGIN IMMEDIATE then END", open: "BEGIN IMMEDIATE", commit: "END"},
	{name: "SAVEPOINT then RELEASE", open: "SAVEPOINT s", commit: "RELEASE s"},
}

// TestCommitStatementForTracker: the transaction is begun without
// a tracker and committed with one; the Tracker must hear that commit.
func TestCommitStatementForTracker(t *testing.T) {
	t.Parallel()
	for _, tt := range commitsForTracker {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			conn, c := pinConn(t, db)
			require.False(t, c.hooked, "precondition: the connection never ran for a Tracker")
			bg := context.Background()
			for _, q := range []string{tt.open, "INSERT INTO t(v) VALUES ('for the tracker')"} {
				_, err := conn.ExecContext(bg, q)
				require.NoError(t, err, q)
			}
			tr := new(Tracker)
			_, err := conn.ExecContext(WithTracker(bg, tr), tt.commit)
			require.NoError(t, err, tt.commit)

			var n int
			require.NoError(t, db.QueryRow("SELECT count(*) FROM t WHERE v = 'for the tracker'").Scan(&n))
			require.Equal(t, 1, n, "the transaction committed")
			assert.True(t, tr.Committed(), "%s committed a write for the Tracker, which did not hear of it", tt.commit)
		})
	}
}

// TestCommitStatementTXIDOnCluster: on a real cluster, a
// transaction whose writes ran on a pool connection without a Tracker and
// whose COMMIT runs for one must give the Tracker a TXID that brings the row
// to the replica (what the bridge puts in its cookie).
func TestCommitStatementTXIDOnCluster(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	pdb := openNode(t, p)
	_, err := pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	rdb := openNode(t, r)

	ctx := t.Context()
	conn, c := pinConn(t, pdb)
	require.False(t, c.hooked, "precondition: the connection never ran for a Tracker")
	for _, q := range []string{"BEGIN", "INSERT INTO t(v) VALUES ('tracked')"} {
		_, err := conn.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	tr := new(Tracker)
	_, err = conn.ExecContext(WithTracker(ctx, tr), "COMMIT")
	require.NoError(t, err)

	id, ok, err := tr.TXID()
	require.NoError(t, err)
	require.True(t, ok, "the Tracker has no TXID for the commit it made: no read-your-writes cookie")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = WaitTXID(wctx, rdb, id)
	require.NoError(t, err)
	var n int
	require.NoError(t, rdb.QueryRow("SELECT count(*) FROM t WHERE v = 'tracked'").Scan(&n))
	assert.Equal(t, 1, n, "the replica reached the Tracker's TXID %v without its row", id)
}

// TestConnectHookCommitHookReplacedAtOpen: a commit hook a ConnectHook set
// is replaced by the driver's, as WithSQLiteDriver says, from the start: it
// must not run until the connection first runs for a Tracker and then stop.
func TestConnectHookCommitHookReplacedAtOpen(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	openDB(t, m, "").Close()
	var userHook atomic.Int64
	d := &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		c.RegisterCommitHook(func() int { userHook.Add(1); return 0 })
		return nil
	}}
	c, err := NewConnector(m.DSN(), WithLogger(discard), WithSQLiteDriver(d))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	conn, _ := pinConn(t, db)
	ctx := context.Background()

	insert := func(ctx context.Context) int64 {
		before := userHook.Load()
		_, err := conn.ExecContext(ctx, "INSERT INTO t(v) VALUES ('x')")
		require.NoError(t, err)
		return userHook.Load() - before
	}
	untrackedBefore := insert(ctx)
	insert(WithTracker(ctx, new(Tracker)))
	untrackedAfter := insert(ctx)
	assert.Equal(t, untrackedBefore, untrackedAfter,
		"the ConnectHook's commit hook ran %d time(s) for an untracked commit before the connection's first tracked statement, %d after",
		untrackedBefore, untrackedAfter)
}
