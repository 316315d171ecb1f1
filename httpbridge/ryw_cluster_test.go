package httpbridge

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// noOpThenInsertApp writes in one POST a no-op UPDATE and an INSERT, in the order
// the form says, and counts the rows of a value on GET.
func noOpThenInsertApp(db *sql.DB, node string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		stmts := []string{"UPDATE items SET v = v WHERE v = 'no such value'", "INSERT INTO items(v) VALUES (?)"}
		if r.FormValue("order") == "insert-first" {
			stmts[0], stmts[1] = stmts[1], stmts[0]
		}
		for _, q := range stmts {
			var args []any
			if strings.HasPrefix(q, "INSERT") {
				args = []any{r.FormValue("v")}
			}
			if _, err := db.ExecContext(r.Context(), q, args...); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM items WHERE v = ?", r.FormValue("v")).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d on %s", n, node)
	})
	return mux
}

// TestReadYourWritesThroughFlyProxyTwoReplicas: a primary and two replicas, each
// app following its node's event stream (so every commit reads its TXID in
// the commit hook), behind the Fly proxy stand-in, which spreads requests
// over the three. Many clients, each with its own cookie jar, write (a
// no-op write and a real one, in either order) and read the row back at
// once: every read must see it.
func TestReadYourWritesThroughFlyProxyTwoReplicas(t *testing.T) {
	cluster := litefstest.StartCluster(t, 3)
	instances := map[string]string{}
	var pdb *sql.DB
	for _, n := range cluster.Nodes() {
		db := openFollowing(t, n)
		if n.IsPrimary() {
			pdb = db
			_, err := db.Exec("CREATE TABLE items(v TEXT)")
			require.NoError(t, err)
		}
		b := newBridge(t, Config{DB: db, InstanceID: n.Hostname()})
		srv := httptest.NewServer(b.Handler(noOpThenInsertApp(db, n.Hostname())))
		t.Cleanup(srv.Close)
		instances[n.Hostname()] = srv.URL
	}
	cluster.WaitReplicated(t)
	streamCaughtUp(t, pdb, cluster.Primary())
	proxy, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{Instances: instances})
	require.NoError(t, err)
	base := proxy.Start(t)

	const clients, rounds = 6, 20
	var (
		mu       sync.Mutex
		stale    []string
		replicas int
	)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
			for i := range rounds {
				v := fmt.Sprintf("c%d-r%d", c, i)
				order := "noop-first"
				if i%2 == 1 {
					order = "insert-first"
				}
				resp, err := client.PostForm(base+"/items", url.Values{"v": {v}, "order": {order}})
				if !assert.NoError(t, err) {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !assert.Equal(t, http.StatusCreated, resp.StatusCode, "POST %s", v) {
					return
				}
				resp, err = client.Get(base + "/count?v=" + v)
				if !assert.NoError(t, err) {
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if !strings.HasPrefix(string(body), "1 on ") {
					stale = append(stale, fmt.Sprintf("%s (%s): %q", v, order, body))
				}
				if !strings.HasSuffix(string(body), cluster.Primary().Hostname()) {
					replicas++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Empty(t, stale, "reads that missed the client's own write")
	getReplays := 0
	for _, r := range proxy.Replays() {
		if r.Method == http.MethodGet {
			getReplays++
		}
	}
	t.Logf("%d of %d reads served by a replica; %d GETs replayed", replicas, clients*rounds, getReplays)
}
