package litefs

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestPrefetchNotUnderForwardedWrites: a write a HALT lock forwards begins
// no read in its commit hook, also when a handle that forwards its own
// writes (WithForwardWrites) holds the lock for one statement or
// transaction; the TXID must be the forwarded commit's.
func TestPrefetchNotUnderForwardedWrites(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	pdb, _ := openWithAPI(t, p, p.URL())
	_, err := pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	c, err := NewConnector(r.DSN(), WithLogger(discard), WithForwardWrites(), WithLiteFSAPI(r.URL()))
	require.NoError(t, err)
	fdb := sql.OpenDB(c)
	t.Cleanup(func() { fdb.Close() })
	require.NoError(t, fdb.Ping())
	eventually(t, trustedAs(c, p.Hostname()), "the replica trusts its stream")
	w := c.watcher()
	posPath := r.DBPath() + "-pos"

	hits, misses := w.prefetchHits.Load(), w.prefetchMisses.Load()
	for i := range 5 {
		streamAt(t, fdb, posPath)
		tr := &Tracker{}
		tr.PrefetchTXID()
		ctx := WithTracker(context.Background(), tr)
		if i%2 == 0 {
			_, err = fdb.ExecContext(ctx, "INSERT INTO t(v) VALUES ('fwd')")
		} else {
			err = func() error {
				tx, err := fdb.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				if _, err := tx.ExecContext(ctx, "INSERT INTO t(v) VALUES ('fwd tx')"); err != nil {
					return err
				}
				return tx.Commit()
			}()
		}
		require.NoError(t, err)
		after, err := readPos(posPath)
		require.NoError(t, err)
		id, ok, err := tr.TXID()
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, after, id, "write %d", i)
		cluster.WaitReplicated(t)
	}
	t.Logf("hook reads on the replica: %d hits, %d misses", w.prefetchHits.Load()-hits, w.prefetchMisses.Load()-misses)
	assert.Zero(t, w.prefetchHits.Load()-hits+w.prefetchMisses.Load()-misses, "reads begun in the hooks of forwarded commits")
}
