package httpbridge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		maxLag   time.Duration
		setup    func(m *litefstest.Mount)
		wantCode int
		wantRole litefs.Role
		problem  string // in Problem; "" for none
	}{
		{name: "not on LiteFS", setup: func(*litefstest.Mount) {},
			wantCode: http.StatusOK, wantRole: litefs.RoleNotLiteFS},
		// A LiteFS primary stamps .lag at each look, which a temp directory
		// cannot imitate; a plain directory is a primary that needs no check.
		{name: "replica in step", setup: func(m *litefstest.Mount) {
			m.SetReplica("node-a")
			m.WriteLagFile([]byte("+000000050\n"), time.Now())
		}, wantCode: http.StatusOK, wantRole: litefs.RoleReplica},
		{name: "replica behind", setup: func(m *litefstest.Mount) {
			m.SetReplica("node-a")
			m.WriteLagFile([]byte("+000015000\n"), time.Now())
		}, wantCode: http.StatusServiceUnavailable, wantRole: litefs.RoleReplica, problem: "lag 15s is over 10s"},
		{name: "replica behind, within a larger MaxLag", maxLag: 20 * time.Second, setup: func(m *litefstest.Mount) {
			m.SetReplica("node-a")
			m.WriteLagFile([]byte("+000015000\n"), time.Now())
		}, wantCode: http.StatusOK, wantRole: litefs.RoleReplica},
		{name: "no primary", setup: func(m *litefstest.Mount) { m.SetNoPrimary() },
			wantCode: http.StatusServiceUnavailable, wantRole: litefs.RoleNoPrimary, problem: "no primary"},
		{name: "no primary, lag unbounded", maxLag: -1, setup: func(m *litefstest.Mount) { m.SetNoPrimary() },
			wantCode: http.StatusServiceUnavailable, wantRole: litefs.RoleNoPrimary, problem: "no primary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, m := openTestDB(t)
			tc.setup(m)
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
