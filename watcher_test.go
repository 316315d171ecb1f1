package litefs

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// fakeLiteFS serves GET /events as LiteFS does: an init event on connect,
// then whatever the test sends, one JSON object a line.
type fakeLiteFS struct {
	srv     *httptest.Server
	conns   atomic.Int32 // subscriptions so far
	mu      sync.Mutex
	init    string        // the init event's data
	events  chan string   // lines to send to the current subscriber
	hangup  chan struct{} // closes the current subscription
	current atomic.Int32  // subscriptions open now
}

func newFakeLiteFS(t *testing.T, initData string) *fakeLiteFS {
	t.Helper()
	f := &fakeLiteFS{init: initData, events: make(chan string, 16), hangup: make(chan struct{}, 1)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLiteFS) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/events" {
		http.NotFound(w, r)
		return
	}
	f.conns.Add(1)
	f.current.Add(1)
	defer f.current.Add(-1)
	f.mu.Lock()
	init := f.init
	f.mu.Unlock()
	fmt.Fprintf(w, `{"type":"init","data":%s}`+"\n", init)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-f.hangup:
			return
		case line := <-f.events:
			fmt.Fprintln(w, line)
			w.(http.Flusher).Flush()
		}
	}
}

func (f *fakeLiteFS) setInit(data string) {
	f.mu.Lock()
	f.init = data
	f.mu.Unlock()
}

func (f *fakeLiteFS) send(typ, db, data string) {
	f.events <- fmt.Sprintf(`{"type":%q,"db":%q,"data":%s}`, typ, db, data)
}

func (f *fakeLiteFS) tx(id TXID) { f.send("tx", "app.db", fmt.Sprintf(`{"txID":%q}`, id.String())) }

const (
	initPrimary  = `{"isPrimary":true}`
	initReplicaA = `{"isPrimary":false,"hostname":"node-a"}`
)

// openFollowing opens m's database with its event stream served by f.
func openFollowing(t *testing.T, m *litefstest.Mount, f *fakeLiteFS, opts ...Option) (*sql.DB, *Connector) {
	t.Helper()
	c, err := NewConnector(m.DSN(), append([]Option{WithLogger(discard), WithLiteFSAPI(f.srv.URL)}, opts...)...)
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
	if err != nil {
		require.ErrorIs(t, err, ErrNotPrimary)
	}
	return db, c
}

// eventually waits for cond, failing the test after 10 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond, msg)
}

func trustedAs(c *Connector, want string) func() bool {
	return func() bool {
		st := c.watcher().trusted()
		switch {
		case st == nil:
			return want == ""
		case st.primary:
			return want == "primary"
		}
		return want == st.primaryID
	}
}

func TestWatcherTrustsAStreamThatAgreesWithTheMount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		replica bool
		init    string
	}{
		{name: "primary", init: initPrimary},
		{name: "replica", replica: true, init: initReplicaA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			f := newFakeLiteFS(t, tc.init)
			db, c := openFollowing(t, m, f)
			if tc.replica {
				m.SetReplica("node-a")
			}
			want := map[bool]string{false: "primary", true: "node-a"}[tc.replica]
			eventually(t, trustedAs(c, want), "the stream is trusted")
			conn, dc := pinConn(t, db)
			before := dc.probe.lookups.Load()
			for i := range 20 {
				_, err := conn.ExecContext(t.Context(), "INSERT INTO t(v) VALUES (?)", i)
				if tc.replica {
					var np *NotPrimaryError
					require.ErrorAs(t, err, &np)
					assert.Equal(t, "node-a", np.PrimaryID)
				} else {
					require.NoError(t, err)
				}
			}
			assert.Equal(t, before, dc.probe.lookups.Load(), "writes read the mount files while the stream is trusted")
		})
	}
}

func TestWatcherDistrustsAStreamThatDisagrees(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	f := newFakeLiteFS(t, initPrimary) // another node's stream: it is primary
	db, c := openFollowing(t, m, f)
	m.SetReplica("node-a")
	eventually(t, func() bool { return f.conns.Load() >= 3 }, "the driver retries the stream")
	assert.Nil(t, c.watcher().trusted(), "a stream that disagrees with the mount is trusted")
	_, err := db.Exec("INSERT INTO t(v) VALUES ('x')")
	var np *NotPrimaryError
	require.ErrorAs(t, err, &np, "the mount decides")
	assert.Equal(t, "node-a", np.PrimaryID)
}

func TestWatcherFollowsPrimaryChanges(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	f := newFakeLiteFS(t, initPrimary)
	db, c := openFollowing(t, m, f)
	eventually(t, trustedAs(c, "primary"), "trusted as primary")
	m.SetReplica("node-b")
	f.send("primaryChange", "", `{"isPrimary":false,"hostname":"node-b"}`)
	eventually(t, trustedAs(c, "node-b"), "the change is seen")
	_, err := db.Exec("INSERT INTO t(v) VALUES ('x')")
	var np *NotPrimaryError
	require.ErrorAs(t, err, &np)
	assert.Equal(t, "node-b", np.PrimaryID)

	// No primary known: the driver reads the mount, which refuses.
	m.SetNoPrimary()
	f.send("primaryChange", "", `{"isPrimary":false}`)
	eventually(t, trustedAs(c, ""), "no role is trusted without a primary")
	_, err = db.Exec("INSERT INTO t(v) VALUES ('x')")
	assert.ErrorIs(t, err, ErrNoPrimary)
}

func TestWatcherDropsAStream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		break_ func(m *litefstest.Mount, f *fakeLiteFS)
	}{
		// The stream says primary while the mount now says replica.
		{name: "mount disagrees", break_: func(m *litefstest.Mount, f *fakeLiteFS) { m.SetReplica("node-a") }},
		// This node's position moves and the stream says nothing.
		{name: "stalled", break_: func(m *litefstest.Mount, f *fakeLiteFS) { m.SetTXID(9) }},
		// The stream reports transactions this node has not applied.
		{name: "ahead of this node", break_: func(m *litefstest.Mount, f *fakeLiteFS) { f.tx(100) }},
		{name: "malformed line", break_: func(m *litefstest.Mount, f *fakeLiteFS) { f.events <- "{not json" }},
		{name: "hung up", break_: func(m *litefstest.Mount, f *fakeLiteFS) { f.hangup <- struct{}{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			m.SetTXID(5)
			f := newFakeLiteFS(t, initPrimary)
			_, c := openFollowing(t, m, f)
			eventually(t, trustedAs(c, "primary"), "trusted as primary")
			tc.break_(m, f)
			eventually(t, trustedAs(c, ""), "the stream is dropped")
		})
	}
}

func TestWatcherReconnects(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	f := newFakeLiteFS(t, initPrimary)
	_, c := openFollowing(t, m, f)
	eventually(t, trustedAs(c, "primary"), "trusted as primary")
	f.hangup <- struct{}{}
	eventually(t, func() bool { return f.conns.Load() >= 2 && c.watcher().trusted() != nil }, "trusted again after a reconnect")
}

// A write that fails as on a replica while the stream says primary drops
// the stream at once and is refused, from the mount.
func TestFailedWriteDistrustsTheStream(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	f := newFakeLiteFS(t, initPrimary)
	db, c := openFollowing(t, m, f)
	eventually(t, trustedAs(c, "primary"), "trusted as primary")
	_, dc := pinConn(t, db)
	m.SetReplica("node-a")
	denied := sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.EACCES}
	err := failed(dc, t.Context(), denied)
	var np *NotPrimaryError
	require.ErrorAs(t, err, &np)
	assert.Equal(t, "node-a", np.PrimaryID)
	assert.ErrorIs(t, err, denied)
	assert.Nil(t, c.watcher().trusted(), "the stream is still trusted")
}

func TestWaitTXIDFromEvents(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetTXID(5)
	f := newFakeLiteFS(t, initPrimary)
	db, c := openFollowing(t, m, f)
	eventually(t, trustedAs(c, "primary"), "trusted as primary")
	w := c.watcher()
	done := make(chan error, 1)
	go func() {
		got, err := WaitTXID(t.Context(), db, 7)
		if err == nil && got != 7 {
			err = fmt.Errorf("got %v, want 7", got)
		}
		done <- err
	}()
	eventually(t, func() bool { return w.nwait.Load() == 1 }, "the waiter waits")
	reads := w.pos.reads.Load()
	m.SetTXID(7) // LiteFS applies the transactions, then reports them
	f.tx(6)
	f.send("tx", "other.db", `{"txID":"0000000000000009"}`) // another database's
	f.tx(7)
	require.NoError(t, <-done)
	// No poller ran while the stream was trusted: at most a role check
	// read the file meanwhile.
	assert.LessOrEqual(t, w.pos.reads.Load()-reads, uint64(2), "the waiter read -pos")
	assert.NotNil(t, w.trusted(), "the stream was dropped")
}

func TestWaitTXIDSharesOnePoller(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetTXID(1)
	db := openDB(t, m, "")
	ctr, err := connectorOf(db)
	require.NoError(t, err)
	w := ctr.watcher()
	const n = 100
	reads := w.pos.reads.Load()
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := WaitTXID(t.Context(), db, 10)
			errs <- err
		}()
	}
	eventually(t, func() bool { return w.nwait.Load() == n }, "every waiter waits")
	m.SetTXID(10)
	for range n {
		require.NoError(t, <-errs)
	}
	// One poller reads every 2 ms however many wait; a reader per waiter
	// would have read at least once each.
	assert.Less(t, w.pos.reads.Load()-reads, uint64(n), "reads of -pos for %d waiters", n)
}

func TestWaitTXIDBoundsWaiters(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetTXID(1)
	c, err := NewConnector(m.DSN(), WithLogger(discard), WithMaxWaiters(2))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	defer db.Close()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, err := WaitTXID(ctx, db, 10)
			assert.ErrorIs(t, err, context.Canceled)
		})
	}
	eventually(t, func() bool { return c.watcher().nwait.Load() == 2 && c.watcher().txid.Load() == 1 },
		"two waiters wait, and the poller has read the position")
	_, err = WaitTXID(t.Context(), db, 10)
	assert.ErrorIs(t, err, ErrTooManyWaiters)
	got, err := WaitTXID(t.Context(), db, 1)
	assert.NoError(t, err, "a position already reached needs no waiting")
	assert.Equal(t, TXID(1), got)
	cancel()
	wg.Wait()
	assert.Zero(t, c.watcher().nwait.Load())
}

func TestTXIDCallsNeedNoPoolConnection(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	m.SetTXID(3)
	db := openDB(t, m, "")
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := CurrentTXID(ctx, db)
	assert.NoError(t, err)
	assert.Equal(t, TXID(3), got)
	got, err = WaitTXID(ctx, db, 3)
	assert.NoError(t, err)
	assert.Equal(t, TXID(3), got)
}

func TestCloseWakesWaiters(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	f := newFakeLiteFS(t, initPrimary)
	db, c := openFollowing(t, m, f)
	eventually(t, trustedAs(c, "primary"), "trusted as primary")
	done := make(chan error, 1)
	go func() {
		_, err := WaitTXID(context.Background(), db, 100)
		done <- err
	}()
	eventually(t, func() bool { return c.watcher().nwait.Load() == 1 }, "the waiter waits")
	require.NoError(t, db.Close())
	assert.ErrorIs(t, <-done, errClosed)
	eventually(t, func() bool { return f.current.Load() == 0 }, "the stream is closed")
	_, err := WaitTXID(context.Background(), db, 100)
	assert.Error(t, err)
}

func TestLiteFSAPIConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		dsn  string
		opts []Option
		want string // the API followed; "" for none
		err  string
	}{
		{name: "default on a plain directory", dsn: "/tmp/x.db", want: ""},
		{name: "option", dsn: "/tmp/x.db", opts: []Option{WithLiteFSAPI(":20202")}, want: "http://127.0.0.1:20202"},
		{name: "DSN", dsn: "/tmp/x.db?_litefs_api=localhost:9", want: "http://localhost:9"},
		{name: "option beats DSN", dsn: "/tmp/x.db?_litefs_api=localhost:9", opts: []Option{WithLiteFSAPI("http://[::1]:7")}, want: "http://[::1]:7"},
		{name: "DSN off", dsn: "/tmp/x.db?_litefs_api=off", want: ""},
		{name: "option off", dsn: "/tmp/x.db", opts: []Option{WithLiteFSAPI("")}, want: ""},
		{name: "no port", dsn: "/tmp/x.db", opts: []Option{WithLiteFSAPI("localhost")}, err: "litefs: WithLiteFSAPI: "},
		{name: "a path", dsn: "/tmp/x.db?_litefs_api=http://h:1/x", err: "litefs: invalid DSN: _litefs_api: "},
		{name: "waiters", dsn: "/tmp/x.db", opts: []Option{WithMaxWaiters(0)}, err: "litefs: WithMaxWaiters(0)"},
		{name: "check interval", dsn: "/tmp/x.db", opts: []Option{WithRoleCheckInterval(0)}, err: "litefs: WithRoleCheckInterval(0s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewConnector(tc.dsn, tc.opts...)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			defer c.Close()
			assert.Equal(t, tc.want, c.watcher().api)
		})
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		line string
		want event
		err  bool
	}{
		{name: "init primary", line: `{"type":"init","data":{"isPrimary":true}}`, want: event{kind: eventInit, primary: true}},
		{name: "init replica", line: `{"type":"init","data":{"isPrimary":false,"hostname":"node-0"}}`, want: event{kind: eventInit, primaryID: "node-0"}},
		{name: "init, no primary", line: `{"type":"init","data":{"isPrimary":false}}`, want: event{kind: eventInit}},
		{name: "change", line: `{"type":"primaryChange","data":{"isPrimary":false,"hostname":"b"}}`, want: event{kind: eventPrimaryChange, primaryID: "b"}},
		{name: "tx", line: `{"type":"tx","db":"app.db","data":{"txID":"0000000000000194","postApplyChecksum":"e0e81d0cc60931ee","pageSize":4096,"commit":2,"timestamp":"2026-11-29T06:53:23.292Z"}}`,
			want: event{kind: eventTx, db: "app.db", txid: 0x194}},
		{name: "unknown kind", line: `{"type":"later","data":{}}`, want: event{kind: "later"}},
		{name: "bad hostname", line: `{"type":"init","data":{"isPrimary":false,"hostname":"a b"}}`, err: true},
		{name: "bad txid", line: `{"type":"tx","db":"app.db","data":{"txID":"12"}}`, err: true},
		{name: "tx without db", line: `{"type":"tx","data":{"txID":"0000000000000001"}}`, err: true},
		{name: "no type", line: `{"data":{}}`, err: true},
		{name: "not json", line: `init`, err: true},
		{name: "too long", line: `{"type":"init","data":{"isPrimary":true,"x":"` + string(make([]byte, maxEventLine)) + `"}}`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEvent([]byte(tc.line))
			if tc.err {
				assert.ErrorIs(t, err, errEventLine)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"init","data":{"isPrimary":true}}`,
		`{"type":"init","data":{"isPrimary":false,"hostname":"node-0"}}`,
		`{"type":"primaryChange","data":{"isPrimary":false}}`,
		`{"type":"tx","db":"app.db","data":{"txID":"0000000000000194"}}`,
		`{"type":"tx","db":"","data":{"txID":"zz"}}`, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseEvent(b)
		if err != nil {
			return
		}
		assert.NotEmpty(t, ev.kind, "an event without a kind")
		if ev.primaryID != "" {
			assert.False(t, ev.primary, "primary ID %q on a primary", ev.primaryID)
			assert.True(t, ValidPrimaryID(ev.primaryID), "primary ID %q is not valid", ev.primaryID)
		}
		if ev.kind == eventTx {
			assert.NotEmpty(t, ev.db, "a tx event without a database")
		}
		var v any
		assert.NoError(t, json.Unmarshal(b, &v), "accepted a line that is not JSON")
	})
}

// A stream that agreed with the mount at init and then sends another node's
// TXIDs publishes no position beyond <db>-pos: a waiter is not released
// early, and nothing is left behind once the stream is dropped as ahead.
func TestStreamTXIDAheadOfThisNodeIsNotPublished(t *testing.T) {
	m := litefstest.NewMount(t)
	m.SetTXID(5)
	f := newFakeLiteFS(t, initPrimary)
	db, c := openFollowing(t, m, f)
	eventually(t, trustedAs(c, "primary"), "trusted as primary")

	type result struct {
		got TXID
		err error
	}
	waited := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		got, err := WaitTXID(ctx, db, 50)
		waited <- result{got, err}
	}()
	eventually(t, func() bool { return c.watcher().nwait.Load() == 1 }, "waiting")
	f.tx(100) // another node's position
	eventually(t, trustedAs(c, ""), "the stream is dropped as ahead of this node")
	select {
	case r := <-waited:
		t.Fatalf("WaitTXID(50) returned %v, %v while this node is at TXID 5", r.got, r.err)
	default:
	}
	m.SetTXID(50)
	r := <-waited
	require.NoError(t, r.err)
	assert.Equal(t, TXID(50), r.got, "released by this node's own position")

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := WaitTXID(ctx, db, 60)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a position the dropped stream sent was kept")
}
