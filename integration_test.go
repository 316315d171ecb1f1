package litefs

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// These tests run real LiteFS (see litefstest.StartCluster): they skip where
// FUSE is missing, and fail there when LITEFS_REQUIRE=1.

func openNode(tb testing.TB, n *litefstest.Node) *sql.DB {
	tb.Helper()
	c, err := NewConnector(n.DSN(), WithLogger(discard))
	require.NoError(tb, err)
	db := sql.OpenDB(c)
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestLiteFSCluster(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	pdb := openNode(t, primary)
	for _, q := range []string{
		"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
		"INSERT INTO t(v) VALUES ('one'), ('two')",
	} {
		_, err := pdb.Exec(q)
		require.NoError(t, err, "primary: %s", q)
	}
	cluster.WaitReplicated(t)
	rdb := openNode(t, replica)

	t.Run("no directory cache on a LiteFS mount", func(t *testing.T) {
		conn, err := pdb.Conn(t.Context())
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.Raw(func(dc any) error {
			assert.Equal(t, int64(-1), dc.(*Conn).probe.dirfd.Load(),
				"the prober holds the LiteFS root open: FUSE mounts must be read every write")
			assert.Nil(t, dc.(*Conn).probe.dirw.Load(),
				"the prober watches the LiteFS root: FUSE mounts must be read every write")
			return nil
		}))
	})
	t.Run("replica reads what the primary wrote", func(t *testing.T) {
		var n int
		require.NoError(t, rdb.QueryRow("SELECT count(*) FROM t").Scan(&n))
		require.Equal(t, 2, n, "rows")
	})
	t.Run("replica refuses writes naming the primary", func(t *testing.T) {
		for _, q := range []string{
			"INSERT INTO t(v) VALUES ('no')",
			"SELECT 1; DELETE FROM t",
			"CREATE TABLE IF NOT EXISTS u(x)",
		} {
			_, err := rdb.Exec(q)
			var np *NotPrimaryError
			require.ErrorAs(t, err, &np, q)
			require.Equal(t, primary.Hostname(), np.PrimaryID, q)
		}
		_, err := rdb.Exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
		require.NoError(t, err, "start-up DDL for a table the primary made")
	})
	t.Run("primary writes reach the replica", func(t *testing.T) { checkPrimaryWritesReachReplica(t, pdb, rdb) })
	t.Run("a write transaction on a replica does not stall replication", func(t *testing.T) { checkRefusedTxDoesNotStall(t, pdb, replica) })
	t.Run("LiteFS's own refusal becomes NotPrimaryError", func(t *testing.T) { checkLiteFSRefusal(t, primary, replica) })
}

func TestLiteFSReplicaOpensBeforeTheDatabaseExists(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	replica := cluster.Replicas()[0]
	c, err := NewConnector(replica.DSN(), WithLogger(discard))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	defer db.Close()
	err = db.PingContext(t.Context())
	var np *NotPrimaryError
	require.ErrorAs(t, err, &np)
	require.Equal(t, cluster.Primary().Hostname(), np.PrimaryID)
}

// replicaRefusedKinds are statements a replica refuses, one of each way a
// write could slip through or leave a trace.
var replicaRefusedKinds = []string{
	"INSERT INTO t(v) VALUES ('no')",
	"SELECT 1; DELETE FROM t",
	"BEGIN; INSERT INTO t(v) VALUES ('b'); COMMIT",
	"BEGIN IMMEDIATE; INSERT INTO t(v) VALUES ('b'); COMMIT",
	"SAVEPOINT s; INSERT INTO t(v) VALUES ('s'); RELEASE s",
	"CREATE TABLE IF NOT EXISTS u(x)",
	"INSERT INTO not_yet(x) VALUES (1)",
	"SELECT * FROM pragma_optimize(65538)",
	"PRAGMA journal_mode = DELETE",
	"PRAGMA wal_checkpoint(TRUNCATE)",
	"PRAGMA locking_mode = EXCLUSIVE",
	"PRAGMA user_version = 9",
	"VACUUM",
	"ANALYZE",
}

// startPair starts a two-node cluster, runs schema on the primary, waits
// for it to replicate, and opens a pool on the primary and on the replica.
func startPair(t *testing.T, schema string) (*litefstest.Cluster, *sql.DB, *sql.DB) {
	t.Helper()
	cluster := litefstest.StartCluster(t, 2)
	pdb := openNode(t, cluster.Primary())
	_, err := pdb.Exec(schema)
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	return cluster, pdb, openNode(t, cluster.Replicas()[0])
}

func TestLiteFSReplicaKeepsApplyingAfterRefusals(t *testing.T) {
	cluster, pdb, rdb := startPair(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t(v); INSERT INTO t(v) VALUES ('a')")
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	rdb.SetMaxOpenConns(1) // one connection: whatever a refusal leaves, the next statement meets
	kinds := append(replicaRefusedKinds, "VACUUM INTO '"+replica.MountDir()+"/copy.db'")
	for _, q := range kinds {
		err := runOn(t.Context(), rdb, q, true)
		var np *NotPrimaryError
		if assert.ErrorAs(t, err, &np, q) {
			assert.Equal(t, primary.Hostname(), np.PrimaryID, q)
		}
		tr := &Tracker{}
		_, err = pdb.ExecContext(WithTracker(t.Context(), tr), "INSERT INTO t(v) VALUES (?)", q)
		require.NoError(t, err)
		txid, ok, err := tr.TXID()
		require.True(t, ok)
		require.NoError(t, err)
		replica.WaitTXID(t, uint64(txid)) // its -pos advances: replication goes on
		var n int
		assert.NoError(t, rdb.QueryRow("SELECT count(*) FROM t WHERE v = ?", q).Scan(&n), q)
		assert.Equal(t, 1, n, "after %q the replica sees the primary's row", q)
	}
	// The databases close before LiteFS stops, and both nodes unmount cleanly.
	backup := filepath.Join(t.TempDir(), "backup.db")
	_, err := rdb.Exec("VACUUM INTO '" + backup + "'")
	assert.NoError(t, err, "a backup outside the mount, on a replica")
	_, err = os.Stat(backup)
	assert.NoError(t, err, "the backup file")
	stopCleanly(t, []*sql.DB{rdb, pdb}, replica, primary)
}

// TestLiteFSWritersOnBothNodes runs every flipWrites kind at once on the
// primary and on a replica of a real cluster: each error must be a refusal,
// and every refused write leaves replication going. (A static lease cannot
// move the primary, so the role does not flip here; temp mounts flip it.)
func TestLiteFSWritersOnBothNodes(t *testing.T) {
	cluster, pdb, rdb := startPair(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	const writers, perWriter = 3, 20
	type outcome struct {
		acked int
		odd   []error
	}
	onReplica := make(chan outcome, 1)
	go func() {
		acked, odd := writeAcrossFlips(rdb, writers, perWriter)
		onReplica <- outcome{acked, odd}
	}()
	acked, odd := writeAcrossFlips(pdb, writers, perWriter)
	assert.Empty(t, odd, "on the primary")
	assert.Equal(t, writers*perWriter, acked, "on the primary")
	r := <-onReplica
	assert.Empty(t, r.odd, "on the replica, every error is a refusal")
	assert.Zero(t, r.acked, "the replica acknowledged writes")
	cluster.WaitReplicated(t)
	var n int
	require.NoError(t, rdb.QueryRow("SELECT count(*) FROM t").Scan(&n))
	assert.Equal(t, acked, n, "the replica has every acknowledged row")
	stopCleanly(t, []*sql.DB{rdb, pdb}, replica, primary)
}

func checkRefusedTxDoesNotStall(t *testing.T, pdb *sql.DB, replica *litefstest.Node) {
	for _, suffix := range []string{"", "&_txlock=immediate"} {
		c, err := NewConnector(replica.DSN()+suffix, WithLogger(discard))
		require.NoError(t, err)
		db := sql.OpenDB(c)
		defer db.Close()
		tx, err := db.BeginTx(t.Context(), nil)
		if err == nil {
			_, err = tx.Exec("INSERT INTO t(v) VALUES ('stall?')")
			defer tx.Rollback() // held open while the primary writes
		}
		require.ErrorIs(t, err, ErrNotPrimary, "_txlock%q", suffix)
		var last TXID
		for range 5 {
			tr := &Tracker{}
			_, err := pdb.ExecContext(WithTracker(t.Context(), tr), "INSERT INTO t(v) VALUES ('go on')")
			require.NoError(t, err)
			last, _, err = tr.TXID()
			require.NoError(t, err)
		}
		replica.WaitTXID(t, uint64(last))
	}
}

func checkLiteFSRefusal(t *testing.T, primary, replica *litefstest.Node) {
	fresh := openNode(t, replica)
	conn, err := fresh.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c := dc.(*Conn)
		// Bypass the driver's check and its query_only, as a write
		// racing a demotion would.
		_, err := c.SQLite().Exec("PRAGMA query_only = 0", nil)
		require.NoError(t, err)
		c.queryOnly = qoOff
		_, raw := c.SQLite().Exec("INSERT INTO t(v) VALUES ('raw')", nil)
		var se sqlite3.Error
		require.ErrorAs(t, raw, &se, "LiteFS let a replica write")
		require.Equal(t, sqlite3.ErrIoErrWrite, se.ExtendedCode, "LiteFS's SQLITE_IOERR_WRITE")
		t.Logf("LiteFS refused with %v (code %d, extended %d, errno %d)", raw, se.Code, se.ExtendedCode, se.SystemErrno)
		got := failed(c, t.Context(), raw)
		var np *NotPrimaryError
		require.ErrorAs(t, got, &np)
		require.Equal(t, primary.Hostname(), np.PrimaryID)
		require.ErrorIs(t, got, raw, "the refusal wraps SQLite's error")
		return nil
	})
	require.NoError(t, err)
}

func checkPrimaryWritesReachReplica(t *testing.T, pdb, rdb *sql.DB) {
	tr := &Tracker{}
	_, err := pdb.ExecContext(WithTracker(t.Context(), tr), "INSERT INTO t(v) VALUES ('three')")
	require.NoError(t, err)
	id, ok, err := tr.TXID()
	require.NoError(t, err, "Tracker.TXID after a commit on the primary")
	require.True(t, ok, "Tracker.TXID after a commit on the primary")
	cur, err := CurrentTXID(t.Context(), pdb)
	require.NoError(t, err, "CurrentTXID on the primary")
	require.GreaterOrEqual(t, cur, id, "CurrentTXID on the primary")
	ctx, cancel := context.WithTimeout(t.Context(), litefstest.DefaultWaitTimeout)
	defer cancel()
	_, err = WaitTXID(ctx, rdb, id)
	require.NoError(t, err, "WaitTXID(%v) on the replica", id)
	var v string
	require.NoError(t, rdb.QueryRow("SELECT v FROM t WHERE v = 'three'").Scan(&v), "the replica at TXID %v has the row", id)
}

// stopCleanly closes dbs, then stops nodes in order, each of which must
// unmount and exit cleanly.
func stopCleanly(t *testing.T, dbs []*sql.DB, nodes ...*litefstest.Node) {
	t.Helper()
	for _, db := range dbs {
		require.NoError(t, db.Close())
	}
	for _, n := range nodes {
		assert.NoError(t, n.Process().Stop(), "stopping %s", n.Hostname())
	}
}
