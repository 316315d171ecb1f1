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
	if w := do("POST", "/posts"); w.Code != http.StatusCreated {
		t.Fatalf("POST on the primary: got %v %q, want 201", w.Code, w.Body)
	}
	if w := do("POST", "/mail"); w.Code != http.StatusOK || w.Body.String() != "sent" {
		t.Fatalf("RequirePrimary on the primary: got %v %q, want 200 sent", w.Code, w.Body)
	}

	// Replica of node-a.
	m.SetReplica("node-a")
	m.WriteLagFile([]byte("+000000001\n"), time.Now())
	for _, target := range []string{"/posts", "/mail"} {
		w := do("POST", target)
		if w.Code != http.StatusConflict || w.Header().Get("Fly-Replay") != "instance=node-a;state=litefs-hops:1" || w.Body.Len() != 0 {
			t.Errorf("POST %s on a replica: got %v %q %q, want a replay to node-a", target, w.Code, w.Header().Get("Fly-Replay"), w.Body)
		}
	}
	if w := do("GET", "/posts"); w.Code != http.StatusOK || w.Body.String() != "p" {
		t.Errorf("GET on a replica: got %v %q, want 200 %q", w.Code, w.Body, "p")
	}

	// No primary known, then one elected while the bridge waits.
	m.SetNoPrimary()
	w := do("POST", "/posts?promote")
	if w.Code != http.StatusConflict || w.Header().Get("Fly-Replay") != "instance=node-b;state=litefs-hops:1" {
		t.Errorf("POST with no primary, then node-b: got %v %q, want a replay to node-b", w.Code, w.Header().Get("Fly-Replay"))
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.es) != 3 || ev.es[2].Primary != "node-b" {
		t.Errorf("events: got %+v, want 3, the last to node-b", ev.es)
	}
}
