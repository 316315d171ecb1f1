package httpbridge

import (
	"cmp"
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openAt opens a test database at TXID pos, as a replica of node-a or as the
// primary.
func openAt(t *testing.T, replica bool, pos uint64) (*sql.DB, *litefstest.Mount) {
	t.Helper()
	db, m := openTestDB(t) // creates its table while still the primary
	m.SetTXID(pos)
	if replica {
		m.SetReplica("node-a")
	}
	return db, m
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

// Set-Cookie values of a write that reached TXID 3.
const (
	plainTXIDCookie  = "__txid=0000000000000003; Path=/; Max-Age=300; HttpOnly; SameSite=Lax"
	secureTXIDCookie = "__txid=0000000000000003; Path=/; Max-Age=300; HttpOnly; Secure; SameSite=Lax"
)

// A dbHandler is a test handler that uses db.
type dbHandler func(t *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB)

// insertOnly inserts a row and writes nothing more.
func insertOnly(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) { insert(w, r, db) }

// txidCookieCases are the handlers of TestTXIDCookieSet, run on the primary
// at TXID 3, and the Set-Cookie headers their responses must carry.
var txidCookieCases = []struct {
	name    string
	c       Config
	prepare func(r *http.Request)
	handler dbHandler
	want    []string
}{
	{name: "committed write", want: []string{plainTXIDCookie}, handler: func(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
		if insert(w, r, db) {
			w.WriteHeader(http.StatusCreated)
		}
	}},
	{name: "committed write, then a body", want: []string{plainTXIDCookie}, handler: func(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
		if insert(w, r, db) {
			io.WriteString(w, "saved")
		}
	}},
	{name: "committed write, then a flush", want: []string{plainTXIDCookie}, handler: func(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
		if insert(w, r, db) {
			w.(http.Flusher).Flush()
			io.WriteString(w, "saved")
		}
	}},
	{name: "committed write, no response written", want: []string{plainTXIDCookie}, handler: insertOnly},
	{name: "committed transaction", want: []string{plainTXIDCookie}, handler: func(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
		tx, err := db.BeginTx(r.Context(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tx.ExecContext(r.Context(), "INSERT INTO posts VALUES ('a')")
		if err := tx.Commit(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}},
	{name: "over TLS", want: []string{secureTXIDCookie}, handler: insertOnly,
		prepare: func(r *http.Request) { r.TLS = &tls.ConnectionState{} }},
	{name: "behind a TLS proxy", want: []string{secureTXIDCookie}, handler: insertOnly,
		prepare: func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "HTTPS, http") }},
	{name: "behind a plain-HTTP proxy", want: []string{plainTXIDCookie}, handler: insertOnly,
		prepare: func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "http") }},
	{name: "name and lifetime configured", c: Config{TXIDCookie: "txid", TXIDMaxAge: 89500 * time.Millisecond}, handler: insertOnly,
		want: []string{"txid=0000000000000003; Path=/; Max-Age=90; HttpOnly; SameSite=Lax"}},
	{name: "read", handler: func(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
		var n int
		db.QueryRowContext(r.Context(), "SELECT count(*) FROM posts").Scan(&n)
		fmt.Fprint(w, n)
	}},
	{name: "rolled back", handler: func(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
		tx, err := db.BeginTx(r.Context(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tx.ExecContext(r.Context(), "INSERT INTO posts VALUES ('a')")
		tx.Rollback()
		w.WriteHeader(http.StatusNoContent)
	}},
	{name: "failed write", handler: func(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
		_, err := db.ExecContext(r.Context(), "INSERT INTO nowhere VALUES (1)")
		http.Error(w, fmt.Sprint(err), http.StatusInternalServerError)
	}},
	{name: "write without the request's context", handler: func(_ *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
		db.Exec("INSERT INTO posts VALUES ('untracked')")
	}},
	{name: "committed, then refused (demoted meanwhile): kept", want: []string{plainTXIDCookie},
		handler: func(t *testing.T, w http.ResponseWriter, r *http.Request, db *sql.DB) {
			insert(w, r, db)
			refuse(t, r, notPrimary("node-a"))
		}},
}

func TestTXIDCookieSet(t *testing.T) {
	t.Parallel()
	for _, tc := range txidCookieCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, _ := openAt(t, false, 3)
			tc.c.DB = db
			b := newBridge(t, tc.c)
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(t, w, r, db) }))
			r := httptest.NewRequest(http.MethodPost, "/posts", nil)
			if tc.prepare != nil {
				tc.prepare(r)
			}
			w := serve(h, r)
			assert.Equal(t, tc.want, setCookies(w), "Set-Cookie (status %v, body %q)", w.Code, w.Body)
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
		{name: "replayed", wantStatus: http.StatusConflict},
		{name: "rejected", src: "instance=node-a", wantStatus: http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, _ := openAt(t, true, 3)
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
			assert.Equal(t, tc.wantStatus, w.Code, "status")
			assert.Empty(t, w.Header().Values("Set-Cookie"), "Set-Cookie")
		})
	}
}

func TestTXIDCookieTooLate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request, db *sql.DB)
	}{
		{name: "streamed", handler: func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			io.WriteString(w, "saving...")
			insert(w, r, db)
		}},
		{name: "flushed", handler: func(w http.ResponseWriter, r *http.Request, db *sql.DB) {
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush()
			insert(w, r, db)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, _ := openAt(t, false, 3)
			var logs litefstest.SyncBuffer
			b := newBridge(t, Config{DB: db, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(w, r, db) }))
			w := serve(h, httptest.NewRequest(http.MethodPost, "/posts", nil))
			assert.Empty(t, w.Header().Values("Set-Cookie"), "Set-Cookie")
			assert.Contains(t, logs.String(), "level=DEBUG msg=\"httpbridge: a write committed after the response started", "log")
		})
	}
}

func TestReplicaWaitsForTXID(t *testing.T) {
	t.Parallel()
	db, m := openAt(t, true, 3)
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
		require.FailNow(t, "served before -pos reached the cookie", "got %v %q, want the request to wait", w.Code, w.Body)
	}
	m.SetTXID(4) // not enough
	m.SetTXID(5)
	w := <-done
	assert.Equal(t, http.StatusOK, w.Code, "status")
	assert.Equal(t, "served at 5", w.Body.String(), "body")

	// The bridge now knows this node has 5: a cookie at or below it costs
	// no I/O.
	before := pos.calls()
	for _, cookie := range []string{"__txid=0000000000000005", "__txid=0000000000000001"} {
		w := serve(h, withCookie("GET", "/posts", cookie))
		assert.Equal(t, http.StatusOK, w.Code, "%s: body %q", cookie, w.Body)
	}
	assert.Equal(t, before, pos.calls(), "Position calls (current, check, wait) for reached cookies")
}

// wait is the TXIDWait of the replicas in replicaBehindCases.
const wait = 20 * time.Millisecond

// replicaBehindCases are requests whose cookie names TXID 5 or more on a
// replica at 3, and where they must be served. Requests are GETs unless
// method says otherwise.
var replicaBehindCases = []struct {
	name        string
	method      string
	atOnce      bool // sent to the primary without waiting
	cookie      string
	noPrimary   bool   // LiteFS knows no primary
	src         string // Fly-Replay-Src
	failed      bool   // Fly-Replay-Failed
	body        io.Reader
	txidWait    time.Duration
	wantReplay  string // Fly-Replay; "" when served here
	wantVerdict Verdict
}{
	{name: "behind", cookie: "__txid=0000000000000005", txidWait: wait, wantReplay: "instance=node-a;state=litefs-hops:1", wantVerdict: Replay},
	{name: "forged huge TXID", cookie: "__txid=ffffffffffffffff", txidWait: wait, wantReplay: "instance=node-a;state=litefs-hops:1", wantVerdict: Replay},
	{name: "no waiting", cookie: "__txid=0000000000000005", txidWait: -1, wantReplay: "instance=node-a;state=litefs-hops:1", wantVerdict: Replay},
	{name: "replayed once already", cookie: "__txid=0000000000000005", src: "instance=node-c;state=litefs-hops:1", txidWait: wait, wantReplay: "instance=node-a;state=litefs-hops:2", wantVerdict: Replay},
	{name: "came from the primary", cookie: "__txid=0000000000000005", src: "instance=node-a;state=litefs-hops:1", txidWait: wait, wantVerdict: Keep},
	{name: "out of hops", cookie: "__txid=0000000000000005", src: "instance=node-c;state=litefs-hops:2", txidWait: wait, wantVerdict: Keep},
	{name: "replay failed", cookie: "__txid=0000000000000005", failed: true, txidWait: wait, wantVerdict: Keep},
	{name: "body of unknown size", cookie: "__txid=0000000000000005", body: onlyReader{strings.NewReader("x")}, txidWait: wait, wantVerdict: Keep},
	{name: "no primary known", cookie: "__txid=0000000000000005", noPrimary: true, txidWait: wait, wantVerdict: Keep},
	{name: "POST goes at once", method: http.MethodPost, atOnce: true, cookie: "__txid=0000000000000005", txidWait: wait, wantReplay: "instance=node-a;state=litefs-hops:1", wantVerdict: Replay},
	{name: "DELETE goes at once", method: http.MethodDelete, atOnce: true, cookie: "__txid=0000000000000005", txidWait: wait, wantReplay: "instance=node-a;state=litefs-hops:1", wantVerdict: Replay},
	{name: "POST that cannot go waits", method: http.MethodPost, cookie: "__txid=0000000000000005", body: onlyReader{strings.NewReader("x")}, txidWait: wait, wantVerdict: Keep},
}

func TestReplicaBehind(t *testing.T) {
	t.Parallel()
	for _, tc := range replicaBehindCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, m := openAt(t, !tc.noPrimary, 3)
			if tc.noPrimary {
				m.SetNoPrimary()
			}
			var ev events
			pos := watch(DBPosition(db))
			b := newBridge(t, Config{Position: pos, TXIDWait: tc.txidWait, OnEvent: ev.add})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "served here")
			}))
			method := cmp.Or(tc.method, http.MethodGet)
			r := httptest.NewRequest(method, "/search", tc.body)
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

			assert.Equal(t, tc.wantReplay, w.Header().Get("Fly-Replay"), "Fly-Replay")
			wantCode, wantBody := http.StatusOK, "served here"
			if tc.wantReplay != "" {
				wantCode, wantBody = http.StatusConflict, ""
			}
			assert.Equal(t, wantCode, w.Code, "status")
			assert.Equal(t, wantBody, w.Body.String(), "body")
			e := ev.only(t)
			assert.Equal(t, ReasonBehind, e.Reason, "event reason")
			assert.Equal(t, tc.wantVerdict, e.Verdict, "event verdict")
			assert.Equal(t, uint64(1), b.Count(ReasonBehind), "Count(ReasonBehind)")
			waits := tc.txidWait > 0 && !tc.atOnce
			if waits {
				assert.GreaterOrEqual(t, e.Waited, tc.txidWait, "event's Waited")
				assert.GreaterOrEqual(t, elapsed, tc.txidWait, "time the request took")
			}
			assert.Equal(t, waits, pos.waits.Load() > 0, "WaitTXID called")
		})
	}
}

// TestPrimaryElectedWhileBehind: a replica that knew no primary when the
// request began waiting sends it to the one known when the wait ends.
func TestPrimaryElectedWhileBehind(t *testing.T) {
	t.Parallel()
	db, m := openAt(t, false, 3)
	m.SetNoPrimary()
	pos := watch(DBPosition(db))
	pos.onWait = func() { m.SetReplica("node-c") } // on the test's goroutine: serve calls it
	b := newBridge(t, Config{Position: pos, TXIDWait: 20 * time.Millisecond})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served here")
	}))
	w := serve(h, withCookie("GET", "/", "__txid=0000000000000005"))
	assert.Equal(t, "instance=node-c;state=litefs-hops:1", w.Header().Get("Fly-Replay"), "Fly-Replay (status %v, body %q)", w.Code, w.Body)
	assert.Equal(t, int32(2), pos.checks.Load(), "CheckPrimary calls")
}

// failPosition fails the test if the bridge waits.
type failPosition struct {
	Position
	t *testing.T
}

func (p failPosition) WaitTXID(ctx context.Context, want litefs.TXID) (litefs.TXID, error) {
	assert.Fail(p.t, "WaitTXID called", "want no waiting (cookie %v)", want)
	return 0, context.Canceled
}

func TestPrimaryIgnoresCookie(t *testing.T) {
	t.Parallel()
	for _, cookie := range []string{"__txid=0000000000000002", "__txid=0000000000000003", "__txid=0000000000000004", "__txid=ffffffffffffffff"} {
		t.Run(cookie, func(t *testing.T) {
			t.Parallel()
			db, _ := openAt(t, false, 3)
			var ev events
			b := newBridge(t, Config{Position: failPosition{DBPosition(db), t}, OnEvent: ev.add})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "served here")
			}))
			w := serve(h, withCookie("GET", "/", cookie))
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Equal(t, "served here", w.Body.String())
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
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Equal(t, "served here", w.Body.String())
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
	db, _ := openTestDB(t)
	tests := []struct {
		name string
		c    Config
		want string // in the error; "" for none
	}{
		{name: "DB", c: Config{DB: db}, want: ""},
		{name: "Position", c: Config{Position: DBPosition(db)}, want: ""},
		{name: "both", c: Config{DB: db, Position: DBPosition(db)}, want: "both set"},
		{name: "position of no database", c: Config{Position: DBPosition(nil)}, want: "nil *sql.DB"},
		{name: "cookie name with a space", c: Config{TXIDCookie: "tx id"}, want: "TXIDCookie"},
		{name: "cookie name with a separator", c: Config{TXIDCookie: "a;b"}, want: "TXIDCookie"},
		{name: "negative lifetime", c: Config{TXIDMaxAge: -time.Second}, want: "TXIDMaxAge"},
		{name: "lifetime beyond a cookie's", c: Config{TXIDMaxAge: 1 << 62}, want: "TXIDMaxAge"},
		{name: "negative wait", c: Config{TXIDWait: -1}, want: ""},
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
	db, _ := openAt(t, false, 3)
	b := newBridge(t, Config{})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { insert(w, r, db) }))
	w := serve(h, withCookie("POST", "/posts", "__txid=ffffffffffffffff"))
	assert.Equal(t, http.StatusOK, w.Code, "status")
	assert.Empty(t, w.Header().Values("Set-Cookie"), "Set-Cookie")
}

func TestMiddlewareFor(t *testing.T) {
	t.Setenv("FLY_MACHINE_ID", "node-b")
	db, _ := openAt(t, false, 3)
	h := MiddlewareFor(db)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { insert(w, r, db) }))
	w := serve(h, httptest.NewRequest(http.MethodPost, "/posts", nil))
	assert.Equal(t, "__txid=0000000000000003; Path=/; Max-Age=300; HttpOnly; SameSite=Lax", w.Header().Get("Set-Cookie"))
}

// TestTXIDCookieServer runs the bridge behind a real TLS server: the cookie
// comes with the streamed response's headers, marked Secure.
func TestTXIDCookieServer(t *testing.T) {
	t.Parallel()
	db, _ := openAt(t, false, 3)
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
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "status")
	assert.Equal(t, "saved, and more", string(body), "body")
	assert.Equal(t, []string{"__txid=0000000000000003; Path=/; Max-Age=300; HttpOnly; Secure; SameSite=Lax"},
		res.Header.Values("Set-Cookie"))
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
		{name: "handler answers", panics: false, wantCode: http.StatusAccepted},
		{name: "handler panics", panics: true, wantCode: http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, _ := openAt(t, false, 3)
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
			assert.Empty(t, w.Header().Get("Fly-Replay"), "Fly-Replay")
			assert.Equal(t, tc.wantCode, w.Code, "status")
			assert.Equal(t, uint64(1), b.Count(ReasonPartial), "Count(ReasonPartial)")
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
