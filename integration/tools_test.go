package integration

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// A tool is a migration tool or ORM run through the driver. Each tool has
// two migrations: the first creates the table posts(id, title), the second
// the table tags(id, name).
type tool struct {
	// up applies the tool's first n migrations (1 or 2) to db.
	up func(ctx context.Context, db *sql.DB, n int) error
	// refusal checks the error up returned on a replica: that it is the
	// driver's refusal, through whatever the tool wraps it in.
	refusal func(t *testing.T, err error)
	// params are DSN parameters the tool needs, such as "&_fk=1".
	params string
	// write, if set, inserts a post through the tool's own API (an ORM's).
	write func(ctx context.Context, db *sql.DB) error
	// leaksTx is set for a tool that leaves a transaction open after a
	// refused write; the test then checks that it does, so that a fixed
	// tool shows up.
	leaksTx bool
}

// refused is the refusal check of a tool that wraps errors with %w (or
// returns them as they are).
func refused(t *testing.T, err error) {
	t.Helper()
	assert.ErrorIs(t, err, litefs.ErrNotPrimary)
}

// testTool runs tl on a temporary primary, on a temporary replica, and on a
// real LiteFS cluster.
func testTool(t *testing.T, tl tool) {
	t.Run("primary", func(t *testing.T) { testToolPrimary(t, tl) })
	t.Run("replica", func(t *testing.T) { testToolReplica(t, tl) })
	t.Run("cluster", func(t *testing.T) { testToolCluster(t, tl) })
}

// testToolPrimary migrates a database on a plain directory, which the
// driver treats as a single primary, twice.
func testToolPrimary(t *testing.T, tl tool) {
	m := litefstest.NewMount(t)
	db := openLiteFS(t, m.DSN()+tl.params)
	ctx := t.Context()
	require.NoError(t, tl.up(ctx, db, 1))
	require.NoError(t, tl.up(ctx, db, 2))
	require.NoError(t, tl.up(ctx, db, 2), "migrating again")
	_, err := db.ExecContext(ctx, "INSERT INTO posts(title) VALUES ('one')")
	assert.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO tags(name) VALUES ('go')")
	assert.NoError(t, err)
	if tl.write != nil {
		assert.NoError(t, tl.write(ctx, db), "a write through the tool")
	}
	assertNoTx(t, db)
}

// testToolReplica migrates a database once on a temporary mount, makes the
// mount a replica, and checks that the second migration is refused, leaves
// no transaction open, and does not change a byte of the database.
func testToolReplica(t *testing.T, tl tool) {
	m := litefstest.NewMount(t)
	ctx := t.Context()
	db := openLiteFS(t, m.DSN()+tl.params)
	require.NoError(t, tl.up(ctx, db, 1))
	require.NoError(t, db.Close())
	before := fileSum(t, m.DBPath())

	m.SetReplica("node-a")
	db = openLiteFS(t, m.DSN()+tl.params)
	db.SetMaxOpenConns(1)
	err := tl.up(ctx, db, 2)
	require.Error(t, err, "the second migration on a replica")
	tl.refusal(t, err)
	if tl.leaksTx {
		assert.Equal(t, 1, db.Stats().InUse,
			"the tool was known to leave a transaction open after a refusal; if it no longer does, clear leaksTx")
	} else {
		assertNoTx(t, db)
		requireWriteRefused(t, tl, db, "a replica")
		var n int
		assert.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM posts").Scan(&n), "a read after the refusal")
	}
	require.NoError(t, db.Close())
	assert.Equal(t, before, fileSum(t, m.DBPath()), "the database changed on the replica")
}

// requireWriteRefused runs tl's write, if it has one, on db, a replica's
// pool (where, in messages): it must be refused and leave no transaction open.
func requireWriteRefused(t *testing.T, tl tool, db *sql.DB, where string) {
	t.Helper()
	if tl.write == nil {
		return
	}
	err := tl.write(t.Context(), db)
	require.Error(t, err, "a write through the tool on "+where)
	tl.refusal(t, err)
	assertNoTx(t, db)
}

// testToolCluster migrates on the primary of a real cluster, checks that
// the replica gets the schema, that the replica refuses the next migration,
// and that it keeps applying the primary's transactions afterwards.
func testToolCluster(t *testing.T, tl tool) {
	c := litefstest.StartCluster(t, 2)
	primary, replica := c.Primary(), c.Replicas()[0]
	ctx := t.Context()
	pdb := openLiteFS(t, primary.DSN()+tl.params)
	require.NoError(t, tl.up(ctx, pdb, 1))
	c.WaitReplicated(t)

	rdb := openLiteFS(t, replica.DSN()+tl.params)
	rdb.SetMaxOpenConns(1)
	var n int
	require.NoError(t, rdb.QueryRowContext(ctx, "SELECT count(*) FROM posts").Scan(&n),
		"the replica has the primary's schema")
	if tl.leaksTx {
		// A leaked transaction on a real replica holds a read snapshot,
		// which stalls replication and keeps the mount busy: run the safe
		// pattern, asking the driver first.
		err := litefs.CheckPrimary(ctx, rdb)
		assert.ErrorIs(t, err, litefs.ErrNotPrimary)
	} else {
		err := tl.up(ctx, rdb, 2)
		require.Error(t, err, "the second migration on the replica")
		tl.refusal(t, err)
		assertNoTx(t, rdb)
		requireWriteRefused(t, tl, rdb, "the replica")
	}

	require.NoError(t, tl.up(ctx, pdb, 2))
	_, err := pdb.ExecContext(ctx, "INSERT INTO tags(name) VALUES ('after')")
	require.NoError(t, err)
	want, err := primary.Pos()
	require.NoError(t, err)
	replica.WaitTXID(t, want.TXID)
	var name string
	assert.NoError(t, rdb.QueryRowContext(ctx, "SELECT name FROM tags").Scan(&name),
		"the replica applies the primary's transactions after the refusal")
	assert.Equal(t, "after", name)
}

// openLiteFS opens dsn with the litefs driver, closed when the test ends
// (before a cluster started earlier in the test stops).
func openLiteFS(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(litefs.DriverName, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// assertNoTx checks that no connection of db is checked out of the pool
// and that the connection the pool hands out next is outside a
// transaction, as SQLite sees it.
func assertNoTx(t *testing.T, db *sql.DB) {
	t.Helper()
	if !assert.Zero(t, db.Stats().InUse, "connections still checked out (a transaction left open?)") {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*litefs.Conn)
		if !ok {
			return errors.New("not a litefs connection")
		}
		assert.True(t, autoCommit(c.SQLite()), "the connection is inside a transaction")
		return nil
	})
	require.NoError(t, err)
}

// autoCommit reports whether c is outside a transaction.
func autoCommit(c *sqlite3.SQLiteConn) bool { return c.AutoCommit() }

// fileSum returns a digest of the database file and its WAL, if any.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	h := sha256.New()
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		h.Write(b)
	}
	return [32]byte(h.Sum(nil))
}
