package litefs

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/internal/dirwatch"
	"github.com/litefs-sql/litefs/litefstest"
)

// rowsIn counts t's rows in the database file in dir, read with plain
// go-sqlite3.
func rowsIn(t *testing.T, dir string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, litefstest.DefaultDBName)+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM t").Scan(&n))
	return n
}

// TestCommitRefusedAfterTheMove: a commit refused because the directory
// moved leaves nothing in the old file, the pool usable (the next statement
// opens the file the path shows) and database/sql consistent; a COMMIT run
// as a statement on a sql.Conn (BEGIN ... COMMIT, as migration tools do)
// is refused the same way as Tx.Commit, its row not left in the file the
// path no longer shows.
func TestCommitRefusedAfterTheMove(t *testing.T) {
	for _, tc := range []struct {
		name   string
		commit func(t *testing.T, db *sql.DB, move func()) error
	}{
		{name: "Tx.Commit", commit: func(t *testing.T, db *sql.DB, move func()) error {
			tx, err := db.Begin()
			require.NoError(t, err)
			_, err = tx.Exec("INSERT INTO t(v) VALUES ('in the transaction')")
			require.NoError(t, err, "precondition: the write is admitted before the move")
			move()
			err = tx.Commit()
			assert.ErrorIs(t, tx.Rollback(), sql.ErrTxDone, "the refused transaction is over")
			return err
		}},
		{name: "COMMIT statement on a sql.Conn", commit: func(t *testing.T, db *sql.DB, move func()) error {
			ctx := context.Background()
			conn, err := db.Conn(ctx)
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.ExecContext(ctx, "BEGIN")
			require.NoError(t, err)
			_, err = conn.ExecContext(ctx, "INSERT INTO t(v) VALUES ('in the transaction')")
			require.NoError(t, err, "precondition: the write is admitted before the move")
			move()
			_, err = conn.ExecContext(ctx, "COMMIT")
			if err != nil {
				_, _ = conn.ExecContext(ctx, "ROLLBACK")
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := litefstest.NewMount(t)
			db := openDB(t, m, "")
			old := m.Dir() + ".old"
			err := tc.commit(t, db, func() {
				require.NoError(t, os.Rename(m.Dir(), old))
				require.NoError(t, os.Mkdir(m.Dir(), 0o755))
				dirwatch.Sync(m.Dir())
			})
			assert.ErrorIs(t, err, ErrNoPrimary, "a commit into a file %s no longer shows", m.Dir())
			inOld := rowsIn(t, old)
			assert.Equal(t, 1, inOld, "the refused transaction's row is in the old file")

			// The pool: the next statements open the file the path shows.
			for i := range 3 {
				_, err := db.Exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
				require.NoError(t, err, "statement %d after the refusal", i)
			}
			_, err = db.Exec("INSERT INTO t(v) VALUES ('after')")
			require.NoError(t, err)
			assert.Equal(t, 1, rowsIn(t, m.Dir()), "the write after the refusal went to the new file")
			assert.Equal(t, inOld, rowsIn(t, old), "the old file changed after the refusal")
		})
	}
}
