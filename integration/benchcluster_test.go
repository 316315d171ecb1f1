//go:build linux

package integration

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/httpbridge"
	"github.com/litefs-sql/litefs/litefstest"
)

// benchNode is one LiteFS node of the benchmark's cluster, with LiteFS's
// own proxy in front of the plain app, and the same app wrapped in the
// bridge on a port of its own.
type benchNode struct {
	name   string // LiteFS hostname: node-0 (primary), node-1
	mount  string
	db     *sql.DB // the litefs driver on the node's database
	proxy  string  // base URL of LiteFS's proxy, in front of plain
	plain  string  // base URL of the app without middleware
	bridge string  // base URL of the app wrapped in httpbridge.MiddlewareFor
}

// benchCluster is a primary and a replica; see startBenchCluster.
type benchCluster struct {
	primary, replica *benchNode
	raw              *sql.DB // go-sqlite3 alone on the primary's database
}

// startBenchCluster starts two LiteFS nodes with a static lease and a
// proxy: section each, creates on the primary a table t of 1000 rows and an
// empty table posts, and serves the apps.
func startBenchCluster(t *testing.T) *benchCluster {
	t.Helper()
	dir := t.TempDir()
	c := &benchCluster{}
	var primaryURL string
	for i, name := range []string{"node-0", "node-1"} {
		n, url := startBenchNode(t, filepath.Join(dir, name), name, primaryURL)
		if i == 0 {
			c.primary, primaryURL = n, url
		} else {
			c.replica = n
		}
	}
	var err error
	c.raw, err = sql.Open("sqlite3", litefstest.DSN(filepath.Join(c.primary.mount, litefstest.DefaultDBName)))
	require.NoError(t, err)
	t.Cleanup(func() { c.raw.Close() })
	_, err = c.raw.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000)
		INSERT INTO t(v) SELECT 'row ' || i FROM n;
		CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL);`)
	require.NoError(t, err)
	c.waitReplicated(t)
	return c
}

// waitReplicated waits until the replica has the primary's last
// transaction.
func (c *benchCluster) waitReplicated(t *testing.T) {
	t.Helper()
	want, err := litefstest.ReadPos(filepath.Join(c.primary.mount, litefstest.DefaultDBName+"-pos"))
	require.NoError(t, err)
	litefstest.WaitFor(t, func() error {
		got, err := litefstest.ReadPos(filepath.Join(c.replica.mount, litefstest.DefaultDBName+"-pos"))
		if err != nil {
			return err
		}
		if got.TXID < want.TXID {
			return fmt.Errorf("replica at TXID %d, want %d", got.TXID, want.TXID)
		}
		return nil
	})
}

// startBenchNode starts LiteFS for node name in dir, with the primary at
// primaryURL ("" for the primary itself), and serves its apps. It returns
// the node and the URL of its LiteFS HTTP API.
func startBenchNode(t *testing.T, dir, name, primaryURL string) (*benchNode, string) {
	t.Helper()
	n := &benchNode{name: name, mount: filepath.Join(dir, "mnt")}
	for _, d := range []string{n.mount, filepath.Join(dir, "data")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	plainL, bridgeL := listen(t), listen(t)
	n.plain, n.bridge = "http://"+plainL.Addr().String(), "http://"+bridgeL.Addr().String()
	apiAddr, proxyAddr := freeAddr(t), freeAddr(t)
	n.proxy = "http://" + proxyAddr
	url := "http://" + apiAddr
	leader, leaderURL := name, url
	if primaryURL != "" {
		leader, leaderURL = "node-0", primaryURL
	}
	config := fmt.Sprintf(`fuse: {dir: %q}
data: {dir: %q}
http: {addr: %q}
lease: {type: static, candidate: %t, hostname: %q, advertise-url: %q}
proxy: {addr: %q, target: %q, db: %q}
`, n.mount, filepath.Join(dir, "data"), apiAddr, primaryURL == "", leader, leaderURL,
		proxyAddr, plainL.Addr().String(), litefstest.DefaultDBName)
	path := filepath.Join(dir, "litefs.yml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	litefstest.StartLiteFS(t, path, nil)

	var err error
	// _litefs_api tells a driver that follows LiteFS's event stream where
	// this node's HTTP API is (not on LiteFS's default port here); go-sqlite3
	// and a driver that does not know the parameter ignore it.
	dsn := litefstest.DSN(filepath.Join(n.mount, litefstest.DefaultDBName)) + "&_litefs_api=" + apiAddr
	n.db, err = sql.Open(litefs.DriverName, dsn)
	require.NoError(t, err)
	// Cleanups run last first: the apps stop, then the database closes,
	// then LiteFS unmounts.
	t.Cleanup(func() { n.db.Close() })
	n.db.SetMaxIdleConns(16)
	serve(t, plainL, benchApp(n.db))
	serve(t, bridgeL, httpbridge.MiddlewareFor(n.db)(benchApp(n.db)))
	return n, url
}

// benchApp is the app: GET /rows/{id} reads a row of t, POST /posts
// inserts a post and answers its ID, GET /touch/{mode} inserts one too.
func benchApp(db *sql.DB) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rows/{id}", func(w http.ResponseWriter, r *http.Request) {
		var v string
		err := db.QueryRowContext(r.Context(), "SELECT v FROM t WHERE id = ?", r.PathValue("id")).Scan(&v)
		if err != nil {
			http.Error(w, "read failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, v)
	})
	post := func(w http.ResponseWriter, r *http.Request, title string) {
		res, err := db.ExecContext(r.Context(), "INSERT INTO posts(title) VALUES (?)", title)
		if err != nil {
			// On a replica the bridge replaces this answer with a replay.
			http.Error(w, "write failed", http.StatusInternalServerError)
			return
		}
		id, _ := res.LastInsertId()
		fmt.Fprintln(w, id)
	}
	mux.HandleFunc("POST /posts", func(w http.ResponseWriter, r *http.Request) { post(w, r, r.FormValue("title")) })
	// A GET that writes, as some apps have (a visit counter, a lazy
	// migration): LiteFS's proxy sends it to the replica as a read.
	mux.HandleFunc("GET /touch/{mode}", func(w http.ResponseWriter, r *http.Request) { post(w, r, "touch-"+r.PathValue("mode")) })
	return mux
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return l
}

// freeAddr returns a loopback address with a port free a moment ago, for
// LiteFS to listen on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l := listen(t)
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// serve serves h on l until the test ends.
func serve(t *testing.T, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() {
		// Proxies in front may keep connections open: wait a little for
		// them, then close them.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	})
}
