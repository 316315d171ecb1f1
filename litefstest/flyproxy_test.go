package litefstest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// newServer serves h on a loopback port until the test ends.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// seen is a request as an instance received it.
type seen struct {
	instance string
	method   string
	path     string
	header   http.Header
	body     []byte
}

// fleet is a set of app instances behind a proxy under test; each records
// what it receives and answers with behave.
type fleet struct {
	urls map[string]string
	mu   sync.Mutex
	log  []seen
}

// behavior answers a request an instance received (its body already read
// into s.body).
type behavior func(w http.ResponseWriter, r *http.Request, s seen)

func newFleet(t *testing.T, ids []string, behave behavior) *fleet {
	t.Helper()
	f := &fleet{urls: map[string]string{}}
	for _, id := range ids {
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			assert.NoError(t, err, "%s: read body", id)
			s := seen{instance: id, method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone(), body: body}
			f.mu.Lock()
			f.log = append(f.log, s)
			f.mu.Unlock()
			behave(w, r, s)
		}))
		f.urls[id] = srv.URL
	}
	return f
}

func (f *fleet) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.log...)
}

// down returns the URL of a port where nothing listens any more.
func down(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

// hangup returns the URL of a port that accepts connections and closes
// them without an answer: the request reached an instance, which failed.
func hangup(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return "http://" + l.Addr().String()
}

func startProxy(t *testing.T, cfg litefstest.FlyProxyConfig) (*litefstest.FlyProxy, string) {
	t.Helper()
	p, err := litefstest.NewFlyProxy(cfg)
	require.NoError(t, err)
	return p, p.Start(t)
}

type response struct {
	status int
	header http.Header
	body   string
}

// statusBody returns the status code and the body, for a check of both.
func (r response) statusBody() string { return fmt.Sprintf("%d %s", r.status, r.body) }

func do(t *testing.T, method, url string, body io.Reader, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// primaryWrites is the app behaviour LiteFS users write: node-0 takes
// writes; the others answer writes with fly-replay (and a status and body
// the proxy must discard).
func primaryWrites(w http.ResponseWriter, r *http.Request, s seen) {
	if s.instance != "node-0" && r.Method != http.MethodGet {
		w.Header().Set(litefstest.HeaderReplay, "instance=node-0;state=from-"+s.instance)
		http.Error(w, "replica", http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "%s got %s", s.instance, s.body)
}

func TestFlyProxyReplaysWritesToPrimary(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"node-0", "node-1", "node-2"}, primaryWrites)
	p, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})

	before := time.Now()
	for i := range 3 {
		body := fmt.Sprintf("post %d", i)
		got := do(t, "POST", url+"/posts?x=1", strings.NewReader(body))
		assert.Equal(t, "201 node-0 got "+body, got.statusBody(), "POST %d: want 201 from node-0", i)
	}
	after := time.Now()
	for i := range 3 {
		got := do(t, "GET", url+"/posts", nil)
		assert.Equal(t, fmt.Sprintf("201 node-%d got ", i), got.statusBody(), "GET %d: want node-%d (round-robin)", i, i)
	}

	replays := p.Replays()
	want := []litefstest.Replay{
		{Method: "POST", Path: "/posts", From: "node-1", To: "node-0", State: "from-node-1"},
		{Method: "POST", Path: "/posts", From: "node-2", To: "node-0", State: "from-node-2"},
	}
	require.Len(t, replays, len(want), "replays: %+v", replays)
	for i := range want {
		got := replays[i]
		assert.NotEmpty(t, got.RequestID, "replay %d has no request ID", i)
		got.RequestID = ""
		assert.Equal(t, want[i], got, "replay %d", i)
	}
	checkReplayedHops(t, f, replays, before, after)
}

// checkReplayedHops checks that node-0 saw each replayed POST with the
// replica's request ID, the whole body and a Fly-Replay-Src naming the
// replica, sent between before and after.
func checkReplayedHops(t *testing.T, f *fleet, replays []litefstest.Replay, before, after time.Time) {
	t.Helper()
	byID := map[string][]seen{}
	for _, s := range f.seen() {
		id := s.header.Get(litefstest.HeaderRequestID)
		byID[id] = append(byID[id], s)
	}
	for _, r := range replays {
		hops := byID[r.RequestID]
		if !assert.Len(t, hops, 2, "request %s: instances saw %+v", r.RequestID, hops) {
			continue
		}
		assert.Equal(t, []string{r.From, "node-0"}, []string{hops[0].instance, hops[1].instance}, "request %s", r.RequestID)
		assert.Equal(t, hops[0].body, hops[1].body, "replay of %s: body", r.RequestID)
		assert.Equal(t, "/posts?x=1", hops[1].path, "replay of %s: path", r.RequestID)
		assert.Empty(t, hops[0].header.Get(litefstest.HeaderReplaySrc), "first hop carries %s", litefstest.HeaderReplaySrc)
		src, err := litefstest.ParseReplaySrc(hops[1].header.Get(litefstest.HeaderReplaySrc))
		require.NoError(t, err)
		assert.Equal(t, litefstest.ReplaySrc{Instance: r.From, Region: litefstest.DefaultRegion, State: "from-" + r.From, Time: src.Time}, src, "Fly-Replay-Src")
		assert.False(t, src.Time.Before(before.Truncate(time.Microsecond)) || src.Time.After(after),
			"Fly-Replay-Src t=%v, want in [%v, %v]", src.Time, before, after)
	}
}

func TestFlyProxyPicksInstance(t *testing.T) {
	t.Parallel()
	served := func(w http.ResponseWriter, r *http.Request, s seen) { fmt.Fprint(w, s.instance) }
	f := newFleet(t, []string{"a", "b", "c"}, served)
	_, fixed := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls, Target: "b"})
	_, spread := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	for _, tc := range []struct {
		name   string
		url    string
		header []string
		want   []string // bodies of successive requests
	}{
		{name: "target", url: fixed, want: []string{"b", "b", "b"}},
		{name: "round-robin", url: spread, want: []string{"a", "b", "c", "a"}},
		{name: "forced", url: spread, header: []string{litefstest.HeaderForceInstance, "c"}, want: []string{"c", "c"}},
		{name: "forced over target", url: fixed, header: []string{litefstest.HeaderForceInstance, "a"}, want: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				got := do(t, "GET", tc.url, nil, tc.header...)
				assert.Equal(t, "200 "+want, got.statusBody(), "request %d", i)
			}
		})
	}
	t.Run("forced unknown", func(t *testing.T) {
		got := do(t, "GET", spread, nil, litefstest.HeaderForceInstance, "zz")
		assert.Equal(t, http.StatusBadGateway, got.status)
		assert.Contains(t, got.body, `no instance "zz"`)
	})
}

// replayTry is one entry of [litefstest.FlyProxy.Replays] as a test
// expects it.
type replayTry struct {
	from, to string // to is anyUp where load balancing picks the instance
	failed   bool   // the try failed: Err is set
	fallback bool   // the try took back a replay that failed
}

// anyUp stands for any instance that takes connections, as the target of a
// replayTry.
const anyUp = "(any instance that is up)"

// replayCase is a fly-replay header node-1 answers with, and what follows.
type replayCase struct {
	name     string
	replay   string      // the fly-replay header node-1 answers with
	status   int         // of the response the client gets
	body     string      // substring of the response body
	tries    []replayTry // nil: not checked
	failed   string      // Fly-Replay-Failed seen by the instance that served
	prefUnav string      // Fly-Preferred-Instance-Unavailable seen likewise
}

// TestFlyProxyReplayFields sends each request to node-1, which answers it
// with the case's fly-replay header; replayed requests are answered with the
// name of the instance that serves them.
func TestFlyProxyReplayFields(t *testing.T) {
	t.Parallel()
	ghostFailed := replayTry{from: "node-1", to: "ghost", failed: true}
	backToNode1 := replayTry{from: "node-1", to: "node-1", fallback: true}
	for _, tc := range []replayCase{
		{name: "instance", replay: "instance=node-2", status: 200, body: "node-2", tries: []replayTry{{from: "node-1", to: "node-2"}}},
		{name: "unknown instance", replay: "instance=ghost", status: 502, body: `replay to instance ghost failed: no instance "ghost"`, tries: []replayTry{ghostFailed}},
		{name: "unknown instance, force_self", replay: "instance=ghost;fallback=force_self", status: 200, body: "node-1",
			tries: []replayTry{ghostFailed, backToNode1}, failed: "instance=ghost;reason=unknown_instance"},
		{name: "unknown instance, prefer_self", replay: "instance=ghost;fallback=prefer_self", status: 200, body: "node-1",
			tries: []replayTry{ghostFailed, backToNode1}, failed: "instance=ghost;reason=unknown_instance"},
		{name: "unreachable", replay: "instance=down", status: 502, body: "replay to instance down failed",
			tries: []replayTry{{from: "node-1", to: "down", failed: true}}},
		{name: "unreachable, force_self", replay: "instance=down;fallback=force_self", status: 200, body: "node-1",
			tries: []replayTry{{from: "node-1", to: "down", failed: true}, backToNode1}, failed: "instance=down;reason=unreachable"},
		{name: "connected, then failed, force_self", replay: "instance=hangup;fallback=force_self", status: 502, body: "replay to instance hangup failed",
			tries: []replayTry{{from: "node-1", to: "hangup", failed: true}}},
		{name: "prefer_instance", replay: "prefer_instance=node-2", status: 200, body: "node-2", tries: []replayTry{{from: "node-1", to: "node-2"}}},
		{name: "prefer_instance unreachable", replay: "prefer_instance=down", status: 200, body: "served by node-",
			tries: []replayTry{{from: "node-1", to: "down", failed: true}, {from: "node-1", to: anyUp}}, prefUnav: "down"},
		{name: "prefer_instance unknown, elsewhere", replay: "prefer_instance=ghost;elsewhere=true", status: 200, body: "node-", prefUnav: "ghost"},
		{name: "region local", replay: "region=local;elsewhere=true", status: 200, body: "node-"},
		{name: "region list with any", replay: `region="sjc,any";elsewhere=true`, status: 200, body: "node-"},
		{name: "region elsewhere", replay: "region=sjc", status: 502, body: "no instance matches",
			tries: []replayTry{{from: "node-1", to: "", failed: true}}},
		{name: "region elsewhere, force_self", replay: "region=sjc;fallback=force_self", status: 200, body: "node-1",
			tries: []replayTry{{from: "node-1", to: "", failed: true}, backToNode1}, failed: "reason=no_instance"},
		{name: "app", replay: "app=worker", status: 502, body: `replay to app "worker"`},
		{name: "invalid header", replay: "instance", status: 502, body: "invalid fly-replay header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkReplayCase(t, tc)
		})
	}
}

// checkReplayCase runs one case of TestFlyProxyReplayFields.
func checkReplayCase(t *testing.T, tc replayCase) {
	ids := []string{"node-1", "node-2", "node-3"}
	f := newFleet(t, ids, func(w http.ResponseWriter, r *http.Request, s seen) {
		if r.Header.Get(litefstest.HeaderReplaySrc) == "" && r.Header.Get(litefstest.HeaderReplayFailed) == "" {
			w.Header().Set(litefstest.HeaderReplay, tc.replay)
			return
		}
		fmt.Fprintf(w, "served by %s", s.instance)
	})
	f.urls["down"] = down(t)
	if strings.Contains(tc.replay, "hangup") {
		// Not among the others: load balancing would pick it.
		f.urls["hangup"] = hangup(t)
	}
	p, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls, Target: "node-1"})

	got := do(t, "POST", url, strings.NewReader("x"))
	assert.Equal(t, tc.status, got.status, "body %q", got.body)
	assert.Contains(t, got.body, tc.body)
	replays := p.Replays()
	if tc.tries != nil {
		got := triesOf(replays)
		for i := range min(len(got), len(tc.tries)) {
			if tc.tries[i].to == anyUp && slices.Contains(ids, got[i].to) {
				got[i].to = anyUp
			}
		}
		assert.Equal(t, tc.tries, got, "replays: %+v", replays)
	}
	if strings.Contains(tc.replay, "elsewhere=true") {
		// Load balancing skips "down" (refusing connections) but never
		// picks the sender.
		for i, r := range replays {
			last := i == len(replays)-1
			assert.False(t, r.To == "node-1" || (r.Err == "") != last || !last && r.To != "down",
				"elsewhere: got replays %+v, want ones to instances other than node-1, the last delivered", replays)
		}
	}
	hops := f.seen()
	last := hops[len(hops)-1]
	assert.Equal(t, tc.failed, last.header.Get(litefstest.HeaderReplayFailed), "%s at %s", litefstest.HeaderReplayFailed, last.instance)
	assert.Equal(t, tc.prefUnav, last.header.Get(litefstest.HeaderPreferredInstanceUnavailable),
		"%s at %s", litefstest.HeaderPreferredInstanceUnavailable, last.instance)
}

// triesOf returns replays as replayTry values.
func triesOf(replays []litefstest.Replay) []replayTry {
	var tries []replayTry
	for _, r := range replays {
		tries = append(tries, replayTry{from: r.From, to: r.To, failed: r.Err != "", fallback: r.Fallback})
	}
	return tries
}

func TestFlyProxySkipsRefusingInstances(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a", "b"}, func(w http.ResponseWriter, r *http.Request, s seen) { fmt.Fprint(w, s.instance) })
	f.urls["c-down"] = down(t)
	_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	for i := range 6 {
		got := do(t, "GET", url, nil)
		assert.Equal(t, 200, got.status, "GET %d: want 200 from a or b, got %q", i, got.body)
	}
	assert.Len(t, f.seen(), 6, "requests the instances saw")
}

func TestFlyProxyReplayLimit(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {
		w.Header().Set(litefstest.HeaderReplay, "instance=a")
	})
	p, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls, MaxReplays: 3})
	got := do(t, "POST", url, strings.NewReader("loop"))
	assert.Equal(t, http.StatusBadGateway, got.status)
	assert.Contains(t, got.body, "at most 3 replays")
	assert.Len(t, p.Replays(), 3)
	assert.Len(t, f.seen(), 4, "requests the instance saw")
}

func TestFlyProxyNoReplayAfterFallback(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {
		w.Header().Set(litefstest.HeaderReplay, "instance=ghost;fallback=force_self")
	})
	p, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	got := do(t, "POST", url, nil)
	assert.Equal(t, http.StatusBadGateway, got.status)
	assert.Contains(t, got.body, "cannot be replayed again")
	assert.Equal(t, []replayTry{{from: "a", to: "ghost", failed: true}, {from: "a", to: "a", fallback: true}},
		triesOf(p.Replays()), "the failed replay and its fallback")
}

func TestFlyProxyBodies(t *testing.T) {
	t.Parallel()
	const limit = litefstest.DefaultMaxReplayBody
	for _, tc := range []struct {
		name       string
		size       int
		chunked    bool
		replay     bool // the first instance asks for a replay
		wantStatus int
	}{
		{name: "empty", size: 0, replay: true, wantStatus: 201},
		{name: "small", size: 100, replay: true, wantStatus: 201},
		{name: "small chunked", size: 100, chunked: true, replay: true, wantStatus: 201},
		{name: "at the limit", size: limit, replay: true, wantStatus: 201},
		{name: "over the limit", size: limit + 1, replay: true, wantStatus: 413},
		{name: "over the limit chunked", size: limit + 1, chunked: true, replay: true, wantStatus: 413},
		{name: "over the limit, no replay", size: 3 * limit, wantStatus: 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, []string{"node-0", "node-1"}, primaryWrites)
			target := "node-0"
			if tc.replay {
				target = "node-1"
			}
			p, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls, Target: target})
			body := bytes.Repeat([]byte("b"), tc.size)
			var r io.Reader = bytes.NewReader(body)
			if tc.chunked {
				r = io.MultiReader(r) // hides the length: sent chunked
			}
			got := do(t, "POST", url, r)
			assert.Equal(t, tc.wantStatus, got.status, "body %.80q", got.body)
			for _, s := range f.seen() {
				assert.True(t, bytes.Equal(s.body, body), "%s got %d bytes, want %d", s.instance, len(s.body), len(body))
			}
			if tc.wantStatus == 413 {
				assert.Empty(t, p.Replays())
			}
		})
	}
}

// roundTripperFunc adapts a function to http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFlyProxyReplayTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		replay     string
		wantStatus int
		wantBody   string
		wantFailed string
	}{
		{replay: "instance=slow;timeout=20ms", wantStatus: 502, wantBody: "timed out connecting within 20ms"},
		{replay: "instance=slow;timeout=20ms;fallback=force_self", wantStatus: 200, wantBody: "served by a", wantFailed: "instance=slow;reason=timeout"},
	} {
		t.Run(tc.replay, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {
				if r.Header.Get(litefstest.HeaderReplayFailed) == "" {
					w.Header().Set(litefstest.HeaderReplay, tc.replay)
					return
				}
				fmt.Fprintf(w, "served by %s", s.instance)
			})
			f.urls["slow"] = "http://slow.test"
			// "slow" never connects: its round trip lasts until canceled.
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			slow := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Host == "slow.test" {
					<-r.Context().Done()
					return nil, r.Context().Err()
				}
				return tr.RoundTrip(r)
			})
			_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls, Transport: slow})
			got := do(t, "POST", url, nil)
			assert.Equal(t, tc.wantStatus, got.status, "body %q", got.body)
			assert.Contains(t, got.body, tc.wantBody)
			hops := f.seen()
			assert.Equal(t, tc.wantFailed, hops[len(hops)-1].header.Get(litefstest.HeaderReplayFailed), litefstest.HeaderReplayFailed)
		})
	}
}

// TestFlyProxyStreams checks that the client reads what the instance
// flushed while the instance still waits to write the rest.
func TestFlyProxyStreams(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {
		fmt.Fprintln(w, "first")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, "second")
	})
	_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err, "first line (was the response buffered?)")
	require.Equal(t, "first\n", line, "first line")
	close(next)
	rest, err := io.ReadAll(br)
	assert.NoError(t, err)
	assert.Equal(t, "second\n", string(rest))
}

func TestFlyProxyHeaders(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-App", "kept")
		fmt.Fprint(w, "ok")
		w.Header().Set("X-Checksum", "abc")
	})
	_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range map[string]string{
		"Connection": "X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "Proxy-Authorization": "secret",
		"Te": "trailers", "X-Client": "kept", "X-Forwarded-For": "10.0.0.1",
		litefstest.HeaderReplaySrc: "instance=forged", litefstest.HeaderReplayFailed: "forged",
		litefstest.HeaderRequestID: "forged",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	got := f.seen()[0].header
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", litefstest.HeaderReplaySrc, litefstest.HeaderReplayFailed} {
		assert.Empty(t, got.Get(k), "instance got %s", k)
	}
	for k, want := range map[string]string{
		"X-Client": "kept", "Te": "trailers", "X-Forwarded-For": "10.0.0.1, 127.0.0.1", "Fly-Client-Ip": "127.0.0.1",
		"Fly-Region": litefstest.DefaultRegion, "X-Forwarded-Proto": "http",
	} {
		assert.Equal(t, want, got.Get(k), "instance got %s", k)
	}
	id := got.Get(litefstest.HeaderRequestID)
	assert.False(t, id == "" || id == "forged", "instance got %s %q, want one set by the proxy", litefstest.HeaderRequestID, id)

	assert.Equal(t, "ok", string(body), "client got")
	assert.Equal(t, "kept", resp.Header.Get("X-App"), "client got X-App")
	for _, k := range []string{"X-Resp-Hop", "Keep-Alive"} {
		assert.Empty(t, resp.Header.Get(k), "client got %s", k)
	}
	assert.Equal(t, "abc", resp.Trailer.Get("X-Checksum"), "client got trailer X-Checksum")
}

// TestFlyProxyCancel checks that a client going away cancels the request
// at the instance.
func TestFlyProxyCancel(t *testing.T) {
	t.Parallel()
	arrived, canceled := make(chan struct{}), make(chan struct{})
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {
		close(arrived)
		<-r.Context().Done()
		close(canceled)
	})
	_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		require.Fail(t, "the instance's request context was not canceled within 10s of the client's")
	}
	assert.Error(t, <-errc, "the client's request succeeded after cancel")
}

func TestFlyProxyKeepAlive(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: map[string]string{"a": srv.URL}})
	for range 10 {
		got := do(t, "GET", url, nil)
		require.Equal(t, 200, got.status, "body %q", got.body)
	}
	assert.Equal(t, int32(1), conns.Load(), "connections the instance accepted for 10 sequential requests")
}

func TestFlyProxyConcurrent(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"node-0", "node-1", "node-2"}, primaryWrites)
	p, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Post(url, "text/plain", strings.NewReader(fmt.Sprint(i)))
			if !assert.NoError(t, err) {
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, fmt.Sprintf("201 node-0 got %d", i), fmt.Sprintf("%d %s", resp.StatusCode, b), "POST %d", i)
		})
	}
	wg.Wait()
	atPrimary := 0
	for _, s := range f.seen() {
		if s.instance == "node-0" {
			atPrimary++
		}
	}
	replays := p.Replays()
	assert.Equal(t, n, atPrimary, "POSTs the primary saw")
	assert.Len(t, replays, len(f.seen())-n, "one replay per request at a replica")
	for _, r := range replays {
		assert.Equal(t, replayTry{from: r.From, to: "node-0"}, replayTry{from: r.From, to: r.To, failed: r.Err != ""}, "replay %+v", r)
	}
}

func TestNewFlyProxyErrors(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"a": "http://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		cfg  litefstest.FlyProxyConfig
		want string
	}{
		{name: "no instances", cfg: litefstest.FlyProxyConfig{}, want: "Instances is empty"},
		{name: "empty ID", cfg: litefstest.FlyProxyConfig{Instances: map[string]string{"": "http://h"}}, want: "invalid instance ID"},
		{name: "ID with space", cfg: litefstest.FlyProxyConfig{Instances: map[string]string{"a b": "http://h"}}, want: "invalid instance ID"},
		{name: "ID with semicolon", cfg: litefstest.FlyProxyConfig{Instances: map[string]string{"a;b": "http://h"}}, want: "invalid instance ID"},
		{name: "scheme", cfg: litefstest.FlyProxyConfig{Instances: map[string]string{"a": "ftp://h"}}, want: "invalid base URL"},
		{name: "no host", cfg: litefstest.FlyProxyConfig{Instances: map[string]string{"a": "http://"}}, want: "invalid base URL"},
		{name: "query", cfg: litefstest.FlyProxyConfig{Instances: map[string]string{"a": "http://h/?q=1"}}, want: "invalid base URL"},
		{name: "garbage", cfg: litefstest.FlyProxyConfig{Instances: map[string]string{"a": "::"}}, want: "invalid base URL"},
		{name: "unknown target", cfg: litefstest.FlyProxyConfig{Instances: ok, Target: "b"}, want: "is not an instance"},
		{name: "region", cfg: litefstest.FlyProxyConfig{Instances: ok, Region: "a;b"}, want: "invalid region"},
		{name: "region of an unknown instance", cfg: litefstest.FlyProxyConfig{Instances: ok, Regions: map[string]string{"b": "ams"}}, want: "Regions: invalid instance"},
		{name: "instance region", cfg: litefstest.FlyProxyConfig{Instances: ok, Regions: map[string]string{"a": "ams,sin"}}, want: "Regions: invalid instance"},
		{name: "negative replays", cfg: litefstest.FlyProxyConfig{Instances: ok, MaxReplays: -1}, want: "must not be negative"},
		{name: "negative body", cfg: litefstest.FlyProxyConfig{Instances: ok, MaxReplayBody: -1}, want: "must not be negative"},
	} {
		p, err := litefstest.NewFlyProxy(tc.cfg)
		assert.ErrorContains(t, err, tc.want, tc.name)
		assert.Nil(t, p, tc.name)
	}
}

func TestFlyProxyBasePath(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {})
	_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: map[string]string{"a": f.urls["a"] + "/app/"}})
	do(t, "GET", url+"/posts/1?q=a%20b", nil)
	assert.Equal(t, "/app/posts/1?q=a%20b", f.seen()[0].path)
}

// TestFlyProxyRegions places instances in regions: Fly-Replay-Src names the
// region of the instance that asked for the replay, Fly-Region the proxy's
// own, and a region= replay goes to an instance of that region.
func TestFlyProxyRegions(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"node-a", "node-b", "node-c"}, func(w http.ResponseWriter, r *http.Request, s seen) {
		if s.instance == "node-b" && r.Header.Get(litefstest.HeaderReplaySrc) == "" {
			w.Header().Set(litefstest.HeaderReplay, "region=ams")
			return
		}
		fmt.Fprintf(w, "served by %s", s.instance)
	})
	p, url := startProxy(t, litefstest.FlyProxyConfig{
		Instances: f.urls, Target: "node-b", Region: "sin",
		Regions: map[string]string{"node-a": "ams", "node-b": "sin"}, // node-c: in the proxy's region
	})
	for range 3 { // round-robin would reach node-b and node-c too, but they are in sin
		got := do(t, "POST", url, nil)
		assert.Equal(t, "200 served by node-a", got.statusBody())
	}
	for _, s := range f.seen() {
		assert.Equal(t, "sin", s.header.Get("Fly-Region"), "Fly-Region at %s", s.instance)
		if s.instance != "node-a" {
			continue
		}
		src, err := litefstest.ParseReplaySrc(s.header.Get(litefstest.HeaderReplaySrc))
		require.NoError(t, err)
		assert.Equal(t, "node-b", src.Instance)
		assert.Equal(t, "sin", src.Region, "the region of node-b")
	}
	assert.Len(t, p.Replays(), 3)
}
