package httpbridge

import (
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// Outside review of the bridge's use of the commit-hook TXID read.

// openFollowing opens n's database following n's LiteFS event stream.
func openFollowing(t *testing.T, n *litefstest.Node) *sql.DB {
	t.Helper()
	db, err := sql.Open(litefs.DriverName, n.DSN()+"&_litefs_api="+n.URL())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Ping())
	return db
}

// streamCaughtUp waits until db's stream shows the position n's <db>-pos
// does, and returns it.
func streamCaughtUp(t *testing.T, db *sql.DB, n *litefstest.Node) litefs.TXID {
	t.Helper()
	var at litefs.TXID
	litefstest.WaitFor(t, func() error {
		pos, err := n.Pos()
		if err != nil {
			return err
		}
		hint, ok := litefs.TXIDHint(db)
		if !ok || uint64(hint) != pos.TXID {
			return assert.AnError
		}
		at = hint
		return nil
	})
	return at
}

// TestReviewNoOpWriteCookieSendsReadsAway: a POST whose handler runs a
// write that changes nothing (an UPDATE matching no row) commits in
// SQLite's eyes, so the bridge sets the TXID cookie. Its TXID now comes
// from the read begun in the commit hook, one past a position LiteFS did
// not move: a transaction that does not exist. The client's next GET on an
// up-to-date replica then waits Config.TXIDWait and is replayed to the
// primary, and so does every GET until someone else writes. Before the
// change the cookie named the primary's position, which the replica has.
func TestReviewNoOpWriteCookieSendsReadsAway(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	pdb := openFollowing(t, primary)
	_, err := pdb.Exec("CREATE TABLE posts(v TEXT); INSERT INTO posts VALUES ('hi')")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	rdb := openFollowing(t, replica)
	at := streamCaughtUp(t, pdb, primary)

	pb := newBridge(t, Config{DB: pdb, InstanceID: primary.Hostname()})
	ph := pb.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := pdb.ExecContext(r.Context(), "UPDATE posts SET v = 'x' WHERE v = 'nothing'"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	w := serve(ph, withCookie(http.MethodPost, "/posts", ""))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == "__txid" {
			cookie = c
		}
	}
	require.NotNil(t, cookie, "the no-op write got no cookie")
	want, err := litefs.ParseTXID(cookie.Value)
	require.NoError(t, err)
	assert.LessOrEqual(t, want, at, "the cookie names TXID %v; LiteFS is at %v", want, at)

	cluster.WaitReplicated(t)
	streamCaughtUp(t, rdb, replica)
	rb := newBridge(t, Config{DB: rdb, InstanceID: replica.Hostname(), TXIDWait: 100 * time.Millisecond})
	rh := rb.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("posts")) }))
	w = serve(rh, withCookie(http.MethodGet, "/posts", "__txid="+cookie.Value))
	assert.Empty(t, w.Header().Get(HeaderReplay), "an up-to-date replica sent the client's read to the primary")
	assert.Equal(t, "posts", w.Body.String())
}
