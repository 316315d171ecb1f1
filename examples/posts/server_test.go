package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		{"status", "GET", "/status", http.StatusOK, "", "application/json", `"role":"not-litefs"`},
		{"unknown path", "GET", "/nope", http.StatusNotFound, "", "text/plain", "not found"},
		{"unknown static file", "GET", "/static/nope.css", http.StatusNotFound, "", "text/plain", "not found"},
		{"static directory is not listed", "GET", "/static/", http.StatusNotFound, "", "text/plain", "not found"},
		{"unknown post", "GET", "/posts/99", http.StatusNotFound, "", "text/html", "There is no such post."},
		{"post ID not a number", "GET", "/posts/x1", http.StatusNotFound, "", "text/html", "There is no such post."},
		{"GET of the store route is no post", "GET", "/posts/store", http.StatusNotFound, "", "text/html", ""},
		{"list page not a number", "GET", "/posts?before=x", http.StatusBadRequest, "", "text/html", "does not exist"},
		{"list page not positive", "GET", "/posts?before=0", http.StatusBadRequest, "", "text/html", "does not exist"},
		{"list page past the end", "GET", "/posts?before=1", http.StatusOK, "", "text/html", "No older posts."},
		{"POST of the list", "POST", "/posts", http.StatusMethodNotAllowed, "", "text/plain", ""},
		{"DELETE of the list", "DELETE", "/posts", http.StatusMethodNotAllowed, "", "text/plain", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := a.do(t, request{method: tc.method, path: tc.path})
			require.Equal(t, tc.status, resp.StatusCode, "body:\n%s", body)
			assert.Equal(t, tc.location, resp.Header.Get("Location"), "Location")
			assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType),
				"Content-Type %q, want %q…", resp.Header.Get("Content-Type"), tc.contentType)
			assert.Contains(t, body, tc.contains)
			assert.NotContains(t, body, "style.css</a>", "a directory was listed")
		})
	}
}

// TestSecurityHeaders checks the headers every kind of response carries,
// and the Cache-Control of each.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	flash := &http.Cookie{Name: flashCookie, Value: "created"}
	tests := []struct {
		name  string
		req   request
		cache string
	}{
		{"list", request{method: "GET", path: "/posts"}, "no-cache"},
		{"list showing a flash message", request{method: "GET", path: "/posts", cookies: []*http.Cookie{flash}}, "no-store"},
		{"form", request{method: "GET", path: "/posts/create"}, "no-cache"},
		{"store setting a flash message", request{method: "POST", path: "/posts/store", form: url.Values{"title": {"t"}}}, "no-store"},
		{"invalid form", request{method: "POST", path: "/posts/store", form: url.Values{"title": {""}}}, "no-cache"},
		{"not found", request{method: "GET", path: "/nope"}, "no-cache"},
		{"stylesheet", request{method: "GET", path: "/static/style.css"}, "public, max-age=3600"},
		{"health", request{method: "GET", path: "/healthz"}, "no-store"},
		{"unknown host", request{method: "GET", path: "/posts", header: map[string]string{"Host": "evil.example"}}, "no-cache"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := a.do(t, tc.req)
			h := resp.Header
			assert.Equal(t, tc.cache, h.Get("Cache-Control"), "Cache-Control")
			assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			assert.Equal(t, "DENY", h.Get("X-Frame-Options"))
			assert.Contains(t, h.Get("Content-Security-Policy"), "frame-ancestors 'none'")
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
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/posts", resp.Header.Get("Location"))
	flash := cookie(resp, flashCookie)
	require.NotNil(t, flash, "no flash cookie")
	require.Equal(t, "created", flash.Value)
	require.Positive(t, flash.MaxAge)
	require.True(t, flash.HttpOnly)

	resp, body := a.do(t, request{method: "GET", path: "/posts", cookies: []*http.Cookie{flash}})
	for _, want := range []string{"Post created.", `<a href="/posts/1">Hello, &lt;LiteFS&gt;</a></h2>`, "line one\nline two"} {
		assert.Contains(t, body, want)
	}
	if c := cookie(resp, flashCookie); assert.NotNil(t, c, "the list did not clear the flash cookie") {
		assert.Negative(t, c.MaxAge, "the list did not clear the flash cookie")
	}

	_, body = a.do(t, request{method: "GET", path: "/posts"})
	assert.NotContains(t, body, "Post created.", "the flash message shows without its cookie")
	_, body = a.do(t, request{method: "GET", path: "/posts", cookies: []*http.Cookie{{Name: flashCookie, Value: "<b>forged</b>"}}})
	assert.NotContains(t, body, "forged", "an unknown flash key was shown")
	assert.NotContains(t, body, `class="flash"`, "an unknown flash key was shown")

	_, body = a.do(t, request{method: "GET", path: "/posts/1"})
	assert.Contains(t, body, "<h1>Hello, &lt;LiteFS&gt;</h1>")
	assert.Contains(t, body, "line one\nline two")
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
		{"title too long", long(maxTitle + 1), "", "The title is 201 characters long; the limit is 200. Only its first 200 are shown."},
		{"body too long", "Title", long(maxBody + 1), "The text is 10001 characters long; the limit is 10000. Only its first 10000 are shown."},
		// Escaped, 60,000 quotes are 300 KB, over maxPage: shown whole they
		// made a bare 500 and an ERROR log.
		{"title of quotes", strings.Repeat(`"`, 60_000), "", "The title is 60000 characters long; the limit is 200."},
		{"body of quotes", "Title", strings.Repeat(`"`, 60_000), "The text is 60000 characters long; the limit is 10000."},
		{"title not UTF-8", "bad \xff title", "", "The title is not valid text."},
		{"body not UTF-8", "Title", "bad \xfe body", "The text is not valid text."},
		{"title of a NUL", "\x00", "", "The title is not valid text."}, // SQLite's length() would say 0
		{"title with a tab", "a\tb", "", "The title is not valid text."},
		{"body with a NUL", "Title", "a\x00b", "The text is not valid text."},
		{"body with a bell", "Title", "ding\a", "The text is not valid text."},
		{"title with a right-to-left override", "invoice\u202Efdp.exe", "", "The title contains an invisible or text-direction character (U+202E), which is not allowed."},
		{"title with a zero-width space", "pay\u200Bpal", "", "The title contains an invisible or text-direction character (U+200B)"},
		{"title of a Hangul filler", "\u3164", "", "The title contains an invisible or text-direction character (U+3164)"},
		{"body with a byte order mark", "Title", "a\uFEFFb", "The text contains an invisible or text-direction character (U+FEFF), which is not allowed."},
		{"body with a bidi isolate", "Title", "x \u2066y\u2069", "The text contains an invisible or text-direction character (U+2066)"},
		{"body with a left-to-right mark", "Title", "a\u200Eb", "(U+200E)"},
		{"title of a braille blank", "\u2800", "", "The title contains an invisible or text-direction character (U+2800)"},
		{"title with a Mongolian variation selector", "a\u180Bb", "", "(U+180B)"},
		{"title of a joiner", "\u200D", "", "The title has no visible character."},
		{"title of joiners and a space", "\u200C \u200D", "", "The title has no visible character."},
		{"title of a variation selector", "\uFE0F", "", "The title has no visible character."},
		{"title of a supplementary variation selector", "\U000E0100", "", "The title has no visible character."},
		{"body of a variation selector", "Title", " \uFE0F\n", "The text has no visible character."},
		{"emoji with a variation selector", "\u2764\uFE0F", "\u2764\uFE0F", ""},
		{"Devanagari with ZWJ", "क्\u200Dष", "", ""},
		{"body of line ends only", "Title", "\n\n", ""},
		{"body with tabs and line ends", "Title", "a\tb\r\nc\rd\n", ""},
		{"emoji joined by ZWJ", "family \U0001F468\u200D\U0001F469\u200D\U0001F467", "", ""},
		{"Persian with ZWNJ", "می\u200Cخواهم", "", ""},
		{"longest title and body", long(maxTitle), long(maxBody), ""},
		{"no body", "Title only", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := a.count(t)
			resp, body := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{"title": {tc.title}, "body": {tc.body}}})
			if tc.wantError == "" {
				require.Equal(t, http.StatusSeeOther, resp.StatusCode, "body:\n%s", body)
				assert.Equal(t, before+1, a.count(t), "posts")
				return
			}
			require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "body:\n%s", body)
			assert.Contains(t, html.UnescapeString(body), tc.wantError)
			assert.Contains(t, body, `aria-invalid="true"`, "no field is marked invalid")
			// The input is kept: the title in the value attribute, the body
			// in the text area, escaped, with what is not text replaced.
			// Text over the limit is shown cut to the limit.
			assert.Contains(t, body, `value="`+shownAsHTML(cutRunes(strings.TrimSpace(tc.title), maxTitle))+`"`, "the title was not kept")
			assert.Contains(t, body, ">\n"+shownAsHTML(cutRunes(tc.body, maxBody))+"</textarea>", "the body was not kept")
			assert.Equal(t, before, a.count(t), "an invalid post was stored")
			assert.NotContains(t, a.logs.String(), "level=ERROR", "client input made an ERROR log")
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
		// DNS rebinding: evil.example resolves to this machine, so the
		// browser sees one origin and sends its name as Host.
		{"rebound name, same origin", map[string]string{"Host": "evil.example", "Origin": "http://evil.example"}, http.StatusBadRequest},
		{"rebound name, old browser", map[string]string{"Host": "evil.example:8080", "Sec-Fetch-Site": "", "Origin": "http://evil.example:8080"}, http.StatusBadRequest},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
		{"old browser, same origin", map[string]string{"Sec-Fetch-Site": "", "Origin": "http://example.com"}, http.StatusSeeOther},
		{"localhost, same origin", map[string]string{"Host": "localhost:8080", "Origin": "http://localhost:8080"}, http.StatusSeeOther},
		{"not a browser", map[string]string{"Sec-Fetch-Site": ""}, http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := a.count(t)
			resp, body := a.do(t, request{method: "POST", path: "/posts/store", form: form, header: tc.header})
			require.Equal(t, tc.status, resp.StatusCode, "body:\n%s", body)
			want := before
			switch tc.status {
			case http.StatusSeeOther:
				want++
			case http.StatusForbidden:
				assert.Contains(t, body, "sent from another site", "the refusal does not explain itself")
			case http.StatusBadRequest:
				assert.Contains(t, body, "Unknown host", "the refusal does not explain itself")
			}
			assert.Equal(t, want, a.count(t), "posts")
		})
	}
}

func TestStoreBodyTooLarge(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	resp, _ := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{
		"title": {"Big"}, "body": {strings.Repeat("x", maxFormBody)},
	}})
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Zero(t, a.count(t), "posts stored")
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
		require.Equal(t, http.StatusConflict, resp.StatusCode, "body:\n%s", body)
		h, err := litefstest.ParseReplayHeader(resp.Header.Get("Fly-Replay"))
		require.NoError(t, err)
		assert.Equal(t, "node-a", h.Instance, "replayed to")
		assert.Nil(t, cookie(resp, flashCookie), "the replay response sets the flash cookie")
		assert.Empty(t, resp.Header.Get("Content-Encoding"), "the replay response kept the page's headers")
		assert.Zero(t, a.count(t), "posts stored on the replica")
	})
	t.Run("valid post is replayed for a gzip client too", func(t *testing.T) {
		resp, body := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{"title": {"From a replica"}},
			header: map[string]string{"Accept-Encoding": "gzip"}})
		require.Equal(t, http.StatusConflict, resp.StatusCode, "body:\n%s", body)
		assert.True(t, strings.HasPrefix(resp.Header.Get("Fly-Replay"), "instance=node-a"), "Fly-Replay %q", resp.Header.Get("Fly-Replay"))
		assert.Empty(t, resp.Header.Get("Content-Encoding"))
	})
	t.Run("invalid post is answered here", func(t *testing.T) {
		resp, _ := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{"title": {""}}})
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Fly-Replay"))
	})
	t.Run("list is served here", func(t *testing.T) {
		resp, body := a.do(t, request{method: "GET", path: "/posts"})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, "Served by <code>node-b</code>")
	})
	t.Run("health describes the replica", func(t *testing.T) {
		resp, body := a.do(t, request{method: "GET", path: "/healthz"})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Fly-Replay"))
		var got map[string]string
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		want := map[string]string{"status": "ok", "instance": "node-b", "role": "replica", "primary": "node-a", "txid": "0000000000000007"}
		for k, v := range want {
			assert.Equal(t, v, got[k], "%s (all: %v)", k, got)
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
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.NotNil(t, txid, "no __txid cookie")
	require.Equal(t, "0000000000000005", txid.Value)

	rm := litefstest.NewMount(t)
	replica := newTestApp(t, rm.DBPath(), "node-b")
	rm.SetReplica("node-a")
	rm.SetTXID(4) // one behind the cookie
	resp, _ = replica.do(t, request{method: "GET", path: "/posts", cookies: []*http.Cookie{txid}})
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "GET on a replica behind the cookie")
	assert.True(t, strings.HasPrefix(resp.Header.Get("Fly-Replay"), "instance=node-a"),
		"GET on a replica behind the cookie: Fly-Replay %q, want a replay to node-a", resp.Header.Get("Fly-Replay"))
	rm.SetTXID(5)
	resp, _ = replica.do(t, request{method: "GET", path: "/posts", cookies: []*http.Cookie{txid}})
	assert.Equal(t, http.StatusOK, resp.StatusCode, "GET on a replica that has the write")
}

// TestHealthWithoutSchema checks that /healthz reports a broken database
// with a 503 and a generic message, and logs the database's own error.
func TestHealthWithoutSchema(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	_, err := a.db.ExecContext(t.Context(), `DROP TABLE posts`)
	require.NoError(t, err)
	resp, body := a.do(t, request{method: "GET", path: "/healthz"})
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "body %s", body)
	assert.Contains(t, body, `"error":"the database check failed; see the log"`)
	assert.NotContains(t, body, "no such table", "the database's error is shown to the client")
	assert.Contains(t, a.logs.String(), "no such table: posts", "the database's error is not logged")
}

// TestAccessLogCapsClientValues sends a long path and a long
// Fly-Replay-Src: the log line keeps a bounded part of each.
func TestAccessLogCapsClientValues(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	long := strings.Repeat("a", 100_000)
	a.do(t, request{method: "GET", path: "/" + long, header: map[string]string{"Fly-Replay-Src": "instance=x;state=" + long}})
	a.do(t, request{method: "POST", path: "/posts/store/" + long, form: url.Values{"title": {"t"}},
		header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://" + long}})
	a.do(t, request{method: "GET", path: "/" + long, header: map[string]string{"Host": long + ".example"}})
	var lines int
	for line := range strings.Lines(a.logs.String()) {
		if !strings.Contains(line, "aaaaaaaaaa") {
			continue
		}
		lines++
		assert.Less(t, len(line), 2048, "a log line of %d bytes: %.300s…", len(line), line)
		assert.Contains(t, line, "bytes more")
	}
	assert.GreaterOrEqual(t, lines, 3, "the requests were not logged:\n%.2000s", a.logs.String())
}

func TestCapped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"short", "abc", "abc"},
		{"at the limit", strings.Repeat("a", maxLogValue), strings.Repeat("a", maxLogValue)},
		{"over the limit", strings.Repeat("a", maxLogValue+5), strings.Repeat("a", maxLogValue) + "…(5 bytes more)"},
		{"cut inside a character", strings.Repeat("a", maxLogValue-1) + "é", strings.Repeat("a", maxLogValue-1) + "…(2 bytes more)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, capped(tc.in))
		})
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
			require.FailNow(t, "run returned early", "%v", err)
		default:
		}
		return healthy("http://" + addr)
	})
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "run")
	case <-time.After(shutdownTimeout + 5*time.Second):
		require.FailNow(t, "run did not return after its context ended")
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
		require.FailNow(t, "run returned before waiting for the schema", "%v", err)
	case <-time.After(litefstest.DefaultWaitTimeout):
		require.FailNow(t, "run did not wait for the schema")
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "run")
	case <-time.After(litefstest.DefaultWaitTimeout):
		require.FailNow(t, "run did not return after its context ended")
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

// healthy returns nil once the app at base answers GET /healthz with 200.
func healthy(base string) error {
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/healthz: %s", base, resp.Status)
	}
	return nil
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
