package main

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzStore posts any title and text: the app answers 303 and stores
// exactly what validation accepted, or 422 and stores nothing; never a 500.
// In particular, what the form accepts must pass the schema's CHECKs.
func FuzzStore(f *testing.F) {
	for _, seed := range [][2]string{
		{"Hello", "World"},
		{"", ""},
		{"  padded  ", "\r\nline\r\n"},
		{"nul\x00inside", "text"},
		{"\x00", ""},
		{"tab\there", "a\x00b"},
		{"bad \xff", "bad \xfe"},
		{"é", "\u2028\u0085"},
		{"rtl \u202E override", "zero\u200Bwidth"},
		{"\U0001F468\u200D\U0001F469", "\uFEFF\u2066\u3164"},
	} {
		f.Add(seed[0], seed[1])
	}
	a := newTestApp(f, filepath.Join(f.TempDir(), "posts.db"), "node-a")
	f.Fuzz(func(t *testing.T, title, body string) {
		before := a.count(t)
		resp, page := a.do(t, request{method: "POST", path: "/posts/store", form: url.Values{"title": {title}, "body": {body}}})
		form := newPostForm(url.Values{"title": {title}, "body": {body}})
		valid := form.validate()
		switch {
		case resp.StatusCode == http.StatusSeeOther && valid:
			var got post
			require.NoError(t, a.db.GetContext(t.Context(), &got, `SELECT id, title, body, created_at FROM posts ORDER BY id DESC LIMIT 1`))
			assert.Equal(t, form.Title, got.Title, "stored title")
			assert.Equal(t, form.Body, got.Body, "stored body")
		case resp.StatusCode == http.StatusUnprocessableEntity && !valid:
			assert.Equal(t, before, a.count(t), "posts after a refused form")
		default:
			require.FailNow(t, "unexpected status", "status %d for a form valid=%v (%v); body:\n%s", resp.StatusCode, valid, form.Errors, page)
		}
	})
}
