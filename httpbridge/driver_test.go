package httpbridge

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWithDriver runs the bridge over the real driver: the refusals come
// from litefs, not from the test.
func TestWithDriver(t *testing.T) {
	t.Parallel()
	db, m := openTestDB(t)
	var ev events
	b := newBridge(t, Config{OnEvent: ev.add, WaitPrimary: litefs.WaitPrimary, PrimaryWait: 5 * time.Second})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /posts", func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), "INSERT INTO posts VALUES (?)", "hi"); err != nil {
			if r.URL.Query().Has("promote") {
				// A primary is elected while the request is refused.
				m.SetReplica("node-b")
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("POST /mail", func(w http.ResponseWriter, r *http.Request) {
		if err := RequirePrimary(r, db); err != nil {
			if !errors.Is(err, litefs.ErrNotPrimary) {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
			return
		}
		io.WriteString(w, "sent")
	})
	mux.HandleFunc("GET /posts", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM posts").Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, strings.Repeat("p", n))
	})
	h := b.Handler(mux)
	do := func(method, target string) *httptest.ResponseRecorder {
		return serve(h, httptest.NewRequest(method, target, strings.NewReader("title=hi")))
	}

	// Primary: a plain directory.
	w := do("POST", "/posts")
	require.Equal(t, http.StatusCreated, w.Code, "POST on the primary: body %q", w.Body)
	w = do("POST", "/mail")
	require.Equal(t, http.StatusOK, w.Code, "RequirePrimary on the primary")
	require.Equal(t, "sent", w.Body.String(), "RequirePrimary on the primary")

	// Replica of node-a.
	m.SetReplica("node-a")
	m.WriteLagFile([]byte("+000000001\n"), time.Now())
	for _, target := range []string{"/posts", "/mail"} {
		w := do("POST", target)
		assert.Equal(t, http.StatusConflict, w.Code, "POST %s on a replica", target)
		assert.Equal(t, "instance=node-a;state=litefs-hops:1", w.Header().Get("Fly-Replay"), "POST %s on a replica", target)
		assert.Empty(t, w.Body.String(), "POST %s on a replica", target)
	}
	w = do("GET", "/posts")
	assert.Equal(t, http.StatusOK, w.Code, "GET on a replica")
	assert.Equal(t, "p", w.Body.String(), "GET on a replica")

	// No primary known, then one elected while the bridge waits.
	m.SetNoPrimary()
	w = do("POST", "/posts?promote")
	assert.Equal(t, http.StatusConflict, w.Code, "POST with no primary, then node-b")
	assert.Equal(t, "instance=node-b;state=litefs-hops:1", w.Header().Get("Fly-Replay"), "POST with no primary, then node-b")
	ev.mu.Lock()
	defer ev.mu.Unlock()
	require.Len(t, ev.es, 3, "events")
	assert.Equal(t, "node-b", ev.es[2].Primary, "the last event's primary")
}
