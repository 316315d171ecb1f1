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

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestReadYourWritesUnderHostileCommits: trackers that read their TXID in the commit hook,
// committing in every way the driver knows, while other writers (raw
// go-sqlite3, another pool, strings that commit several times, failed
// commits, a connection with an attached database) commit on the primary:
// each tracker's TXID must bring its rows to the replica, and exist.
func TestReadYourWritesUnderHostileCommits(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	p, r := cluster.Primary(), cluster.Replicas()[0]
	posPath := p.DBPath() + "-pos"
	pdb, pc := openWithAPI(t, p, p.URL())
	_, err := pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	rdb, rc := openWithAPI(t, r, r.URL())
	eventually(t, trustedAs(pc, "primary"), "the primary trusts its stream")
	eventually(t, trustedAs(rc, p.Hostname()), "the replica trusts its stream")

	raw, err := sql.Open("sqlite3", p.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	other, err := sql.Open(DriverName, p.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	aux, _ := pinConn(t, pdb)
	_, err = aux.ExecContext(t.Context(), "ATTACH DATABASE ? AS aux", filepath.Join(t.TempDir(), "aux.db"))
	require.NoError(t, err)
	_, err = aux.ExecContext(t.Context(), "CREATE TABLE aux.a(x)")
	require.NoError(t, err)

	var seq atomic.Int64
	uniq := func(tag string) string { return fmt.Sprintf("%s-%d", tag, seq.Add(1)) }
	hostile := []func() error{
		func() error { _, err := raw.Exec("INSERT INTO t(v) VALUES (?)", uniq("raw")); return err },
		func() error {
			_, err := other.Exec(fmt.Sprintf("INSERT INTO t(v) VALUES ('%s'); INSERT INTO t(v) VALUES ('%s')", uniq("o"), uniq("o")))
			return err
		},
		func() error {
			_, err := pdb.Exec("INSERT INTO t(v) VALUES ('dup'); INSERT INTO t(v) VALUES ('dup')")
			if err == nil {
				return fmt.Errorf("a duplicate committed")
			}
			_, err = pdb.Exec("DELETE FROM t WHERE v = 'dup'")
			return err
		},
		func() error {
			_, err := aux.ExecContext(context.Background(), "INSERT INTO aux.a(x) VALUES (1); INSERT INTO t(v) VALUES (?)", uniq("aux"))
			return err
		},
	}
	var stops []func()
	for _, f := range hostile {
		stops = append(stops, keepWriting(t, func(int) error { return f() }))
	}

	// Each op commits values with the tracker's context, and returns them.
	ops := []func(ctx context.Context, g int) ([]string, error){
		func(ctx context.Context, g int) ([]string, error) { // autocommit
			v := uniq(fmt.Sprint("auto", g))
			_, err := pdb.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v)
			return []string{v}, err
		},
		func(ctx context.Context, g int) ([]string, error) { // a string that commits twice
			a, b := uniq("multi"), uniq("multi")
			_, err := pdb.ExecContext(ctx, fmt.Sprintf("INSERT INTO t(v) VALUES ('%s'); INSERT INTO t(v) VALUES ('%s')", a, b))
			return []string{a, b}, err
		},
		func(ctx context.Context, g int) ([]string, error) { // explicit transaction
			tx, err := pdb.BeginTx(ctx, nil)
			if err != nil {
				return nil, err
			}
			v := uniq("tx")
			if _, err := tx.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v); err != nil {
				tx.Rollback()
				return nil, err
			}
			return []string{v}, tx.Commit()
		},
		func(ctx context.Context, g int) ([]string, error) { // SAVEPOINT ... RELEASE
			v := uniq("sp")
			_, err := pdb.ExecContext(ctx, fmt.Sprintf("SAVEPOINT s; INSERT INTO t(v) VALUES ('%s'); RELEASE s", v))
			return []string{v}, err
		},
		func(ctx context.Context, g int) ([]string, error) { // INSERT ... RETURNING via Query
			v := uniq("ret")
			rows, err := pdb.QueryContext(ctx, "INSERT INTO t(v) VALUES (?) RETURNING id", v)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
			}
			return []string{v}, rows.Close()
		},
		func(ctx context.Context, g int) ([]string, error) { // a commit, then a failed one
			v := uniq("fail")
			if _, err := pdb.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v); err != nil {
				return nil, err
			}
			_, err := pdb.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v)
			if err == nil {
				return nil, fmt.Errorf("a duplicate committed")
			}
			return []string{v}, nil
		},
	}
	var misses, future atomic.Int32
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range 4 * len(ops) {
				tr := &Tracker{}
				tr.PrefetchTXID()
				vals, err := ops[i%len(ops)](WithTracker(context.Background(), tr), g)
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
				if !assert.NoError(t, err, "WaitTXID(%v)", id) {
					return
				}
				for _, v := range vals {
					var n int
					require.NoError(t, rdb.QueryRow("SELECT count(*) FROM t WHERE v = ?", v).Scan(&n))
					if n != 1 {
						misses.Add(1)
						t.Logf("op %d: %q missing on the replica at TXID %v", i%len(ops), v, id)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, stop := range stops {
		stop()
	}
	w := pc.watcher()
	t.Logf("hook reads: %d hits, %d misses", w.prefetchHits.Load(), w.prefetchMisses.Load())
	assert.Zero(t, misses.Load(), "rows missing on the replica after WaitTXID(Tracker.TXID)")
	assert.Zero(t, future.Load(), "TXIDs that did not exist when returned")
}
