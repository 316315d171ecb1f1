package httpbridge

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
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
			if got, want := w.Code, tc.wantStatus; got != want {
				t.Errorf("status: got %v, want %v", got, want)
			}
			if tc.wantStatus == http.StatusRequestEntityTooLarge {
				if got, want := w.Body.String(), "over 1000000 bytes"; !strings.Contains(got, want) {
					t.Errorf("body: got %q, want it to name the limit (%q)", got, want)
				}
				if got := w.Header().Get("Fly-Replay"); got != "" {
					t.Errorf("Fly-Replay: got %q, want none", got)
				}
				if got, want := ev.only(t).Reason, ReasonTooLarge; got != want {
					t.Errorf("reason: got %v, want %v", got, want)
				}
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

func (p *primary) dialed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.dial...)
}

func (p *primary) only(t *testing.T) primaryRequest {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.reqs) != 1 {
		t.Fatalf("primary got %d requests, want 1", len(p.reqs))
	}
	return p.reqs[0]
}

func newForwarder(t *testing.T, c ForwardConfig) *Forwarder {
	t.Helper()
	f, err := NewForwarder(c)
	if err != nil {
		t.Fatalf("NewForwarder: %v", err)
	}
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
			if got, want := w.Code, http.StatusCreated; got != want {
				t.Errorf("status: got %v, want %v", got, want)
			}
			if got, want := w.Body.String(), "written on the primary"; got != want {
				t.Errorf("body: got %q, want %q", got, want)
			}
			got := p.only(t)
			if len(got.body) != len(big) || string(got.body) != big {
				t.Errorf("primary got a body of %d bytes, want the %d sent", len(got.body), len(big))
			}
			if got.path != "/upload?x=1" || got.host != "example.com" || got.src != "instance=self;state=litefs-hops:1" {
				t.Errorf("primary got path %q host %q Fly-Replay-Src %q", got.path, got.host, got.src)
			}
			if got, want := p.dialed(), []string{"node-a.vm.blog.internal:8080"}; len(got) != 1 || got[0] != want[0] {
				t.Errorf("dialed %v, want %v", got, want)
			}
			if e := ev.only(t); e.Verdict != Forward || e.Reason != ReasonTooLarge {
				t.Errorf("event: got %v/%v, want forward/too large", e.Verdict, e.Reason)
			}
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
	if got, want := w.Code, http.StatusRequestEntityTooLarge; got != want {
		t.Errorf("status: got %v, want %v", got, want)
	}
	if got := p.dialed(); len(got) != 0 {
		t.Errorf("dialed %v, want nothing", got)
	}
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
	if got, want := w.Code, http.StatusCreated; got != want {
		t.Errorf("status: got %v, want %v", got, want)
	}
	if got := p.only(t); string(got.body) != body {
		t.Errorf("primary got %d bytes, want %d", len(got.body), len(body))
	}
	if got, want := p.dialed(), "node-a.internal:80"; len(got) != 1 || got[0] != want {
		t.Errorf("dialed %v, want %v", got, want)
	}
}

func TestForwarderUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	b := newBridge(t, Config{Replay: newForwarder(t, ForwardConfig{URL: "http://{primary}", Transport: tr, Logger: discardLogger()})})
	w := serve(b.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(t, r, notPrimary("node-a"))
	})), httptest.NewRequest(http.MethodPost, "/", nil))
	if got, want := w.Code, http.StatusBadGateway; got != want {
		t.Errorf("status: got %v, want %v", got, want)
	}
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
	if got, want := w.Code, http.StatusServiceUnavailable; got != want {
		t.Errorf("status: got %v, want %v", got, want)
	}
	if e := evB.only(t); e.Reason != ReasonLoop || e.Hops != 1 {
		t.Errorf("node-b event: got %v after %d hops, want loop after 1", e.Reason, e.Hops)
	}
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewForwarder(tc.c); (err == nil) != tc.ok {
				t.Errorf("got %v, want ok %v", err, tc.ok)
			}
		})
	}
}
