package litefstest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
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
	// DefaultRegion is the region of the proxy, and of every instance that
	// FlyProxyConfig.Regions does not place elsewhere.
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
	// Region is the proxy's region, sent to instances in Fly-Region, and
	// the region of every instance that Regions does not name.
	Region string
	// Regions maps instance IDs to their regions, as Fly.io places
	// machines: Fly-Replay-Src names the sender's, and a region= replay goes
	// to an instance in one of the regions it lists.
	Regions map[string]string
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
// It follows instance=, prefer_instance=, region= (to an instance in one of
// the listed regions, see FlyProxyConfig.Regions, or "any"), elsewhere=,
// state=, timeout= and fallback= (a replay that cannot reach its target goes
// back to its sender with a Fly-Replay-Failed header). It does not do app= replays,
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
	regions    map[string]string // instance ID to region, for those not in region
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
		regions:    maps.Clone(cfg.Regions),
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
	for id, region := range p.regions {
		if p.urls[id] == nil || !validID(region) || strings.Contains(region, ",") {
			return nil, fmt.Errorf("litefstest: FlyProxyConfig.Regions: invalid instance %q or region %q", id, region)
		}
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

// exchange is one client request going through the proxy: what every hop
// of it needs.
type exchange struct {
	r          *http.Request
	id         string // its Fly-Request-Id, shared by its hops
	body       []byte // the buffered body, or its first part if too large
	replayable bool   // body holds the whole body
}

// hop is one delivery of a request to an instance, with the instances to
// try in turn if that one refuses the connection.
type hop struct {
	to         string
	alternates []string
	// from and state name the replay that sent the request here: the
	// instance that asked for it and its state= field; "" on the first hop.
	from, state string
	src         *ReplaySrc    // the Fly-Replay-Src to send; nil unless a replay
	replay      *ReplayHeader // the header that sent the request here; nil unless a replay
	fallback    bool          // taking back a replay that failed
	failed      string        // Fly-Replay-Failed value on a fallback hop
	prefUna     string        // Fly-Preferred-Instance-Unavailable value
}

// recorded reports whether tries of the hop are replays, which
// [FlyProxy.Replays] lists.
func (h hop) recorded() bool { return h.src != nil || h.fallback }

// nextAlternate returns the hop to its next alternate, after h.to refused
// the connection.
func (h hop) nextAlternate() hop {
	if h.replay != nil && h.to == h.replay.PreferInstance {
		h.prefUna = h.to
	}
	h.to, h.alternates = h.alternates[0], h.alternates[1:]
	return h
}

// failure is why the proxy answers the client itself: its status and
// message. ServeHTTP writes nothing for one when the client is gone.
type failure struct {
	code int
	msg  string
}

// fail returns a failure with a formatted message.
func fail(code int, format string, args ...any) *failure {
	return &failure{code: code, msg: fmt.Sprintf(format, args...)}
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
	x, h, f := p.begin(r)
	for replays := 1; f == nil; replays++ {
		var a answer
		if a, f = p.reach(x, h); f != nil {
			break
		}
		value := a.resp.Header.Get(HeaderReplay)
		if value == "" {
			p.copyResponse(w, a.resp)
			a.release()
			return
		}
		discard(a.resp)
		a.release()
		h, f = p.nextHop(x, a.at, value, replays)
	}
	if r.Context().Err() == nil { // else the client is gone
		proxyError(w, f.code, "%s", f.msg)
	}
}

// answer is an instance's response to one hop.
type answer struct {
	resp    *http.Response
	release context.CancelFunc // releases the request's context once resp is read
	at      hop                // the hop that reached the instance
}

// begin reads the request's body, up to the replay limit, and picks its
// first hop.
func (p *FlyProxy) begin(r *http.Request) (*exchange, hop, *failure) {
	x := &exchange{r: r, id: rand.Text() + "-" + p.region}
	var err error
	if x.body, x.replayable, err = p.bufferBody(r); err != nil {
		return nil, hop{}, fail(http.StatusBadRequest, "cannot read the request body: %v", err)
	}
	first, alternates, err := p.pick(r)
	if err != nil {
		return nil, hop{}, fail(http.StatusBadGateway, "%v", err)
	}
	return x, hop{to: first, alternates: alternates}, nil
}

// reach delivers x along h and, when a replay cannot reach its target and
// asked for a fallback, back to the replay's sender.
func (p *FlyProxy) reach(x *exchange, h hop) (answer, *failure) {
	a, err := p.deliver(x, h)
	if f, done := settled(x, err); done {
		return a, f
	}
	switch {
	case h.replay == nil:
		return a, fail(http.StatusBadGateway, "instance %s: %v", a.at.to, err)
	case h.replay.Fallback == "" || !notConnected(err):
		// Fly falls back only when it could not connect: once the target
		// has the request, its fate is the target's.
		return a, fail(http.StatusBadGateway, "replay to instance %s failed: %v", a.at.to, err)
	}
	back, reason := p.fallbackHop(a.at, err)
	b, err := p.deliver(x, back)
	if f, done := settled(x, err); done {
		return b, f
	}
	return b, fail(http.StatusBadGateway, "replay to instance %s failed (%s), and so did its fallback: %v", a.at.to, reason, err)
}

// settled reports whether a delivery that returned err ends the exchange
// whatever hop could come next: it succeeded, or the client is gone (then
// with the failure to answer).
func settled(x *exchange, err error) (*failure, bool) {
	switch {
	case err == nil:
		return nil, true
	case x.r.Context().Err() != nil:
		return fail(http.StatusBadGateway, "the client is gone"), true
	}
	return nil, false
}

// deliver sends x to h.to, and on to h's alternates while instances refuse
// the connection (Fly balances over the instances that take connections).
// It records every try of a replay, the one place that does. The answer's
// hop is that of the last try, also when it failed.
func (p *FlyProxy) deliver(x *exchange, h hop) (answer, error) {
	for {
		resp, release, err := p.send(x, h)
		if err != nil && x.r.Context().Err() != nil {
			return answer{at: h}, err // the client is gone: no replay to record
		}
		if h.recorded() {
			p.record(x, h, err)
		}
		if err == nil {
			return answer{resp: resp, release: release, at: h}, nil
		}
		if len(h.alternates) == 0 || !x.replayable || !isDialError(err) {
			return answer{at: h}, err
		}
		h = h.nextAlternate()
	}
}

// fallbackHop returns the hop that takes a replay that failed back to its
// sender (with prefer_self, to any instance that connects, the sender
// first), and why it failed, as Fly-Replay-Failed says it.
func (p *FlyProxy) fallbackHop(failed hop, cause error) (hop, string) {
	reason := "unreachable"
	switch {
	case failed.to == "":
		reason = "no_instance"
	case p.urls[failed.to] == nil:
		reason = "unknown_instance"
	case errors.Is(cause, errReplayTimeout):
		reason = "timeout"
	}
	back := hop{to: failed.from, from: failed.from, state: failed.state, fallback: true, failed: "reason=" + reason}
	if failed.to != "" {
		back.failed = "instance=" + quoteValue(failed.to) + ";" + back.failed
	}
	if failed.replay.Fallback == FallbackPreferSelf {
		for _, id := range p.ids {
			if id != failed.from {
				back.alternates = append(back.alternates, id)
			}
		}
	}
	return back, reason
}

// nextHop decides what follows a response of instance at.to that asks for
// a replay with the fly-replay value: the hop of the replay, or why the
// proxy answers the client itself. replays counts this one.
func (p *FlyProxy) nextHop(x *exchange, at hop, value string, replays int) (hop, *failure) {
	from := at.to
	if at.fallback {
		return hop{}, fail(http.StatusBadGateway, "instance %s asked for a replay of a request that came back from a failed replay; it cannot be replayed again", from)
	}
	rh, err := ParseReplayHeader(value)
	switch {
	case err != nil:
		return hop{}, fail(http.StatusBadGateway, "instance %s: %v", from, err)
	case !x.replayable:
		return hop{}, fail(http.StatusRequestEntityTooLarge, "instance %s asked for a replay, but the request body is larger than %d bytes and cannot be replayed", from, p.maxBody)
	case replays > p.maxReplays:
		return hop{}, fail(http.StatusBadGateway, "instance %s asked for replay number %d; at most %d replays per request", from, replays, p.maxReplays)
	case rh.App != "":
		return hop{}, fail(http.StatusBadGateway, "instance %s asked for a replay to app %q: this stand-in serves one app", from, rh.App)
	}
	h := hop{
		from:   from,
		state:  rh.State,
		src:    &ReplaySrc{Instance: from, Region: p.regionOf(from), Time: time.Now(), State: rh.State},
		replay: &rh,
	}
	h.to, h.alternates, h.prefUna = p.resolve(rh, from)
	return h, nil
}

// record appends a try of hop h of x to the replays; err is how it failed.
func (p *FlyProxy) record(x *exchange, h hop, err error) {
	e := Replay{
		RequestID: x.id, Method: x.r.Method, Path: x.r.URL.Path,
		From: h.from, To: h.to, State: h.state, Fallback: h.fallback,
	}
	if err != nil {
		e.Err = err.Error()
	}
	p.mu.Lock()
	p.replays = append(p.replays, e)
	p.mu.Unlock()
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
	order := p.balance(exclude)
	if rh.Region != "" {
		order = slices.DeleteFunc(order, func(id string) bool { return !inRegions(rh.Region, p.regionOf(id)) })
	}
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

// regionOf returns the region of instance id.
func (p *FlyProxy) regionOf(id string) string {
	if r, ok := p.regions[id]; ok {
		return r
	}
	return p.region
}

// inRegions reports whether the comma-separated region list names region
// or "any".
func inRegions(list, region string) bool {
	for r := range strings.SplitSeq(list, ",") {
		r = strings.TrimSpace(r)
		if r == region || r == "any" {
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

// send delivers x to h.to and returns the response and the function that
// releases its context once the body has been read.
func (p *FlyProxy) send(x *exchange, h hop) (*http.Response, context.CancelFunc, error) {
	base := p.urls[h.to]
	if base == nil {
		if h.to == "" {
			return nil, nil, fmt.Errorf("%w matches", errNoInstance)
		}
		return nil, nil, fmt.Errorf("%w %q", errNoInstance, h.to)
	}
	ctx, cancel := context.WithCancelCause(x.r.Context())
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
	resp, err := p.transport.RoundTrip(p.outRequest(ctx, x, h, base))
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errReplayTimeout) {
			err = fmt.Errorf("%w within %v", errReplayTimeout, h.replay.Timeout)
		}
		release()
		return nil, nil, err
	}
	return resp, release, nil
}

// outRequest returns the request that carries x to the instance at base on
// hop h.
func (p *FlyProxy) outRequest(ctx context.Context, x *exchange, h hop, base *url.URL) *http.Request {
	r := x.r
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.URL = &url.URL{
		Scheme:   base.Scheme,
		Host:     base.Host,
		Path:     joinPath(base.Path, r.URL.Path),
		RawQuery: r.URL.RawQuery,
	}
	out.Close = false
	body := x.body
	switch {
	case !x.replayable:
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
	p.setHeaders(out.Header, x, h)
	return out
}

// setHeaders turns the client's headers in hdr into the ones an instance
// gets from Fly's proxy on hop h.
func (p *FlyProxy) setHeaders(hdr http.Header, x *exchange, h hop) {
	r := x.r
	removeHopByHop(hdr)
	if strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Te"), ",")), "trailers") {
		hdr.Set("Te", "trailers")
	}
	// Clients must not forge what only the proxy may say.
	for _, k := range []string{HeaderReplaySrc, HeaderReplayFailed, HeaderPreferredInstanceUnavailable, HeaderForceInstance, HeaderRequestID} {
		hdr.Del(k)
	}
	hdr.Set(HeaderRequestID, x.id)
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
