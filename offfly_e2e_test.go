package litefs_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/httpbridge"
	"github.com/litefs-sql/litefs/litefstest"
)

// These tests run the deployment "behind any load balancer" on real LiteFS:
// a round-robin balancer that does not follow fly-replay in front of app
// instances whose bridge forwards refused requests to the primary with a
// httpbridge.Forwarder.

// ffSchema is the table every off-Fly app writes to.
const ffSchema = "CREATE TABLE items(v TEXT, node TEXT, size INTEGER, sum TEXT)"

// ffApp is one node's app: a small handler under httpbridge, whose
// Config.Replay is a Forwarder. Its database handle can be swapped while it
// serves, for when LiteFS is restarted under it; its HTTP server can be
// stopped and started again on the same address.
type ffApp struct {
	id      string
	db      atomic.Pointer[sql.DB]
	addr    string
	release chan struct{} // lets /stream send its second event
	log     litefstest.SyncBuffer

	mu  sync.Mutex
	srv *http.Server
}

// ffListen reserves a loopback address for an app.
func ffListen(t testing.TB, id string) (*ffApp, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return &ffApp{id: id, addr: ln.Addr().String(), release: make(chan struct{})}, ln
}

func (a *ffApp) URL() string { return "http://" + a.addr }

// serve starts the app on ln with a Forwarder that finds each primary's app
// in primaries (node ID to base URL).
func (a *ffApp) serve(t testing.TB, ln net.Listener, primaries map[string]string) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(&a.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fwd, err := httpbridge.NewForwarder(httpbridge.ForwardConfig{
		Primaries: primaries,
		Timeout:   5 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
		Logger:    logger,
	})
	require.NoError(t, err)
	b, err := httpbridge.New(httpbridge.Config{
		InstanceID: a.id, Position: ffPosition{&a.db}, Replay: fwd, Logger: logger,
	})
	require.NoError(t, err)
	handler := b.Handler(a.handler())
	a.start(ln, handler)
	t.Cleanup(a.stop)
}

func (a *ffApp) start(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the app's server: its address refuses connections.
func (a *ffApp) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
	}
}

// restart serves again on the same address after stop.
func (a *ffApp) restart(t testing.TB) {
	t.Helper()
	a.mu.Lock()
	h := a.srv.Handler
	a.mu.Unlock()
	ln, err := net.Listen("tcp", a.addr)
	require.NoError(t, err)
	a.start(ln, h)
}

// ffPosition is the Position of whatever database the app has now.
type ffPosition struct{ db *atomic.Pointer[sql.DB] }

var ffErrNoDB = errors.New("the app's database is closed")

func (p ffPosition) pos() (httpbridge.Position, error) {
	db := p.db.Load()
	if db == nil {
		return nil, ffErrNoDB
	}
	return httpbridge.DBPosition(db), nil
}

func (p ffPosition) CurrentTXID(ctx context.Context) (litefs.TXID, error) {
	pos, err := p.pos()
	if err != nil {
		return 0, err
	}
	return pos.CurrentTXID(ctx)
}

func (p ffPosition) WaitTXID(ctx context.Context, want litefs.TXID) (litefs.TXID, error) {
	pos, err := p.pos()
	if err != nil {
		return 0, err
	}
	return pos.WaitTXID(ctx, want)
}

func (p ffPosition) CheckPrimary(ctx context.Context) error {
	pos, err := p.pos()
	if err != nil {
		return err
	}
	return pos.CheckPrimary(ctx)
}

// handler is an app unaware of LiteFS: plain INSERTs, a 500 on any error.
func (a *ffApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) { a.store(w, r, r.FormValue("v"), nil) })
	mux.HandleFunc("GET /visit", func(w http.ResponseWriter, r *http.Request) { a.store(w, r, r.FormValue("v"), nil) })
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.store(w, r, r.URL.Query().Get("v"), body)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		if !a.insert(w, r, r.FormValue("v"), nil) {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Stored-On", a.id)
		io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	})
	mux.HandleFunc("GET /items", func(w http.ResponseWriter, r *http.Request) {
		db := a.db.Load()
		if db == nil {
			http.Error(w, ffErrNoDB.Error(), http.StatusServiceUnavailable)
			return
		}
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM items WHERE v = ?", r.FormValue("v")).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Served-By", a.id)
		fmt.Fprintf(w, "%d on %s", n, a.id)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, a.id) })
	return mux
}

// insert stores one row and reports whether it did; on failure it has
// answered 500.
func (a *ffApp) insert(w http.ResponseWriter, r *http.Request, v string, body []byte) bool {
	db := a.db.Load()
	if db == nil {
		http.Error(w, ffErrNoDB.Error(), http.StatusServiceUnavailable)
		return false
	}
	sum := sha256.Sum256(body)
	_, err := db.ExecContext(r.Context(), "INSERT INTO items(v, node, size, sum) VALUES (?, ?, ?, ?)",
		v, a.id, len(body), hex.EncodeToString(sum[:]))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return false
	}
	return true
}

func (a *ffApp) store(w http.ResponseWriter, r *http.Request, v string, body []byte) {
	if !a.insert(w, r, v, body) {
		return
	}
	sum := sha256.Sum256(body)
	w.Header().Set("X-Stored-On", a.id)
	// Each Forwarder's value ends with its process's random nonce
	// ("litefs-hops:1.<nonce>"): shown without it, so tests can compare.
	var srcs []string
	for _, v := range r.Header.Values(httpbridge.HeaderReplaySrc) {
		head, state, _ := strings.Cut(v, ";state=")
		hops, _, _ := strings.Cut(state, ".")
		srcs = append(srcs, head+";state="+hops)
	}
	w.Header().Set("X-Replay-Src", strings.Join(srcs, ", "))
	http.SetCookie(w, &http.Cookie{Name: "app-seen", Value: a.id, Path: "/"})
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "stored %s on %s: %d bytes %s", v, a.id, len(body), hex.EncodeToString(sum[:]))
}

// ffCluster is a set of apps on LiteFS nodes behind a Balancer.
type ffCluster struct {
	apps map[string]*ffApp
	bal  *litefstest.Balancer
	base string // the balancer's URL
	// order lists the node IDs in the balancer's order.
	order []string
}

// ffStart starts an app on each node, with ids[i] on dbs[i], behind one
// balancer in that order.
func ffStart(t testing.TB, ids []string, dbs []*sql.DB) *ffCluster {
	t.Helper()
	c := &ffCluster{apps: map[string]*ffApp{}, order: ids}
	lns := map[string]net.Listener{}
	primaries := map[string]string{}
	var urls []string
	for _, id := range ids {
		a, ln := ffListen(t, id)
		c.apps[id], lns[id] = a, ln
		primaries[id] = a.URL()
		urls = append(urls, a.URL())
	}
	for i, id := range ids {
		c.apps[id].db.Store(dbs[i])
		c.apps[id].serve(t, lns[id], primaries)
	}
	var err error
	c.bal, err = litefstest.NewBalancer(urls...)
	require.NoError(t, err)
	c.base = c.bal.Start(t)
	return c
}

// aim makes the balancer's next request go to node id, with health checks.
func (c *ffCluster) aim(t testing.TB, id string) {
	t.Helper()
	for range len(c.order) {
		if c.order[c.bal.Next()] == id {
			return
		}
		res, err := http.Get(c.base + "/healthz")
		require.NoError(t, err)
		res.Body.Close()
	}
	require.Equal(t, id, c.order[c.bal.Next()], "the balancer cannot be aimed")
}

// ffClient is a browser-like client: a cookie jar, no redirects followed.
func ffClient(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ffDo sends a request and returns the response with its body read.
func ffDo(t testing.TB, client *http.Client, method, url, contentType string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// ffCount returns how many rows hold v in db, and on which nodes.
func ffCount(t testing.TB, db *sql.DB, v string) (n int, nodes string) {
	t.Helper()
	err := db.QueryRowContext(t.Context(), "SELECT count(*), coalesce(group_concat(node), '') FROM items WHERE v = ?", v).Scan(&n, &nodes)
	require.NoError(t, err)
	return n, nodes
}

func ffOpen(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(litefs.DriverName, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func ffCookie(res *http.Response, name string) string {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestOffFlyForwarding runs three nodes behind the round-robin balancer.
// node-0 is the primary; the balancer's order puts the replicas first.
func TestOffFlyForwarding(t *testing.T) {
	cluster := litefstest.StartCluster(t, 3)
	ids := []string{"node-1", "node-2", "node-0"}
	var dbs []*sql.DB
	for _, id := range ids {
		for _, n := range cluster.Nodes() {
			if n.Hostname() == id {
				dbs = append(dbs, ffOpen(t, n.DSN()))
			}
		}
	}
	pdb := dbs[2]
	_, err := pdb.Exec(ffSchema)
	require.NoError(t, err)
	cluster.WaitReplicated(t)
	c := ffStart(t, ids, dbs)

	t.Run("writes commit once on the primary", func(t *testing.T) {
		const form = "application/x-www-form-urlencoded"
		tests := []struct {
			name, via, method, path, value string
		}{
			{name: "POST via node-1", via: "node-1", method: http.MethodPost, path: "/items", value: "post-1"},
			{name: "POST via node-2", via: "node-2", method: http.MethodPost, path: "/items", value: "post-2"},
			{name: "GET that writes via node-1", via: "node-1", method: http.MethodGet, path: "/visit?v=visit-1", value: "visit-1"},
			{name: "GET that writes via node-2", via: "node-2", method: http.MethodGet, path: "/visit?v=visit-2", value: "visit-2"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				client := ffClient(t)
				var body io.Reader
				if tc.method == http.MethodPost {
					body = strings.NewReader("v=" + tc.value)
				}
				c.aim(t, tc.via)
				res, got := ffDo(t, client, tc.method, c.base+tc.path, form, body)
				require.Equal(t, http.StatusCreated, res.StatusCode, got)
				assert.True(t, strings.HasPrefix(got, "stored "+tc.value+" on node-0:"), got)
				assert.Equal(t, "node-0", res.Header.Get("X-Stored-On"))
				assert.Equal(t, "instance="+tc.via+";state=litefs-hops:1", res.Header.Get("X-Replay-Src"))
				assert.Equal(t, "node-0", ffCookie(res, "app-seen"), "the primary's cookie")
				assert.NotEmpty(t, ffCookie(res, httpbridge.DefaultTXIDCookie), "the read-your-writes cookie")
				n, nodes := ffCount(t, pdb, tc.value)
				assert.Equal(t, 1, n)
				assert.Equal(t, "node-0", nodes)

				// Read-your-writes: the next request, served by a replica.
				for _, replica := range []string{"node-1", "node-2"} {
					c.aim(t, replica)
					res, got = ffDo(t, client, http.MethodGet, c.base+"/items?v="+tc.value, "", nil)
					assert.Equal(t, http.StatusOK, res.StatusCode)
					assert.Equal(t, "1 on "+replica, got)
				}
			})
		}
	})

	t.Run("bodies up to the Forwarder's limit", func(t *testing.T) {
		big := strings.Repeat("0123456789abcdef", httpbridge.DefaultMaxForwardBody/16)
		sum := sha256.Sum256([]byte(big))
		c.aim(t, "node-1")
		res, got := ffDo(t, ffClient(t), http.MethodPost, c.base+"/upload?v=big", "application/octet-stream", strings.NewReader(big))
		require.Equal(t, http.StatusCreated, res.StatusCode, got)
		assert.Equal(t, fmt.Sprintf("stored big on node-0: %d bytes %s", len(big), hex.EncodeToString(sum[:])), got)
		var size int
		var stored string
		require.NoError(t, pdb.QueryRow("SELECT size, sum FROM items WHERE v = 'big'").Scan(&size, &stored))
		assert.Equal(t, httpbridge.DefaultMaxForwardBody, size)
		assert.Equal(t, hex.EncodeToString(sum[:]), stored)

		c.aim(t, "node-2")
		res, got = ffDo(t, ffClient(t), http.MethodPost, c.base+"/upload?v=too-big", "application/octet-stream", strings.NewReader(big+"!"))
		assert.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, got)
		n, _ := ffCount(t, pdb, "too-big")
		assert.Zero(t, n)
	})

	t.Run("a stream from the primary arrives as it is flushed", func(t *testing.T) {
		c.aim(t, "node-2")
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.base+"/stream?v=sse", nil)
		require.NoError(t, err)
		res, err := ffClient(t).Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "node-0", res.Header.Get("X-Stored-On"))
		first := make([]byte, len("data: one\n\n"))
		_, err = io.ReadFull(res.Body, first) // before the primary may send more
		require.NoError(t, err)
		assert.Equal(t, "data: one\n\n", string(first))
		close(c.apps["node-0"].release)
		rest, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		assert.Equal(t, "data: two\n\n", string(rest))
		n, nodes := ffCount(t, pdb, "sse")
		assert.Equal(t, 1, n)
		assert.Equal(t, "node-0", nodes)
	})

	t.Run("loops", func(t *testing.T) {
		ffLoops(t, c, dbs, pdb)
	})

	t.Run("the primary unreachable", func(t *testing.T) {
		primary := c.apps["node-0"]
		primary.stop()
		c.aim(t, "node-1")
		start := time.Now()
		res, got := ffDo(t, ffClient(t), http.MethodPost, c.base+"/items", "application/x-www-form-urlencoded", strings.NewReader("v=retried"))
		elapsed := time.Since(start)
		assert.Equal(t, http.StatusBadGateway, res.StatusCode, got)
		assert.Equal(t, "1", res.Header.Get("Retry-After"))
		assert.Contains(t, got, "nothing was sent")
		assert.Less(t, elapsed, 10*time.Second, "a bounded wait")
		n, _ := ffCount(t, pdb, "retried")
		assert.Zero(t, n)

		// The client still has its body; sent again, it commits once.
		primary.restart(t)
		c.aim(t, "node-1")
		res, got = ffDo(t, ffClient(t), http.MethodPost, c.base+"/items", "application/x-www-form-urlencoded", strings.NewReader("v=retried"))
		assert.Equal(t, http.StatusCreated, res.StatusCode, got)
		n, _ = ffCount(t, pdb, "retried")
		assert.Equal(t, 1, n)
	})
}

// ffLoops runs extra app instances whose Forwarders address the wrong
// node, as a primary that moved while a request was in flight, or a
// misconfiguration, would.
func ffLoops(t *testing.T, c *ffCluster, dbs []*sql.DB, pdb *sql.DB) {
	// extra starts an app on node id's database whose Forwarder sends
	// node-0's requests to the app at to (a func, so that two extras can
	// name each other).
	extra := func(id string, db *sql.DB, maxHops int, to func() string) *ffApp {
		a, ln := ffListen(t, id)
		a.db.Store(db)
		a.serveResolve(t, ln, maxHops, func(primary string) (string, error) { return to(), nil })
		return a
	}
	post := func(t *testing.T, a *ffApp, v string) (*http.Response, string) {
		return ffDo(t, ffClient(t), http.MethodPost, a.URL()+"/items", "application/x-www-form-urlencoded", strings.NewReader("v="+v))
	}

	t.Run("one more hop", func(t *testing.T) {
		// node-1's copy takes node-2 for the primary's address; node-2's
		// own app knows better.
		a := extra("node-1", dbs[0], 0, func() string { return c.apps["node-2"].URL() })
		res, got := post(t, a, "two-hops")
		require.Equal(t, http.StatusCreated, res.StatusCode, got)
		assert.Equal(t, "node-0", res.Header.Get("X-Stored-On"))
		assert.Equal(t, "instance=node-1;state=litefs-hops:1, instance=node-2;state=litefs-hops:2", res.Header.Get("X-Replay-Src"))
		n, _ := ffCount(t, pdb, "two-hops")
		assert.Equal(t, 1, n)
	})
	t.Run("no second extra hop", func(t *testing.T) {
		// Misaddressed twice: node-1's copy sends to node-2's copy, which
		// sends to node-1's own app, which has no hop left.
		b := extra("node-2", dbs[1], 0, func() string { return c.apps["node-1"].URL() })
		a := extra("node-1", dbs[0], 0, func() string { return b.URL() })
		res, got := post(t, a, "three-hops")
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, got)
		assert.Equal(t, "1", res.Header.Get("Retry-After"))
		assert.Contains(t, c.apps["node-1"].log.String(), "sending the request on would loop")
		n, _ := ffCount(t, pdb, "three-hops")
		assert.Zero(t, n)
	})
	t.Run("an address that is this node", func(t *testing.T) {
		var a *ffApp
		a = extra("node-1", dbs[0], 0, func() string { return a.URL() })
		res, got := post(t, a, "self")
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, got)
		assert.Equal(t, "1", res.Header.Get("Retry-After"))
		assert.Contains(t, a.log.String(), "addresses this node as the primary")
		n, _ := ffCount(t, pdb, "self")
		assert.Zero(t, n)
	})
	t.Run("never back to a sender", func(t *testing.T) {
		var a, b *ffApp
		// With hops to spare, only the path rule stops it.
		a = extra("node-1", dbs[0], 5, func() string { return b.URL() })
		b = extra("node-2", dbs[1], 5, func() string { return a.URL() })
		res, got := post(t, a, "cycle")
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, got)
		assert.Contains(t, a.log.String(), "addresses this node as the primary")
		assert.Equal(t, 1, strings.Count(b.log.String(), "forwarding a write to the primary failed")+
			strings.Count(a.log.String(), "forwarding a write to the primary failed"))
		n, _ := ffCount(t, pdb, "cycle")
		assert.Zero(t, n)
	})
}

// serveResolve is serve with a Forwarder that asks resolve for addresses,
// and maxHops (0: the default).
func (a *ffApp) serveResolve(t testing.TB, ln net.Listener, maxHops int, resolve func(string) (string, error)) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(&a.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fwd, err := httpbridge.NewForwarder(httpbridge.ForwardConfig{Resolve: resolve, Timeout: 5 * time.Second, Logger: logger,
		Transport: &http.Transport{Proxy: nil}})
	require.NoError(t, err)
	b, err := httpbridge.New(httpbridge.Config{InstanceID: a.id, Position: ffPosition{&a.db}, Replay: fwd, Logger: logger, MaxHops: maxHops})
	require.NoError(t, err)
	a.start(ln, b.Handler(a.handler()))
	t.Cleanup(a.stop)
}

// ffNode is a LiteFS node of a static-lease cluster the test configures
// itself, so it can restart the cluster with another primary on the same
// data.
type ffNode struct {
	id, dir, addr string
	proc          *litefstest.Process
}

func (n *ffNode) dsn() string { return litefstest.DSN(n.dir + "/mnt/" + litefstest.DefaultDBName) }

// start runs the node as a replica of primary, or as the primary if it is
// primary.
func (n *ffNode) start(t testing.TB, primary *ffNode) {
	t.Helper()
	config := fmt.Sprintf("fuse: {dir: %q}\ndata: {dir: %q}\nhttp: {addr: %q}\n"+
		"lease: {type: static, candidate: %t, hostname: %q, advertise-url: %q}\n",
		n.dir+"/mnt", n.dir+"/data", n.addr, n == primary, primary.id, "http://"+primary.addr)
	path := n.dir + "/litefs.yml"
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	n.proc = litefstest.StartLiteFS(t, path, nil)
}

// ffStartNodes starts the nodes, primary first.
func ffStartNodes(t testing.TB, nodes []*ffNode, primary *ffNode) {
	t.Helper()
	primary.start(t, primary)
	for _, n := range nodes {
		if n != primary {
			n.start(t, primary)
		}
	}
}

// TestOffFlyPrimaryMove moves the primary of a static-lease cluster, the
// closest a static lease comes to a failover: stop every node, start node-1
// as the primary and the others as its replicas, on the same data. The
// apps, their bridges and Forwarders keep running (their database handles
// are closed and reopened around the move, since LiteFS unmounts), and
// writes sent through the balancer follow the new primary; no acknowledged
// write is lost.
func TestOffFlyPrimaryMove(t *testing.T) {
	root := t.TempDir()
	var nodes []*ffNode
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		n := &ffNode{id: fmt.Sprint("node-", i), addr: ln.Addr().String()}
		ln.Close()
		n.dir = fmt.Sprintf("%s/%s", root, n.id)
		for _, d := range []string{n.dir + "/mnt", n.dir + "/data"} {
			require.NoError(t, os.MkdirAll(d, 0o755))
		}
		nodes = append(nodes, n)
	}
	ffStartNodes(t, nodes, nodes[0])
	open := func() []*sql.DB {
		var dbs []*sql.DB
		for _, n := range nodes {
			db, err := sql.Open(litefs.DriverName, n.dsn())
			require.NoError(t, err)
			dbs = append(dbs, db)
		}
		return dbs
	}
	dbs := open()
	_, err := dbs[0].Exec(ffSchema)
	require.NoError(t, err)
	ffWaitSame(t, dbs)
	c := ffStart(t, []string{"node-0", "node-1", "node-2"}, dbs)

	var acked []string
	write := func(via, wantPrimary string) {
		v := fmt.Sprint("move-", len(acked))
		c.aim(t, via)
		res, got := ffDo(t, ffClient(t), http.MethodPost, c.base+"/items", "application/x-www-form-urlencoded", strings.NewReader("v="+v))
		require.Equal(t, http.StatusCreated, res.StatusCode, got)
		require.Equal(t, wantPrimary, res.Header.Get("X-Stored-On"))
		acked = append(acked, v)
	}
	for _, via := range []string{"node-0", "node-1", "node-2"} {
		write(via, "node-0")
	}

	// The move: every node applied the last write; the apps let go of the
	// mount; the cluster restarts with node-1 as the primary.
	ffWaitSame(t, dbs)
	for i, id := range c.order {
		c.apps[id].db.Store(nil)
		require.NoError(t, dbs[i].Close())
	}
	for _, n := range []*ffNode{nodes[2], nodes[1], nodes[0]} {
		require.NoError(t, n.proc.Stop())
	}
	ffStartNodes(t, nodes, nodes[1])
	dbs = open()
	for i, id := range c.order {
		c.apps[id].db.Store(dbs[i])
		t.Cleanup(func() { dbs[i].Close() })
	}

	for _, via := range []string{"node-0", "node-2", "node-1"} {
		write(via, "node-1")
	}
	for _, v := range acked {
		n, _ := ffCount(t, dbs[1], v)
		assert.Equal(t, 1, n, "acknowledged write %s on the new primary", v)
	}
	assert.Contains(t, c.apps["node-0"].log.String(), "primary=node-1", "node-0's bridge named the new primary")
}

// ffWaitSame waits until every node's database is at the first one's
// position.
func ffWaitSame(t testing.TB, dbs []*sql.DB) {
	t.Helper()
	want, err := litefs.CurrentTXID(t.Context(), dbs[0])
	require.NoError(t, err)
	for _, db := range dbs[1:] {
		ctx, cancel := context.WithTimeout(t.Context(), litefstest.DefaultWaitTimeout)
		_, err := litefs.WaitTXID(ctx, db, want)
		cancel()
		require.NoError(t, err)
	}
}

// BenchmarkOffFly measures, on a real two-node cluster and interleaved in
// one run: a write sent through the balancer to the replica and forwarded
// by its bridge to the primary ("forwarded"), the same write sent through a
// balancer straight to the primary ("direct"), and a read served by the
// replica ("replica-read"). It reports the median of each in µs and the
// ratio forwarded/direct: the price of the extra in-cluster hop.
func BenchmarkOffFly(b *testing.B) {
	cluster := litefstest.StartCluster(b, 2)
	ids := []string{"node-0", "node-1"}
	dbs := []*sql.DB{ffOpen(b, cluster.Primary().DSN()), ffOpen(b, cluster.Replicas()[0].DSN())}
	_, err := dbs[0].Exec(ffSchema)
	require.NoError(b, err)
	cluster.WaitReplicated(b)
	c := ffStart(b, ids, dbs)
	toPrimary, err := litefstest.NewBalancer(c.apps["node-0"].URL())
	require.NoError(b, err)
	toReplica, err := litefstest.NewBalancer(c.apps["node-1"].URL())
	require.NoError(b, err)
	primaryBase, replicaBase := toPrimary.Start(b), toReplica.Start(b)
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}

	do := func(method, url string, want int) time.Duration {
		start := time.Now()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("v=bench")
		}
		req, err := http.NewRequest(method, url, body)
		require.NoError(b, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := client.Do(req)
		require.NoError(b, err)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		require.Equal(b, want, res.StatusCode, "%s %s", method, url)
		return time.Since(start)
	}
	var fwd, direct, read []time.Duration
	b.ResetTimer()
	for b.Loop() {
		fwd = append(fwd, do(http.MethodPost, replicaBase+"/items", http.StatusCreated))
		direct = append(direct, do(http.MethodPost, primaryBase+"/items", http.StatusCreated))
		read = append(read, do(http.MethodGet, replicaBase+"/items?v=bench", http.StatusOK))
	}
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Microsecond)
	}
	b.ReportMetric(p50(fwd), "forwarded-p50-µs")
	b.ReportMetric(p50(direct), "direct-p50-µs")
	b.ReportMetric(p50(read), "replica-read-p50-µs")
	b.ReportMetric(p50(fwd)/p50(direct), "forwarded/direct")
}
