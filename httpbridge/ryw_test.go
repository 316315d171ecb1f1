package httpbridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/stretchr/testify/assert"
)

// rywMount opens a litefs database in a temp directory standing for a LiteFS
// mount at position pos, as a replica of node-a or as the primary.
func rywMount(t *testing.T, replica bool, pos litefs.TXID) (*sql.DB, string) {
	t.Helper()
	db, dir := openMount(t) // creates its table while still the primary
	writePos(t, dir, pos)
	if replica {
		writeFile(t, filepath.Join(dir, ".primary"), "node-a\n", time.Time{})
	}
	return db, dir
}

// writePos sets the TXID LiteFS shows in app.db-pos, atomically.
func writePos(t *testing.T, dir string, id litefs.TXID) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "app.db-pos"), fmt.Sprintf("%016x/%016x\n", uint64(id), uint64(0xa2fc350ac7362d33)), time.Time{})
}

// watchedPosition counts the calls made to a Position, and closes waiting
// when WaitTXID is first called, after calling onWait if set.
type watchedPosition struct {
	Position
	current, waits, checks atomic.Int32
	once                   sync.Once
	waiting                chan struct{}
	onWait                 func()
}

func watch(p Position) *watchedPosition {
	return &watchedPosition{Position: p, waiting: make(chan struct{})}
}

func (p *watchedPosition) CurrentTXID(ctx context.Context) (litefs.TXID, error) {
	p.current.Add(1)
	return p.Position.CurrentTXID(ctx)
}

func (p *watchedPosition) WaitTXID(ctx context.Context, want litefs.TXID) (litefs.TXID, error) {
	p.waits.Add(1)
	p.once.Do(func() {
		if p.onWait != nil {
			p.onWait()
		}
		close(p.waiting)
	})
	return p.Position.WaitTXID(ctx, want)
}

func (p *watchedPosition) CheckPrimary(ctx context.Context) error {
	p.checks.Add(1)
	return p.Position.CheckPrimary(ctx)
}

func (p *watchedPosition) calls() [3]int32 {
	return [3]int32{p.current.Load(), p.checks.Load(), p.waits.Load()}
}

// withCookie returns a request carrying the Cookie header value cookie.
func withCookie(method, target, cookie string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

func insert(w http.ResponseWriter, r *http.Request, db *sql.DB) bool {
	if _, err := db.ExecContext(r.Context(), "INSERT INTO posts VALUES ('hi')"); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return false
	}
	return true
}

// setCookies returns the Set-Cookie headers as they went out with the
// status line: a recorder snapshots the headers when the status is written.
func setCookies(w *httptest.ResponseRecorder) []string {
	return w.Result().Header.Values("Set-Cookie")
}

func TestTXIDCookieSet(t *testing.T) {
	t.Parallel()
	const plain = "__txid=0000000000000003; Path=/; Max-Age=300; HttpOnly; SameSite=Lax"
	const secure = "__txid=0000000000000003; Path=/; Max-Age=300; HttpOnly; Secure; SameSite=Lax"
	type handler func(w http.ResponseWriter, r *http.Request, db *sql.DB)
	tests := []struct {
		name    string
		c       Config
		prepare func(r *http.Request)
		handler handler
		want    []string
	}{
		{"committed write", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			if insert(w, r, db) {
				w.WriteHeader(http.StatusCreated)
			}
		}, []string{plain}},
		{"committed write, then a body", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			if insert(w, r, db) {
				io.WriteString(w, "saved")
			}
		}, []string{plain}},
		{"committed write, then a flush", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			if insert(w, r, db) {
				w.(http.Flusher).Flush()
				io.WriteString(w, "saved")
			}
		}, []string{plain}},
		{"committed write, no response written", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			insert(w, r, db)
		}, []string{plain}},
		{"committed transaction", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			tx, err := db.BeginTx(r.Context(), nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			tx.ExecContext(r.Context(), "INSERT INTO posts VALUES ('a')")
			if err := tx.Commit(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}, []string{plain}},
		{"over TLS", Config{}, func(r *http.Request) { r.TLS = &tls.ConnectionState{} }, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			insert(w, r, db)
		}, []string{secure}},
		{"behind a TLS proxy", Config{}, func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "HTTPS, http") }, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			insert(w, r, db)
		}, []string{secure}},
		{"behind a plain-HTTP proxy", Config{}, func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "http") }, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			insert(w, r, db)
		}, []string{plain}},
		{"name and lifetime configured", Config{TXIDCookie: "txid", TXIDMaxAge: 89500 * time.Millisecond}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			insert(w, r, db)
		}, []string{"txid=0000000000000003; Path=/; Max-Age=90; HttpOnly; SameSite=Lax"}},
		{"read", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			var n int
			db.QueryRowContext(r.Context(), "SELECT count(*) FROM posts").Scan(&n)
			fmt.Fprint(w, n)
		}, nil},
		{"rolled back", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			tx, err := db.BeginTx(r.Context(), nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			tx.ExecContext(r.Context(), "INSERT INTO posts VALUES ('a')")
			tx.Rollback()
			w.WriteHeader(http.StatusNoContent)
		}, nil},
		{"failed write", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			_, err := db.ExecContext(r.Context(), "INSERT INTO nowhere VALUES (1)")
			http.Error(w, fmt.Sprint(err), http.StatusInternalServerError)
		}, nil},
		{"write without the request's context", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			db.Exec("INSERT INTO posts VALUES ('untracked')")
		}, nil},
		{"committed, then refused (demoted meanwhile): kept", Config{}, nil, func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			insert(w, r, db)
			refuse(t, r, notPrimary("node-a"))
		}, []string{plain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, _ := rywMount(t, false, 3)
			tc.c.DB = db
			b := newBridge(t, tc.c)
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(w, r, db) }))
			r := httptest.NewRequest(http.MethodPost, "/posts", nil)
			if tc.prepare != nil {
				tc.prepare(r)
			}
			w := serve(h, r)
			if got := setCookies(w); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Set-Cookie: got %q, want %q (status %v, body %q)", got, tc.want, w.Code, w.Body)
			}
		})
	}
}

func TestTXIDCookieNotOnRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		src        string // Fly-Replay-Src
		wantStatus int
	}{
		{"replayed", "", http.StatusConflict},
		{"rejected", "instance=node-a", http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, _ := rywMount(t, true, 3)
			b := newBridge(t, Config{DB: db})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if insert(w, r, db) {
					w.WriteHeader(http.StatusCreated)
				}
			}))
			r := httptest.NewRequest(http.MethodPost, "/posts", nil)
			if tc.src != "" {
				r.Header.Set(HeaderReplaySrc, tc.src)
			}
			w := serve(h, r)
			if got, want := w.Code, tc.wantStatus; got != want {
				t.Errorf("status: got %v, want %v", got, want)
			}
			if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("Set-Cookie: got %q, want none", got)
			}
		})
	}
}

// syncBuffer is a log destination safe to read while a handler may write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTXIDCookieTooLate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request, db *sql.DB)
	}{
		{"streamed", func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			io.WriteString(w, "saving...")
			insert(w, r, db)
		}},
		{"flushed", func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush()
			insert(w, r, db)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, _ := rywMount(t, false, 3)
			var logs syncBuffer
			b := newBridge(t, Config{DB: db, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(w, r, db) }))
			w := serve(h, httptest.NewRequest(http.MethodPost, "/posts", nil))
			if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("Set-Cookie: got %q, want none", got)
			}
			if got, want := logs.String(), "level=DEBUG msg=\"httpbridge: a write committed after the response started"; !strings.Contains(got, want) {
				t.Errorf("log: got %q, want it to contain %q", got, want)
			}
		})
	}
}

func TestReplicaWaitsForTXID(t *testing.T) {
	t.Parallel()
	db, dir := rywMount(t, true, 3)
	pos := watch(DBPosition(db))
	b := newBridge(t, Config{Position: pos, TXIDWait: time.Minute}) // far beyond the test's own time
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := litefs.CurrentTXID(r.Context(), db)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "served at %d", id)
	}))

	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve(h, withCookie("GET", "/posts", "theme=dark; __txid=0000000000000005")) }()
	select {
	case <-pos.waiting:
	case w := <-done:
		t.Fatalf("got %v %q before -pos reached the cookie, want the request to wait", w.Code, w.Body)
	}
	writePos(t, dir, 4) // not enough
	writePos(t, dir, 5)
	w := <-done
	if got, want := w.Code, http.StatusOK; got != want {
		t.Errorf("status: got %v, want %v", got, want)
	}
	if got, want := w.Body.String(), "served at 5"; got != want {
		t.Errorf("body: got %q, want %q", got, want)
	}

	// The bridge now knows this node has 5: a cookie at or below it costs
	// no I/O.
	before := pos.calls()
	for _, cookie := range []string{"__txid=0000000000000005", "__txid=0000000000000001"} {
		if w := serve(h, withCookie("GET", "/posts", cookie)); w.Code != http.StatusOK {
			t.Errorf("%s: got %v %q, want 200", cookie, w.Code, w.Body)
		}
	}
	if got := pos.calls(); got != before {
		t.Errorf("Position calls (current, check, wait) for reached cookies: got %v, want %v", got, before)
	}
}

func TestReplicaBehind(t *testing.T) {
	t.Parallel()
	const wait = 20 * time.Millisecond
	tests := []struct {
		name        string
		cookie      string
		noPrimary   bool   // LiteFS knows no primary
		src         string // Fly-Replay-Src
		failed      bool   // Fly-Replay-Failed
		body        io.Reader
		txidWait    time.Duration
		wantReplay  string // Fly-Replay; "" when served here
		wantVerdict Verdict
	}{
		{"behind", "__txid=0000000000000005", false, "", false, nil, wait, "instance=node-a;state=litefs-hops:1", Replay},
		{"forged huge TXID", "__txid=ffffffffffffffff", false, "", false, nil, wait, "instance=node-a;state=litefs-hops:1", Replay},
		{"no waiting", "__txid=0000000000000005", false, "", false, nil, -1, "instance=node-a;state=litefs-hops:1", Replay},
		{"replayed once already", "__txid=0000000000000005", false, "instance=node-c;state=litefs-hops:1", false, nil, wait, "instance=node-a;state=litefs-hops:2", Replay},
		{"came from the primary", "__txid=0000000000000005", false, "instance=node-a;state=litefs-hops:1", false, nil, wait, "", Keep},
		{"out of hops", "__txid=0000000000000005", false, "instance=node-c;state=litefs-hops:2", false, nil, wait, "", Keep},
		{"replay failed", "__txid=0000000000000005", false, "", true, nil, wait, "", Keep},
		{"body of unknown size", "__txid=0000000000000005", false, "", false, onlyReader{strings.NewReader("x")}, wait, "", Keep},
		{"no primary known", "__txid=0000000000000005", true, "", false, nil, wait, "", Keep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, dir := rywMount(t, !tc.noPrimary, 3)
			if tc.noPrimary {
				writeFile(t, filepath.Join(dir, ".lag"), "+2147483647\n", time.Unix(0, 0))
			}
			var ev events
			pos := watch(DBPosition(db))
			b := newBridge(t, Config{Position: pos, TXIDWait: tc.txidWait, OnEvent: ev.add})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "served here")
			}))
			r := httptest.NewRequest(http.MethodPost, "/search", tc.body)
			r.Header.Set("Cookie", tc.cookie)
			if tc.src != "" {
				r.Header.Set(HeaderReplaySrc, tc.src)
			}
			if tc.failed {
				r.Header.Set(HeaderReplayFailed, "timeout")
			}
			start := time.Now()
			w := serve(h, r)
			elapsed := time.Since(start)

			if got, want := w.Header().Get("Fly-Replay"), tc.wantReplay; got != want {
				t.Errorf("Fly-Replay: got %q, want %q", got, want)
			}
			wantCode, wantBody := http.StatusOK, "served here"
			if tc.wantReplay != "" {
				wantCode, wantBody = http.StatusConflict, ""
			}
			if w.Code != wantCode || w.Body.String() != wantBody {
				t.Errorf("response: got %v %q, want %v %q", w.Code, w.Body, wantCode, wantBody)
			}
			e := ev.only(t)
			if e.Reason != ReasonBehind || e.Verdict != tc.wantVerdict {
				t.Errorf("event: got %v (%v), want %v (%v)", e.Verdict, e.Reason, tc.wantVerdict, ReasonBehind)
			}
			if got, want := b.Count(ReasonBehind), uint64(1); got != want {
				t.Errorf("Count(ReasonBehind): got %v, want %v", got, want)
			}
			if tc.txidWait > 0 && (e.Waited < tc.txidWait || elapsed < tc.txidWait) {
				t.Errorf("waited: got %v (event %v), want at least %v", elapsed, e.Waited, tc.txidWait)
			}
			if got, want := pos.waits.Load() > 0, tc.txidWait > 0; got != want {
				t.Errorf("WaitTXID called: got %v, want %v", got, want)
			}
		})
	}
}

// TestPrimaryElectedWhileBehind: a replica that knew no primary when the
// request began waiting sends it to the one known when the wait ends.
func TestPrimaryElectedWhileBehind(t *testing.T) {
	t.Parallel()
	db, dir := rywMount(t, false, 3)
	writeFile(t, filepath.Join(dir, ".lag"), "+2147483647\n", time.Unix(0, 0))
	pos := watch(DBPosition(db))
	pos.onWait = func() { writeFile(t, filepath.Join(dir, ".primary"), "node-c\n", time.Time{}) }
	b := newBridge(t, Config{Position: pos, TXIDWait: 20 * time.Millisecond})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served here")
	}))
	w := serve(h, withCookie("GET", "/", "__txid=0000000000000005"))
	if got, want := w.Header().Get("Fly-Replay"), "instance=node-c;state=litefs-hops:1"; got != want {
		t.Errorf("Fly-Replay: got %q, want %q (status %v, body %q)", got, want, w.Code, w.Body)
	}
	if got, want := pos.checks.Load(), int32(2); got != want {
		t.Errorf("CheckPrimary calls: got %v, want %v", got, want)
	}
}

// failPosition fails the test if the bridge waits.
type failPosition struct {
	Position
	t *testing.T
}

func (p failPosition) WaitTXID(ctx context.Context, want litefs.TXID) (litefs.TXID, error) {
	p.t.Errorf("WaitTXID(%v) called, want no waiting", want)
	return 0, context.Canceled
}

func TestPrimaryIgnoresCookie(t *testing.T) {
	t.Parallel()
	for _, cookie := range []string{"__txid=0000000000000002", "__txid=0000000000000003", "__txid=0000000000000004", "__txid=ffffffffffffffff"} {
		t.Run(cookie, func(t *testing.T) {
			t.Parallel()
			db, _ := rywMount(t, false, 3)
			var ev events
			b := newBridge(t, Config{Position: failPosition{DBPosition(db), t}, OnEvent: ev.add})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "served here")
			}))
			w := serve(h, withCookie("GET", "/", cookie))
			if w.Code != http.StatusOK || w.Body.String() != "served here" {
				t.Errorf("got %v %q, want 200 %q", w.Code, w.Body, "served here")
			}
			ev.none(t)
		})
	}
}

// TestMalformedCookies runs cookies the bridge must ignore, on a replica
// whose Position fails the test if asked anything.
func TestMalformedCookies(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{Position: panicPosition{}})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served here")
	}))
	huge := strings.Repeat("a=b; ", 200_000) + "__txid=zzzzzzzzzzzzzzzz"
	for _, cookie := range []string{
		"__txid=",
		"__txid",
		"__txid=5",
		"__txid=000000000000005",
		"__txid=00000000000000005",
		"__txid=0x00000000000005",
		"__txid=-000000000000005",
		"__txid=+000000000000005",
		"__txid=000000000000000g",
		"__txid=0000_00000000_005",
		"__txid= 0000000000000005",
		`__txid="0000000000000005`,
		"__TXID=0000000000000005",
		"__txid2=0000000000000005",
		"x__txid=0000000000000005",
		";;;;=;=;",
		"\x00\xff__txid=\x00",
		huge,
	} {
		t.Run(fmt.Sprintf("%.40q", cookie), func(t *testing.T) {
			t.Parallel()
			w := serve(h, withCookie("GET", "/", cookie))
			if w.Code != http.StatusOK || w.Body.String() != "served here" {
				t.Errorf("got %v %q, want 200 %q", w.Code, w.Body, "served here")
			}
		})
	}
}

// panicPosition stands for a node whose position must not be asked.
type panicPosition struct{}

func (panicPosition) CurrentTXID(context.Context) (litefs.TXID, error) { panic("CurrentTXID called") }
func (panicPosition) WaitTXID(context.Context, litefs.TXID) (litefs.TXID, error) {
	panic("WaitTXID called")
}
func (panicPosition) CheckPrimary(context.Context) error { panic("CheckPrimary called") }

func TestNewValidatesReadYourWrites(t *testing.T) {
	t.Parallel()
	db, _ := openMount(t)
	tests := []struct {
		name string
		c    Config
		want string // in the error; "" for none
	}{
		{"DB", Config{DB: db}, ""},
		{"Position", Config{Position: DBPosition(db)}, ""},
		{"both", Config{DB: db, Position: DBPosition(db)}, "both set"},
		{"position of no database", Config{Position: DBPosition(nil)}, "nil *sql.DB"},
		{"cookie name with a space", Config{TXIDCookie: "tx id"}, "TXIDCookie"},
		{"cookie name with a separator", Config{TXIDCookie: "a;b"}, "TXIDCookie"},
		{"negative lifetime", Config{TXIDMaxAge: -time.Second}, "TXIDMaxAge"},
		{"lifetime beyond a cookie's", Config{TXIDMaxAge: 1 << 62}, "TXIDMaxAge"},
		{"negative wait", Config{TXIDWait: -1}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.c.InstanceID = "m1"
			wantConfigErr(t, tc.c, tc.want)
		})
	}
}

// TestReadYourWritesOff checks that without DB or Position the bridge
// neither sets nor reads the cookie.
func TestReadYourWritesOff(t *testing.T) {
	t.Parallel()
	db, _ := rywMount(t, false, 3)
	b := newBridge(t, Config{})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { insert(w, r, db) }))
	w := serve(h, withCookie("POST", "/posts", "__txid=ffffffffffffffff"))
	if w.Code != http.StatusOK {
		t.Errorf("status: got %v, want %v", w.Code, http.StatusOK)
	}
	if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("Set-Cookie: got %q, want none", got)
	}
}

func TestMiddlewareFor(t *testing.T) {
	t.Setenv("FLY_MACHINE_ID", "node-b")
	db, _ := rywMount(t, false, 3)
	h := MiddlewareFor(db)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { insert(w, r, db) }))
	w := serve(h, httptest.NewRequest(http.MethodPost, "/posts", nil))
	if got, want := w.Header().Get("Set-Cookie"), "__txid=0000000000000003; Path=/; Max-Age=300; HttpOnly; SameSite=Lax"; got != want {
		t.Errorf("Set-Cookie: got %q, want %q", got, want)
	}
}

// TestTXIDCookieServer runs the bridge behind a real TLS server: the cookie
// comes with the streamed response's headers, marked Secure.
func TestTXIDCookieServer(t *testing.T) {
	t.Parallel()
	db, _ := rywMount(t, false, 3)
	b := newBridge(t, Config{DB: db})
	srv := httptest.NewTLSServer(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if insert(w, r, db) {
			io.WriteString(w, "saved")
			w.(http.Flusher).Flush()
			io.WriteString(w, ", and more")
		}
	})))
	t.Cleanup(srv.Close)
	res, err := srv.Client().Post(srv.URL+"/posts", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "saved, and more" {
		t.Errorf("response: got %v %q, want 200 %q", res.StatusCode, body, "saved, and more")
	}
	want := "__txid=0000000000000003; Path=/; Max-Age=300; HttpOnly; Secure; SameSite=Lax"
	if got := res.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != want {
		t.Errorf("Set-Cookie: got %q, want %q", got, want)
	}
}

// TestPartialCommitIsNotReplayed: a request that committed a write here
// before another was refused (the node was demoted in between) must not be
// replayed, which would run the first write again on the primary.
func TestPartialCommitIsNotReplayed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		panics   bool
		wantCode int
	}{
		{"handler answers", false, http.StatusAccepted},
		{"handler panics", true, http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, _ := rywMount(t, false, 3)
			b := newBridge(t, Config{DB: db})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !insert(w, r, db) {
					return
				}
				refusal := notPrimary("node-a")
				refuse(t, r, refusal)
				if tc.panics {
					panic(refusal)
				}
				w.WriteHeader(http.StatusAccepted)
			}))
			w := serve(h, httptest.NewRequest(http.MethodPost, "/posts", nil))
			if got := w.Header().Get("Fly-Replay"); got != "" {
				t.Fatalf("Fly-Replay: got %q, want none", got)
			}
			if w.Code != tc.wantCode {
				t.Fatalf("status: got %v, want %v", w.Code, tc.wantCode)
			}
			if got := b.Count(ReasonPartial); got != 1 {
				t.Fatalf("Count(ReasonPartial) = %d, want 1", got)
			}
		})
	}
}

// crowdedPosition is a replica of node-a at TXID 1 whose WaitTXID finds its
// waiter bound reached.
type crowdedPosition struct{ waits atomic.Int32 }

func (*crowdedPosition) CurrentTXID(context.Context) (litefs.TXID, error) { return 1, nil }
func (p *crowdedPosition) WaitTXID(context.Context, litefs.TXID) (litefs.TXID, error) {
	p.waits.Add(1)
	return 0, litefs.ErrTooManyWaiters
}
func (*crowdedPosition) CheckPrimary(context.Context) error { return notPrimary("node-a") }

// TestTooManyWaitersReplaysAtOnce: when the node's waiter bound is reached,
// a request with a cookie ahead of this replica goes to the primary without
// waiting, however long Config.TXIDWait is, rather than being served stale.
func TestTooManyWaitersReplaysAtOnce(t *testing.T) {
	t.Parallel()
	var ev events
	pos := &crowdedPosition{}
	b := newBridge(t, Config{Position: pos, TXIDWait: time.Hour, OnEvent: ev.add})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served here")
	}))
	w := serve(h, withCookie(http.MethodGet, "/", "__txid=0000000000000005"))
	assert.Equal(t, DefaultReplayStatus, w.Code)
	assert.Equal(t, "instance=node-a;state=litefs-hops:1", w.Header().Get(HeaderReplay))
	assert.Empty(t, w.Body.String())
	assert.Equal(t, int32(1), pos.waits.Load())
	e := ev.only(t)
	assert.Equal(t, ReasonBehind, e.Reason)
	assert.Equal(t, Replay, e.Verdict)
	assert.ErrorIs(t, e.Err, litefs.ErrTooManyWaiters)
}
