package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

// testApp is the app on a database file of the test's own.
type testApp struct {
	h  http.Handler
	db *sqlx.DB
}

// newTestApp opens the database at path, creates the schema as a primary
// would, and builds the app's handler for instance.
func newTestApp(t testing.TB, path, instance string) *testApp {
	t.Helper()
	cfg := config{DatabasePath: path, InstanceID: instance, Region: "test", SchemaWait: time.Second}
	db, err := sqlx.Open(litefs.DriverName, cfg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := migrate(t.Context(), db, cfg.SchemaWait, log); err != nil {
		t.Fatal(err)
	}
	h, err := newServer(cfg, db, log)
	if err != nil {
		t.Fatal(err)
	}
	return &testApp{h: h, db: db}
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
// unless req.header says otherwise, and returns the response with its body.
func (a *testApp) do(t *testing.T, req request) (*http.Response, string) {
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
		r.Header.Set(k, v)
	}
	for _, c := range req.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	resp := w.Result()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// count returns the number of stored posts.
func (a *testApp) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := a.db.GetContext(t.Context(), &n, `SELECT count(*) FROM posts`); err != nil {
		t.Fatal(err)
	}
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

func TestRoutes(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	tests := []struct {
		name, method, path string
		status             int
		location           string // Location header, if a redirect
		contentType        string // prefix
		contains           string
	}{
		{"root redirects to the list", "GET", "/", http.StatusFound, "/posts", "", ""},
		{"empty list", "GET", "/posts", http.StatusOK, "", "text/html", "No posts yet."},
		{"footer names the instance", "GET", "/posts", http.StatusOK, "", "text/html", "Served by <code>node-a</code> in <code>test</code>"},
		{"create form", "GET", "/posts/create", http.StatusOK, "", "text/html", `<form class="card" method="post" action="/posts/store">`},
		{"stylesheet", "GET", "/static/style.css", http.StatusOK, "", "text/css", ".flash"},
		{"HEAD of the list", "HEAD", "/posts", http.StatusOK, "", "text/html", ""},
		{"health", "GET", "/healthz", http.StatusOK, "", "application/json", `"role":"primary"`},
		{"unknown path", "GET", "/nope", http.StatusNotFound, "", "text/plain", "not found"},
		{"unknown static file", "GET", "/static/nope.css", http.StatusNotFound, "", "text/plain", "not found"},
		{"GET of the store route", "GET", "/posts/store", http.StatusMethodNotAllowed, "", "text/plain", ""},
		{"DELETE of the list", "DELETE", "/posts", http.StatusMethodNotAllowed, "", "text/plain", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := a.do(t, request{method: tc.method, path: tc.path})
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.contentType) {
				t.Errorf("Content-Type %q, want %q…", got, tc.contentType)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body does not contain %q:\n%s", tc.contains, body)
			}
		})
	}
}

func TestStoreRedirectsWithFlash(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	resp, _ := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{
		"title": {"  Hello, <LiteFS>  "},
		"body":  {"line one\r\nline two"},
	}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/posts" {
		t.Fatalf("got %d to %q, want 303 to /posts", resp.StatusCode, resp.Header.Get("Location"))
	}
	flash := cookie(resp, flashCookie)
	if flash == nil || flash.Value != "created" || flash.MaxAge <= 0 || !flash.HttpOnly {
		t.Fatalf("flash cookie %v, want created, HttpOnly, with a Max-Age", flash)
	}

	resp, body := a.do(t, request{method: "GET", path: "/posts", cookies: []*http.Cookie{flash}})
	for _, want := range []string{"Post created.", "Hello, &lt;LiteFS&gt;</h2>", "line one\nline two"} {
		if !strings.Contains(body, want) {
			t.Errorf("list does not contain %q:\n%s", want, body)
		}
	}
	if c := cookie(resp, flashCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("the list did not clear the flash cookie: %v", c)
	}

	_, body = a.do(t, request{method: "GET", path: "/posts"})
	if strings.Contains(body, "Post created.") {
		t.Error("the flash message shows without its cookie")
	}
	_, body = a.do(t, request{method: "GET", path: "/posts", cookies: []*http.Cookie{{Name: flashCookie, Value: "<b>forged</b>"}}})
	if strings.Contains(body, "forged") || strings.Contains(body, `class="flash"`) {
		t.Error("an unknown flash key was shown")
	}
}

func TestStoreValidation(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	long := func(n int) string { return strings.Repeat("é", n) } // multi-byte: limits count characters
	tests := []struct {
		name, title, body string
		wantError         string // "" means the post is stored
	}{
		{"missing title", "", "some text", "A title is required."},
		{"blank title", " \t ", "some text", "A title is required."},
		{"title too long", long(maxTitle + 1), "", "The title is 201 characters long; the limit is 200."},
		{"body too long", "Title", long(maxBody + 1), "The text is 10001 characters long; the limit is 10000."},
		{"title not UTF-8", "bad \xff title", "", "The title is not valid text."},
		{"body not UTF-8", "Title", "bad \xfe body", "The text is not valid text."},
		{"title of a NUL", "\x00", "", "The title is not valid text."}, // SQLite's length() would say 0
		{"title with a tab", "a\tb", "", "The title is not valid text."},
		{"body with a NUL", "Title", "a\x00b", "The text is not valid text."},
		{"body with a bell", "Title", "ding\a", "The text is not valid text."},
		{"body with tabs and line ends", "Title", "a\tb\r\nc\rd\n", ""},
		{"longest title and body", long(maxTitle), long(maxBody), ""},
		{"no body", "Title only", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := a.count(t)
			resp, body := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{"title": {tc.title}, "body": {tc.body}}})
			if tc.wantError == "" {
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("status %d, want 303; body:\n%s", resp.StatusCode, body)
				}
				if got := a.count(t); got != before+1 {
					t.Errorf("%d posts, want %d", got, before+1)
				}
				return
			}
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422; body:\n%s", resp.StatusCode, body)
			}
			if !strings.Contains(body, tc.wantError) {
				t.Errorf("the form does not say %q:\n%s", tc.wantError, body)
			}
			if !strings.Contains(body, `aria-invalid="true"`) {
				t.Error("no field is marked invalid")
			}
			// The input is kept: the title in the value attribute, the body
			// in the text area, escaped, with what is not text replaced.
			if !strings.Contains(body, `value="`+shownAsHTML(strings.TrimSpace(tc.title))+`"`) {
				t.Errorf("the title %q was not kept", tc.title)
			}
			if !strings.Contains(body, ">\n"+shownAsHTML(tc.body)+"</textarea>") {
				t.Errorf("the body %q was not kept", tc.body)
			}
			if got := a.count(t); got != before {
				t.Errorf("%d posts, want %d: an invalid post was stored", got, before)
			}
		})
	}
}

// shownAsHTML is s as the form shows it: invalid UTF-8 replaced by
// validation, NUL replaced and the rest escaped by html/template.
func shownAsHTML(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return html.EscapeString(strings.ReplaceAll(s, "\x00", "\uFFFD"))
}

func TestStoreRejectsCrossOrigin(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	form := url.Values{"title": {"Forged"}}
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"cross-site form", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site, other origin", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"old browser, other origin", map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
		{"old browser, same origin", map[string]string{"Sec-Fetch-Site": "", "Origin": "http://example.com"}, http.StatusSeeOther},
		{"not a browser", map[string]string{"Sec-Fetch-Site": ""}, http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := a.count(t)
			resp, body := a.do(t, request{method: "POST", path: "/posts/store", form: form, header: tc.header})
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, tc.status, body)
			}
			want := before
			if tc.status == http.StatusSeeOther {
				want++
			} else if !strings.Contains(body, "sent from another site") {
				t.Errorf("the refusal does not explain itself:\n%s", body)
			}
			if got := a.count(t); got != want {
				t.Errorf("%d posts, want %d", got, want)
			}
		})
	}
}

func TestStoreBodyTooLarge(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	resp, _ := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{
		"title": {"Big"}, "body": {strings.Repeat("x", maxFormBody)},
	}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if n := a.count(t); n != 0 {
		t.Errorf("%d posts stored, want 0", n)
	}
}

// TestReplica runs the app on a directory that looks like a LiteFS
// replica's mount: writes go to the primary with fly-replay, reads and
// invalid forms are answered here.
func TestReplica(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	a := newTestApp(t, m.DBPath(), "node-b") // creates the schema while a plain directory
	m.SetReplica("node-a")
	m.SetTXID(7)

	t.Run("valid post is replayed on the primary", func(t *testing.T) {
		resp, body := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{"title": {"From a replica"}}})
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("status %d, want 409; body:\n%s", resp.StatusCode, body)
		}
		h, err := litefstest.ParseReplayHeader(resp.Header.Get("Fly-Replay"))
		if err != nil {
			t.Fatal(err)
		}
		if h.Instance != "node-a" {
			t.Errorf("replayed to %q, want node-a", h.Instance)
		}
		if c := cookie(resp, flashCookie); c != nil {
			t.Errorf("the replay response sets the flash cookie: %v", c)
		}
		if n := a.count(t); n != 0 {
			t.Errorf("%d posts stored on the replica, want 0", n)
		}
	})
	t.Run("invalid post is answered here", func(t *testing.T) {
		resp, _ := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{"title": {""}}})
		if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Fly-Replay") != "" {
			t.Fatalf("status %d, Fly-Replay %q; want 422 and no replay", resp.StatusCode, resp.Header.Get("Fly-Replay"))
		}
	})
	t.Run("list is served here", func(t *testing.T) {
		resp, body := a.do(t, request{method: "GET", path: "/posts"})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Served by <code>node-b</code>") {
			t.Fatalf("status %d, want 200 from node-b; body:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("health describes the replica", func(t *testing.T) {
		resp, body := a.do(t, request{method: "GET", path: "/healthz"})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Fly-Replay") != "" {
			t.Fatalf("status %d, Fly-Replay %q; want 200 and no replay", resp.StatusCode, resp.Header.Get("Fly-Replay"))
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"status": "ok", "instance": "node-b", "role": "replica", "primary": "node-a", "txid": "0000000000000007"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
	})
}

// TestReadYourWrites checks that the bridge is given the database: after a
// write it sets the __txid cookie, and a replica serves a client only once
// it has the transaction the client's cookie names.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	pm := litefstest.NewMount(t)
	primary := newTestApp(t, pm.DBPath(), "node-a")
	pm.SetTXID(5) // as LiteFS would after the INSERT below
	resp, _ := primary.do(t, request{method: "POST", path: "/posts/store", form: url.Values{"title": {"Mine"}}})
	txid := cookie(resp, "__txid")
	if resp.StatusCode != http.StatusSeeOther || txid == nil || txid.Value != "0000000000000005" {
		t.Fatalf("store: status %d, __txid %v; want 303 and __txid=0000000000000005", resp.StatusCode, txid)
	}

	rm := litefstest.NewMount(t)
	replica := newTestApp(t, rm.DBPath(), "node-b")
	rm.SetReplica("node-a")
	rm.SetTXID(4) // one behind the cookie
	resp, _ = replica.do(t, request{method: "GET", path: "/posts", cookies: []*http.Cookie{txid}})
	if resp.StatusCode != http.StatusConflict || !strings.HasPrefix(resp.Header.Get("Fly-Replay"), "instance=node-a") {
		t.Errorf("GET on a replica behind the cookie: status %d, Fly-Replay %q; want a replay to node-a",
			resp.StatusCode, resp.Header.Get("Fly-Replay"))
	}
	rm.SetTXID(5)
	resp, _ = replica.do(t, request{method: "GET", path: "/posts", cookies: []*http.Cookie{txid}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET on a replica that has the write: status %d, want 200", resp.StatusCode)
	}
}

func TestHealthWithoutSchema(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	if _, err := a.db.ExecContext(t.Context(), `DROP TABLE posts`); err != nil {
		t.Fatal(err)
	}
	resp, body := a.do(t, request{method: "GET", path: "/healthz"})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "no such table") {
		t.Fatalf("status %d, body %s; want 503 naming the missing table", resp.StatusCode, body)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	env := map[string]string{
		"LISTEN_ADDR":   addr,
		"DATABASE_PATH": filepath.Join(t.TempDir(), "data dir", "posts?.db"), // created, and an odd name
		"LOG_LEVEL":     "debug",
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, t.Output()) }()

	litefstest.WaitFor(t, func() error {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

// TestRunStopsWhileWaitingForSchema stops a replica that is still waiting
// for the primary's schema: it exits cleanly, without serving.
func TestRunStopsWhileWaitingForSchema(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetReplica("node-a")
	env := map[string]string{"LISTEN_ADDR": freeAddr(t), "DATABASE_PATH": m.DBPath()}
	out := &watchWriter{w: t.Output(), want: "waiting for the primary to create the schema", seen: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, out) }()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("run returned %v before waiting for the schema", err)
	case <-time.After(litefstest.DefaultWaitTimeout):
		t.Fatal("run did not wait for the schema")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v, want nil", err)
		}
	case <-time.After(litefstest.DefaultWaitTimeout):
		t.Fatal("run did not return after its context ended")
	}
}

// watchWriter passes writes to w and closes seen once want was written in
// one write (slog writes a record at once).
type watchWriter struct {
	w    io.Writer
	want string
	seen chan struct{}
	once sync.Once
}

func (ww *watchWriter) Write(b []byte) (int, error) {
	if strings.Contains(string(b), ww.want) {
		ww.once.Do(func() { close(ww.seen) })
	}
	return ww.w.Write(b)
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
