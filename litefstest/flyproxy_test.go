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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
			if err != nil {
				t.Errorf("%s: read body: %v", id, err)
			}
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
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	return p, p.Start(t)
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, body io.Reader, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
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
		if got := do(t, "POST", url+"/posts?x=1", strings.NewReader(body)); got.status != 201 || got.body != "node-0 got "+body {
			t.Errorf("POST %d: got %d %q, want 201 from node-0", i, got.status, got.body)
		}
	}
	after := time.Now()
	for i := range 3 {
		if got := do(t, "GET", url+"/posts", nil); got.status != 201 || got.body != fmt.Sprintf("node-%d got ", i) {
			t.Errorf("GET %d: got %d %q, want node-%d (round-robin)", i, got.status, got.body, i)
		}
	}

	replays := p.Replays()
	want := []litefstest.Replay{
		{Method: "POST", Path: "/posts", From: "node-1", To: "node-0", State: "from-node-1"},
		{Method: "POST", Path: "/posts", From: "node-2", To: "node-0", State: "from-node-2"},
	}
	if len(replays) != len(want) {
		t.Fatalf("replays: got %+v, want %+v", replays, want)
	}
	for i := range want {
		got := replays[i]
		if got.RequestID == "" {
			t.Errorf("replay %d has no request ID", i)
		}
		got.RequestID = ""
		if got != want[i] {
			t.Errorf("replay %d: got %+v, want %+v", i, got, want[i])
		}
	}

	// node-0 saw each replayed POST with the replica's request ID, the whole
	// body and a Fly-Replay-Src naming the replica.
	byID := map[string][]seen{}
	for _, s := range f.seen() {
		id := s.header.Get(litefstest.HeaderRequestID)
		byID[id] = append(byID[id], s)
	}
	for _, r := range replays {
		hops := byID[r.RequestID]
		if len(hops) != 2 || hops[0].instance != r.From || hops[1].instance != "node-0" {
			t.Errorf("request %s: instances saw %+v, want %s then node-0", r.RequestID, hops, r.From)
			continue
		}
		if !bytes.Equal(hops[0].body, hops[1].body) || hops[1].path != "/posts?x=1" {
			t.Errorf("replay of %s: body %q path %q, want body %q path /posts?x=1", r.RequestID, hops[1].body, hops[1].path, hops[0].body)
		}
		if hops[0].header.Get(litefstest.HeaderReplaySrc) != "" {
			t.Errorf("first hop carries %s", litefstest.HeaderReplaySrc)
		}
		src, err := litefstest.ParseReplaySrc(hops[1].header.Get(litefstest.HeaderReplaySrc))
		if err != nil {
			t.Fatal(err)
		}
		if src.Instance != r.From || src.Region != litefstest.DefaultRegion || src.State != "from-"+r.From ||
			src.Time.Before(before.Truncate(time.Microsecond)) || src.Time.After(after) {
			t.Errorf("Fly-Replay-Src: got %+v, want instance %s, region %s, state from-%s, t in [%v, %v]",
				src, r.From, litefstest.DefaultRegion, r.From, before, after)
		}
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
		{"target", fixed, nil, []string{"b", "b", "b"}},
		{"round-robin", spread, nil, []string{"a", "b", "c", "a"}},
		{"forced", spread, []string{litefstest.HeaderForceInstance, "c"}, []string{"c", "c"}},
		{"forced over target", fixed, []string{litefstest.HeaderForceInstance, "a"}, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				if got := do(t, "GET", tc.url, nil, tc.header...); got.status != 200 || got.body != want {
					t.Errorf("request %d: got %d %q, want 200 %q", i, got.status, got.body, want)
				}
			}
		})
	}
	t.Run("forced unknown", func(t *testing.T) {
		got := do(t, "GET", spread, nil, litefstest.HeaderForceInstance, "zz")
		if got.status != http.StatusBadGateway || !strings.Contains(got.body, `no instance "zz"`) {
			t.Errorf("got %d %q, want 502 naming zz", got.status, got.body)
		}
	})
}

// TestFlyProxyReplayFields sends each request to node-1, which answers it
// with the case's fly-replay header; replayed requests are answered with the
// name of the instance that serves them.
func TestFlyProxyReplayFields(t *testing.T) {
	t.Parallel()
	type want struct {
		status   int
		body     string   // substring of the response body
		replays  []string // From>To, "!" if failed, " fallback"; each a prefix
		failed   string   // Fly-Replay-Failed seen by the instance that served
		prefUnav string   // Fly-Preferred-Instance-Unavailable seen likewise
	}
	for _, tc := range []struct {
		name   string
		replay string
		want   want
	}{
		{"instance", "instance=node-2", want{200, "node-2", []string{"node-1>node-2"}, "", ""}},
		{"unknown instance", "instance=ghost", want{502, `replay to instance ghost failed: no instance "ghost"`, []string{"node-1>ghost!"}, "", ""}},
		{"unknown instance, force_self", "instance=ghost;fallback=force_self",
			want{200, "node-1", []string{"node-1>ghost!", "node-1>node-1 fallback"}, "instance=ghost;reason=unknown_instance", ""}},
		{"unknown instance, prefer_self", "instance=ghost;fallback=prefer_self",
			want{200, "node-1", []string{"node-1>ghost!", "node-1>node-1 fallback"}, "instance=ghost;reason=unknown_instance", ""}},
		{"unreachable", "instance=down", want{502, "replay to instance down failed", []string{"node-1>down!"}, "", ""}},
		{"unreachable, force_self", "instance=down;fallback=force_self",
			want{200, "node-1", []string{"node-1>down!", "node-1>node-1 fallback"}, "instance=down;reason=unreachable", ""}},
		{"connected, then failed, force_self", "instance=hangup;fallback=force_self", want{502, "replay to instance hangup failed", []string{"node-1>hangup!"}, "", ""}},
		{"prefer_instance", "prefer_instance=node-2", want{200, "node-2", []string{"node-1>node-2"}, "", ""}},
		{"prefer_instance unreachable", "prefer_instance=down", want{200, "served by node-", []string{"node-1>down!", "node-1>node-"}, "", "down"}},
		{"prefer_instance unknown, elsewhere", "prefer_instance=ghost;elsewhere=true", want{200, "node-", nil, "", "ghost"}},
		{"region local", "region=local;elsewhere=true", want{200, "node-", nil, "", ""}},
		{"region list with any", `region="sjc,any";elsewhere=true`, want{200, "node-", nil, "", ""}},
		{"region elsewhere", "region=sjc", want{502, "no instance matches", []string{"node-1>!"}, "", ""}},
		{"region elsewhere, force_self", "region=sjc;fallback=force_self",
			want{200, "node-1", []string{"node-1>!", "node-1>node-1 fallback"}, "reason=no_instance", ""}},
		{"app", "app=worker", want{502, `replay to app "worker"`, nil, "", ""}},
		{"invalid header", "instance", want{502, "invalid fly-replay header", nil, "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, []string{"node-1", "node-2", "node-3"}, func(w http.ResponseWriter, r *http.Request, s seen) {
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
			if got.status != tc.want.status || !strings.Contains(got.body, tc.want.body) {
				t.Errorf("got %d %q, want %d and a body containing %q", got.status, got.body, tc.want.status, tc.want.body)
			}
			replays := p.Replays()
			if tc.want.replays != nil {
				var summary []string
				for _, r := range replays {
					s := r.From + ">" + r.To
					if r.Err != "" {
						s += "!"
					}
					if r.Fallback {
						s += " fallback"
					}
					summary = append(summary, s)
				}
				match := len(summary) == len(tc.want.replays)
				for i := 0; match && i < len(summary); i++ {
					match = strings.HasPrefix(summary[i], tc.want.replays[i])
				}
				if !match {
					t.Errorf("replays: got %v, want %v (%+v)", summary, tc.want.replays, replays)
				}
			}
			if strings.Contains(tc.replay, "elsewhere=true") {
				// Load balancing skips "down" (refusing connections) but
				// never picks the sender.
				for i, r := range replays {
					last := i == len(replays)-1
					if r.To == "node-1" || (r.Err == "") != last || !last && r.To != "down" {
						t.Errorf("elsewhere: got replays %+v, want ones to instances other than node-1, the last delivered", replays)
						break
					}
				}
			}
			hops := f.seen()
			last := hops[len(hops)-1]
			if got := last.header.Get(litefstest.HeaderReplayFailed); got != tc.want.failed {
				t.Errorf("%s at %s: got %q, want %q", litefstest.HeaderReplayFailed, last.instance, got, tc.want.failed)
			}
			if got := last.header.Get(litefstest.HeaderPreferredInstanceUnavailable); got != tc.want.prefUnav {
				t.Errorf("%s at %s: got %q, want %q", litefstest.HeaderPreferredInstanceUnavailable, last.instance, got, tc.want.prefUnav)
			}
		})
	}
}

func TestFlyProxySkipsRefusingInstances(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a", "b"}, func(w http.ResponseWriter, r *http.Request, s seen) { fmt.Fprint(w, s.instance) })
	f.urls["c-down"] = down(t)
	_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	for i := range 6 {
		if got := do(t, "GET", url, nil); got.status != 200 {
			t.Errorf("GET %d: got %d %q, want 200 from a or b", i, got.status, got.body)
		}
	}
	if n := len(f.seen()); n != 6 {
		t.Errorf("instances saw %d requests, want 6", n)
	}
}

func TestFlyProxyReplayLimit(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {
		w.Header().Set(litefstest.HeaderReplay, "instance=a")
	})
	p, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls, MaxReplays: 3})
	got := do(t, "POST", url, strings.NewReader("loop"))
	if got.status != http.StatusBadGateway || !strings.Contains(got.body, "at most 3 replays") {
		t.Errorf("got %d %q, want 502 about the replay limit", got.status, got.body)
	}
	if n := len(p.Replays()); n != 3 {
		t.Errorf("got %d replays, want 3", n)
	}
	if n := len(f.seen()); n != 4 {
		t.Errorf("instance saw %d requests, want 4", n)
	}
}

func TestFlyProxyNoReplayAfterFallback(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {
		w.Header().Set(litefstest.HeaderReplay, "instance=ghost;fallback=force_self")
	})
	p, url := startProxy(t, litefstest.FlyProxyConfig{Instances: f.urls})
	got := do(t, "POST", url, nil)
	if got.status != http.StatusBadGateway || !strings.Contains(got.body, "cannot be replayed again") {
		t.Errorf("got %d %q, want 502: no replay after a fallback", got.status, got.body)
	}
	if n := len(p.Replays()); n != 2 {
		t.Errorf("got replays %+v, want the failed one and its fallback", p.Replays())
	}
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
		{"empty", 0, false, true, 201},
		{"small", 100, false, true, 201},
		{"small chunked", 100, true, true, 201},
		{"at the limit", limit, false, true, 201},
		{"over the limit", limit + 1, false, true, 413},
		{"over the limit chunked", limit + 1, true, true, 413},
		{"over the limit, no replay", 3 * limit, false, false, 201},
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
			if got.status != tc.wantStatus {
				t.Errorf("got %d %.80q, want %d", got.status, got.body, tc.wantStatus)
			}
			for _, s := range f.seen() {
				if !bytes.Equal(s.body, body) {
					t.Errorf("%s got %d bytes, want %d", s.instance, len(s.body), len(body))
				}
			}
			if tc.wantStatus == 413 && len(p.Replays()) != 0 {
				t.Errorf("replays: got %+v, want none", p.Replays())
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
		{"instance=slow;timeout=20ms", 502, "timed out connecting within 20ms", ""},
		{"instance=slow;timeout=20ms;fallback=force_self", 200, "served by a", "instance=slow;reason=timeout"},
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
			if got.status != tc.wantStatus || !strings.Contains(got.body, tc.wantBody) {
				t.Errorf("got %d %q, want %d %q", got.status, got.body, tc.wantStatus, tc.wantBody)
			}
			hops := f.seen()
			if got := hops[len(hops)-1].header.Get(litefstest.HeaderReplayFailed); got != tc.wantFailed {
				t.Errorf("%s: got %q, want %q", litefstest.HeaderReplayFailed, got, tc.wantFailed)
			}
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
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line: got %q, %v (was the response buffered?)", line, err)
	}
	close(next)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second\n" {
		t.Errorf("rest: got %q, %v; want %q", rest, err, "second\n")
	}
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
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	got := f.seen()[0].header
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", litefstest.HeaderReplaySrc, litefstest.HeaderReplayFailed} {
		if v := got.Get(k); v != "" {
			t.Errorf("instance got %s: %q, want none", k, v)
		}
	}
	for k, want := range map[string]string{
		"X-Client": "kept", "Te": "trailers", "X-Forwarded-For": "10.0.0.1, 127.0.0.1", "Fly-Client-Ip": "127.0.0.1",
		"Fly-Region": litefstest.DefaultRegion, "X-Forwarded-Proto": "http",
	} {
		if v := got.Get(k); v != want {
			t.Errorf("instance got %s: %q, want %q", k, v, want)
		}
	}
	if id := got.Get(litefstest.HeaderRequestID); id == "" || id == "forged" {
		t.Errorf("instance got %s %q, want one set by the proxy", litefstest.HeaderRequestID, id)
	}

	if string(body) != "ok" || resp.Header.Get("X-App") != "kept" {
		t.Errorf("client got %q, X-App %q", body, resp.Header.Get("X-App"))
	}
	for _, k := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("client got %s: %q, want none", k, v)
		}
	}
	if v := resp.Trailer.Get("X-Checksum"); v != "abc" {
		t.Errorf("client got trailer X-Checksum %q, want abc", v)
	}
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
		t.Fatal("the instance's request context was not canceled within 10s of the client's")
	}
	if err := <-errc; err == nil {
		t.Error("the client's request succeeded after cancel")
	}
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
		if got := do(t, "GET", url, nil); got.status != 200 {
			t.Fatalf("got %d %q", got.status, got.body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("instance accepted %d connections for 10 sequential requests, want 1", n)
	}
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
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 || string(b) != fmt.Sprintf("node-0 got %d", i) {
				t.Errorf("POST %d: got %d %q", i, resp.StatusCode, b)
			}
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
	if atPrimary != n || len(replays) != len(f.seen())-n {
		t.Errorf("primary saw %d POSTs, want %d; %d replays for %d requests at replicas", atPrimary, n, len(replays), len(f.seen())-n)
	}
	for _, r := range replays {
		if r.To != "node-0" || r.Err != "" {
			t.Errorf("replay %+v, want one to node-0", r)
		}
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
		{"no instances", litefstest.FlyProxyConfig{}, "Instances is empty"},
		{"empty ID", litefstest.FlyProxyConfig{Instances: map[string]string{"": "http://h"}}, "invalid instance ID"},
		{"ID with space", litefstest.FlyProxyConfig{Instances: map[string]string{"a b": "http://h"}}, "invalid instance ID"},
		{"ID with semicolon", litefstest.FlyProxyConfig{Instances: map[string]string{"a;b": "http://h"}}, "invalid instance ID"},
		{"scheme", litefstest.FlyProxyConfig{Instances: map[string]string{"a": "ftp://h"}}, "invalid base URL"},
		{"no host", litefstest.FlyProxyConfig{Instances: map[string]string{"a": "http://"}}, "invalid base URL"},
		{"query", litefstest.FlyProxyConfig{Instances: map[string]string{"a": "http://h/?q=1"}}, "invalid base URL"},
		{"garbage", litefstest.FlyProxyConfig{Instances: map[string]string{"a": "::"}}, "invalid base URL"},
		{"unknown target", litefstest.FlyProxyConfig{Instances: ok, Target: "b"}, "is not an instance"},
		{"region", litefstest.FlyProxyConfig{Instances: ok, Region: "a;b"}, "invalid region"},
		{"negative replays", litefstest.FlyProxyConfig{Instances: ok, MaxReplays: -1}, "must not be negative"},
		{"negative body", litefstest.FlyProxyConfig{Instances: ok, MaxReplayBody: -1}, "must not be negative"},
	} {
		p, err := litefstest.NewFlyProxy(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, %v; want an error containing %q", tc.name, p, err, tc.want)
		}
	}
}

func TestFlyProxyBasePath(t *testing.T) {
	t.Parallel()
	f := newFleet(t, []string{"a"}, func(w http.ResponseWriter, r *http.Request, s seen) {})
	_, url := startProxy(t, litefstest.FlyProxyConfig{Instances: map[string]string{"a": f.urls["a"] + "/app/"}})
	do(t, "GET", url+"/posts/1?q=a%20b", nil)
	if got := f.seen()[0].path; got != "/app/posts/1?q=a%20b" {
		t.Errorf("instance got %q, want /app/posts/1?q=a%%20b", got)
	}
}
