package httpbridge

import (
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// driverMux serves posts from db, and sends mail only on the primary. A POST
// to /posts?promote calls promote when its write is refused.
func driverMux(db *sql.DB, promote func()) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /posts", func(w http.ResponseWriter, r *http.Request) {
		if _, err := db.ExecContext(r.Context(), "INSERT INTO posts VALUES (?)", "hi"); err != nil {
			if r.URL.Query().Has("promote") {
				// A primary is elected while the request is refused.
				promote()
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
	return mux
}

// TestWithDriver runs the bridge over the real driver: the refusals come
// from litefs, not from the test.
func TestWithDriver(t *testing.T) {
	t.Parallel()
	db, m := openTestDB(t)
	var ev events
	b := newBridge(t, Config{OnEvent: ev.add, WaitPrimary: litefs.WaitPrimary, PrimaryWait: 5 * time.Second})
	h := b.Handler(driverMux(db, func() { m.SetReplica("node-b") }))
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

// statusCases are node states and what the status handler must answer.
var statusCases = []struct {
	name      string
	maxLag    time.Duration
	replicaOf string // the primary in .primary; "" for none
	lag       string // .lag's content; "" for none
	noPrimary bool   // LiteFS knows no primary
	wantCode  int
	wantRole  litefs.Role
	problem   string // in Problem; "" for none
}{
	// A LiteFS primary stamps .lag at each look, which a temp directory
	// cannot imitate; a plain directory is a primary that needs no check.
	{name: "not on LiteFS", wantCode: http.StatusOK, wantRole: litefs.RoleNotLiteFS},
	{name: "replica in step", replicaOf: "node-a", lag: "+000000050\n",
		wantCode: http.StatusOK, wantRole: litefs.RoleReplica},
	{name: "replica behind", replicaOf: "node-a", lag: "+000015000\n",
		wantCode: http.StatusServiceUnavailable, wantRole: litefs.RoleReplica, problem: "lag 15s is over 10s"},
	{name: "replica behind, within a larger MaxLag", maxLag: 20 * time.Second, replicaOf: "node-a", lag: "+000015000\n",
		wantCode: http.StatusOK, wantRole: litefs.RoleReplica},
	{name: "no primary", noPrimary: true,
		wantCode: http.StatusServiceUnavailable, wantRole: litefs.RoleNoPrimary, problem: "no primary"},
	{name: "no primary, lag unbounded", maxLag: -1, noPrimary: true,
		wantCode: http.StatusServiceUnavailable, wantRole: litefs.RoleNoPrimary, problem: "no primary"},
}

func TestStatusHandler(t *testing.T) {
	t.Parallel()
	for _, tc := range statusCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, m := openTestDB(t)
			if tc.replicaOf != "" {
				m.SetReplica(tc.replicaOf)
			}
			if tc.lag != "" {
				m.WriteLagFile([]byte(tc.lag), time.Now())
			}
			if tc.noPrimary {
				m.SetNoPrimary()
			}
			b := newBridge(t, Config{DB: db, MaxLag: tc.maxLag})
			w := serve(b.StatusHandler(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
			assert.Equal(t, tc.wantCode, w.Code)
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			var st struct { // Status, but with the role as its name
				OK      bool   `json:"ok"`
				Problem string `json:"problem"`
				Role    string `json:"role"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &st), w.Body.String())
			assert.Equal(t, tc.wantRole.String(), st.Role)
			assert.Equal(t, tc.wantCode == http.StatusOK, st.OK)
			if tc.problem == "" {
				assert.Empty(t, st.Problem)
			} else {
				assert.Contains(t, st.Problem, tc.problem)
			}
		})
	}
}

// TestStatusHandlerCounts: the body carries the bridge's counts by reason,
// the same as Bridge.Count.
func TestStatusHandlerCounts(t *testing.T) {
	t.Parallel()
	db, _ := openTestDB(t)
	b := newBridge(t, Config{DB: db})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
	}))
	for range 3 {
		serve(h, httptest.NewRequest(http.MethodPost, "/", nil))
	}
	w := serve(b.StatusHandler(), httptest.NewRequest(http.MethodGet, "/", nil))
	var body struct {
		Counts map[string]uint64 `json:"counts"`
		Role   string            `json:"role"`
		TXID   *uint64           `json:"txid"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	assert.Equal(t, uint64(3), body.Counts["refused"])
	assert.Equal(t, uint64(0), body.Counts["no primary"])
	assert.Len(t, body.Counts, int(numReasons)-1)
	assert.Equal(t, "not-litefs", body.Role)
	assert.NotNil(t, body.TXID, "the documented key txid")
}

func TestStatusHandlerWithoutDB(t *testing.T) {
	t.Parallel()
	b := newBridge(t, Config{})
	w := serve(b.StatusHandler(), httptest.NewRequest(http.MethodHead, "/", nil))
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Empty(t, w.Body.String(), "HEAD gets no body")
	w = serve(b.StatusHandler(), httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Contains(t, w.Body.String(), "Config.DB")
}

// TestStatusHandlerHidesPaths: the status is served to anyone who can reach
// it, so the reason it shows for a LiteFS mount gone from under the app does
// not name the mount's path, while problem still says what is wrong.
func TestStatusHandlerHidesPaths(t *testing.T) {
	t.Parallel()
	cluster := litefstest.StartCluster(t, 1)
	node := cluster.Primary()
	db, err := sql.Open(litefs.DriverName, node.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec("CREATE TABLE t(x)")
	require.NoError(t, err)
	b := newBridge(t, Config{DB: db})
	w := serve(b.StatusHandler(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	// Closed first, so that nothing holds a file in the mount (the status
	// reads the mount afresh, with no connection); the mount then goes.
	require.NoError(t, db.Close())
	require.NoError(t, node.Process().Stop())

	w = serve(b.StatusHandler(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	body := w.Body.String()
	require.Equal(t, http.StatusServiceUnavailable, w.Code, body)
	var st struct{ Reason, Problem string }
	require.NoError(t, json.Unmarshal([]byte(body), &st), body)
	assert.Equal(t, "the LiteFS mount is gone", st.Reason)
	assert.Equal(t, "no primary is known: the LiteFS mount is gone", st.Problem)
	assert.NotContains(t, body, node.MountDir(), "the mount's path is served")
	assert.NotContains(t, body, "/", "a path is served")
}

func TestPublicReason(t *testing.T) {
	t.Parallel()
	tests := []struct{ reason, want string }{
		{reason: "", want: ""},
		{reason: "LiteFS reports no primary", want: "LiteFS reports no primary"},
		{reason: "the LiteFS mount is gone from /litefs", want: "the LiteFS mount is gone"},
		{reason: "LiteFS is gone from /var/lib/litefs", want: "LiteFS is gone"},
		{reason: ".primary holds no valid hostname", want: ".primary holds no valid hostname"},
		{reason: "cannot read .primary: open /litefs/.primary: permission denied", want: "cannot read .primary"},
		{reason: "cannot stat .lag: stat /litefs/.lag: input/output error", want: "cannot stat .lag"},
		{reason: "LiteFS refused the write: this node no longer takes writes", want: "LiteFS refused the write: this node no longer takes writes"},
		{reason: "open /secret/x: something new", want: "the node's state could not be read"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, publicReason(tc.reason), "publicReason(%q)", tc.reason)
	}
}
