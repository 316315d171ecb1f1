package litefstest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litefs-sql/litefs/internal/flyreplay"
)

// Defaults of [FlyProxyConfig].
const (
	// DefaultMaxReplayBody is the largest request body that can be replayed:
	// Fly.io documents that requests larger than "1 MB" cannot be, without
	// saying which megabyte; the smaller reading keeps tests strict.
	DefaultMaxReplayBody = 1_000_000
	// DefaultMaxReplays is how many replays one request may go through.
	// Fly.io bounds replay chains but does not document the bound.
	DefaultMaxReplays = 5
	// DefaultRegion is the region of every instance behind a FlyProxy.
	DefaultRegion = "local"
)

// FlyProxyConfig configures a [FlyProxy]. Zero fields take the Default…
// values.
type FlyProxyConfig struct {
	// Instances maps each instance ID (with LiteFS, the node's hostname, as
	// in .primary) to the base URL of that instance's app, such as
	// "http://127.0.0.1:8081". Required.
	Instances map[string]string
	// Target is the instance every request reaches first. Empty: requests
	// are spread over the instances round-robin, in ID order. A request's
	// Fly-Force-Instance-Id header overrides both.
	Target string
	// Region is the region all instances are in, reported in Fly-Replay-Src.
	Region string
	// MaxReplays bounds the replays of one request; past it the proxy answers
	// 502.
	MaxReplays int
	// MaxReplayBody is the largest request body buffered for replays; a
	// request with a larger body is streamed to its first instance and
	// cannot be replayed (the proxy answers 413 if it is asked to).
	MaxReplayBody int64
	// Transport sends requests to the instances. Nil: a new keep-alive
	// http.Transport that uses no HTTP proxy and leaves bodies compressed.
	Transport http.RoundTripper
}

// FlyProxy is a stand-in for Fly.io's proxy in front of several instances of
// an app: an http.Handler that forwards each request to an instance and, when
// the response carries a fly-replay header, discards that response and sends
// the request again where the header says, with a Fly-Replay-Src header.
//
// It follows instance=, prefer_instance=, region= (its own region or "any"),
// elsewhere=, state=, timeout= and fallback= (a replay that cannot reach
// its target goes back to its sender with a Fly-Replay-Failed header). It does not do app= replays,
// the JSON replay body, replay caching, or WebSocket upgrades. Responses
// are streamed, flushed as the instance writes them.
//
// What it replays is recorded; see [FlyProxy.Replays]. A FlyProxy is safe
// for concurrent use.
type FlyProxy struct {
	ids        []string // sorted
	urls       map[string]*url.URL
	target     string
	region     string
	maxReplays int
	maxBody    int64
	transport  http.RoundTripper

	next atomic.Uint64 // round-robin position

	mu      sync.Mutex
	replays []Replay
}

// Replay records one replay the proxy performed or tried.
type Replay struct {
	RequestID string // the Fly-Request-Id of the request; shared by its replays
	Method    string
	Path      string
	From      string // the instance that answered with fly-replay
	To        string // the instance the request was sent to
	State     string // the state= field of the fly-replay header
	// Fallback is true when To is the sender (or, with prefer_self, another
	// instance) taking back a replay that failed.
	Fallback bool
	// Err says why the request could not be delivered to To; "" if To
	// answered.
	Err string
}

// NewFlyProxy returns a FlyProxy for cfg, or an error if cfg is invalid.
func NewFlyProxy(cfg FlyProxyConfig) (*FlyProxy, error) {
	p := &FlyProxy{
		urls:       make(map[string]*url.URL, len(cfg.Instances)),
		target:     cfg.Target,
		region:     cmp.Or(cfg.Region, DefaultRegion),
		maxReplays: cmp.Or(cfg.MaxReplays, DefaultMaxReplays),
		maxBody:    cmp.Or(cfg.MaxReplayBody, DefaultMaxReplayBody),
		transport:  cfg.Transport,
	}
	if len(cfg.Instances) == 0 {
		return nil, errors.New("litefstest: FlyProxyConfig.Instances is empty")
	}
	for id, raw := range cfg.Instances {
		if !validID(id) {
			return nil, fmt.Errorf("litefstest: invalid instance ID %q: want letters, digits and -_.:/+@!*~%%=", id)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("litefstest: instance %s: invalid base URL %q: want http(s)://host[:port][/path]", id, raw)
		}
		p.urls[id] = u
		p.ids = append(p.ids, id)
	}
	slices.Sort(p.ids)
	if p.target != "" && p.urls[p.target] == nil {
		return nil, fmt.Errorf("litefstest: FlyProxyConfig.Target %q is not an instance", p.target)
	}
	if !validID(p.region) {
		return nil, fmt.Errorf("litefstest: invalid region %q", p.region)
	}
	if p.maxReplays < 0 || p.maxBody < 0 {
		return nil, errors.New("litefstest: FlyProxyConfig.MaxReplays and MaxReplayBody must not be negative")
	}
	if p.transport == nil {
		p.transport = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			// The app's bytes go to the client as they are.
			DisableCompression: true,
		}
	}
	return p, nil
}

func validID(id string) bool {
	if id == "" || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isPlainByte(id[i]) || id[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Start serves p on a new loopback port until the test ends and returns its
// base URL.
func (p *FlyProxy) Start(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(p)
	tb.Cleanup(func() {
		srv.Close()
		p.CloseIdleConnections()
	})
	return srv.URL
}

// CloseIdleConnections closes the transport's idle connections to the
// instances, if the transport can.
func (p *FlyProxy) CloseIdleConnections() {
	if t, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Replays returns a copy of the replays performed so far, in order.
func (p *FlyProxy) Replays() []Replay {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.replays)
}

func (p *FlyProxy) record(r Replay) {
	p.mu.Lock()
	p.replays = append(p.replays, r)
	p.mu.Unlock()
}

// hop is one delivery of a request to an instance.
type hop struct {
	to         string
	alternates []string      // load-balanced: where to go if to refuses the connection
	src        *ReplaySrc    // nil on the first hop
	replay     *ReplayHeader // the header that sent the request here; nil on the first hop
	failed     string        // Fly-Replay-Failed value on a fallback hop
	prefUna    string        // Fly-Preferred-Instance-Unavailable value
}

var (
	// errReplayTimeout cancels a replay that did not connect within its
	// timeout=.
	errReplayTimeout = errors.New("timed out connecting")
	// errNoInstance reports a replay target that is not an instance.
	errNoInstance = errors.New("no instance")
)

// ServeHTTP forwards r to an instance and follows the replays that the
// responses ask for, up to the configured bound; it answers 502 for a replay
// it cannot deliver (unless the replay asked for a fallback) and 413 for one
// whose request body was too large to keep.
func (p *FlyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := rand.Text() + "-" + p.region
	body, replayable, err := p.bufferBody(r)
	if err != nil {
		proxyError(w, http.StatusBadRequest, "cannot read the request body: %v", err)
		return
	}
	first, alternates, err := p.pick(r)
	if err != nil {
		proxyError(w, http.StatusBadGateway, "%v", err)
		return
	}
	h := hop{to: first, alternates: alternates}
	for replays := 0; ; {
		resp, cancel, err := p.send(r, h, reqID, body, replayable)
		if err != nil && len(h.alternates) > 0 && replayable && isDialError(err) && r.Context().Err() == nil {
			// Fly balances over the instances that take connections.
			if h.replay != nil {
				p.record(p.entry(r, reqID, h, err.Error()))
				if h.to == h.replay.PreferInstance {
					h.prefUna = h.to
				}
			}
			h.to, h.alternates = h.alternates[0], h.alternates[1:]
			continue
		}
		switch {
		case err == nil:
			if h.replay != nil {
				p.record(p.entry(r, reqID, h, ""))
			}
		case r.Context().Err() != nil:
			return // the client is gone
		case h.replay == nil:
			proxyError(w, http.StatusBadGateway, "instance %s: %v", h.to, err)
			return
		default:
			p.record(p.entry(r, reqID, h, err.Error()))
			// Fly falls back only when it could not connect: once the
			// target has the request, its fate is the target's.
			if h.replay.Fallback == "" || !notConnected(err) {
				proxyError(w, http.StatusBadGateway, "replay to instance %s failed: %v", h.to, err)
				return
			}
			h, resp, cancel, err = p.fallBack(w, r, reqID, h, body, err)
			if err != nil {
				return
			}
		}
		value := resp.Header.Get(HeaderReplay)
		if value == "" {
			p.copyResponse(w, resp)
			cancel()
			return
		}
		discard(resp)
		cancel()
		from := h.to
		if h.failed != "" {
			proxyError(w, http.StatusBadGateway, "instance %s asked for a replay of a request that came back from a failed replay; it cannot be replayed again", from)
			return
		}
		rh, err := ParseReplayHeader(value)
		if err != nil {
			proxyError(w, http.StatusBadGateway, "instance %s: %v", from, err)
			return
		}
		if !replayable {
			proxyError(w, http.StatusRequestEntityTooLarge, "instance %s asked for a replay, but the request body is larger than %d bytes and cannot be replayed", from, p.maxBody)
			return
		}
		if replays++; replays > p.maxReplays {
			proxyError(w, http.StatusBadGateway, "instance %s asked for replay number %d; at most %d replays per request", from, replays, p.maxReplays)
			return
		}
		if rh.App != "" {
			proxyError(w, http.StatusBadGateway, "instance %s asked for a replay to app %q: this stand-in serves one app", from, rh.App)
			return
		}
		h = hop{
			src:    &ReplaySrc{Instance: from, Region: p.region, Time: time.Now(), State: rh.State},
			replay: &rh,
		}
		h.to, h.alternates, h.prefUna = p.resolve(rh, from)
	}
}

// fallBack sends a request whose replay failed back to the replay's sender
// (with prefer_self, to any instance that connects, the sender first), with a
// Fly-Replay-Failed header, and returns the hop that answered. On failure it
// has answered the client.
func (p *FlyProxy) fallBack(w http.ResponseWriter, r *http.Request, reqID string, failed hop, body []byte, cause error) (hop, *http.Response, context.CancelFunc, error) {
	from := failed.src.Instance
	candidates := []string{from}
	if failed.replay.Fallback == FallbackPreferSelf {
		for _, id := range p.ids {
			if id != from {
				candidates = append(candidates, id)
			}
		}
	}
	reason := "unreachable"
	switch {
	case failed.to == "":
		reason = "no_instance"
	case p.urls[failed.to] == nil:
		reason = "unknown_instance"
	case errors.Is(cause, errReplayTimeout):
		reason = "timeout"
	}
	failedValue := "reason=" + reason
	if failed.to != "" {
		failedValue = "instance=" + quoteValue(failed.to) + ";" + failedValue
	}
	var err error
	for _, id := range candidates {
		h := hop{to: id, failed: failedValue}
		var resp *http.Response
		var cancel context.CancelFunc
		resp, cancel, err = p.send(r, h, reqID, body, true)
		e := p.entry(r, reqID, h, "")
		e.From, e.State, e.Fallback = from, failed.replay.State, true
		if err == nil {
			p.record(e)
			return h, resp, cancel, nil
		}
		if r.Context().Err() != nil {
			return h, nil, nil, err
		}
		e.Err = err.Error()
		p.record(e)
		if !notConnected(err) {
			break
		}
	}
	proxyError(w, http.StatusBadGateway, "replay to instance %s failed (%s), and so did its fallback: %v", failed.to, reason, err)
	return hop{}, nil, nil, err
}

func (p *FlyProxy) entry(r *http.Request, reqID string, h hop, errText string) Replay {
	e := Replay{RequestID: reqID, Method: r.Method, Path: r.URL.Path, To: h.to, Err: errText}
	if h.src != nil {
		e.From, e.State = h.src.Instance, h.src.State
	}
	return e
}

// pick returns the instance r goes to first and, when it was chosen by load
// balancing, the others to try in turn if it refuses the connection.
func (p *FlyProxy) pick(r *http.Request) (first string, alternates []string, err error) {
	if id := r.Header.Get(HeaderForceInstance); id != "" {
		if p.urls[id] == nil {
			return "", nil, fmt.Errorf("%s: no instance %q", HeaderForceInstance, id)
		}
		return id, nil, nil
	}
	if p.target != "" {
		return p.target, nil, nil
	}
	order := p.balance("")
	return order[0], order[1:], nil
}

// resolve returns the instance a replay goes to ("" or an unknown ID when
// there is none; send reports it), the instances to try in turn if that one
// refuses the connection, and the prefer_instance target if it is unknown.
func (p *FlyProxy) resolve(rh ReplayHeader, from string) (to string, alternates []string, preferUnavailable string) {
	if rh.Instance != "" {
		return rh.Instance, nil, ""
	}
	exclude := ""
	if rh.Elsewhere {
		exclude = from
	}
	if rh.PreferInstance != "" {
		if p.urls[rh.PreferInstance] != nil && rh.PreferInstance != exclude {
			return rh.PreferInstance, slices.DeleteFunc(p.balance(exclude), func(id string) bool { return id == rh.PreferInstance }), ""
		}
		preferUnavailable = rh.PreferInstance
	}
	if rh.Region != "" && !p.inRegion(rh.Region) {
		return "", nil, preferUnavailable
	}
	order := p.balance(exclude)
	if len(order) == 0 {
		return "", nil, preferUnavailable
	}
	return order[0], order[1:], preferUnavailable
}

// balance returns the instances but exclude in round-robin order: each call
// starts one instance further.
func (p *FlyProxy) balance(exclude string) []string {
	n := uint64(len(p.ids))
	start := p.next.Add(1) - 1
	order := make([]string, 0, n)
	for i := range n {
		if id := p.ids[(start+i)%n]; id != exclude {
			order = append(order, id)
		}
	}
	return order
}

// inRegion reports whether the comma-separated region list names the
// proxy's region or "any".
func (p *FlyProxy) inRegion(list string) bool {
	for r := range strings.SplitSeq(list, ",") {
		r = strings.TrimSpace(r)
		if r == p.region || r == "any" {
			return true
		}
	}
	return false
}

// bufferBody reads up to maxBody bytes of r's body. replayable is false when
// the body is larger; the rest stays unread in r.Body.
func (p *FlyProxy) bufferBody(r *http.Request) (body []byte, replayable bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true, nil
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, p.maxBody+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > p.maxBody {
		return body, false, nil
	}
	return body, true, nil
}

// send delivers r to h.to and returns the response and the function that
// releases its context once the body has been read.
func (p *FlyProxy) send(r *http.Request, h hop, reqID string, body []byte, replayable bool) (*http.Response, context.CancelFunc, error) {
	base := p.urls[h.to]
	if base == nil {
		if h.to == "" {
			return nil, nil, fmt.Errorf("%w matches", errNoInstance)
		}
		return nil, nil, fmt.Errorf("%w %q", errNoInstance, h.to)
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	var timer *time.Timer
	if h.replay != nil && h.replay.Timeout > 0 {
		// Fly's timeout bounds reaching the target, not the request: once
		// connected, the request runs to its end.
		timer = time.AfterFunc(h.replay.Timeout, func() { cancel(errReplayTimeout) })
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(httptrace.GotConnInfo) { timer.Stop() },
		})
	}
	release := func() {
		if timer != nil {
			timer.Stop()
		}
		cancel(nil)
	}

	out := r.Clone(ctx)
	out.RequestURI = ""
	out.URL = &url.URL{
		Scheme:   base.Scheme,
		Host:     base.Host,
		Path:     joinPath(base.Path, r.URL.Path),
		RawQuery: r.URL.RawQuery,
	}
	out.Close = false
	switch {
	case !replayable:
		out.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
		out.ContentLength = r.ContentLength
		out.GetBody = nil
	case len(body) == 0:
		out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
	default:
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	out.TransferEncoding = nil
	out.Trailer = nil

	hdr := out.Header
	removeHopByHop(hdr)
	if strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Te"), ",")), "trailers") {
		hdr.Set("Te", "trailers")
	}
	// Clients must not forge what only the proxy may say.
	for _, k := range []string{HeaderReplaySrc, HeaderReplayFailed, HeaderPreferredInstanceUnavailable, HeaderForceInstance, HeaderRequestID} {
		hdr.Del(k)
	}
	hdr.Set(HeaderRequestID, reqID)
	hdr.Set(flyreplay.Region, p.region)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		hdr.Set(flyreplay.ClientIP, ip)
		if prior := hdr.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		hdr.Set("X-Forwarded-For", ip)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	hdr.Set("X-Forwarded-Proto", proto)
	if h.src != nil {
		hdr.Set(HeaderReplaySrc, h.src.String())
	}
	if h.failed != "" {
		hdr.Set(HeaderReplayFailed, h.failed)
	}
	if h.prefUna != "" {
		hdr.Set(HeaderPreferredInstanceUnavailable, h.prefUna)
	}

	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errReplayTimeout) {
			err = fmt.Errorf("%w within %v", errReplayTimeout, h.replay.Timeout)
		}
		release()
		return nil, nil, err
	}
	return resp, release, nil
}

// copyResponse streams resp to w, flushing after each read so the client
// sees what the instance wrote as it wrote it.
func (p *FlyProxy) copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	dst := w.Header()
	removeHopByHop(resp.Header)
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the client is gone
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// The status is sent: abort the connection so the client sees a
			// truncated response, not a complete one.
			panic(http.ErrAbortHandler)
		}
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			dst.Add(http.TrailerPrefix+k, v)
		}
	}
}

// isDialError reports whether err is a failure to connect, so that the
// request was not sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// notConnected reports whether err means the request never reached an
// instance: none matched, or none took the connection in time.
func notConnected(err error) bool {
	return isDialError(err) || errors.Is(err, errReplayTimeout) || errors.Is(err, errNoInstance)
}

// discard reads a little of a response the proxy drops, so its connection
// can be reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// removeHopByHop removes the headers of one connection, which a proxy never
// forwards (RFC 9110, section 7.6.1), and those that Connection names.
func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range [...]string{
		"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	} {
		h.Del(k)
	}
}

func joinPath(base, path string) string {
	switch {
	case base == "" || base == "/":
		return path
	case path == "":
		return base
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(path, "/")
}

// proxyError answers with an error of the proxy itself, as plain text.
func proxyError(w http.ResponseWriter, code int, format string, args ...any) {
	http.Error(w, "litefstest proxy: "+fmt.Sprintf(format, args...), code)
}
