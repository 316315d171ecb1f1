package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/require"
)

// testHost is the Host of the test's requests (httptest's default), allowed
// besides the loopback names.
const testHost = "example.com"

// testApp is the app on a database file of the test's own.
type testApp struct {
	h    http.Handler
	db   *sqlx.DB
	logs *litefstest.SyncBuffer // everything the app logged
}

// newTestApp opens the database at path, creates the schema as a primary
// would, and builds the app's handler for instance.
func newTestApp(t testing.TB, path, instance string) *testApp {
	t.Helper()
	cfg := config{
		DatabasePath: path, InstanceID: instance, Region: "test", SchemaWait: time.Second,
		AllowedHosts: append(allowedHosts("", "127.0.0.1:8080"), testHost),
	}
	db, err := sqlx.Open(litefs.DriverName, cfg.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	logs := &litefstest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	require.NoError(t, migrate(t.Context(), db, cfg.SchemaWait, log))
	h, err := newServer(cfg, db, log)
	require.NoError(t, err)
	return &testApp{h: h, db: db, logs: logs}
}

// newPrimaryApp is a test app on a plain temporary file: a single primary.
func newPrimaryApp(t *testing.T) *testApp {
	t.Helper()
	return newTestApp(t, filepath.Join(t.TempDir(), "posts.db"), "node-a")
}

// request is one request to send to the app.
type request struct {
	method, path string
	form         url.Values
	header       map[string]string
	cookies      []*http.Cookie
}

// do sends req to the app, the way a browser on the app's own page would
// unless req.header says otherwise ("Host" sets the request's Host), and
// returns the response with its body.
func (a *testApp) do(t testing.TB, req request) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if req.form != nil {
		body = strings.NewReader(req.form.Encode())
	}
	r := httptest.NewRequestWithContext(t.Context(), req.method, req.path, body)
	if req.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range req.header {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	for _, c := range req.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	resp := w.Result()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// count returns the number of stored posts.
func (a *testApp) count(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, a.db.GetContext(t.Context(), &n, `SELECT count(*) FROM posts`))
	return n
}

func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}
