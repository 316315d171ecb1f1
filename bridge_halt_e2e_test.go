//go:build linux

package litefs_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// TestBridgeReplaysWhileAJobHoldsTheLock sends a write request to the
// replica while a job there holds the HALT lock: the request's context does
// not hold it, so its write is refused and replayed on the primary, not
// forwarded from the replica.
func TestBridgeReplaysWhileAJobHoldsTheLock(t *testing.T) {
	cluster, dbs, base, reached := bridgedCluster(t)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	proxy := base.proxy

	type answer struct {
		status int
		body   string
		err    error
	}
	got := make(chan answer, 1)
	rdb := dbs[replica.Hostname()]
	err := litefs.WithHalt(t.Context(), rdb, func(ctx context.Context) error {
		if _, err := rdb.ExecContext(ctx, "INSERT INTO items(v, node) VALUES ('job', ?)", replica.Hostname()); err != nil {
			return err
		}
		go func() {
			resp, err := http.Post(base.url+"/items", "application/x-www-form-urlencoded",
				strings.NewReader(url.Values{"v": {"request"}}.Encode()))
			if err != nil {
				got <- answer{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- answer{status: resp.StatusCode, body: string(b)}
		}()
		// The primary's writes wait while the job holds the lock, so the
		// job ends once the request has been replayed there.
		for _, want := range []string{replica.Hostname(), primary.Hostname()} {
			select {
			case node := <-reached:
				assert.Equal(t, want, node, "the request goes to the replica, then to the primary")
			case a := <-got:
				t.Fatalf("the request was answered without a replay: %d %q %v", a.status, a.body, a.err)
			case <-time.After(litefstest.DefaultWaitTimeout):
				t.Fatal("the request reached neither node")
			}
		}
		return nil
	})
	require.NoError(t, err)
	a := <-got
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusCreated, a.status)
	assert.Equal(t, "stored on "+primary.Hostname()+"\n", a.body)
	replays := proxy.Replays()
	require.Len(t, replays, 1)
	assert.Equal(t, replica.Hostname(), replays[0].From)
	assert.Equal(t, primary.Hostname(), replays[0].To)

	assertItems(t, cluster, dbs, [][2]string{{"job", replica.Hostname()}, {"request", primary.Hostname()}})
}

// bridged is a FlyProxy in front of the app instances, sending requests to
// the replica first.
type bridged struct {
	proxy *litefstest.FlyProxy
	url   string
}

// bridgedCluster starts two nodes, each running app behind httpbridge and
// a handler that reports on reached which node a request reached, with
// table items on the primary, replicated.
func bridgedCluster(t *testing.T) (*litefstest.Cluster, map[string]*sql.DB, bridged, chan string) {
	t.Helper()
	cluster := litefstest.StartCluster(t, 2)
	reached := make(chan string, 4) // the nodes a request reached, in order
	dbs, proxy := bridgeNodes(t, cluster, func(host string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached <- host
			h.ServeHTTP(w, r)
		})
	})
	return cluster, dbs, bridged{proxy: proxy, url: proxy.Start(t)}, reached
}

// assertItems checks that every node has exactly the rows want (value,
// node that wrote it) in items, once replicated.
func assertItems(t *testing.T, cluster *litefstest.Cluster, dbs map[string]*sql.DB, want [][2]string) {
	t.Helper()
	cluster.WaitReplicated(t)
	for _, n := range cluster.Nodes() {
		var rows [][2]string
		r, err := dbs[n.Hostname()].Query("SELECT v, node FROM items ORDER BY v")
		require.NoError(t, err)
		for r.Next() {
			var row [2]string
			require.NoError(t, r.Scan(&row[0], &row[1]))
			rows = append(rows, row)
		}
		require.NoError(t, r.Close())
		assert.Equal(t, want, rows, n.Hostname())
	}
}
