package httpbridge

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// TestNoOpWriteGetsNoCookieFromTheFuture: a POST whose handler runs a
// write that changes nothing (an UPDATE matching no row) commits in
// SQLite's eyes, so the bridge sets the TXID cookie; LiteFS made no
// transaction, so one past the position read in the commit hook is a
// transaction to come. A cookie naming it would make the client's every
// GET on an up-to-date replica wait Config.TXIDWait and go to the primary,
// until someone else writes: it must name a position the replica has.
func TestNoOpWriteGetsNoCookieFromTheFuture(t *testing.T) {
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
