package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// Worst-case posts for the size of a page: every character of the longest
// title and body is '<', which HTML writes as four bytes.
var (
	worstTitle = strings.Repeat("<", maxTitle)
	worstBody  = strings.Repeat("<", maxBody)
)

// maxListPage bounds a page of the list made of worst-case posts: pageSize
// posts, each a title and an excerpt of 4 bytes per character, plus the
// markup. (Before the list was paged and cut, 100 such posts made 4.1 MB.)
const maxListPage = 64 << 10

// storeWorstPosts stores n worst-case posts directly, as fast as possible.
func storeWorstPosts(t *testing.T, a *testApp, n int) {
	t.Helper()
	store := postStore{db: a.db}
	for range n {
		_, err := store.Create(t.Context(), worstTitle, worstBody, time.Now())
		require.NoError(t, err)
	}
}

var (
	articleRE = regexp.MustCompile(`<article class="post" id="post-(\d+)">`)
	olderRE   = regexp.MustCompile(`href="(/posts\?before=\d+)"`)
)

// TestListPageSize walks the list of 100 worst-case posts page by page:
// each page stays small, and every post shows once.
func TestListPageSize(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	storeWorstPosts(t, a, 100)

	seen := map[string]bool{}
	path, pages, largest := "/posts", 0, 0
	for path != "" {
		pages++
		require.LessOrEqual(t, pages, 100/pageSize+1, "the list does not end")
		resp, body := a.do(t, request{method: "GET", path: path})
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.LessOrEqual(t, len(body), maxListPage, "%s: a page of %d bytes", path, len(body))
		largest = max(largest, len(body))
		ids := articleRE.FindAllStringSubmatch(body, -1)
		assert.LessOrEqual(t, len(ids), pageSize, "%s: posts on the page", path)
		for _, id := range ids {
			assert.False(t, seen[id[1]], "post %s shown twice", id[1])
			seen[id[1]] = true
		}
		assert.Contains(t, body, strings.Repeat("&lt;", excerptLen)+"…", "%s: the excerpt", path)
		assert.NotContains(t, body, strings.Repeat("&lt;", excerptLen+1), "%s: a body longer than the excerpt", path)
		assert.Contains(t, body, "Read the whole post")
		path = ""
		if m := olderRE.FindStringSubmatch(body); m != nil {
			path = m[1]
		}
	}
	t.Logf("largest page of the list: %d bytes", largest)
	assert.Len(t, seen, 100, "posts shown")
	assert.Equal(t, 100/pageSize, pages, "pages")

	// The post's own page has the whole of it, within the bound of a page.
	resp, body := a.do(t, request{method: "GET", path: "/posts/1"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "<h1>"+strings.Repeat("&lt;", maxTitle)+"</h1>")
	assert.Contains(t, body, ">"+strings.Repeat("&lt;", maxBody)+"</div>")
	assert.Less(t, len(body), maxPage, "the largest post page is over maxPage")
	t.Logf("largest post page: %d bytes", len(body))
}

// TestGzip checks that a page goes compressed to a client that accepts it,
// and is the same page once decompressed.
func TestGzip(t *testing.T) {
	t.Parallel()
	a := newPrimaryApp(t)
	storeWorstPosts(t, a, 2)
	plain, plainBody := a.do(t, request{method: "GET", path: "/posts"})
	require.Equal(t, http.StatusOK, plain.StatusCode)
	assert.Empty(t, plain.Header.Get("Content-Encoding"))
	assert.Equal(t, "Accept-Encoding", plain.Header.Get("Vary"))

	for _, accept := range []string{"gzip", "gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1"} {
		t.Run(accept, func(t *testing.T) {
			resp, body := a.do(t, request{method: "GET", path: "/posts", header: map[string]string{"Accept-Encoding": accept}})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			assert.Equal(t, "Accept-Encoding", resp.Header.Get("Vary"))
			assert.Equal(t, fmt.Sprint(len(body)), resp.Header.Get("Content-Length"))
			assert.Less(t, len(body), len(plainBody)/5, "compressed %d bytes of %d", len(body), len(plainBody))
			zr, err := gzip.NewReader(strings.NewReader(body))
			require.NoError(t, err)
			html, err := io.ReadAll(zr)
			require.NoError(t, err)
			assert.Equal(t, plainBody, string(html))
		})
	}
	t.Run("small pages go uncompressed", func(t *testing.T) {
		resp, _ := a.do(t, request{method: "GET", path: "/nope", header: map[string]string{"Accept-Encoding": "gzip"}})
		assert.Empty(t, resp.Header.Get("Content-Encoding"))
	})
}

// TestRenderBound renders a page over maxPage: the app answers 500 rather
// than holding and sending it.
func TestRenderBound(t *testing.T) {
	t.Parallel()
	pages, err := parsePages()
	require.NoError(t, err)
	logs := &litefstest.SyncBuffer{}
	a := &app{pages: pages, log: slog.New(slog.NewTextHandler(logs, nil))}
	tests := []struct {
		name    string
		message string
		status  int
	}{
		{"within the bound", strings.Repeat("x", maxPage/2), http.StatusTeapot},
		{"over the bound", strings.Repeat("x", maxPage), http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			a.render(w, httptest.NewRequest("GET", "/", nil), http.StatusTeapot, "error", pageData{Message: tc.message})
			assert.Equal(t, tc.status, w.Code)
			assert.LessOrEqual(t, w.Body.Len(), maxPage)
		})
	}
	assert.Contains(t, logs.String(), errPageTooLarge.Error())
}

func TestBoundedWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := boundedWriter{&buf, 10}
	n, err := w.Write([]byte("0123456789"))
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	_, err = w.Write([]byte("a"))
	assert.ErrorIs(t, err, errPageTooLarge)
	assert.Equal(t, "0123456789", buf.String())
}

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		want   bool
	}{
		{"none", nil, false},
		{"empty", []string{""}, false},
		{"gzip", []string{"gzip"}, true},
		{"upper case", []string{"GZIP"}, true},
		{"x-gzip", []string{"x-gzip"}, true},
		{"in a list", []string{"deflate, gzip, br"}, true},
		{"in a second header", []string{"br", "gzip"}, true},
		{"any", []string{"*"}, true},
		{"with a quality", []string{"gzip;q=0.5"}, true},
		{"with spaces", []string{" gzip ; q = 0.5 "}, true},
		{"refused", []string{"gzip;q=0"}, false},
		{"refused, with decimals", []string{"gzip;q=0.000"}, false},
		{"any refused", []string{"*;q=0"}, false},
		{"any refused, gzip named", []string{"*;q=0, gzip"}, true},
		{"gzip refused before any", []string{"gzip;q=0, *"}, false},
		{"gzip refused after any", []string{"*, gzip;q=0"}, false},
		{"gzip refused in a second header", []string{"*", "gzip;q=0"}, false},
		{"both names refused", []string{"*;q=1, x-gzip;q=0, gzip;q=0"}, false},
		{"x-gzip refused", []string{"gzip, x-gzip;q=0"}, false},
		{"bad quality", []string{"gzip;q=x"}, false},
		{"quality over 1", []string{"gzip;q=2"}, false},
		{"quality NaN", []string{"gzip;q=NaN"}, false},
		{"other parameter", []string{"gzip;level=1"}, true},
		{"identity only", []string{"identity"}, false},
		{"a longer name", []string{"gzipper"}, false},
		{"deflate only", []string{"deflate"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, acceptsGzip(tc.values))
		})
	}
}

// FuzzAcceptsGzip: any header value is read without a panic, and a value
// that does not mention gzip or '*' never accepts it.
func FuzzAcceptsGzip(f *testing.F) {
	for _, seed := range []string{"", "gzip", "gzip;q=0", "*;q=0.1, gzip;q=0", "br, x-gzip;q=1.0", "gzip;q=;q=1", ";;,,", "gzip;q=1e-400"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if acceptsGzip([]string{v}) {
			assert.True(t, strings.Contains(strings.ToLower(v), "gzip") || strings.Contains(v, "*"),
				"acceptsGzip(%q) = true without gzip or *", v)
		}
	})
}
