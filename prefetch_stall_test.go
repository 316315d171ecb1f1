package litefs

import (
	"bufio"
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// stallProxy relays LiteFS's API, holding back the event stream's lines
// while paused, and cutting every stream when drop is called.
type stallProxy struct {
	api    string
	paused atomic.Bool
	mu     sync.Mutex
	cuts   []context.CancelFunc
}

func (s *stallProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	s.mu.Lock()
	s.cuts = append(s.cuts, cancel)
	s.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, r.Method, s.api+r.URL.Path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		for s.paused.Load() && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if ctx.Err() != nil {
			return
		}
		w.Write(append(lines.Bytes(), '\n'))
		w.(http.Flusher).Flush()
	}
}

func (s *stallProxy) drop() {
	s.mu.Lock()
	for _, c := range s.cuts {
		c()
	}
	s.cuts = nil
	s.mu.Unlock()
}

// TestPrefetchStallingStream: commits with PrefetchTXID while the event
// stream stalls (a pause longer than the role check interval, which drops
// it), pauses briefly, and is cut: every Tracker.TXID is the commit's, as
// <db>-pos shows it right after. (Holds.)
func TestPrefetchStallingStream(t *testing.T) {
	cluster := litefstest.StartCluster(t, 1)
	p := cluster.Primary()
	proxy := &stallProxy{api: p.URL()}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	t.Cleanup(proxy.drop)
	c, err := NewConnector(p.DSN(), WithLogger(discard), WithLiteFSAPI(srv.URL), WithRoleCheckInterval(20*time.Millisecond))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	eventually(t, trustedAs(c, "primary"), "the primary trusts its stream")
	posPath := p.DBPath() + "-pos"

	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			switch i % 4 {
			case 0:
				proxy.paused.Store(true) // a short stall
			case 1:
				proxy.paused.Store(false)
			case 2:
				proxy.paused.Store(true)
				time.Sleep(60 * time.Millisecond) // past the role check: dropped
				proxy.paused.Store(false)
			case 3:
				proxy.drop()
			}
		}
	})
	w := c.watcher()
	hits, misses := w.prefetchHits.Load(), w.prefetchMisses.Load()
	wrong := 0
	for i := range 200 {
		tr := &Tracker{}
		tr.PrefetchTXID()
		q := "INSERT INTO t(v) VALUES ('x')"
		if i%5 == 0 {
			q = "UPDATE t SET v = 'y' WHERE id = -1" // no LiteFS transaction
		}
		_, err := db.ExecContext(WithTracker(context.Background(), tr), q)
		require.NoError(t, err)
		after, err := readPos(posPath)
		require.NoError(t, err)
		id, ok, err := tr.TXID()
		require.NoError(t, err)
		require.True(t, ok)
		if id != after {
			wrong++
			t.Logf("commit %d: Tracker.TXID %v, <db>-pos %v", i, id, after)
		}
	}
	close(stop)
	bg.Wait()
	t.Logf("hook reads: %d hits, %d misses", w.prefetchHits.Load()-hits, w.prefetchMisses.Load()-misses)
	assert.Zero(t, wrong, "TXIDs other than the commit's")
}
