package litefs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// countingConnector counts the connections database/sql opens: a
// connection IsValid drops is replaced by a new Connect.
type countingConnector struct {
	*Connector
	opens atomic.Int64
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c.opens.Add(1)
	return c.Connector.Connect(ctx)
}

// TestHealthyClusterKeepsConnections: on a healthy 3-node cluster
// (_litefs_api set), concurrent transactions on the primary through fresh
// connections (no idle kept) and through a pool commit every one, while a
// replica is stopped midway; a pooled primary and a pooled replica reader
// keep their connections (IsValid drops none).
func TestHealthyClusterKeepsConnections(t *testing.T) {
	cluster := litefstest.StartCluster(t, 3)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	open := func(n *litefstest.Node, idle int) (*sql.DB, *countingConnector) {
		c, err := NewConnector(n.DSN() + "&_litefs_api=" + n.URL())
		require.NoError(t, err)
		cc := &countingConnector{Connector: c}
		db := sql.OpenDB(cc)
		t.Cleanup(func() { db.Close() })
		db.SetMaxIdleConns(idle)
		db.SetMaxOpenConns(4)
		return db, cc
	}
	fresh, _ := open(p, 0)
	pooled, pooledC := open(p, 4)
	_, err := fresh.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	reader, readerC := open(r, 4)

	var mu sync.Mutex
	var refused []error
	var wg sync.WaitGroup
	const writers, each = 4, 40
	for w := range writers {
		wg.Go(func() {
			db := fresh
			if w%2 == 1 {
				db = pooled
			}
			for i := range each {
				if w == 0 && i == each/2 {
					assert.NoError(t, cluster.Replicas()[1].Process().Stop())
				}
				err := func() error {
					tx, err := db.Begin()
					if err != nil {
						return err
					}
					defer tx.Rollback()
					for range 2 {
						if _, err := tx.Exec("INSERT INTO t(v) VALUES (?)", w*1000+i); err != nil {
							return err
						}
					}
					return tx.Commit()
				}()
				if err != nil {
					mu.Lock()
					refused = append(refused, err)
					mu.Unlock()
				}
				var n int
				if err := reader.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
					mu.Lock()
					refused = append(refused, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	assert.Empty(t, refused, "errors on a healthy cluster")
	var n int
	require.NoError(t, pooled.QueryRow("SELECT count(*) FROM t").Scan(&n))
	assert.Equal(t, 2*writers*each-2*len(refused), n)
	assert.LessOrEqual(t, pooledC.opens.Load(), int64(4), "the primary's pool reopened connections")
	assert.LessOrEqual(t, readerC.opens.Load(), int64(4), "the replica's pool reopened connections")
}
