package litefs

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestPrefetchRollbackJournal: a database that LiteFS commits in
// CommitJournal (rollback journal: a new database opened with no
// _journal_mode), trackers committing concurrently with a raw writer: the
// replica at each Tracker.TXID has the tracker's row, and the TXID existed
// when it was returned. (Holds.)
func TestPrefetchRollbackJournal(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	dsn := func(n *litefstest.Node) string {
		return "file:" + filepath.Join(n.MountDir(), "rollback.db") + "?_busy_timeout=5000&_litefs_api=" + n.URL()
	}
	pc, err := NewConnector(dsn(p), WithLogger(discard))
	require.NoError(t, err)
	pdb := sql.OpenDB(pc)
	t.Cleanup(func() { pdb.Close() })
	_, err = pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	var mode string
	require.NoError(t, pdb.QueryRow("PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "delete", mode)
	eventually(t, trustedAs(pc, "primary"), "the primary trusts its stream")
	rc, err := NewConnector(dsn(r), WithLogger(discard))
	require.NoError(t, err)
	rdb := sql.OpenDB(rc)
	t.Cleanup(func() { rdb.Close() })
	posPath := filepath.Join(p.MountDir(), "rollback.db-pos")
	raw, err := sql.Open("sqlite3", "file:"+filepath.Join(p.MountDir(), "rollback.db")+"?_busy_timeout=5000")
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })

	stop := keepWriting(t, func(i int) error {
		_, err := raw.Exec("INSERT INTO t(v) VALUES (?)", fmt.Sprint("raw-", i))
		return err
	})
	var misses, future atomic.Int32
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range 15 {
				tr := &Tracker{}
				tr.PrefetchTXID()
				v := fmt.Sprintf("g%d-%d", g, i)
				_, err := pdb.ExecContext(WithTracker(context.Background(), tr), "INSERT INTO t(v) VALUES (?)", v)
				if !assert.NoError(t, err) {
					return
				}
				id, ok, err := tr.TXID()
				if !assert.NoError(t, err) || !assert.True(t, ok) {
					return
				}
				if now, err := readPos(posPath); err == nil && id > now {
					future.Add(1)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err = WaitTXID(ctx, rdb, id)
				cancel()
				if !assert.NoError(t, err) {
					return
				}
				var n int
				if assert.NoError(t, rdb.QueryRow("SELECT count(*) FROM t WHERE v = ?", v).Scan(&n)) && n != 1 {
					misses.Add(1)
				}
			}
		})
	}
	wg.Wait()
	stop()
	w := pc.watcher()
	t.Logf("hook reads: %d hits, %d misses", w.prefetchHits.Load(), w.prefetchMisses.Load())
	assert.Zero(t, misses.Load(), "rows missing on the replica at Tracker.TXID")
	assert.Zero(t, future.Load(), "TXIDs that did not exist when returned")
}
