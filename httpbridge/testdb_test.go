package httpbridge

import (
	"database/sql"
	"testing"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/require"
)

// openTestDB opens a litefs database in a new litefstest.Mount, with a posts
// table created while the node is still the primary (a plain directory).
func openTestDB(t *testing.T) (*sql.DB, *litefstest.Mount) {
	t.Helper()
	m := litefstest.NewMount(t)
	db, err := sql.Open(litefs.DriverName, m.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec("CREATE TABLE posts (title TEXT)")
	require.NoError(t, err)
	return db, m
}
