//go:build linux

package integration

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs"
	"github.com/litefs-sql/litefs/litefstest"
)

var (
	benchRounds = flag.Int("rounds", 1, "rounds of TestClusterBench: 1 is a smoke test; 9 gives figures")
	benchOps    = flag.Int("ops", 50, "operations per side and round of TestClusterBench (per client at 8 clients)")
)

// A sample is what one side of a comparison measured in one round.
type sample struct {
	lat  []time.Duration // each operation's latency
	wall time.Duration   // the round's elapsed time, for throughput
}

// A metric reads one figure from a sample; ratios are subject / baseline.
type metric struct {
	name string
	of   func(sample) float64
	unit string
}

var (
	p50        = metric{"p50", func(s sample) float64 { return micros(percentile(s.lat, 50)) }, "µs"}
	p99        = metric{"p99", func(s sample) float64 { return micros(percentile(s.lat, 99)) }, "µs"}
	throughput = metric{"throughput", func(s sample) float64 { return float64(len(s.lat)) / s.wall.Seconds() }, "req/s"}
)

// A comparison is two ways of doing one thing, run in alternation in each
// round (the order flips every round) so that both see the same machine.
type comparison struct {
	name       string
	base, subj string
	metrics    []metric
	runBase    func(ops int) (sample, error)
	runSubj    func(ops int) (sample, error)
}

// TestClusterBench starts a real two-node LiteFS cluster with LiteFS's own
// proxy configured beside the bridge, and compares, in interleaved rounds:
// the driver with go-sqlite3 alone on the primary's mount, a refusal on
// the replica with a raw write on the primary, and the bridge with LiteFS's
// proxy on the replica (GETs, POSTs replayed through litefstest.FlyProxy
// with read-your-writes on in both, throughput at 8 clients), and a commit
// on the primary with its __txid cookie against the app without the
// bridge. It prints
// each round's ratio and the median with min–max; it asserts no timing.
//
//	go test -run TestClusterBench -v -rounds 9 -ops 300
func TestClusterBench(t *testing.T) {
	c := startBenchCluster(t)
	ctx := t.Context()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	proxyPosts, bridgePosts := c.poster(t, "proxy", true), c.poster(t, "bridge", true)
	proxyPostsNoRYW, bridgePostsNoRYW := c.poster(t, "proxy", false), c.poster(t, "bridge", false)
	comparisons := []comparison{
		{name: "point read on the primary's mount", base: "raw", subj: "litefs", metrics: []metric{p50},
			runBase: dbOps(ctx, c.raw, readRow, nil), runSubj: dbOps(ctx, c.primary.db, readRow, nil)},
		{name: "single-row UPDATE on the primary's mount", base: "raw", subj: "litefs", metrics: []metric{p50},
			runBase: dbOps(ctx, c.raw, updateRow, nil), runSubj: dbOps(ctx, c.primary.db, updateRow, nil)},
		{name: "refused UPDATE on the replica vs raw UPDATE on the primary", base: "raw write", subj: "refusal", metrics: []metric{p50},
			runBase: dbOps(ctx, c.raw, updateRow, nil), runSubj: dbOps(ctx, c.replica.db, updateRow, litefs.ErrNotPrimary)},
		{name: "GET on the replica", base: "LiteFS proxy", subj: "bridge", metrics: []metric{p50, p99},
			runBase: gets(client, c.replica.proxy, 1), runSubj: gets(client, c.replica.bridge, 1)},
		{name: "GET on the replica", base: "no middleware", subj: "bridge", metrics: []metric{p50, p99},
			runBase: gets(client, c.replica.plain, 1), runSubj: gets(client, c.replica.bridge, 1)},
		{name: "POST to the replica, replayed on the primary", base: "LiteFS proxy", subj: "bridge", metrics: []metric{p50, p99},
			runBase: proxyPosts.run, runSubj: bridgePosts.run},
		{name: "POST to the replica, replayed, with no __txid cookie", base: "LiteFS proxy", subj: "bridge", metrics: []metric{p50},
			runBase: proxyPostsNoRYW.run, runSubj: bridgePostsNoRYW.run},
		{name: "POST, of which the replica's answer", base: "LiteFS proxy", subj: "bridge", metrics: []metric{p50},
			runBase: replicaAnswers(client, c.replica.proxy), runSubj: replicaAnswers(client, c.replica.bridge)},
		{name: "POST, of which the commit on the primary", base: "LiteFS proxy", subj: "bridge", metrics: []metric{p50},
			runBase: primaryCommits(client, c.primary.proxy), runSubj: primaryCommits(client, c.primary.bridge)},
		{name: "POST on the primary, commit and its __txid cookie", base: "no middleware", subj: "bridge", metrics: []metric{p50},
			runBase: primaryCommits(client, c.primary.plain), runSubj: primaryCommits(client, c.primary.bridge)},
		{name: "GET on the replica, 8 clients", base: "LiteFS proxy", subj: "bridge", metrics: []metric{throughput},
			runBase: gets(client, c.replica.proxy, 8), runSubj: gets(client, c.replica.bridge, 8)},
		{name: "GET on the replica, 8 clients", base: "no middleware", subj: "bridge", metrics: []metric{throughput},
			runBase: gets(client, c.replica.plain, 8), runSubj: gets(client, c.replica.bridge, 8)},
	}
	for _, cmp := range comparisons {
		require.NoError(t, runComparison(t, cmp, *benchRounds, *benchOps), cmp.name)
	}
	for _, p := range []*poster{proxyPosts, bridgePosts, proxyPostsNoRYW, bridgePostsNoRYW} {
		p.check(t, c)
	}
	proxyPosts.getThatWrites(t, c, http.StatusInternalServerError, 0)
	bridgePosts.getThatWrites(t, c, http.StatusOK, 1)
}

// runComparison runs cmp for rounds rounds of ops operations a side and
// logs each round and the summary.
func runComparison(t *testing.T, cmp comparison, rounds, ops int) error {
	t.Logf("%s: %s / %s", cmp.name, cmp.subj, cmp.base)
	// A warm-up round, not counted: connections, caches, pages.
	if _, _, err := runBoth(cmp.runBase, cmp.runSubj, min(ops, 20)); err != nil {
		return err
	}
	ratios := make([][]float64, len(cmp.metrics))
	bases, subjs := make([][]float64, len(cmp.metrics)), make([][]float64, len(cmp.metrics))
	for r := range rounds {
		var base, subj sample
		var err error
		if r%2 == 0 {
			base, subj, err = runBoth(cmp.runBase, cmp.runSubj, ops)
		} else {
			subj, base, err = runBoth(cmp.runSubj, cmp.runBase, ops)
		}
		if err != nil {
			return err
		}
		var line strings.Builder
		for i, m := range cmp.metrics {
			b, s := m.of(base), m.of(subj)
			bases[i], subjs[i], ratios[i] = append(bases[i], b), append(subjs[i], s), append(ratios[i], s/b)
			fmt.Fprintf(&line, "  %s %s / %s %s = %s", m.name, num(s), num(b), m.unit, num(s/b))
		}
		t.Logf("  round %d:%s", r+1, line.String())
	}
	for i, m := range cmp.metrics {
		t.Logf("  %s: %s %s %s, %s %s %s; ratio %s (min %s, max %s) over %d rounds",
			m.name, cmp.subj, num(median(subjs[i])), m.unit, cmp.base, num(median(bases[i])), m.unit,
			num(median(ratios[i])), num(slices.Min(ratios[i])), num(slices.Max(ratios[i])), rounds)
	}
	return nil
}

// benchChunk is how many operations a side runs before the other side
// runs as many: interleaving this finely keeps a load spike on the shared
// machine from landing on one side of a round only.
const benchChunk = 25

// runBoth runs ops operations of each side, in chunks, alternating which
// side goes first, and returns each side's merged sample.
func runBoth(first, second func(int) (sample, error), ops int) (a, b sample, err error) {
	merge := func(into *sample, run func(int) (sample, error), n int) error {
		s, err := run(n)
		into.lat, into.wall = append(into.lat, s.lat...), into.wall+s.wall
		return err
	}
	for done, i := 0, 0; done < ops; done, i = done+benchChunk, i+1 {
		n := min(benchChunk, ops-done)
		x, y, sx, sy := &a, &b, first, second
		if i%2 == 1 {
			x, y, sx, sy = &b, &a, second, first
		}
		if err := merge(x, sx, n); err != nil {
			return a, b, err
		}
		if err := merge(y, sy, n); err != nil {
			return a, b, err
		}
	}
	return a, b, nil
}

// A dbOp is one statement on row id of the table t.
type dbOp func(ctx context.Context, db *sql.DB, id int) error

func readRow(ctx context.Context, db *sql.DB, id int) error {
	var v string
	return db.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", id).Scan(&v)
}

// updates numbers the UPDATEs, so that each writes a value of its own: an
// UPDATE that sets a row to what it holds writes no page, and LiteFS then
// makes no transaction.
var updates atomic.Int64

func updateRow(ctx context.Context, db *sql.DB, id int) error {
	_, err := db.ExecContext(ctx, "UPDATE t SET v = ? WHERE id = ?", updates.Add(1), id)
	return err
}

// dbOps runs op ops times on db, on rows in turn; each must fail with want
// (nil: succeed).
func dbOps(ctx context.Context, db *sql.DB, op dbOp, want error) func(int) (sample, error) {
	next := 0
	return func(ops int) (sample, error) {
		return timed(ops, func() error {
			next = next%1000 + 1
			err := op(ctx, db, next)
			if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
				return fmt.Errorf("got %v, want %v", err, want)
			}
			return nil
		})
	}
}

// gets sends GET /rows/{id} to base from clients clients, ops each.
func gets(client *http.Client, base string, clients int) func(int) (sample, error) {
	return func(ops int) (sample, error) {
		lats := make([][]time.Duration, clients)
		errs := make([]error, clients)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range clients {
			wg.Go(func() {
				for j := range ops {
					t0 := time.Now()
					if err := send(client, http.MethodGet, fmt.Sprintf("%s/rows/%d", base, (i*ops+j)%1000+1), nil); err != nil {
						errs[i] = err
						return
					}
					lats[i] = append(lats[i], time.Since(t0))
				}
			})
		}
		wg.Wait()
		return sample{lat: slices.Concat(lats...), wall: time.Since(start)}, errors.Join(errs...)
	}
}

// send sends a request and reads its answer, which must be a 200.
func send(client *http.Client, method, url string, form url.Values) error {
	status, _, err := do(client, method, url, form)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("%s %s: status %d, want 200", method, url, status)
	}
	return err
}

// do sends a request and reads its answer.
func do(client *http.Client, method, url string, form url.Values) (int, http.Header, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, err
}

// timed runs op ops times and times each run.
func timed(ops int, op func() error) (sample, error) {
	s := sample{lat: make([]time.Duration, 0, ops)}
	start := time.Now()
	for range ops {
		t0 := time.Now()
		if err := op(); err != nil {
			return s, err
		}
		s.lat = append(s.lat, time.Since(t0))
	}
	s.wall = time.Since(start)
	return s, nil
}

// replicaAnswers POSTs straight to a replica's app at base, whose answer
// must ask for a replay: LiteFS's proxy answers 200 with a fly-replay
// header, the bridge 409 with one.
func replicaAnswers(client *http.Client, base string) func(int) (sample, error) {
	return func(ops int) (sample, error) {
		return timed(ops, func() error {
			status, h, err := do(client, http.MethodPost, base+"/posts", url.Values{"title": {"never"}})
			if err == nil && h.Get(litefstest.HeaderReplay) == "" {
				err = fmt.Errorf("POST %s/posts: status %d without %s", base, status, litefstest.HeaderReplay)
			}
			return err
		})
	}
}

// primaryCommits POSTs straight to the primary's app at base.
func primaryCommits(client *http.Client, base string) func(int) (sample, error) {
	return func(ops int) (sample, error) {
		return timed(ops, func() error {
			return send(client, http.MethodPost, base+"/posts", url.Values{"title": {"on the primary"}})
		})
	}
}

// A poster sends POSTs to the replica through a FlyProxy whose instances
// are either LiteFS's proxies or the bridged apps, from a client with a
// cookie jar, so that read-your-writes is on, or without one.
type poster struct {
	mode   string // "proxy" or "bridge"
	title  string // of its posts: mode, or mode-no-ryw without a jar
	fly    *litefstest.FlyProxy
	url    string
	client *http.Client
	sent   int
}

func (c *benchCluster) poster(t *testing.T, mode string, ryw bool) *poster {
	t.Helper()
	pick := func(n *benchNode) string { return map[string]string{"proxy": n.proxy, "bridge": n.bridge}[mode] }
	fly, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{
		Instances: map[string]string{c.primary.name: pick(c.primary), c.replica.name: pick(c.replica)},
		Target:    c.replica.name,
	})
	require.NoError(t, err)
	p := &poster{mode: mode, title: mode, fly: fly, url: fly.Start(t), client: &http.Client{
		Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4},
	}}
	if !ryw {
		p.title += "-no-ryw"
		return p
	}
	p.client.Jar, err = cookiejar.New(nil)
	require.NoError(t, err)
	return p
}

func (p *poster) run(ops int) (sample, error) {
	return timed(ops, func() error {
		err := send(p.client, http.MethodPost, p.url+"/posts", url.Values{"title": {p.title}})
		if err == nil {
			p.sent++
		}
		return err
	})
}

// check asserts that every POST was replayed once and committed once.
func (p *poster) check(t *testing.T, c *benchCluster) {
	t.Helper()
	var n int
	require.NoError(t, c.raw.QueryRow("SELECT count(*) FROM posts WHERE title = ?", p.title).Scan(&n))
	assert.Equal(t, p.sent, n, "%s: posts committed", p.title)
	assert.Len(t, p.fly.Replays(), p.sent, "%s: replays", p.title)
}

// num formats a time, a rate or a ratio: whole numbers from 100 up, two
// decimals from 1, two significant digits below (a refusal that costs
// almost nothing shows as 0.0021, not 0.00).
func num(x float64) string {
	switch {
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return strconv.FormatFloat(x, 'g', 2, 64)
	}
}

// getThatWrites sends the replica a GET whose handler writes, through the
// FlyProxy, and checks its status and how many times it committed: LiteFS's
// proxy takes a GET for a read and lets the replica fail it, the bridge
// replays it on the primary.
func (p *poster) getThatWrites(t *testing.T, c *benchCluster, wantStatus, wantCommits int) {
	t.Helper()
	status, _, err := do(p.client, http.MethodGet, p.url+"/touch/"+p.mode, nil)
	require.NoError(t, err)
	assert.Equal(t, wantStatus, status, "%s: a GET that writes, on the replica", p.mode)
	var n int
	require.NoError(t, c.raw.QueryRow("SELECT count(*) FROM posts WHERE title = ?", "touch-"+p.mode).Scan(&n))
	assert.Equal(t, wantCommits, n, "%s: commits of a GET that writes", p.mode)
	t.Logf("a GET that writes, on the replica, through %s: status %d, committed %d times", p.mode, status, n)
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
