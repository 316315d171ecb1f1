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
)

// TestBridgeThroughFlyProxy runs two app instances on a real LiteFS cluster
// behind the Fly replay stand-in, which sends every request to the replica
// first: writes must be replayed to the primary and committed there once.
func TestBridgeThroughFlyProxy(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]

	instances := map[string]string{}
	dbs := map[string]*sql.DB{}
	for _, n := range cluster.Nodes() {
		db, err := sql.Open("litefs", n.DSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[n.Hostname()] = db
		b, err := httpbridge.New(httpbridge.Config{InstanceID: n.Hostname(), DB: db})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(b.Handler(app(db, n.Hostname())))
		t.Cleanup(srv.Close)
		instances[n.Hostname()] = srv.URL
	}
	if _, err := dbs[primary.Hostname()].Exec("CREATE TABLE items(v TEXT, node TEXT)"); err != nil {
		t.Fatal(err)
	}
	cluster.WaitReplicated(t)

	proxy, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{Instances: instances, Target: replica.Hostname()})
	if err != nil {
		t.Fatal(err)
	}
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
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated || string(got) != "stored on "+primary.Hostname()+"\n" {
				t.Fatalf("got %d %q, want 201 stored on %s", resp.StatusCode, got, primary.Hostname())
			}
			replays := proxy.Replays()[before:]
			if len(replays) != 1 || replays[0].From != replica.Hostname() || replays[0].To != primary.Hostname() {
				t.Fatalf("got replays %+v, want one from %s to %s", replays, replica.Hostname(), primary.Hostname())
			}
			var n int
			err = dbs[primary.Hostname()].QueryRow("SELECT count(*) FROM items WHERE v = ? AND node = ?", tc.value, primary.Hostname()).Scan(&n)
			if err != nil || n != 1 {
				t.Fatalf("primary has %d rows %q (%v), want exactly 1", n, tc.value, err)
			}
			pos, err := primary.Pos()
			if err != nil {
				t.Fatal(err)
			}
			cookie := txidCookie(t, resp)
			if want := litefs.TXID(pos.TXID).String(); cookie.Value != want {
				t.Fatalf("__txid = %q, want the primary's TXID after the write, %s", cookie.Value, want)
			}

			// Read-your-writes: the replica serves the read once it has
			// the transaction the cookie names.
			req, err = http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/count?v="+tc.value, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.AddCookie(cookie)
			if got := fetch(t, req); got != "1 on "+replica.Hostname()+"\n" {
				t.Fatalf("read after write through the proxy: got %q, want the row, served by %s", got, replica.Hostname())
			}
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
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if n.IsPrimary() {
			if _, err := db.Exec("CREATE TABLE items(v TEXT, node TEXT)"); err != nil {
				t.Fatal(err)
			}
		}
		b, err := httpbridge.New(httpbridge.Config{InstanceID: n.Hostname(), DB: db})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(b.Handler(app(db, n.Hostname())))
		t.Cleanup(srv.Close)
		urls[n.Hostname()] = srv.URL
	}
	cluster.WaitReplicated(t)
	primary, replica := cluster.Primary().Hostname(), cluster.Replicas()[0].Hostname()
	for i := range 20 {
		v := fmt.Sprint("row-", i)
		resp, err := http.PostForm(urls[primary]+"/items", url.Values{"v": {v}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookie := txidCookie(t, resp)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, urls[replica]+"/count?v="+v, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(cookie)
		if got := fetch(t, req); got != "1 on "+replica+"\n" {
			t.Fatalf("write %d: the replica answered %q, want the row", i, got)
		}
	}
}

func txidCookie(tb testing.TB, resp *http.Response) *http.Cookie {
	tb.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == httpbridge.DefaultTXIDCookie {
			return c
		}
	}
	tb.Fatalf("no %s cookie in %v", httpbridge.DefaultTXIDCookie, resp.Header)
	return nil
}

func fetch(tb testing.TB, req *http.Request) string {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %q %v", req.URL, resp.StatusCode, b, err)
	}
	return string(b)
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
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	if _, err := pdb.Exec("CREATE TABLE items(v TEXT, node TEXT)"); err != nil {
		t.Fatal(err)
	}
	cluster.WaitReplicated(t)
	rdb, err := sql.Open("litefs", replica.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()

	pb, err := httpbridge.New(httpbridge.Config{InstanceID: primary.Hostname(), DB: pdb})
	if err != nil {
		t.Fatal(err)
	}
	signal := &waitSignal{Position: httpbridge.DBPosition(rdb), waiting: make(chan struct{})}
	rb, err := httpbridge.New(httpbridge.Config{InstanceID: replica.Hostname(), Position: signal, TXIDWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	psrv := httptest.NewServer(pb.Handler(app(pdb, primary.Hostname())))
	defer psrv.Close()
	rsrv := httptest.NewServer(rb.Handler(app(rdb, replica.Hostname())))
	defer rsrv.Close()

	raw, err := sql.Open("sqlite3", replica.DBPath()+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	lock, err := raw.Begin()
	if err != nil {
		t.Fatalf("taking the replica's write lock: %v", err)
	}
	defer lock.Rollback()

	resp, err := http.PostForm(psrv.URL+"/items", url.Values{"v": {"fresh"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rsrv.URL+"/count?v=fresh", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(txidCookie(t, resp))
	got := make(chan string, 1)
	go func() { got <- fetch(t, req) }()

	select {
	case <-signal.waiting:
	case body := <-got:
		t.Fatalf("the replica answered %q without waiting for the write", body)
	case <-time.After(litefstest.DefaultWaitTimeout):
		t.Fatal("the replica neither waited nor answered")
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if body := <-got; body != "1 on "+replica.Hostname()+"\n" {
		t.Fatalf("after waiting, the replica answered %q, want the row", body)
	}
}
