package litefstest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// Balancer stands in for a plain load balancer (nginx, Caddy, a Kubernetes
// Service) in front of several instances of an app: each request goes to the
// next instance, round-robin in the order given, and the response comes
// back as the instance wrote it. Unlike [FlyProxy] it does not follow
// fly-replay: a fly-replay response reaches the client as it is, so an app
// behind it must forward writes to the primary itself.
//
// It sets X-Forwarded-For, -Host and -Proto as httputil.ReverseProxy's
// SetXForwarded does, replacing what the client sent, streams responses as
// the instance flushes them, and answers 502 when an instance cannot be
// reached; it has no health checks. A Balancer is safe for concurrent use.
type Balancer struct {
	targets []*url.URL
	proxy   *httputil.ReverseProxy
	next    atomic.Uint64 // index of the next request; its instance is next % len(targets)

	mu     sync.Mutex
	served []int // the instance index of each request, in arrival order
}

// NewBalancer returns a Balancer over the apps at the given base URLs, such
// as "http://127.0.0.1:8081", or an error if there are none or one is not
// an http URL.
func NewBalancer(urls ...string) (*Balancer, error) {
	if len(urls) == 0 {
		return nil, errors.New("litefstest: NewBalancer: no instances")
	}
	b := &Balancer{}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("litefstest: NewBalancer: %q is not an http base URL", raw)
		}
		b.targets = append(b.targets, u)
	}
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(balancerTarget{}).(*url.URL))
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     &http.Transport{Proxy: nil, DisableCompression: true},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "litefstest: balancer: "+err.Error(), http.StatusBadGateway)
		},
	}
	return b, nil
}

type balancerTarget struct{}

// ServeHTTP sends r to the next instance.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int((b.next.Add(1) - 1) % uint64(len(b.targets)))
	b.mu.Lock()
	b.served = append(b.served, i)
	b.mu.Unlock()
	ctx := r.Context()
	b.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, balancerTarget{}, b.targets[i])))
}

// Next returns the index, in the order given to NewBalancer, of the instance
// the next request will go to, so a test can aim a request at an instance
// when it sends requests one at a time.
func (b *Balancer) Next() int { return int(b.next.Load() % uint64(len(b.targets))) }

// Served returns, for each request so far, the index of the instance it was
// sent to.
func (b *Balancer) Served() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.served)
}

// Start serves b on a new loopback port until the test ends and returns its
// base URL.
func (b *Balancer) Start(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(b)
	tb.Cleanup(func() {
		srv.Close()
		b.proxy.Transport.(*http.Transport).CloseIdleConnections()
	})
	return srv.URL
}
