package httpbridge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
		{"fly-replay, known length", false, false},
		{"fly-replay, chunked", false, true},
		{"forwarder, known length", true, false},
		{"forwarder, chunked", true, true},
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
				if _, err := r.Body.Read(buf); err == nil {
					t.Error("the handler could read its body after closing it")
				}
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
				if res.Header.Get("Fly-Replay") == "" {
					t.Fatalf("got %d %q, want a fly-replay", res.StatusCode, got)
				}
				return
			}
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("got %d %q, want the primary's 201", res.StatusCode, got)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.reqs) != 1 || string(p.reqs[0].body) != "title=hello" {
				t.Fatalf("the primary got %+v, want the whole body once", p.reqs)
			}
		})
	}
}

// The Forwarder passes on what the edge proxy said of the client.
func TestForwarderKeepsXForwarded(t *testing.T) {
	t.Parallel()
	var proto, forFor string
	p := newPrimary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto, forFor = r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-For")
	}))
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}.internal", Transport: p.transport()})})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
	}))
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	serve(h, r)
	if proto != "https" || !strings.HasPrefix(forFor, "203.0.113.7, ") {
		t.Fatalf("the primary saw X-Forwarded-Proto %q, X-Forwarded-For %q; want https and 203.0.113.7 first", proto, forFor)
	}
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
		if err == nil {
			t.Error("want a refusal")
		}
		http.Error(w, "could not save", http.StatusInternalServerError)
		if _, err := localDB.ExecContext(r.Context(), "INSERT INTO posts VALUES ('audit')"); err != nil {
			t.Error(err)
		}
	}))
	w := serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
	if w.Code != http.StatusInternalServerError || w.Header().Get("Fly-Replay") != "" {
		t.Fatalf("got %d (Fly-Replay %q), want 500 and no replay", w.Code, w.Header().Get("Fly-Replay"))
	}
	if got := b.Count(ReasonPartial); got != 1 {
		t.Fatalf("Count(ReasonPartial) = %d, want 1", got)
	}
}
