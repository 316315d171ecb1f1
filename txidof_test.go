package litefs

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// openDSN opens dsn with the node's API as a pool of its own.
func openDSN(t *testing.T, dsn, api string) (*sql.DB, *Connector) {
	t.Helper()
	c, err := NewConnector(dsn, WithLogger(discard), WithLiteFSAPI(api))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Ping())
	return db, c
}

// TestTrackerTXIDOfEveryWay: what Tracker.TXID / TXIDOf answer after
// commits made through other spellings and other connections of the
// database, on a real primary. Each case states the claim it checks.
func TestTrackerTXIDOfEveryWay(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	p := cluster.Primary()
	pdb, pc := openWithAPI(t, p, p.URL())
	_, err := pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	eventually(t, trustedAs(pc, "primary"), "the primary trusts its stream")
	posPath := p.DBPath() + "-pos"
	otherPath := filepath.Join(p.MountDir(), "other.db")
	odb, _ := openDSN(t, litefstest.DSN(otherPath), p.URL())
	_, err = odb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)

	// Claim 1 (critical): Config.DB written through ATTACH on another
	// database's connection is still a commit to Config.DB; the cookie
	// (TXIDOf(Config.DB)) must exist and be at or above it.
	t.Run("Config.DB written through ATTACH on another database's connection", func(t *testing.T) {
		tr := &Tracker{}
		ctx := WithTracker(context.Background(), tr)
		conn, err := odb.Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.ExecContext(ctx, "ATTACH ? AS c", p.DBPath())
		require.NoError(t, err)
		defer conn.ExecContext(context.Background(), "DETACH c")
		_, err = conn.ExecContext(ctx, "INSERT INTO c.t(v) VALUES ('via attach')")
		require.NoError(t, err)
		after, err := readPos(posPath)
		require.NoError(t, err)

		id, ok, err := tr.TXIDOf(pdb)
		require.NoError(t, err)
		assert.True(t, ok, "Config.DB written (now at TXID %v) but TXIDOf reports no commit to it: no cookie", after)
		assert.GreaterOrEqual(t, id, after)
	})

	// A request that wrote only another database, through ATTACH on
	// Config.DB's connection: the driver does not tell which database a
	// commit wrote (that would cost an authorizer per statement), so
	// TXIDOf(Config.DB) names a TXID of Config.DB that exists: a cookie at
	// worst needless, never ahead of the database.
	t.Run("only an attached database written on Config.DB's connection", func(t *testing.T) {
		tr := &Tracker{}
		ctx := WithTracker(context.Background(), tr)
		conn, err := pdb.Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.ExecContext(ctx, "ATTACH ? AS o", otherPath)
		require.NoError(t, err)
		defer conn.ExecContext(context.Background(), "DETACH o")
		before, err := readPos(posPath)
		require.NoError(t, err)
		_, err = conn.ExecContext(ctx, "INSERT INTO o.t(v) VALUES ('only other')")
		require.NoError(t, err)
		after, err := readPos(posPath)
		require.NoError(t, err)
		require.Equal(t, before, after, "Config.DB was not written")

		id, ok, err := tr.TXIDOf(pdb)
		require.NoError(t, err)
		if ok {
			assert.LessOrEqual(t, id, after, "TXIDOf(Config.DB) names a transaction still to come")
		}
	})

	// Claim 1: Config.DB opened through a symlink to its file (say
	// /data/app.db -> /litefs/app.db). SQLite opens the real file, the
	// connection sees the LiteFS primary and writes; the Tracker must
	// then have its TXID.
	link := filepath.Join(t.TempDir(), "app.db")
	require.NoError(t, os.Symlink(p.DBPath(), link))
	ldb, _ := openDSN(t, litefstest.DSN(link), p.URL())
	t.Run("Config.DB opened through a symlinked file", func(t *testing.T) {
		tr := &Tracker{}
		ctx := WithTracker(context.Background(), tr)
		_, err := ldb.ExecContext(ctx, "INSERT INTO t(v) VALUES ('via link')")
		require.NoError(t, err)
		after, err := readPos(posPath)
		require.NoError(t, err)
		require.True(t, tr.Committed())

		id, ok, err := tr.TXID()
		require.NoError(t, err)
		assert.True(t, ok, "TXID after a commit on the primary (now at %v)", after)
		assert.GreaterOrEqual(t, id, after)
		id, ok, err = tr.TXIDOf(ldb)
		require.NoError(t, err)
		assert.True(t, ok, "TXIDOf(the symlinked pool) after a commit on the primary (now at %v)", after)
		assert.GreaterOrEqual(t, id, after)
	})

	// Claim 1: a second pool on Config.DB's file, through a symlink,
	// writes it: TXIDOf(Config.DB) must name that commit.
	t.Run("Config.DB written through a second pool on a symlinked file", func(t *testing.T) {
		tr := &Tracker{}
		ctx := WithTracker(context.Background(), tr)
		_, err := ldb.ExecContext(ctx, "INSERT INTO t(v) VALUES ('via link 2')")
		require.NoError(t, err)
		after, err := readPos(posPath)
		require.NoError(t, err)

		id, ok, err := tr.TXIDOf(pdb)
		require.NoError(t, err)
		assert.True(t, ok, "Config.DB written (now at %v) through another spelling; no TXID for it", after)
		assert.GreaterOrEqual(t, id, after)
	})

	// Claim 4: VACUUM is a LiteFS transaction whatever its spelling.
	for _, q := range []string{
		"VACUUM",
		"VACUUM main",
		"/* c */ VACUUM",
		"-- c\nVACUUM",
		"SELECT 1; VACUUM",
		"VACUUM; SELECT 1",
		// The INSERT's commit hook reads its TXID (N+1); the VACUUM
		// then makes N+2, which the prefetched read does not cover.
		"INSERT INTO t(v) VALUES ('y'); VACUUM",
	} {
		t.Run("VACUUM as "+q, func(t *testing.T) {
			_, err := pdb.Exec("INSERT INTO t(v) VALUES ('x'); DELETE FROM t WHERE v = 'x'")
			require.NoError(t, err)
			before, err := readPos(posPath)
			require.NoError(t, err)
			tr := &Tracker{}
			tr.PrefetchTXID()
			_, err = pdb.ExecContext(WithTracker(context.Background(), tr), q)
			require.NoError(t, err)
			after, err := readPos(posPath)
			require.NoError(t, err)
			require.Greater(t, after, before, "the VACUUM made no LiteFS transaction")
			assert.True(t, tr.Committed(), "%q made TXID %v, unheard", q, after)
			id, ok, err := tr.TXIDOf(pdb)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.GreaterOrEqual(t, id, after)
		})
	}

	// Claim 3: VACUUM INTO writes a copy, not Config.DB (a backup
	// endpoint): the request made no commit to Config.DB.
	t.Run("VACUUM INTO", func(t *testing.T) {
		before, err := readPos(posPath)
		require.NoError(t, err)
		tr := &Tracker{}
		_, err = pdb.ExecContext(WithTracker(context.Background(), tr), "VACUUM INTO ?", filepath.Join(t.TempDir(), "copy.db"))
		require.NoError(t, err)
		after, err := readPos(posPath)
		require.NoError(t, err)
		require.Equal(t, before, after, "VACUUM INTO made a LiteFS transaction")
		_, ok, err := tr.TXIDOf(pdb)
		require.NoError(t, err)
		assert.False(t, ok, "a TXID for Config.DB, which VACUUM INTO did not write")
	})
}
