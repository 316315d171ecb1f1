package litefs

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestPrefetchReturning: INSERT ... RETURNING (how GORM, bun and ent insert
// on SQLite 3.35+) commits when its rows end, after its run's first end:
// its TXID too must be read in the commit hook.
func TestPrefetchReturning(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	p := cluster.Primary()
	db, c := openWithAPI(t, p, p.URL())
	_, err := db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	eventually(t, trustedAs(c, "primary"), "the primary trusts its stream")
	w := c.watcher()
	posPath := p.DBPath() + "-pos"

	const n = 10
	hits := w.prefetchHits.Load()
	for range n {
		streamAt(t, db, posPath)
		tr := &Tracker{}
		tr.PrefetchTXID()
		var id int64
		require.NoError(t, db.QueryRowContext(WithTracker(context.Background(), tr), "INSERT INTO t(v) VALUES ('r') RETURNING id").Scan(&id))
		after, err := readPos(posPath)
		require.NoError(t, err)
		got, ok, err := tr.TXID()
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, after, got)
	}
	assert.Greater(t, w.prefetchHits.Load()-hits, uint64(n/2), "TXIDs of INSERT ... RETURNING read in the commit hook")
}

// TestVacuumReportedToTracker: VACUUM makes a LiteFS transaction (the
// position moves) though SQLite commits it without calling the commit hook:
// the Tracker must hear it, and TXID be at or above it.
func TestVacuumReportedToTracker(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	p := cluster.Primary()
	db, c := openWithAPI(t, p, p.URL())
	_, err := db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('x'); DELETE FROM t")
	require.NoError(t, err)
	eventually(t, trustedAs(c, "primary"), "the primary trusts its stream")
	posPath := p.DBPath() + "-pos"
	before, err := readPos(posPath)
	require.NoError(t, err)

	tr := &Tracker{}
	tr.PrefetchTXID()
	_, err = db.ExecContext(WithTracker(context.Background(), tr), "VACUUM")
	require.NoError(t, err)
	after, err := readPos(posPath)
	require.NoError(t, err)
	require.Greater(t, after, before, "VACUUM made no LiteFS transaction")

	assert.True(t, tr.Committed(), "a VACUUM that LiteFS shipped as TXID %v", after)
	id, ok, err := tr.TXID()
	require.NoError(t, err)
	assert.True(t, ok)
	assert.GreaterOrEqual(t, id, after)
}
