package httpbridge

import (
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
)

// openMount opens a litefs database in a temp directory that stands for a
// LiteFS mount: a .primary file there makes this node a replica.
func openMount(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open(litefs.DriverName, "file:"+filepath.Join(dir, "app.db")+"?_journal_mode=WAL&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE posts (title TEXT)"); err != nil {
		t.Fatal(err)
	}
	return db, dir
}

func writeFile(t *testing.T, path, data string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path+".tmp", mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestWithDriver runs the bridge over the real driver: the refusals come
// from litefs, not from the test.
func TestWithDriver(t *testing.T) {
	t.Parallel()
	db, dir := openMount(t)
	var ev events
	b := newBridge(t, Config{OnEvent: ev.add, WaitPrimary: litefs.WaitPrimary, PrimaryWait: 5 * time.Second})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /posts", func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), "INSERT INTO posts VALUES (?)", "hi"); err != nil {
			if r.URL.Query().Has("promote") {
				// A primary is elected while the request is refused.
				writeFile(t, filepath.Join(dir, ".primary"), "node-b\n", time.Time{})
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
	writeFile(t, filepath.Join(dir, ".primary"), "node-a\n", time.Time{})
	writeFile(t, filepath.Join(dir, ".lag"), "+0000000001\n", time.Time{})
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
	os.Remove(filepath.Join(dir, ".primary"))
	writeFile(t, filepath.Join(dir, ".lag"), "+2147483647\n", time.Unix(0, 0))
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
