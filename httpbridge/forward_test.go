package httpbridge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// chunked hides a body's length, as a chunked request's body is unknown.
func chunked(r *http.Request) *http.Request {
	r.ContentLength = -1
	return r
}

func TestLargeBodies(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", DefaultMaxReplayBody+1)
	atLimit := strings.Repeat("x", DefaultMaxReplayBody)
	tests := []struct {
		name       string
		req        func() *http.Request
		read       int64 // bytes the handler reads before the refusal
		wantStatus int
	}{
		{"Content-Length over the limit", func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/", strings.NewReader(big))
		}, 0, http.StatusRequestEntityTooLarge},
		{"unknown length over the limit, unread", func() *http.Request {
			return chunked(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(big)))
		}, 0, http.StatusRequestEntityTooLarge},
		{"unknown length over the limit, read whole", func() *http.Request {
			return chunked(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(big)))
		}, int64(len(big)), http.StatusRequestEntityTooLarge},
		{"unknown length at the limit, partly read", func() *http.Request {
			return chunked(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(atLimit)))
		}, 10, http.StatusConflict},
		{"unknown length, small", func() *http.Request {
			return chunked(httptest.NewRequest(http.MethodPost, "/", strings.NewReader("title=x")))
		}, 3, http.StatusConflict},
		{"unknown length, body fails", func() *http.Request {
			return chunked(httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader("ab"), errReader{})))
		}, 0, http.StatusRequestEntityTooLarge},
		{"unknown length, body never progresses", func() *http.Request {
			return chunked(httptest.NewRequest(http.MethodPost, "/", stuckReader{}))
		}, 0, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			b := newBridge(t, Config{OnEvent: ev.add})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.CopyN(io.Discard, r.Body, tc.read)
				refuse(t, r, notPrimary("node-a"))
			}))
			w := serve(h, tc.req())
			assert.Equal(t, tc.wantStatus, w.Code, "status")
			if tc.wantStatus == http.StatusRequestEntityTooLarge {
				assert.Contains(t, w.Body.String(), "over 1000000 bytes", "the body names the limit")
				assert.Empty(t, w.Header().Get("Fly-Replay"), "Fly-Replay")
				assert.Equal(t, ReasonTooLarge, ev.only(t).Reason, "reason")
			}
		})
	}
}

// stuckReader returns no bytes and no error, forever.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// primary is a test server standing for the primary node's app. It records
// the requests it gets.
type primary struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []primaryRequest
	dial []string
}

type primaryRequest struct {
	host, path, src string
	body            []byte
}

func newPrimary(t *testing.T, h http.Handler) *primary {
	t.Helper()
	p := &primary{}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "written on the primary")
		})
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.reqs = append(p.reqs, primaryRequest{r.Host, r.URL.RequestURI(), r.Header.Get("Fly-Replay-Src"), body})
		p.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// transport dials the primary whatever host the URL names.
func (p *primary) transport() http.RoundTripper {
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		p.mu.Lock()
		p.dial = append(p.dial, addr)
		p.mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, "tcp", p.srv.Listener.Addr().String())
	}}
}

// httpTransport is transport without its keep-alive connections, which
// would hide later dials.
func (p *primary) httpTransport() http.RoundTripper {
	tr := p.transport().(*http.Transport)
	tr.DisableKeepAlives = true
	return tr
}

func (p *primary) dialed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.dial...)
}

func (p *primary) only(t *testing.T) primaryRequest {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.Len(t, p.reqs, 1, "requests the primary got")
	return p.reqs[0]
}

func newForwarder(t *testing.T, c ForwardConfig) *Forwarder {
	t.Helper()
	f, err := NewForwarder(c)
	require.NoError(t, err, "NewForwarder")
	return f
}

func TestForwardLargeBody(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789", 200_000) // 2 MB
	tests := []struct {
		name string
		req  func() *http.Request
		read int64
	}{
		{"known length, partly read", func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/upload?x=1", strings.NewReader(big))
		}, 100},
		{"known length, unread", func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/upload?x=1", strings.NewReader(big))
		}, 0},
		{"unknown length, read whole", func() *http.Request {
			return chunked(httptest.NewRequest(http.MethodPost, "/upload?x=1", strings.NewReader(big)))
		}, int64(len(big))},
		{"unknown length, partly read", func() *http.Request {
			return chunked(httptest.NewRequest(http.MethodPost, "/upload?x=1", strings.NewReader(big)))
		}, 12345},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPrimary(t, nil)
			var ev events
			b := newBridge(t, Config{
				OnEvent: ev.add,
				Forward: newForwarder(t, ForwardConfig{URL: "http://{primary}.vm.{app}.internal:8080", App: "blog", Transport: p.transport()}),
			})
			h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.CopyN(io.Discard, r.Body, tc.read)
				refuse(t, r, notPrimary("node-a"))
				http.Error(w, "nope", http.StatusInternalServerError)
			}))
			w := serve(h, tc.req())
			assert.Equal(t, http.StatusCreated, w.Code, "status")
			assert.Equal(t, "written on the primary", w.Body.String(), "body")
			got := p.only(t)
			assert.Len(t, got.body, len(big), "the primary got the whole body")
			assert.True(t, string(got.body) == big, "the primary got the body sent")
			assert.Equal(t, "/upload?x=1", got.path, "path")
			assert.Equal(t, "example.com", got.host, "host")
			assert.Equal(t, "instance=self;state=litefs-hops:1."+forwardNonce, got.src, "Fly-Replay-Src")
			assert.Equal(t, []string{"node-a.vm.blog.internal:8080"}, p.dialed(), "dialed")
			e := ev.only(t)
			assert.Equal(t, Forward, e.Verdict, "verdict")
			assert.Equal(t, ReasonTooLarge, e.Reason, "reason")
		})
	}
}

func TestForwardBodyCopyBound(t *testing.T) {
	t.Parallel()
	p := newPrimary(t, nil)
	b := newBridge(t, Config{
		Forward: newForwarder(t, ForwardConfig{URL: "http://{primary}:8080", MaxBody: 1_500_000, Transport: p.transport()}),
	})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // more than the copy can hold
		refuse(t, r, notPrimary("node-a"))
	}))
	w := serve(h, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 2_000_000))))
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code, "status")
	assert.Empty(t, p.dialed(), "dialed")
}

func TestForwarderAsReplay(t *testing.T) {
	t.Parallel()
	p := newPrimary(t, nil)
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}.internal", Transport: p.transport()})})
	h := b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 3)
		io.ReadFull(r.Body, buf)
		refuse(t, r, notPrimary("node-a"))
	}))
	// Over fly-replay's limit, but a Forwarder has its own bound.
	body := strings.Repeat("y", DefaultMaxReplayBody+10)
	w := serve(h, httptest.NewRequest(http.MethodPut, "/posts/1", strings.NewReader(body)))
	assert.Equal(t, http.StatusCreated, w.Code, "status")
	got := p.only(t)
	assert.True(t, string(got.body) == body, "the primary got %d bytes, want %d", len(got.body), len(body))
	assert.Equal(t, []string{"node-a.internal:80"}, p.dialed(), "dialed")
}

func TestForwarderUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}", Transport: tr, Logger: discardLogger()})})
	w := serve(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
	})), httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusBadGateway, w.Code, "status")
}

// TestForwardLoop runs two bridges: node-a forwards to node-b, which refuses
// too, naming node-a. node-b must not send the request back.
func TestForwardLoop(t *testing.T) {
	t.Parallel()
	var evB events
	var bridgeB *Bridge
	p := newPrimary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bridgeB.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			refuse(t, r, notPrimary("node-a"))
		})).ServeHTTP(w, r)
	}))
	bridgeB = newBridge(t, Config{InstanceID: "node-b", OnEvent: evB.add,
		Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}", Transport: p.transport()})})
	bridgeA := newBridge(t, Config{InstanceID: "node-a",
		Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}", Transport: p.transport()})})
	w := serve(bridgeA.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-b"))
	})), httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "status")
	e := evB.only(t)
	assert.Equal(t, ReasonLoop, e.Reason, "node-b's reason")
	assert.Equal(t, 1, e.Hops, "node-b's hops")
}

func TestNewForwarderValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    ForwardConfig
		ok   bool
	}{
		{"host template", ForwardConfig{URL: "http://{primary}.vm.{app}.internal:8080", App: "blog"}, true},
		{"https", ForwardConfig{URL: "https://{primary}.example"}, true},
		{"no {primary}", ForwardConfig{URL: "http://primary.internal"}, false},
		{"{primary} twice", ForwardConfig{URL: "http://{primary}/{primary}"}, false},
		{"{primary} outside the host", ForwardConfig{URL: "http://host/{primary}"}, false},
		{"{app} without an app", ForwardConfig{URL: "http://{primary}.{app}", App: "bad app"}, false},
		{"not http", ForwardConfig{URL: "ftp://{primary}"}, false},
		{"no scheme", ForwardConfig{URL: "{primary}:8080"}, false},
		{"negative MaxBody", ForwardConfig{URL: "http://{primary}", MaxBody: -1}, false},
		{"empty", ForwardConfig{}, false},
		{"map", ForwardConfig{Primaries: map[string]string{"node-a": "http://10.0.0.5:8080"}}, true},
		{"empty map", ForwardConfig{Primaries: map[string]string{}}, true},
		{"map with a bad URL", ForwardConfig{Primaries: map[string]string{"node-a": "10.0.0.5:8080"}}, false},
		{"map with a query", ForwardConfig{Primaries: map[string]string{"node-a": "http://a?x=1"}}, false},
		{"map with a bad ID", ForwardConfig{Primaries: map[string]string{"no de": "http://a"}}, false},
		{"func", ForwardConfig{Resolve: func(string) (string, error) { return "http://a", nil }}, true},
		{"URL and map", ForwardConfig{URL: "http://{primary}", Primaries: map[string]string{}}, false},
		{"map and func", ForwardConfig{Primaries: map[string]string{}, Resolve: func(string) (string, error) { return "", nil }}, false},
		{"negative RetryAfter", ForwardConfig{URL: "http://{primary}", RetryAfter: -time.Second}, false},
		{"negative Timeout: no bound", ForwardConfig{URL: "http://{primary}", Timeout: -1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewForwarder(tc.c)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// refusingHandler refuses every write, naming primary.
func refusingHandler(t *testing.T, primary string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary(primary))
	})
}

// logBuffer is a slog.Logger writing text records to a buffer.
type logBuffer struct{ litefstest.SyncBuffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestForwarderTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	p := newPrimary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a primary that never answers
		case <-r.Context().Done():
		case <-release:
		}
	}))
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{
		URL: "http://{primary}", Transport: p.transport(), Timeout: 50 * time.Millisecond, Logger: discardLogger(),
	})})
	w := serve(b.Handler(refusingHandler(t, "node-a")), httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")))
	assert.Equal(t, http.StatusGatewayTimeout, w.Code)
	assert.Empty(t, w.Header().Get("Retry-After"), "the request was sent: a retry could repeat it")
	assert.Contains(t, w.Body.String(), "may or may not have happened")
}

// A response whose headers came in time streams past the timeout.
func TestForwarderTimeoutSparesStreams(t *testing.T) {
	t.Parallel()
	const timeout = 20 * time.Millisecond
	p := newPrimary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		<-time.After(5 * timeout) // past the timeout: the stream must go on
		io.WriteString(w, "data: two\n\n")
	}))
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{
		URL: "http://{primary}", Transport: p.transport(), Timeout: timeout, Logger: discardLogger(),
	})})
	w := serve(b.Handler(refusingHandler(t, "node-a")), httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "data: one\n\ndata: two\n\n", w.Body.String())
}

func TestForwarderTimeoutDefault(t *testing.T) {
	t.Parallel()
	f := newForwarder(t, ForwardConfig{URL: "http://{primary}"})
	withServer := func(wt time.Duration) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		return r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, &http.Server{WriteTimeout: wt}))
	}
	assert.Equal(t, DefaultForwardTimeout, f.timeoutFor(httptest.NewRequest(http.MethodPost, "/", nil)))
	assert.Equal(t, DefaultForwardTimeout, f.timeoutFor(withServer(0)))
	assert.Equal(t, DefaultForwardTimeout, f.timeoutFor(withServer(time.Minute)))
	assert.Equal(t, 9*time.Second, f.timeoutFor(withServer(10*time.Second)))
	set := newForwarder(t, ForwardConfig{URL: "http://{primary}", Timeout: time.Minute})
	assert.Equal(t, time.Minute, set.timeoutFor(withServer(10*time.Second)), "a Timeout set is kept")
	none := newForwarder(t, ForwardConfig{URL: "http://{primary}", Timeout: -1})
	assert.Zero(t, none.timeoutFor(withServer(10*time.Second)))
}

func TestForwarderXForwarded(t *testing.T) {
	t.Parallel()
	trustTestNet, err := TrustPeers("192.0.2.0/24") // httptest's RemoteAddr
	require.NoError(t, err)
	trustOther, err := TrustPeers("10.0.0.0/8", "fdaa::/16")
	require.NoError(t, err)
	tests := []struct {
		name               string
		trust              func(*http.Request) bool
		wantFor, wantProto string
		wantHost           string
	}{
		{name: "no trust", trust: nil, wantFor: "192.0.2.1", wantProto: "http", wantHost: "example.com"},
		{name: "peer not trusted", trust: trustOther, wantFor: "192.0.2.1", wantProto: "http", wantHost: "example.com"},
		{name: "peer trusted", trust: trustTestNet, wantFor: "203.0.113.7, 192.0.2.1", wantProto: "https", wantHost: "blog.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got http.Header
			p := newPrimary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
			b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{
				URL: "http://{primary}", Transport: p.transport(), TrustForwarded: tc.trust,
			})})
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
			r.Header.Set("X-Forwarded-For", "203.0.113.7")
			r.Header.Set("X-Forwarded-Proto", "https")
			r.Header.Set("X-Forwarded-Host", "blog.example")
			serve(b.Handler(refusingHandler(t, "node-a")), r)
			require.NotNil(t, got, "the primary got no request")
			assert.Equal(t, tc.wantFor, got.Get("X-Forwarded-For"))
			assert.Equal(t, tc.wantProto, got.Get("X-Forwarded-Proto"))
			assert.Equal(t, tc.wantHost, got.Get("X-Forwarded-Host"))
		})
	}
}

func TestTrustPeersRejectsBadNetworks(t *testing.T) {
	t.Parallel()
	_, err := TrustPeers("10.0.0.0/8", "not a network")
	assert.ErrorContains(t, err, "httpbridge: TrustPeers")
	trust, err := TrustPeers("::1/128")
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for addr, want := range map[string]bool{"[::1]:80": true, "127.0.0.1:80": false, "garbage": false, "": false} {
		r.RemoteAddr = addr
		assert.Equal(t, want, trust(r), addr)
	}
}

func TestForwarderAddressing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		c          ForwardConfig
		primary    string
		wantStatus int
		wantDial   string
	}{
		{name: "template", c: ForwardConfig{URL: "http://{primary}.posts.default.svc.cluster.local:8080"},
			primary: "posts-0", wantStatus: http.StatusCreated, wantDial: "posts-0.posts.default.svc.cluster.local:8080"},
		{name: "map", c: ForwardConfig{Primaries: map[string]string{"node-a": "http://10.0.0.5:8080/"}},
			primary: "node-a", wantStatus: http.StatusCreated, wantDial: "10.0.0.5:8080"},
		{name: "map without the primary", c: ForwardConfig{Primaries: map[string]string{"node-a": "http://10.0.0.5:8080"}},
			primary: "node-b", wantStatus: http.StatusServiceUnavailable},
		{name: "func", c: ForwardConfig{Resolve: func(id string) (string, error) { return "http://" + id + ".vms.example", nil }},
			primary: "node-a", wantStatus: http.StatusCreated, wantDial: "node-a.vms.example:80"},
		{name: "func fails", c: ForwardConfig{Resolve: func(id string) (string, error) { return "", errors.New("no such node") }},
			primary: "node-a", wantStatus: http.StatusServiceUnavailable},
		{name: "func returns a bad URL", c: ForwardConfig{Resolve: func(id string) (string, error) { return "ftp://x", nil }},
			primary: "node-a", wantStatus: http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPrimary(t, nil)
			tc.c.Transport, tc.c.Logger = p.httpTransport(), discardLogger()
			b := newBridge(t, Config{Replay: newForwarder(t, tc.c)})
			w := serve(b.Handler(refusingHandler(t, tc.primary)), httptest.NewRequest(http.MethodPost, "/", nil))
			assert.Equal(t, tc.wantStatus, w.Code)
			if tc.wantDial == "" {
				assert.Empty(t, p.dialed())
				assert.Equal(t, "1", w.Header().Get("Retry-After"))
				return
			}
			assert.Equal(t, []string{tc.wantDial}, p.dialed())
		})
	}
}

// TestForwardToSelf: an address that reaches the sending node itself is
// caught on the first return, answered 503 and logged as a configuration
// error, instead of going round until the hop limit.
func TestForwardToSelf(t *testing.T) {
	t.Parallel()
	var log logBuffer
	var hits atomic.Int32
	var self *httptest.Server
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, self.Listener.Addr().String())
	}}
	t.Cleanup(tr.CloseIdleConnections)
	b := newBridge(t, Config{InstanceID: "node-b", MaxHops: 5,
		Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}:8080", Transport: tr, Logger: log.logger()})})
	h := b.Handler(refusingHandler(t, "node-a"))
	self = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(self.Close)
	res, err := http.Post(self.URL, "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "1", res.Header.Get("Retry-After"))
	assert.Equal(t, int32(2), hits.Load(), "the client's request and one forwarded copy")
	assert.Contains(t, log.String(), "level=ERROR")
	assert.Contains(t, log.String(), "addresses this node as the primary")
}

// TestForwardForgedSelfSrc: a client that sends a Fly-Replay-Src naming the
// node it talks to (node IDs are no secret), with no nonce or a wrong one,
// is forwarded as one more hop: no 503, no false misconfiguration alarm.
func TestForwardForgedSelfSrc(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
	}{
		{name: "no state", src: "instance=node-b"},
		{name: "hops, no nonce", src: "instance=node-b;state=litefs-hops:1"},
		{name: "a wrong nonce", src: "instance=node-b;state=litefs-hops:1.AAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{name: "an empty nonce", src: "instance=node-b;state=litefs-hops:1."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var srcs []string
			p := newPrimary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				srcs = r.Header.Values(HeaderReplaySrc) // read once the response is in
				w.WriteHeader(http.StatusCreated)
			}))
			var log logBuffer
			b := newBridge(t, Config{InstanceID: "node-b", MaxHops: 5,
				Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}:8080", Transport: p.transport(), Logger: log.logger()})})
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
			r.Header.Set(HeaderReplaySrc, tc.src)
			w := serve(b.Handler(refusingHandler(t, "node-a")), r)
			assert.Equal(t, http.StatusCreated, w.Code, "status")
			assert.NotContains(t, log.String(), "level=ERROR")
			assert.Equal(t, []string{tc.src, "instance=node-b;state=litefs-hops:2." + forwardNonce}, srcs, "Fly-Replay-Src on the primary")
		})
	}
}

// TestForwardChainNeverBack: with room for more hops, a request is never
// sent back to any node it passed through, not only its last sender.
func TestForwardChainNeverBack(t *testing.T) {
	t.Parallel()
	nodes := map[string]*httptest.Server{}
	var mu sync.Mutex
	var seen []string
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return (&net.Dialer{}).DialContext(ctx, network, nodes[host].Listener.Addr().String())
	}}
	t.Cleanup(tr.CloseIdleConnections)
	// node-a thinks node-b is primary, node-b node-c, node-c node-a.
	for id, primary := range map[string]string{"node-a": "node-b", "node-b": "node-c", "node-c": "node-a"} {
		b := newBridge(t, Config{InstanceID: id, MaxHops: 5,
			Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}", Transport: tr, Logger: discardLogger()})})
		h := b.Handler(refusingHandler(t, primary))
		nodes[id] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, id)
			mu.Unlock()
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(nodes[id].Close)
	}
	res, err := http.Post(nodes["node-a"].URL, "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"node-a", "node-b", "node-c"}, seen)
}

func TestForwarderUnreachableSaysRetry(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}", Transport: tr, Logger: discardLogger()})})
	w := serve(b.Handler(refusingHandler(t, "node-a")), httptest.NewRequest(http.MethodPost, "/", strings.NewReader("body")))
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.Equal(t, "1", w.Header().Get("Retry-After"), "nothing was sent: the client may send it again")
	assert.Contains(t, w.Body.String(), "nothing was sent")
}

// A transport that reports nothing of what it sent leaves the outcome
// unknown: no Retry-After.
func TestForwarderOpaqueTransportFailure(t *testing.T) {
	t.Parallel()
	tr := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("sent, then lost") })
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}", Transport: tr, Logger: discardLogger()})})
	w := serve(b.Handler(refusingHandler(t, "node-a")), httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")))
	assert.Equal(t, http.StatusBadGateway, w.Code)
	assert.Empty(t, w.Header().Get("Retry-After"))
	assert.Contains(t, w.Body.String(), "may or may not have happened")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzForwardTemplate: any URL template is accepted or refused without a
// panic, and an accepted one puts the primary's ID in the host.
func FuzzForwardTemplate(f *testing.F) {
	for _, s := range []string{"http://{primary}:8080", "https://{primary}.{app}.internal", "http://{primary}/{primary}",
		"http://host/{primary}", "{primary}", "http://[{primary}]", "http://{primary}@host", "http://x{primary}y:1/p?q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		fw, err := NewForwarder(ForwardConfig{URL: tmpl, App: "blog"})
		if err != nil {
			return
		}
		u, err := fw.resolve("node-7")
		if err != nil {
			return // an ID can still make a bad URL; Replay answers 503
		}
		assert.Contains(t, u.Host, "node-7")
		assert.Contains(t, []string{"http", "https"}, u.Scheme)
	})
}

// A client that leaves while the primary works is no failure to warn of.
func TestForwarderClientGone(t *testing.T) {
	t.Parallel()
	var log logBuffer
	reached := make(chan struct{})
	p := newPrimary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(reached)
		<-r.Context().Done()
	}))
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}", Transport: p.transport(), Logger: log.logger()})})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-reached
		cancel()
	}()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")).WithContext(ctx)
	serve(b.Handler(refusingHandler(t, "node-a")), r)
	assert.Contains(t, log.String(), "level=DEBUG")
	assert.NotContains(t, log.String(), "level=WARN")
}
