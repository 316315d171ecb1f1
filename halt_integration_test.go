//go:build linux

package litefs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// These tests run real LiteFS (see litefstest.StartCluster): they skip where
// FUSE is missing, and fail there when LITEFS_REQUIRE=1.

// haltCluster starts n nodes with table t(v) on the primary, replicated.
func haltCluster(t *testing.T, n int) (*litefstest.Cluster, *sql.DB) {
	t.Helper()
	cluster := litefstest.StartCluster(t, n)
	pdb := openNode(t, cluster.Primary())
	_, err := pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	return cluster, pdb
}

func openForwarding(t *testing.T, n *litefstest.Node) *sql.DB {
	t.Helper()
	c, err := NewConnector(n.DSN(), WithLogger(discard), WithForwardWrites())
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// assertPrimaryWrites checks that the primary takes a write at once: a HALT
// lock left behind would hold it for LiteFS's 30 s. It returns once the
// replicas have the write: LiteFS v0.5.14 deadlocks a replica that asks for
// the lock before it has applied the primary's last transactions (see
// TestLiteFSHaltWritersTogether).
func assertPrimaryWrites(t *testing.T, cluster *litefstest.Cluster, pdb *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	assert.NoError(t, insert(ctx, pdb, "primary"), "the primary is not halted")
	cluster.WaitReplicated(t)
}

func TestLiteFSHaltWrites(t *testing.T) {
	cluster, pdb := haltCluster(t, 3)
	replica := cluster.Replicas()[0]
	rdb := openNode(t, replica)
	fdb := openForwarding(t, replica)
	ctx := t.Context()

	err := WithHalt(ctx, rdb, func(ctx context.Context) error {
		if err := insert(ctx, rdb, "withhalt auto"); err != nil {
			return err
		}
		tx, err := rdb.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.Exec("INSERT INTO t(v) VALUES ('withhalt tx')"); err != nil {
			return err
		}
		return tx.Commit()
	})
	require.NoError(t, err)

	require.NoError(t, insert(ctx, fdb, "forward auto"))
	tx, err := fdb.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.Exec("INSERT INTO t(v) VALUES ('forward tx')")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	wantNotPrimary(t, insert(ctx, rdb, "plain"), cluster.Primary().Hostname())
	assertPrimaryWrites(t, cluster, pdb)

	cluster.WaitReplicated(t)
	for _, n := range cluster.Nodes() {
		db := openNode(t, n)
		for _, v := range []string{"withhalt auto", "withhalt tx", "forward auto", "forward tx"} {
			assert.Equal(t, 1, count(t, db, v), "%s on %s", v, n.Hostname())
		}
		assert.Equal(t, 0, count(t, db, "plain"), "refused write on %s", n.Hostname())
	}
}

// TestLiteFSHaltWritersTogether runs a writer on the primary and a halted
// writer on a replica at once: every acknowledged write must reach every
// node exactly once, and the nodes must end identical.
//
// Without waitCaughtUp, LiteFS v0.5.14 failed it about one run in three:
// when a transaction the primary committed reaches a replica after the
// primary granted that replica's HALT request, the replica's stream
// processor, which holds the database's write lock, calls
// UnsetRemoteHaltLock, whose Recover waits for that same lock (store.go,
// processLTXStreamFrame). The replica stopped applying transactions until
// LiteFS restarted, and every later HALT request there failed with EIO
// after 10 s. With it, the replica's writes wait for the primary's pauses.
func TestLiteFSHaltWritersTogether(t *testing.T) {
	cluster, pdb := haltCluster(t, 3)
	rdb := openNode(t, cluster.Replicas()[0])
	deadline := time.Now().Add(3 * time.Second)
	var mu sync.Mutex
	var acked []string
	var fromReplica int
	ack := func(v string) {
		mu.Lock()
		acked = append(acked, v)
		if v[0] == 'r' {
			fromReplica++
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; time.Now().Before(deadline); i++ {
			v := fmt.Sprint("p", i)
			if assert.NoError(t, insert(t.Context(), pdb, v)) {
				ack(v)
			}
		}
	})
	wg.Go(func() {
		for i := 0; time.Now().Before(deadline); i++ {
			v := fmt.Sprint("r", i)
			err := WithHalt(t.Context(), rdb, func(ctx context.Context) error { return insert(ctx, rdb, v) })
			if assert.NoError(t, err) {
				ack(v)
			}
		}
	})
	wg.Wait()
	require.NotZero(t, fromReplica, "no write forwarded from the replica")
	t.Logf("%d acknowledged writes, %d from the replica", len(acked), fromReplica)

	cluster.WaitReplicated(t)
	want, err := cluster.Primary().Pos()
	require.NoError(t, err)
	for _, n := range cluster.Nodes() {
		db := openNode(t, n)
		got := map[string]int{}
		rows, err := db.Query("SELECT v, count(*) FROM t GROUP BY v")
		require.NoError(t, err)
		for rows.Next() {
			var v string
			var c int
			require.NoError(t, rows.Scan(&v, &c))
			got[v] = c
		}
		require.NoError(t, rows.Err())
		rows.Close()
		for _, v := range acked {
			assert.Equal(t, 1, got[v], "%s on %s", v, n.Hostname())
		}
		var check string
		require.NoError(t, db.QueryRow("PRAGMA integrity_check").Scan(&check))
		assert.Equal(t, "ok", check, n.Hostname())
		pos, err := n.Pos()
		require.NoError(t, err)
		assert.Equal(t, want, pos, "-pos of %s", n.Hostname())
	}
}

func TestLiteFSHaltReleasedOnEveryPath(t *testing.T) {
	cluster, pdb := haltCluster(t, 2)
	replica := cluster.Replicas()[0]
	rdb := openNode(t, replica)
	errFn := errors.New("fn failed")
	tests := []struct {
		name string
		run  func(t *testing.T) error
		want error
	}{
		{name: "error", want: errFn, run: func(t *testing.T) error {
			return WithHalt(t.Context(), rdb, func(ctx context.Context) error {
				require.NoError(t, insert(ctx, rdb, "before error"))
				return errFn
			})
		}},
		{name: "panic", want: errFn, run: func(t *testing.T) (err error) {
			defer func() { err, _ = recover().(error) }()
			return WithHalt(t.Context(), rdb, func(context.Context) error { panic(errFn) })
		}},
		{name: "ctx cancelled inside fn", want: context.Canceled, run: func(t *testing.T) error {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			return WithHalt(ctx, rdb, func(ctx context.Context) error {
				require.NoError(t, insert(ctx, rdb, "before cancel"))
				cancel()
				return ctx.Err()
			})
		}},
		{name: "ctx cancelled while waiting", want: context.DeadlineExceeded, run: func(t *testing.T) error {
			// Another handle of the node holds the lock, so LiteFS keeps
			// this request waiting for the primary to halt.
			other, err := openLockFile(replica.DBPath() + "-lock")
			require.NoError(t, err)
			defer other.close()
			require.NoError(t, other.lock())
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			err = WithHalt(ctx, rdb, func(context.Context) error {
				t.Error("fn called without the lock")
				return nil
			})
			var he *HaltError
			assert.ErrorAs(t, err, &he)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, tc.run(t), tc.want)
			assertPrimaryWrites(t, cluster, pdb)
		})
	}
}

// TestLiteFSHaltPrimaryStops stops the primary while a replica waits for
// the lock: WithHalt must fail with a HaltError within its context's bound.
func TestLiteFSHaltPrimaryStops(t *testing.T) {
	cluster, pdb := haltCluster(t, 2)
	require.NoError(t, pdb.Close()) // LiteFS cannot unmount under an open file
	replica := cluster.Replicas()[0]
	rdb := openNode(t, replica)
	lockPath := replica.DBPath() + "-lock"
	other, err := openLockFile(lockPath)
	require.NoError(t, err)
	defer other.close()
	require.NoError(t, other.lock())

	const bound = 5 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- WithHalt(ctx, rdb, func(context.Context) error {
			t.Error("fn called without the lock")
			return nil
		})
	}()
	// The semaphore is taken just before the request goes to LiteFS.
	litefstest.WaitFor(t, func() error {
		if len(haltSem(lockPath)) == 0 {
			return errors.New("WithHalt is not waiting for the lock yet")
		}
		return nil
	})
	require.NoError(t, cluster.Primary().Process().Stop())
	select {
	case err := <-done:
		var he *HaltError
		require.ErrorAs(t, err, &he)
		assert.ErrorIs(t, err, ErrNotPrimary)
		t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(bound + litefstest.DefaultWaitTimeout):
		t.Fatal("WithHalt hung after the primary stopped")
	}
}

// TestLiteFSHaltPrimaryStopsInsideFn stops the primary while a replica
// holds the lock: the job's next write must say why it was not forwarded,
// never "disk I/O error" alone.
func TestLiteFSHaltPrimaryStopsInsideFn(t *testing.T) {
	cluster, pdb := haltCluster(t, 2)
	require.NoError(t, pdb.Close()) // LiteFS cannot unmount under an open file
	rdb := openNode(t, cluster.Replicas()[0])
	err := WithHalt(t.Context(), rdb, func(ctx context.Context) error {
		require.NoError(t, insert(ctx, rdb, "before"))
		require.NoError(t, cluster.Primary().Process().Stop())
		return insert(ctx, rdb, "after")
	})
	var he *HaltError
	require.ErrorAs(t, err, &he)
	assert.ErrorIs(t, err, ErrNotPrimary)
	assert.Contains(t, []HaltReason{HaltNoPrimary, HaltForwardFailed}, he.Reason)
	t.Log(err)
}

// TestLiteFSHaltRightAfterPrimaryWrites asks for the lock right after a
// burst of writes on the primary, while the replica may still be applying
// them: WithHalt must wait for it to catch up rather than let LiteFS v0.5.14
// deadlock it (see TestLiteFSHaltWritersTogether).
func TestLiteFSHaltRightAfterPrimaryWrites(t *testing.T) {
	cluster, pdb := haltCluster(t, 2)
	rdb := openNode(t, cluster.Replicas()[0])
	const rounds, burst = 3, 200
	for round := range rounds {
		for i := range burst {
			require.NoError(t, insert(t.Context(), pdb, fmt.Sprint("p", round, "-", i)))
		}
		ctx, cancel := context.WithTimeout(t.Context(), litefstest.DefaultWaitTimeout)
		err := WithHalt(ctx, rdb, func(ctx context.Context) error { return insert(ctx, rdb, fmt.Sprint("r", round)) })
		cancel()
		require.NoError(t, err, "round %d", round)
	}
	cluster.WaitReplicated(t)
	for _, n := range cluster.Nodes() {
		var p, r int
		db := openNode(t, n)
		require.NoError(t, db.QueryRow("SELECT count(*) FROM t WHERE v LIKE 'p%'").Scan(&p))
		require.NoError(t, db.QueryRow("SELECT count(*) FROM t WHERE v LIKE 'r%'").Scan(&r))
		assert.Equal(t, rounds*burst, p, n.Hostname())
		assert.Equal(t, rounds, r, n.Hostname())
	}
}

// returnsWithin runs call and reports whether it returned within d; if it
// did not, it runs unstick, then waits for call, so the test ends cleanly.
func returnsWithin(t *testing.T, d time.Duration, unstick func(), call func() error) (error, bool) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err, true
	case <-time.After(d):
	}
	unstick()
	return <-done, false
}

// TestLiteFSHaltEndsWhatFnLeftOpen: LiteFS releases the lock only once every
// transaction on the node has ended, so a transaction or write rows that fn
// left open would keep the primary halted and WithHalt waiting forever.
func TestLiteFSHaltEndsWhatFnLeftOpen(t *testing.T) {
	cluster, pdb := haltCluster(t, 2)
	rdb := openNode(t, cluster.Replicas()[0])

	t.Run("transaction", func(t *testing.T) {
		var tx *sql.Tx
		err, returned := returnsWithin(t, 20*time.Second, func() { tx.Rollback() }, func() error {
			return WithHalt(t.Context(), rdb, func(ctx context.Context) (err error) {
				if tx, err = rdb.BeginTx(ctx, nil); err != nil {
					return err
				}
				_, err = tx.ExecContext(ctx, "INSERT INTO t(v) VALUES ('left open')")
				return err
			})
		})
		require.True(t, returned, "WithHalt waited for the transaction fn left open")
		require.NoError(t, err)
		assertPrimaryWrites(t, cluster, pdb) // before the user touches tx again
		var he *HaltError
		if assert.ErrorAs(t, tx.Commit(), &he) {
			assert.Equal(t, HaltReleased, he.Reason)
		}
		assert.Equal(t, 0, count(t, pdb, "left open"))
	})

	t.Run("write rows", func(t *testing.T) {
		var rows *sql.Rows
		err, returned := returnsWithin(t, 20*time.Second, func() { rows.Close() }, func() error {
			return WithHalt(t.Context(), rdb, func(ctx context.Context) (err error) {
				rows, err = rdb.QueryContext(ctx, "INSERT INTO t(v) VALUES ('ret'), ('ret') RETURNING id")
				if err != nil {
					return err
				}
				require.True(t, rows.Next())
				return nil
			})
		})
		require.True(t, returned, "WithHalt waited for the rows fn left open")
		require.NoError(t, err)
		assertPrimaryWrites(t, cluster, pdb)
		for rows.Next() {
		}
		assert.NoError(t, rows.Err())
		assert.NoError(t, rows.Close())
		// Closing the rows committed their statement, under the lock.
		assert.Equal(t, 2, count(t, pdb, "ret"))
	})
}

// TestLiteFSHaltReleaseDoesNotWaitForAReader: a reader of the same replica
// with its own context delays LiteFS's release of the lock; WithHalt returns
// all the same, and the next WithHalt waits for the release.
func TestLiteFSHaltReleaseDoesNotWaitForAReader(t *testing.T) {
	cluster, pdb := haltCluster(t, 2)
	rdb := openNode(t, cluster.Replicas()[0])
	reader, err := rdb.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	var n int
	require.NoError(t, reader.QueryRow("SELECT count(*) FROM t").Scan(&n))
	err, returned := returnsWithin(t, 20*time.Second, func() { reader.Rollback() }, func() error {
		return WithHalt(t.Context(), rdb, func(ctx context.Context) error { return insert(ctx, rdb, "with a reader") })
	})
	require.True(t, returned, "WithHalt waited for an unrelated reader")
	require.NoError(t, err)
	next := make(chan error, 1)
	go func() {
		next <- WithHalt(t.Context(), rdb, func(ctx context.Context) error { return insert(ctx, rdb, "next") })
	}()
	require.NoError(t, reader.Rollback())
	assert.NoError(t, <-next)
	assertPrimaryWrites(t, cluster, pdb)
	assert.Equal(t, 1, count(t, pdb, "with a reader"))
	assert.Equal(t, 1, count(t, pdb, "next"))
}
