package httpbridge

import (
	"context"
	"database/sql"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

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

// countedPosition is the Position of a litefs database (its stream hint
// included) that counts the reads of <db>-pos the bridge asks for.
type countedPosition struct {
	dbPosition
	reads *atomic.Int32
}

func (p countedPosition) CurrentTXID(ctx context.Context) (litefs.TXID, error) {
	p.reads.Add(1)
	return p.dbPosition.CurrentTXID(ctx)
}

// TestStreamShowsReplicaBehind: on a replica whose driver follows LiteFS's
// event stream, a cookie above the stream's position sends a request that
// may write to the primary with no read of <db>-pos, and a cookie the
// stream has reached still reads the file before the replica serves it.
func TestStreamShowsReplicaBehind(t *testing.T) {
	t.Parallel()
	cluster := litefstest.StartCluster(t, 2)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	pdb := openFollowing(t, primary)
	_, err := pdb.Exec("CREATE TABLE posts(v TEXT)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	rdb := openFollowing(t, replica)
	at := streamCaughtUp(t, rdb, replica)

	reads := &atomic.Int32{}
	b := newBridge(t, Config{InstanceID: replica.Hostname(), Position: countedPosition{dbPosition{rdb}, reads}, TXIDWait: 50 * time.Millisecond})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { insert(w, r, rdb) }))

	w := serve(h, withCookie(http.MethodPost, "/posts", "__txid="+(at+1000).String()))
	assert.Contains(t, w.Header().Get(HeaderReplay), "instance="+primary.Hostname()+";", "a POST behind the stream goes to the primary")
	assert.Zero(t, reads.Load(), "a POST behind the stream read <db>-pos")

	w = serve(h, withCookie(http.MethodPost, "/posts", "__txid="+at.String()))
	assert.Contains(t, w.Header().Get(HeaderReplay), "instance="+primary.Hostname()+";", "the refused insert is replayed")
	assert.Equal(t, int32(1), reads.Load(), "a cookie the stream has reached must be checked against <db>-pos")
}
