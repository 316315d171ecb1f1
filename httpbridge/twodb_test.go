package httpbridge

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// TestCookieNamesConfigDB: read-your-writes follows Config.DB, whose
// position a replica compares with the cookie. A handler that writes to
// Config.DB and then to another database of the same mount (an audit log, a
// job queue) must get Config.DB's TXID in its cookie: the other's count on
// their own, and a replica behind Config.DB's write would serve the
// client's next read without it.
func TestCookieNamesConfigDB(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	primary := cluster.Primary()
	pdb := openFollowing(t, primary)
	_, err := pdb.Exec("CREATE TABLE posts(v TEXT)")
	require.NoError(t, err)
	for range 20 { // Config.DB's TXIDs run well ahead of the other's
		_, err := pdb.Exec("INSERT INTO posts VALUES ('old')")
		require.NoError(t, err)
	}
	other, err := sql.Open(litefs.DriverName, litefstest.DSN(filepath.Join(primary.MountDir(), "audit.db"))+"&_litefs_api="+primary.URL())
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	_, err = other.Exec("CREATE TABLE audit(v TEXT)")
	require.NoError(t, err)

	b := newBridge(t, Config{DB: pdb, InstanceID: primary.Hostname()})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, db := range []*sql.DB{pdb, other} {
			table := map[*sql.DB]string{pdb: "posts", other: "audit"}[db]
			if _, err := db.ExecContext(r.Context(), "INSERT INTO "+table+" VALUES ('new')"); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
	}))
	w := serve(h, withCookie(http.MethodPost, "/posts", ""))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	pos, err := primary.Pos()
	require.NoError(t, err)
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == DefaultTXIDCookie {
			cookie = c
		}
	}
	require.NotNil(t, cookie, "no cookie for a request that wrote")
	got, err := litefs.ParseTXID(cookie.Value)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, got, litefs.TXID(pos.TXID), "the cookie names TXID %v; the request's write to Config.DB is TXID %v", got, litefs.TXID(pos.TXID))
}
