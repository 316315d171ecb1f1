//go:build linux

package integration_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/httpbridge"
	"github.com/litefs-sql/litefs/litefstest"
)

// Bounds of the load: requests sent per second and at most per phase, and
// requests measured per phase. The load is open: a request is sent every
// 1/forgedRate s whether or not the ones before it were answered, so both
// phases send the same requests at the same times, and only the cookie
// differs. A phase sends load for at most forgedMax/forgedRate = 3 s.
const (
	forgedRate     = 2000
	forgedMax      = 6000
	forgedMeasured = 500
)

// forgedCookie names a transaction the replica will not have for ages.
const forgedCookie = httpbridge.DefaultTXIDCookie + "=7fffffffffffffff"

// TestForgedTXIDLoad (issue 14): on a replica of a real cluster, clients
// that all send a forged read-your-writes cookie must not slow the clients
// that send none. The p99 of requests without a cookie is measured under
// the same load twice, once without cookies and once with the forged one;
// the ratio of the two, from the same run, must be at most 3. (With each
// waiter polling <db>-pos on its own, as before the shared position source,
// the ratio was 3.7 to 1345 on a loaded 2-core machine; with it, 0.00 to
// 1.3.)
func TestForgedTXIDLoad(t *testing.T) {
	cluster := litefstest.StartCluster(t, 2)
	primary, replica := cluster.Primary(), cluster.Replicas()[0]
	pdb, err := sql.Open(litefs.DriverName, primary.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { pdb.Close() })
	_, err = pdb.Exec("CREATE TABLE items(v TEXT)")
	require.NoError(t, err)
	cluster.WaitReplicated(t)

	// With LiteFS's API, as deployed: waiters follow its event stream.
	db, err := sql.Open(litefs.DriverName, replica.DSN()+"&_litefs_api="+replica.URL())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	b, err := httpbridge.New(httpbridge.Config{InstanceID: replica.Hostname(), DB: db})
	require.NoError(t, err)
	srv := httptest.NewServer(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), "SELECT count(*) FROM items").Scan(&n); err != nil {
			http.Error(w, "read failed", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})))
	t.Cleanup(srv.Close)

	// Each measure starts once the load is in full swing: as many requests
	// answered as are sent in a tenth of a second; with the forged cookie,
	// the replica's waiters are then full (those past its bound are sent to
	// the primary at once).
	plain := loadPhase(t, srv.URL, "")
	forged := loadPhase(t, srv.URL, forgedCookie)
	ratio := float64(forged.p99) / float64(plain.p99)
	t.Logf("%d requests/s, no cookie:     %v", forgedRate, plain)
	t.Logf("%d requests/s, forged cookie: %v", forgedRate, forged)
	t.Logf("p99 ratio (forged / no cookie): %.2f; requests behind: %d", ratio, b.Count(httpbridge.ReasonBehind))
	assert.Positive(t, b.Count(httpbridge.ReasonBehind), "forged cookies made requests wait")
	assert.LessOrEqual(t, ratio, 3.0, "p99 of requests without a cookie under forged-cookie load, against the same load without cookies")
}

// phaseResult is what one phase measured: latencies of the requests without
// a cookie, and how many load requests were sent and answered.
type phaseResult struct {
	p50, p99, max  time.Duration
	n              int // requests measured
	sent, answered int
}

func (p phaseResult) String() string {
	return strconv.Itoa(p.n) + " measured: p50 " + p.p50.String() + " p99 " + p.p99.String() + " max " + p.max.String() +
		" (load: " + strconv.Itoa(p.sent) + " requests sent, " + strconv.Itoa(p.answered) + " answered)"
}

// loadPhase sends GETs with cookie ("" for none) at forgedRate, at most
// forgedMax, each on whichever connection is free (so on many), and
// meanwhile measures forgedMeasured GETs without a cookie, one after the
// other on a connection of their own. The load stops when the measure ends,
// or after forgedMax requests (a measure slow enough to outlast them fails
// on its p99 anyway).
func loadPhase(t *testing.T, url, cookie string) phaseResult {
	t.Helper()
	loadTr := &http.Transport{MaxIdleConnsPerHost: 1000}
	t.Cleanup(loadTr.CloseIdleConnections)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var (
		wg             sync.WaitGroup
		sent, answered atomic.Int64
	)
	send := func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Error(err)
			return
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		if res, err := loadTr.RoundTrip(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			answered.Add(1)
		}
	}
	wg.Go(func() {
		tick := time.NewTicker(time.Second / forgedRate)
		defer tick.Stop()
		for range forgedMax {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			sent.Add(1)
			wg.Go(send)
		}
	})
	litefstest.WaitFor(t, func() error {
		if n := answered.Load(); n < forgedRate/10 {
			return fmt.Errorf("load not in full swing: %d requests answered", n)
		}
		return nil
	})
	res := measure(t, url)
	stop()
	wg.Wait()
	res.sent, res.answered = int(sent.Load()), int(answered.Load())
	return res
}

// measure sends forgedMeasured GETs without a cookie and returns their
// latencies.
func measure(t *testing.T, url string) phaseResult {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	d := make([]time.Duration, 0, forgedMeasured)
	for range forgedMeasured {
		start := time.Now()
		res, err := client.Get(url)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return phaseResult{p50: d[len(d)/2], p99: d[len(d)*99/100], max: d[len(d)-1], n: len(d)}
}
