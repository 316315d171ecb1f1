package litefs

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestTrackerSharedByConcurrentCommits: one request's Tracker used by
// several goroutines at once on one pool (autocommits and transactions,
// some wrote nothing), while a raw writer commits too: once they are done,
// the replica at Tracker.TXID has every row they wrote. (Holds.)
func TestTrackerSharedByConcurrentCommits(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	pdb, pc := openWithAPI(t, p, p.URL())
	_, err := pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	rdb, _ := openWithAPI(t, r, r.URL())
	eventually(t, trustedAs(pc, "primary"), "the primary trusts its stream")
	raw, err := sql.Open("sqlite3", p.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })

	stop := keepWriting(t, func(i int) error {
		_, err := raw.Exec("INSERT INTO t(v) VALUES (?)", fmt.Sprint("raw-", i))
		return err
	})
	for round := range 10 {
		tr := &Tracker{}
		tr.PrefetchTXID()
		ctx := WithTracker(context.Background(), tr)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var vals []string
		for g := range 4 {
			wg.Go(func() {
				for i := range 3 {
					v := fmt.Sprintf("r%d-g%d-i%d", round, g, i)
					var err error
					switch (g + i) % 3 {
					case 0:
						_, err = pdb.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v)
					case 1:
						_, err = pdb.ExecContext(ctx, "UPDATE t SET v = v WHERE v = 'none'; INSERT INTO t(v) VALUES (?)", v)
					default:
						var tx *sql.Tx
						if tx, err = pdb.BeginTx(ctx, nil); err == nil {
							if _, err = tx.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v); err == nil {
								err = tx.Commit()
							} else {
								tx.Rollback()
							}
						}
					}
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					vals = append(vals, v)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		id, ok, err := tr.TXID()
		require.NoError(t, err)
		require.True(t, ok)
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = WaitTXID(wctx, rdb, id)
		cancel()
		require.NoError(t, err)
		for _, v := range vals {
			var n int
			require.NoError(t, rdb.QueryRow("SELECT count(*) FROM t WHERE v = ?", v).Scan(&n))
			assert.Equal(t, 1, n, "round %d: %q missing on the replica at TXID %v", round, v, id)
		}
	}
	stop()
}
