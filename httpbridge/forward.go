package httpbridge

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/litefs-sql/litefs"
)

// Defaults of a ForwardConfig.
const (
	// DefaultMaxForwardBody is the default ForwardConfig.MaxBody.
	DefaultMaxForwardBody = 16 << 20
	// DefaultForwardTimeout is the default ForwardConfig.Timeout, unless the
	// serving http.Server's WriteTimeout is shorter (see Timeout).
	DefaultForwardTimeout = 30 * time.Second
)

// Errors a Forwarder logs when it cannot send a request on.
var (
	errForwardTimeout = errors.New("httpbridge: the primary did not answer within ForwardConfig.Timeout")
	errForwardedSelf  = errors.New("httpbridge: the forwarded request came back to the node that sent it: ForwardConfig addresses this node as the primary")
	errNoPrimaryURL   = errors.New("httpbridge: ForwardConfig has no URL for this primary")
)

// forwardNonce marks the Fly-Replay-Src values this process's Forwarders
// add, after the hop count in state=. Only a value bearing it proves that a
// request came back to the node that forwarded it: the client can write any
// Fly-Replay-Src, and node IDs are no secret, but it cannot guess this.
var forwardNonce = rand.Text()

// ForwardConfig configures a [Forwarder]. Set exactly one of URL, Primaries
// and Resolve: they say where the primary's app is.
type ForwardConfig struct {
	// URL is the base URL of the primary's HTTP server, with "{primary}"
	// standing for the primary's ID and "{app}" for App, for example
	// "http://{primary}.vm.{app}.internal:8080" on Fly.io,
	// "http://{primary}.posts.default.svc.cluster.local:8080" for a
	// Kubernetes StatefulSet behind a headless Service, or
	// "http://{primary}:8080" for Docker Compose services or VM host names.
	// The request's path and query are appended.
	URL string
	// App replaces "{app}" in URL. Default: $FLY_APP_NAME.
	App string
	// Primaries maps each primary ID (the LiteFS hostname that .primary
	// shows) to the base URL of that node's app, for nodes whose name does
	// not resolve to their app.
	Primaries map[string]string
	// Resolve returns the base URL of the app on the node with the given
	// primary ID, for addressing that neither a template nor a fixed map
	// can express. An error makes the Forwarder answer 503.
	Resolve func(primaryID string) (string, error)

	// MaxBody bounds the copy of the request body kept while the handler
	// reads it, so the body can be re-sent; the part the handler did not
	// read is streamed and not counted. Default: DefaultMaxForwardBody.
	MaxBody int64
	// Timeout bounds the wait for the primary's response headers: past it
	// the client gets 504 Gateway Timeout. Once the primary has answered,
	// its response streams for as long as it lasts (Server-Sent Events, for
	// example), within the serving http.Server's WriteTimeout. Negative
	// means no bound. Default: DefaultForwardTimeout, or nine tenths of the
	// serving http.Server's WriteTimeout if that is shorter, so the client
	// gets the 504 before the server drops the connection.
	Timeout time.Duration
	// RetryAfter is the Retry-After sent when the request was not sent to
	// the primary at all, so the client can safely send it again. Default:
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// TrustForwarded reports whether r's X-Forwarded-For, X-Forwarded-Host
	// and X-Forwarded-Proto headers were set by a proxy you trust (the
	// load balancer, or Fly's edge) rather than by the client. When it is
	// nil or false, the primary gets what httputil.ReverseProxy's
	// SetXForwarded sets: the peer's address as X-Forwarded-For, the
	// request's Host and whether this hop used TLS; the client's own values
	// are dropped. When true, the client chain is kept ahead of the peer's
	// address, and X-Forwarded-Host and -Proto pass through. See
	// [TrustPeers].
	TrustForwarded func(r *http.Request) bool

	// Transport sends the forwarded request. Default: http.DefaultTransport.
	Transport http.RoundTripper
	// Logger reports failures to reach the primary. Default: slog.Default().
	Logger *slog.Logger
}

// A Forwarder sends refused requests to the primary itself, through
// httputil.ReverseProxy, for deployments without Fly's proxy or for bodies
// too large for fly-replay. It is a [Replayer]; use it as Config.Replay to
// forward every refused request, or as Config.Forward for large bodies only.
//
// While a Forwarder is configured, the bridge keeps a copy of each request
// body the handler reads, up to MaxBody bytes: forwarding costs memory on
// every request with a body, refused or not.
//
// A forwarded request carries Fly-Replay-Src with this node's ID and the hop
// count, as a request replayed by Fly would, added to those it arrived with,
// so the bridge on the receiving node applies the same loop rules and never
// sends it back to any node it passed through. A request that comes back to
// the node that sent it (the configured address of the primary is this node)
// gets 503 and an Error log record naming the misconfiguration. "Came back"
// is proved by a random nonce, drawn once per process, that the Forwarder
// puts in the state= of the value it adds: a client that forges a value
// naming this node cannot make it look misconfigured; its value counts as
// one more hop, like any other.
//
// When the primary cannot be reached the client gets 502 Bad Gateway; when
// it does not answer within ForwardConfig.Timeout, 504 Gateway Timeout.
// Either carries Retry-After only when nothing of the request was sent: the
// client still holds the body and can send it again, and the write did not
// happen. Without Retry-After the outcome is unknown to this node.
type Forwarder struct {
	resolve        func(primary string) (*url.URL, error)
	maxBody        int64
	timeout        time.Duration // 0: no bound
	defaultTimeout bool          // capped by the server's WriteTimeout
	retryAfter     string        // whole seconds
	trust          func(*http.Request) bool
	transport      http.RoundTripper
	log            *slog.Logger
}

// NewForwarder validates c and returns a Forwarder.
func NewForwarder(c ForwardConfig) (*Forwarder, error) {
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxForwardBody
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBody < 0 {
		return nil, fmt.Errorf("httpbridge: ForwardConfig.MaxBody is negative (%d)", c.MaxBody)
	}
	if c.RetryAfter < 0 {
		return nil, fmt.Errorf("httpbridge: ForwardConfig.RetryAfter is negative (%v)", c.RetryAfter)
	}
	resolve, err := c.resolver()
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		resolve:    resolve,
		maxBody:    c.MaxBody,
		timeout:    max(c.Timeout, 0),
		retryAfter: strconv.FormatInt(int64((c.RetryAfter+time.Second-1)/time.Second), 10),
		trust:      c.TrustForwarded,
		transport:  c.Transport,
		log:        c.Logger,
	}
	if c.Timeout == 0 {
		f.timeout, f.defaultTimeout = DefaultForwardTimeout, true
	}
	return f, nil
}

// resolver returns the function from primary ID to base URL that c
// describes, checking it as far as it can be checked before a request.
func (c ForwardConfig) resolver() (func(string) (*url.URL, error), error) {
	set := 0
	for _, ok := range []bool{c.URL != "", c.Primaries != nil, c.Resolve != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("httpbridge: ForwardConfig: set exactly one of URL, Primaries and Resolve")
	}
	switch {
	case c.URL != "":
		return c.template()
	case c.Resolve != nil:
		return func(id string) (*url.URL, error) {
			raw, err := c.Resolve(id)
			if err != nil {
				return nil, err
			}
			return parseBase(raw)
		}, nil
	}
	urls := make(map[string]*url.URL, len(c.Primaries))
	for id, raw := range c.Primaries {
		u, err := parseBase(raw)
		if err != nil || !litefs.ValidPrimaryID(id) {
			return nil, fmt.Errorf("httpbridge: ForwardConfig.Primaries[%q] = %q: want a hostname-like ID and an http or https URL: %v", id, raw, err)
		}
		urls[id] = u
	}
	return func(id string) (*url.URL, error) {
		if u, ok := urls[id]; ok {
			return u, nil
		}
		return nil, fmt.Errorf("%w (%q)", errNoPrimaryURL, id)
	}, nil
}

// template checks c.URL and returns the resolver that fills it in.
func (c ForwardConfig) template() (func(string) (*url.URL, error), error) {
	if c.App == "" {
		c.App = os.Getenv("FLY_APP_NAME")
	}
	tmpl := c.URL
	if strings.Contains(tmpl, "{app}") {
		if !litefs.ValidPrimaryID(c.App) {
			return nil, fmt.Errorf("httpbridge: ForwardConfig.URL %q uses {app}, but App (or $FLY_APP_NAME) is %q, not a valid name", c.URL, c.App)
		}
		tmpl = strings.ReplaceAll(tmpl, "{app}", c.App)
	}
	prefix, suffix, ok := strings.Cut(tmpl, "{primary}")
	if !ok || strings.Contains(suffix, "{primary}") {
		return nil, fmt.Errorf("httpbridge: ForwardConfig.URL %q must contain {primary} once", c.URL)
	}
	resolve := func(id string) (*url.URL, error) { return parseBase(prefix + id + suffix) }
	if u, err := resolve("node-1"); err != nil || !strings.Contains(u.Host, "node-1") {
		return nil, fmt.Errorf("httpbridge: ForwardConfig.URL %q must be an http or https URL with {primary} in its host", c.URL)
	}
	return resolve, nil
}

// parseBase parses the base URL of a node's app.
func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("httpbridge: %q is not an http or https base URL", raw)
	}
	return u, nil
}

// TrustPeers returns a ForwardConfig.TrustForwarded that trusts requests
// whose immediate peer (r.RemoteAddr) is in one of networks ("10.0.0.0/8",
// "fdaa::/16"): the addresses your load balancer connects from.
func TrustPeers(networks ...string) (func(r *http.Request) bool, error) {
	prefixes := make([]netip.Prefix, 0, len(networks))
	for _, s := range networks {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("httpbridge: TrustPeers: %w", err)
		}
		prefixes = append(prefixes, p.Masked())
	}
	return func(r *http.Request) bool {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return false
		}
		addr := ap.Addr().Unmap()
		for _, p := range prefixes {
			if p.Contains(addr) {
				return true
			}
		}
		return false
	}, nil
}

// Replay forwards r to d.Primary and copies the primary's response to w.
func (f *Forwarder) Replay(w http.ResponseWriter, r *http.Request, d Decision) {
	if forwardedBySelf(r.Header, d.Self) {
		f.fail(w, d, errForwardedSelf, http.StatusServiceUnavailable, true)
		return
	}
	if !litefs.ValidPrimaryID(d.Primary) {
		f.fail(w, d, fmt.Errorf("%w (%q)", errNoPrimaryURL, d.Primary), http.StatusServiceUnavailable, true)
		return
	}
	target, err := f.resolve(d.Primary)
	if err != nil {
		f.fail(w, d, err, http.StatusServiceUnavailable, true)
		return
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	// Nothing was sent only if the transport asked for a connection and
	// wrote no headers, or failed to dial: after that the primary may have
	// run the request, and a retry may repeat it. A transport that reports
	// neither counts as having sent it.
	var asked, sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { asked.Store(true) },
		WroteHeaders: func() { sent.Store(true) },
	})
	if timeout := f.timeoutFor(r); timeout > 0 {
		// The timer is stopped when the response headers arrive: a stream
		// is bounded by the server's WriteTimeout, not by this.
		timer := time.AfterFunc(timeout, func() { cancel(errForwardTimeout) })
		defer timer.Stop()
		ctx = context.WithValue(ctx, forwardTimerKey{}, timer)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:        f.rewrite(target, d),
		Transport:      f.transport,
		ModifyResponse: answered,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusBadGateway
			if cause := context.Cause(r.Context()); errors.Is(cause, errForwardTimeout) {
				status, err = http.StatusGatewayTimeout, cause
			}
			var op *net.OpError
			unsent := asked.Load() && !sent.Load() || errors.As(err, &op) && op.Op == "dial"
			f.fail(w, d, err, status, unsent)
		},
	}
	rp.ServeHTTP(w, r.WithContext(ctx))
}

// forwardedBySelf reports whether h carries a Fly-Replay-Src value that a
// Forwarder of this process added as instance self: one with forwardNonce.
func forwardedBySelf(h http.Header, self string) bool {
	for _, v := range h[HeaderReplaySrc] {
		if src := parseReplaySource(v); self != "" && src.instance == self && src.nonce == forwardNonce {
			return true
		}
	}
	return false
}

type forwardTimerKey struct{}

// answered stops the timeout once the primary's response headers are in; a
// timer that already fired fails the response, as its context is ending.
func answered(resp *http.Response) error {
	if t, ok := resp.Request.Context().Value(forwardTimerKey{}).(*time.Timer); ok && !t.Stop() {
		return errForwardTimeout
	}
	return nil
}

// timeoutFor returns the bound on waiting for the primary's answer to r.
func (f *Forwarder) timeoutFor(r *http.Request) time.Duration {
	if !f.defaultTimeout {
		return f.timeout
	}
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.WriteTimeout > 0 {
		return min(f.timeout, srv.WriteTimeout*9/10)
	}
	return f.timeout
}

// rewrite returns the ReverseProxy.Rewrite sending a request to target.
func (f *Forwarder) rewrite(target *url.URL, d Decision) func(*httputil.ProxyRequest) {
	src := "instance=" + d.Self + ";state=" + hopsPrefix + strconv.Itoa(d.Hops+1) + "." + forwardNonce
	return func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // the app may route or build links on Host
		trusted := f.trust != nil && f.trust(pr.In)
		if trusted {
			// Rewrite has removed them from Out; SetXForwarded appends the
			// peer to the chain the trusted proxy passed on.
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
		}
		pr.SetXForwarded()
		if trusted {
			for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
				if v := pr.In.Header.Get(h); v != "" {
					pr.Out.Header.Set(h, v)
				}
			}
		}
		// Added to those the request came with, so that no node on its
		// path is sent it again.
		pr.Out.Header.Add(HeaderReplaySrc, src)
	}
}

// fail answers a request that did not reach the primary, or got no answer.
// retry says nothing was sent, so the client may safely send it again.
func (f *Forwarder) fail(w http.ResponseWriter, d Decision, err error, status int, retry bool) {
	level := slog.LevelWarn
	switch {
	case errors.Is(err, errForwardedSelf) || errors.Is(err, errNoPrimaryURL):
		level = slog.LevelError // a configuration error, not a passing failure
	case errors.Is(err, context.Canceled):
		level = slog.LevelDebug // the client went away: nothing failed here
	}
	f.log.Log(context.Background(), level, "litefs: forwarding a write to the primary failed",
		"primary", d.Primary, "self", d.Self, "status", status, "sent", !retry, "error", err)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if retry {
		h.Set("Retry-After", f.retryAfter)
	}
	msg := "litefs: the primary (" + d.Primary + ") could not be reached; nothing was sent to it, retry later"
	switch {
	case status == http.StatusGatewayTimeout && retry:
		msg = "litefs: the primary (" + d.Primary + ") could not be reached in time; nothing was sent to it, retry later"
	case status == http.StatusGatewayTimeout:
		msg = "litefs: the primary (" + d.Primary + ") did not answer in time; the write may or may not have happened"
	case status == http.StatusServiceUnavailable:
		msg = "litefs: this request writes to the database and the primary's address is not configured here; retry later"
	case !retry:
		msg = "litefs: the connection to the primary (" + d.Primary + ") failed; the write may or may not have happened"
	}
	http.Error(w, msg, status)
}
