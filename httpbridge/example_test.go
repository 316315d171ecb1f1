package httpbridge_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/httpbridge"
)

// savePost is an ordinary handler: it passes r.Context() to the database
// and answers a failed write as it would any database error.
func savePost(w http.ResponseWriter, r *http.Request) {
	if err := insertPost(r.Context()); err != nil {
		http.Error(w, "could not save the post", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// insertPost stands for db.ExecContext(ctx, "INSERT INTO posts ...") on a
// replica: the litefs driver refuses it and reports the refusal to the
// Tracker in ctx.
func insertPost(ctx context.Context) error {
	err := &litefs.NotPrimaryError{PrimaryID: "148e21ea7e4089"}
	litefs.TrackerFrom(ctx).ReportRefusal(err)
	return err
}

func Example() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /posts", savePost)
	mux.HandleFunc("GET /posts", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "[]")
	})
	h := httpbridge.Middleware(mux)
	// http.ListenAndServe(":8080", h)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/posts", strings.NewReader("title=hi")))
	fmt.Println(w.Code, w.Header().Get("Fly-Replay"), w.Body.Len())

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/posts", nil))
	fmt.Println(w.Code, w.Body)
	// Output:
	// 409 instance=148e21ea7e4089;state=litefs-hops:1 0
	// 200 []
}

// A handler may also panic with the refusal; the bridge recovers it.
func Example_panic() {
	h := httpbridge.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(fmt.Errorf("saving the post: %w", &litefs.NotPrimaryError{PrimaryID: "node-a"}))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/posts", nil))
	fmt.Println(w.Code, w.Header().Get("Fly-Replay"))
	// Output: 409 instance=node-a;state=litefs-hops:1
}

// With go-chi/chi (or gorilla/mux, whose Use takes the same type):
//
//	r := chi.NewRouter()
//	r.Use(b.Handler)
//	r.Post("/posts", savePost)
func ExampleNew() {
	b, err := httpbridge.New(httpbridge.Config{
		InstanceID:  "node-b", // default: $FLY_MACHINE_ID, else the host name
		PrimaryWait: 2 * time.Second,
		RetryAfter:  3 * time.Second,
		OnEvent: func(e httpbridge.Event) {
			fmt.Printf("event: %s, %s to %q after %d hops\n", e.Reason, e.Verdict, e.Primary, e.Hops)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	h := b.Handler(http.HandlerFunc(savePost))

	// A request replayed here by node 148e21ea7e4089, the primary named by
	// the refusal, is not sent back.
	r := httptest.NewRequest(http.MethodPost, "/posts", nil)
	r.Header.Set("Fly-Replay-Src", "instance=148e21ea7e4089;region=ams;t=1700000000000000;state=litefs-hops:1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Retry-After"))
	// Output:
	// event: loop, reject to "148e21ea7e4089" after 1 hops
	// 503 3
}

func ExampleBridge_Decide() {
	b, err := httpbridge.New(httpbridge.Config{InstanceID: "node-b"})
	if err != nil {
		fmt.Println(err)
		return
	}
	refusal := &litefs.NotPrimaryError{PrimaryID: "node-a"}
	for _, src := range []string{"", "instance=node-c;state=litefs-hops:1", "instance=node-c;state=litefs-hops:2", "instance=node-a"} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if src != "" {
			r.Header.Set("Fly-Replay-Src", src)
		}
		d := b.Decide(r, refusal)
		fmt.Printf("%-36q %s (%s)\n", src, d.Verdict, d.Reason)
	}
	// Output:
	// ""                                   replay (refused)
	// "instance=node-c;state=litefs-hops:1" replay (refused)
	// "instance=node-c;state=litefs-hops:2" reject (loop)
	// "instance=node-a"                    reject (loop)
}

// Without Fly's proxy, a Forwarder sends refused requests to the primary
// itself. On Fly.io, a template like "http://{primary}.vm.{app}.internal:8080"
// reaches a given machine.
func ExampleNewForwarder() {
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		// The hop count ends with this process's random nonce, which
		// marks the value as the Forwarder's own.
		src, _, _ := strings.Cut(r.Header.Get("Fly-Replay-Src"), ".")
		fmt.Fprintf(w, "primary saved %q (%s.<nonce>)", body, src)
	}))
	defer primary.Close()
	u, _ := url.Parse(primary.URL)

	fwd, err := httpbridge.NewForwarder(httpbridge.ForwardConfig{URL: "http://{primary}:" + u.Port()})
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := httpbridge.New(httpbridge.Config{InstanceID: "node-b", Replay: fwd})
	if err != nil {
		fmt.Println(err)
		return
	}
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The handler reads the body, then its write is refused; the
		// primary (here at 127.0.0.1) still gets the whole body.
		io.ReadAll(r.Body)
		panic(&litefs.NotPrimaryError{PrimaryID: u.Hostname()})
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/posts", strings.NewReader("title=hi")))
	fmt.Println(w.Code, w.Body)
	// Output: 201 primary saved "title=hi" (instance=node-b;state=litefs-hops:1.<nonce>)
}

// A handler about to do something that must happen on the primary only, and
// once, asks first.
func ExampleRequirePrimary() {
	db, err := sql.Open(litefs.DriverName, "file:/litefs/app.db")
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("POST /orders", httpbridge.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := httpbridge.RequirePrimary(r, db); err != nil {
			if !errors.Is(err, litefs.ErrNotPrimary) {
				http.Error(w, "database unavailable", http.StatusInternalServerError)
			}
			return // the bridge sends the request to the primary
		}
		// chargeCard(r); db.ExecContext(r.Context(), "INSERT INTO orders ...")
		w.WriteHeader(http.StatusCreated)
	})))
}

// With the database in its Config, the bridge sets a cookie after a write on
// the primary, and a replica serves a request carrying it only once it has
// the write. Here a temp directory stands for each node's LiteFS mount:
// LiteFS shows the TXID in app.db-pos, and a replica names its primary in
// .primary. The files are in place before the database is opened: on a
// plain directory the driver sees a change made by hand microseconds later.
func Example_readYourWrites() {
	node := func(id, primary string) (http.Handler, func()) {
		dir, err := os.MkdirTemp("", "litefs")
		if err != nil {
			log.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "app.db-pos"), []byte("00000000000004d2/a2fc350ac7362d33\n"), 0o644)
		if primary != "" {
			os.WriteFile(filepath.Join(dir, ".primary"), []byte(primary+"\n"), 0o644)
		}
		db, err := sql.Open(litefs.DriverName, "file:"+filepath.Join(dir, "app.db")+"?_journal_mode=WAL")
		if err != nil {
			log.Fatal(err)
		}
		b, err := httpbridge.New(httpbridge.Config{
			InstanceID: id,
			DB:         db,
			TXIDWait:   10 * time.Millisecond, // default: 1 s
		})
		if err != nil {
			log.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /posts", func(w http.ResponseWriter, r *http.Request) {
			if _, err := db.ExecContext(r.Context(), "CREATE TABLE IF NOT EXISTS posts (title TEXT)"); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusCreated)
		})
		mux.HandleFunc("GET /posts", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "[]")
		})
		return b.Handler(mux), func() { db.Close(); os.RemoveAll(dir) }
	}
	primary, closePrimary := node("node-a", "")
	defer closePrimary()
	replica, closeReplica := node("node-b", "node-a")
	defer closeReplica()

	// On the primary, a write sets the cookie.
	w := httptest.NewRecorder()
	primary.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/posts", nil))
	fmt.Println(w.Code, w.Header().Get("Set-Cookie"))

	// The replica has applied transaction 0x4d2 and not the next one, which
	// the second cookie names: that request goes to the primary.
	for _, cookie := range []string{"__txid=00000000000004d2", "__txid=00000000000004d3"} {
		r := httptest.NewRequest(http.MethodGet, "/posts", nil)
		r.Header.Set("Cookie", cookie)
		w = httptest.NewRecorder()
		replica.ServeHTTP(w, r)
		fmt.Printf("%s: %d %q %q\n", cookie, w.Code, w.Header().Get("Fly-Replay"), w.Body)
	}
	// Output:
	// 201 __txid=00000000000004d2; Path=/; Max-Age=300; HttpOnly; SameSite=Lax
	// __txid=00000000000004d2: 200 "" "[]"
	// __txid=00000000000004d3: 409 "instance=node-a;state=litefs-hops:1" ""
}

// StatusHandler serves this node's state for Config.DB as JSON, with the
// bridge's counts: a health check for Fly, or a page for an operator. Here
// the database is a plain file, outside LiteFS, so the node is its own
// primary.
func ExampleBridge_StatusHandler() {
	dir, err := os.MkdirTemp("", "litefs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open(litefs.DriverName, "file:"+filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	b, err := httpbridge.New(httpbridge.Config{InstanceID: "node-a", DB: db})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", b.StatusHandler())

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var st struct {
		OK     bool              `json:"ok"`
		Role   string            `json:"role"`
		Counts map[string]uint64 `json:"counts"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.Code, st.OK, st.Role, st.Counts["refused"])
	// Output:
	// 200 true not-litefs 0
}
