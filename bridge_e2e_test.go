package litefs_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/httpbridge"
	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBridgeThroughFlyProxy runs two app instances on a real LiteFS cluster
// behind the Fly replay stand-in, which sends every request to the replica
// first: writes must be replayed to the primary and committed there once.
func TestBridgeThroughFlyProxy(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	dbs, proxy := bridgeNodes(t, cluster, nil)
	base := proxy.Start(t)

	tests := []struct {
		name, method, path, value string
	}{
		{"POST", http.MethodPost, "/items", "posted"},
		{"GET that writes", http.MethodGet, "/visit?v=visited", "visited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(proxy.Replays())
			var body io.Reader
			if tc.method == http.MethodPost {
				body = strings.NewReader(url.Values{"v": {tc.value}}.Encode())
			}
			req, err := http.NewRequestWithContext(t.Context(), tc.method, base+tc.path, body)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusCreated, resp.StatusCode, "status")
			assert.Equal(t, "stored on "+primary.Hostname()+"\n", string(got), "body")
			replays := proxy.Replays()[before:]
			if assert.Len(t, replays, 1, "replays") {
				assert.Equal(t, replica.Hostname(), replays[0].From, "replayed from")
				assert.Equal(t, primary.Hostname(), replays[0].To, "replayed to")
			}
			var n int
			err = dbs[primary.Hostname()].QueryRow("SELECT count(*) FROM items WHERE v = ? AND node = ?", tc.value, primary.Hostname()).Scan(&n)
			require.NoError(t, err)
			assert.Equal(t, 1, n, "rows %q on the primary", tc.value)
			pos, err := primary.Pos()
			require.NoError(t, err)
			cookie := txidCookie(t, resp)
			assert.Equal(t, litefs.TXID(pos.TXID).String(), cookie.Value, "__txid: the primary's TXID after the write")

			// Read-your-writes: the replica serves the read once it has
			// the transaction the cookie names.
			req, err = http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/count?v="+tc.value, nil)
			require.NoError(t, err)
			req.AddCookie(cookie)
			assert.Equal(t, "1 on "+replica.Hostname()+"\n", fetch(t, req), "read after write through the proxy: the row, served by the replica")
		})
	}
}

// TestReadYourWritesAcrossNodes writes on the primary's app and reads at
// once on the replica's app with the __txid cookie the write set.
func TestReadYourWritesAcrossNodes(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	urls := map[string]string{}
	for _, n := range cluster.Nodes() {
		db, err := sql.Open("litefs", n.DSN())
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		if n.IsPrimary() {
			_, err = db.Exec("CREATE TABLE items(v TEXT, node TEXT)")
			require.NoError(t, err)
		}
		b, err := httpbridge.New(httpbridge.Config{InstanceID: n.Hostname(), DB: db})
		require.NoError(t, err)
		srv := httptest.NewServer(b.Handler(app(db, n.Hostname())))
		t.Cleanup(srv.Close)
		urls[n.Hostname()] = srv.URL
	}
	cluster.WaitReplicated(t)
	primary, replica := cluster.Primary().Hostname(), cluster.Replicas()[0].Hostname()
	for i := range 20 {
		v := fmt.Sprint("row-", i)
		resp, err := http.PostForm(urls[primary]+"/items", url.Values{"v": {v}})
		require.NoError(t, err)
		resp.Body.Close()
		cookie := txidCookie(t, resp)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, urls[replica]+"/count?v="+v, nil)
		require.NoError(t, err)
		req.AddCookie(cookie)
		assert.Equal(t, "1 on "+replica+"\n", fetch(t, req), "write %d: the replica's answer", i)
	}
}

func txidCookie(tb testing.TB, resp *http.Response) *http.Cookie {
	tb.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == httpbridge.DefaultTXIDCookie {
			return c
		}
	}
	require.FailNowf(tb, "no "+httpbridge.DefaultTXIDCookie+" cookie", "in %v", resp.Header)
	return nil
}

// fetch sends req and returns the body of its 200 answer.
func fetch(tb testing.TB, req *http.Request) string {
	tb.Helper()
	body, err := get(req)
	require.NoError(tb, err)
	return body
}

// get is fetch for a goroutine other than the test's, where FailNow must
// not be called: it returns what went wrong instead.
func get(req *http.Request) (string, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %q", req.URL, resp.StatusCode, b)
	}
	return string(b), nil
}

// app stores a value with a plain INSERT and answers 500 on any error, as
// an app unaware of LiteFS would; the bridge does the rest.
func app(db *sql.DB, node string) http.Handler {
	store := func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), "INSERT INTO items(v, node) VALUES (?, ?)", r.FormValue("v"), node); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "stored on "+node+"\n")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items", store)
	mux.HandleFunc("GET /visit", store)
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM items WHERE v = ?", r.FormValue("v")).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d on %s\n", n, node)
	})
	return mux
}

// waitSignal is a Position that says when the bridge starts waiting.
type waitSignal struct {
	httpbridge.Position
	waiting chan struct{}
}

func (p *waitSignal) WaitTXID(ctx context.Context, want litefs.TXID) (litefs.TXID, error) {
	close(p.waiting)
	return p.Position.WaitTXID(ctx, want)
}

// TestReadYourWritesWaitsForAStalledReplica stalls replication on the
// replica (a raw go-sqlite3 connection holding the write lock, which LiteFS
// needs to apply transactions), so a read there cannot see a new row until
// the lock goes: the read with the cookie must wait, then see it.
func TestReadYourWritesWaitsForAStalledReplica(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	pdb, err := sql.Open("litefs", primary.DSN())
	require.NoError(t, err)
	defer pdb.Close()
	_, err = pdb.Exec("CREATE TABLE items(v TEXT, node TEXT)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	rdb, err := sql.Open("litefs", replica.DSN())
	require.NoError(t, err)
	defer rdb.Close()

	pb, err := httpbridge.New(httpbridge.Config{InstanceID: primary.Hostname(), DB: pdb})
	require.NoError(t, err)
	signal := &waitSignal{Position: httpbridge.DBPosition(rdb), waiting: make(chan struct{})}
	rb, err := httpbridge.New(httpbridge.Config{InstanceID: replica.Hostname(), Position: signal, TXIDWait: time.Minute})
	require.NoError(t, err)
	psrv := httptest.NewServer(pb.Handler(app(pdb, primary.Hostname())))
	defer psrv.Close()
	rsrv := httptest.NewServer(rb.Handler(app(rdb, replica.Hostname())))
	defer rsrv.Close()

	raw, err := sql.Open("sqlite3", replica.DBPath()+"?_txlock=immediate")
	require.NoError(t, err)
	defer raw.Close()
	lock, err := raw.Begin()
	require.NoError(t, err, "taking the replica's write lock")
	defer lock.Rollback()

	resp, err := http.PostForm(psrv.URL+"/items", url.Values{"v": {"fresh"}})
	require.NoError(t, err)
	resp.Body.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rsrv.URL+"/count?v=fresh", nil)
	require.NoError(t, err)
	req.AddCookie(txidCookie(t, resp))
	type answer struct {
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		body, err := get(req)
		got <- answer{body: body, err: err}
	}()

	select {
	case <-signal.waiting:
	case a := <-got:
		require.FailNowf(t, "the replica answered without waiting for the write", "%q (%v)", a.body, a.err)
	case <-time.After(litefstest.DefaultWaitTimeout):
		require.FailNow(t, "the replica neither waited nor answered")
	}
	require.NoError(t, lock.Rollback())
	a := <-got
	require.NoError(t, a.err, "after waiting")
	assert.Equal(t, "1 on "+replica.Hostname()+"\n", a.body, "after waiting, the replica's answer")
}

// bridgeNodes opens a pool on each node of cluster and serves app there
// behind httpbridge, wrapped by wrap unless it is nil; it creates table items
// on the primary, waits for it to replicate, and returns the pools by
// hostname and a FlyProxy that sends requests to the replica first.
func bridgeNodes(t *testing.T, cluster *litefstest.Cluster, wrap func(host string, h http.Handler) http.Handler) (map[string]*sql.DB, *litefstest.FlyProxy) {
	t.Helper()
	dbs := map[string]*sql.DB{}
	instances := map[string]string{}
	for _, n := range cluster.Nodes() {
		db, err := sql.Open("litefs", n.DSN())
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		dbs[n.Hostname()] = db
		b, err := httpbridge.New(httpbridge.Config{InstanceID: n.Hostname(), DB: db})
		require.NoError(t, err)
		h := b.Handler(app(db, n.Hostname()))
		if wrap != nil {
			h = wrap(n.Hostname(), h)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		instances[n.Hostname()] = srv.URL
	}
	_, err := dbs[cluster.Primary().Hostname()].Exec("CREATE TABLE items(v TEXT, node TEXT)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	proxy, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{Instances: instances, Target: cluster.Replicas()[0].Hostname()})
	require.NoError(t, err)
	return dbs, proxy
}
