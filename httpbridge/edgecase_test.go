package httpbridge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A handler that closes its body (defer r.Body.Close()) before the bridge
// acts must not cost the request its replay: the body stays readable for
// the bridge, which measures it (fly-replay) or re-sends it (Forwarder).
func TestBodyClosedByTheHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		forward bool
		chunked bool
	}{
		{name: "fly-replay, known length"},
		{name: "fly-replay, chunked", chunked: true},
		{name: "forwarder, known length", forward: true},
		{name: "forwarder, chunked", forward: true, chunked: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPrimary(t, nil)
			c := Config{}
			if tc.forward {
				c.Replay = newForwarder(t, ForwardConfig{URL: "http://{primary}.internal", Transport: p.transport()})
			}
			b := newBridge(t, c)
			srv := httptest.NewServer(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer r.Body.Close()
				buf := make([]byte, 5) // read part of it only
				io.ReadFull(r.Body, buf)
				r.Body.Close()
				_, err := r.Body.Read(buf)
				assert.Error(t, err, "the handler could read its body after closing it")
				refuse(t, r, notPrimary("node-a"))
			})))
			defer srv.Close()
			var body io.Reader = strings.NewReader("title=hello")
			if tc.chunked {
				body = io.MultiReader(body) // no length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/posts", body)
			require.NoError(t, err)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !tc.forward {
				assert.NotEmpty(t, res.Header.Get("Fly-Replay"), "got %d %q, want a fly-replay", res.StatusCode, got)
				return
			}
			require.Equal(t, http.StatusCreated, res.StatusCode, "want the primary's 201; body %q", got)
			p.mu.Lock()
			defer p.mu.Unlock()
			require.Len(t, p.reqs, 1, "the primary's requests")
			assert.Equal(t, "title=hello", string(p.reqs[0].body), "the body the primary got")
		})
	}
}

// The Forwarder passes on what a trusted edge proxy said of the client.
func TestForwarderKeepsXForwarded(t *testing.T) {
	t.Parallel()
	var proto, forFor string
	p := newPrimary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto, forFor = r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-For")
	}))
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}.internal", Transport: p.transport(),
		TrustForwarded: func(*http.Request) bool { return true }})})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
	}))
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	serve(h, r)
	assert.Equal(t, "https", proto, "X-Forwarded-Proto at the primary")
	assert.True(t, strings.HasPrefix(forFor, "203.0.113.7, "), "X-Forwarded-For at the primary: got %q, want 203.0.113.7 first", forFor)
}

// A handler whose write was refused, and which then committed a write to
// another database, gets an error response, not an empty 200.
func TestRefusedThenCommittedElsewhere(t *testing.T) {
	t.Parallel()
	replicaDB, m := openTestDB(t)
	m.SetReplica("node-a")
	localDB, _ := openTestDB(t)
	var ev events
	b := newBridge(t, Config{OnEvent: ev.add})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := replicaDB.ExecContext(r.Context(), "INSERT INTO posts VALUES ('x')")
		assert.ErrorIs(t, err, litefs.ErrNotPrimary, "want a refusal")
		http.Error(w, "could not save", http.StatusInternalServerError)
		_, err = localDB.ExecContext(r.Context(), "INSERT INTO posts VALUES ('audit')")
		assert.NoError(t, err)
	}))
	w := serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusInternalServerError, w.Code, "status")
	assert.Empty(t, w.Header().Get("Fly-Replay"), "Fly-Replay")
	assert.Equal(t, uint64(1), b.Count(ReasonPartial), "Count(ReasonPartial)")
}
