package litefs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// reviewCommitsForTracker are transactions whose writes ran on a pool
// connection with no Tracker and whose commit statement (COMMIT, END, or the
// RELEASE of the outermost savepoint) runs for one. SQLite judges those
// statements read-only, so run.begin returns before hookCommits: on a
// connection that never ran for a Tracker no hook is registered, and the
// Tracker never hears of the commit it made. Before e0a4577 it did.
var reviewCommitsForTracker = []struct {
	name   string
	open   string
	commit string
}{
	{name: "BEGIN then COMMIT", open: "BEGIN", commit: "COMMIT"},
	{name: "BEGIN IMMEDIATE then END", open: "BEGIN IMMEDIATE", commit: "END"},
	{name: "SAVEPOINT then RELEASE", open: "SAVEPOINT s", commit: "RELEASE s"},
}

// TestReviewHookCommitStatementForTracker: the transaction is begun without
// a tracker and committed with one; the Tracker must hear that commit.
func TestReviewHookCommitStatementForTracker(t *testing.T) {
	t.Parallel()
	for _, tt := range reviewCommitsForTracker {
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

// TestReviewHookCommitStatementTXIDOnCluster: on a real cluster, a
// transaction whose writes ran on a pool connection without a Tracker and
// whose COMMIT runs for one must give the Tracker a TXID that brings the row
// to the replica (what the bridge puts in its cookie).
func TestReviewHookCommitStatementTXIDOnCluster(t *testing.T) {
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
