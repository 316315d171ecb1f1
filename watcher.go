package litefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultLiteFSAPI is where the driver looks for LiteFS's HTTP API when
	// neither [WithLiteFSAPI] nor the DSN parameter _litefs_api names it:
	// LiteFS's own default (http.addr ":20202"), on loopback.
	DefaultLiteFSAPI = "127.0.0.1:20202"

	// DefaultRoleCheckInterval is how often the driver compares LiteFS's
	// event stream with the mount files while it trusts the stream, and so
	// the longest a role change can go unseen by writes if the stream stalls
	// or belongs to another node.
	DefaultRoleCheckInterval = 250 * time.Millisecond

	// DefaultMaxWaiters is how many [WaitTXID] calls may wait at once on one
	// database (one Connector); more get [ErrTooManyWaiters].
	DefaultMaxWaiters = 256
)

// posPollInterval is how often the shared poller reads <db>-pos while
// WaitTXID calls wait and the event stream is not trusted.
const posPollInterval = 2 * time.Millisecond

// errClosed wakes WaitTXID calls when their Connector is closed.
var errClosed = errors.New("litefs: the database is closed")

// A watcher is the one source of this node's role and position that the
// connections of a Connector share: LiteFS's event stream when it is live
// and verified, and one poller of <db>-pos for WaitTXID when it is not.
//
// Invariants: role is non-nil only while a stream is connected whose
// init/primaryChange events agreed with the mount files at the last check
// (at most roleEvery ago); txid never exceeds the position this node has
// applied (it is the largest of positions read from <db>-pos; a tx event
// raises it only as far as <db>-pos then shows, see publish).
type watcher struct {
	db        string // the database's name in the mount, as tx events give it
	api       string // the base URL of LiteFS's HTTP API; "" for none
	roleEvery time.Duration
	max       int
	log       *slog.Logger
	pos       *posFile
	probe     *prober // reads the mount files for checks; its own, uncached
	client    *http.Client

	role     atomic.Pointer[roleState] // the trusted role, or nil: read the mount
	txLive   atomic.Bool               // tx events of a trusted stream arrive
	streamTX atomic.Uint64             // the last tx event for db
	txid     atomic.Uint64             // a lower bound of the applied position

	// TXID reads begun in commit hooks that told the commit's TXID, and
	// those that did not (prefetch.go), for tests and benchmarks.
	prefetchHits, prefetchMisses atomic.Uint64

	mu       sync.Mutex
	waiters  map[*waiter]struct{}
	nwait    atomic.Int32
	unfollow context.CancelFunc // drops the connected stream; nil when none

	kick   chan struct{} // wakes the poller (capacity 1)
	ctx    context.Context
	cancel context.CancelFunc
	start  sync.Once
	wg     sync.WaitGroup
}

// roleState is a role the stream reported: primary, or a replica of
// primaryID (never empty: a node without a primary reads the mount).
type roleState struct {
	primary   bool
	primaryID string
}

// verdict is what check returns for s.
func (s *roleState) verdict() error {
	if s.primary {
		return nil
	}
	return &NotPrimaryError{PrimaryID: s.primaryID}
}

type waiter struct {
	want TXID
	got  TXID  // set before ch is closed
	err  error // set before ch is closed
	ch   chan struct{}
}

func newWatcher(dir, dbPath, api string, cfg *config, sawLiteFS *atomic.Bool) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{
		api:       api,
		roleEvery: cfg.roleEvery,
		max:       cfg.maxWaiters,
		log:       cfg.log,
		probe:     newProber(dir, cfg.log, sawLiteFS),
		waiters:   make(map[*waiter]struct{}),
		kick:      make(chan struct{}, 1),
		ctx:       ctx,
		cancel:    cancel,
	}
	if dbPath != "" {
		w.db = filepath.Base(dbPath)
		w.pos = newPosFile(filepath.Join(dir, w.db+"-pos"), w.probe.liteFS)
	}
	w.client = &http.Client{Transport: &http.Transport{
		Proxy:                 nil, // LiteFS is local: never through HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
		ResponseHeaderTimeout: time.Second,
		MaxIdleConns:          1,
	}}
	return w
}

// run starts the poller, and the stream when there is an API to follow.
func (w *watcher) run() {
	if w == nil {
		return
	}
	w.start.Do(func() {
		w.wg.Add(1)
		go w.pollLoop()
		if w.api != "" {
			w.wg.Add(1)
			go w.streamLoop()
		}
	})
}

// close stops the watcher's goroutines and wakes its waiters.
func (w *watcher) close() {
	if w == nil {
		return
	}
	w.start.Do(func() {}) // nothing starts after close
	w.cancel()
	w.wg.Wait()
	w.untrust()
	w.fail(errClosed)
	w.pos.close()
	w.probe.close()
}

// trusted returns the role to use without reading the mount, or nil.
func (w *watcher) trusted() *roleState {
	if w == nil {
		return nil
	}
	return w.role.Load()
}

func (w *watcher) untrust() {
	w.role.Store(nil)
	w.txLive.Store(false)
	w.poke()
}

// distrust drops the stream after a write found the mount disagreeing with
// it: the driver reads the mount until a new stream is verified.
func (w *watcher) distrust(why string) {
	if w == nil || w.role.Load() == nil {
		return
	}
	w.log.Warn("litefs: the LiteFS event stream disagrees with the mount; reading the mount", "api", w.api, "why", why)
	w.untrust()
	w.mu.Lock()
	if w.unfollow != nil {
		w.unfollow()
	}
	w.mu.Unlock()
}

func (w *watcher) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// apiURL turns a LiteFS http.addr (":20202", "host:port", or a URL) into the
// base URL of its API; an empty host means loopback.
func apiURL(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Port() == "" ||
		u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("address %q: want host:port or http://host:port", truncate(addr))
	}
	host := u.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	return u.Scheme + "://" + net.JoinHostPort(host, u.Port()), nil
}

// streamLoop follows the stream, reconnecting with backoff, until close.
func (w *watcher) streamLoop() {
	defer w.wg.Done()
	backoff := 50 * time.Millisecond
	wasTrusted := true // so that a stream that never comes is reported once
	for w.ctx.Err() == nil {
		start := time.Now()
		trusted, err := w.follow()
		w.untrust()
		if w.ctx.Err() != nil {
			return
		}
		if trusted || wasTrusted {
			w.log.Warn("litefs: no LiteFS event stream; each write reads the mount for the role",
				"api", w.api, "err", err)
		} else {
			w.log.Debug("litefs: no LiteFS event stream; reading the mount for the role", "api", w.api, "err", err)
		}
		wasTrusted = trusted
		if time.Since(start) > 10*time.Second {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// advance raises the known position to id and wakes the waiters it
// satisfies.
func (w *watcher) advance(id TXID) {
	for {
		old := w.txid.Load()
		if uint64(id) <= old || w.txid.CompareAndSwap(old, uint64(id)) {
			break
		}
	}
	if w.nwait.Load() == 0 {
		return
	}
	id = TXID(w.txid.Load())
	w.mu.Lock()
	for wt := range w.waiters {
		if wt.want <= id {
			wt.got = id
			w.release(wt)
		}
	}
	w.mu.Unlock()
}

// fail wakes every waiter with err.
func (w *watcher) fail(err error) {
	w.mu.Lock()
	for wt := range w.waiters {
		wt.err = err
		w.release(wt)
	}
	w.mu.Unlock()
}

// release removes wt and wakes it; w.mu is held.
func (w *watcher) release(wt *waiter) {
	delete(w.waiters, wt)
	w.nwait.Add(-1)
	close(wt.ch)
}

// wait waits until the position reaches want, sharing the stream or the one
// poller with every other waiter; it never reads the mount itself.
func (w *watcher) wait(ctx context.Context, want TXID) (TXID, error) {
	if got := TXID(w.txid.Load()); got >= want {
		return got, nil
	}
	wt := &waiter{want: want, ch: make(chan struct{})}
	w.mu.Lock()
	switch {
	case w.ctx.Err() != nil:
		w.mu.Unlock()
		return 0, errClosed
	case len(w.waiters) >= w.max:
		w.mu.Unlock()
		return 0, ErrTooManyWaiters
	}
	w.waiters[wt] = struct{}{}
	first := w.nwait.Add(1) == 1
	w.mu.Unlock()
	// The position may have moved between the first look and registering.
	w.advance(TXID(w.txid.Load()))
	w.run()
	if first || w.txLive.Load() {
		w.poke() // the poller reads at once, then every posPollInterval
	}
	select {
	case <-wt.ch:
		return wt.got, wt.err
	case <-ctx.Done():
		w.mu.Lock()
		if _, ok := w.waiters[wt]; ok {
			wt.err = context.Cause(ctx)
			w.release(wt)
		}
		w.mu.Unlock()
		<-wt.ch
		return wt.got, wt.err
	}
}

// pollLoop reads <db>-pos every posPollInterval while someone waits and no
// trusted stream brings the position: one reader for all waiters.
func (w *watcher) pollLoop() {
	defer w.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		idle := w.nwait.Load() == 0 || w.txLive.Load()
		var tick <-chan time.Time
		if !idle {
			t.Reset(posPollInterval)
			tick = t.C
		}
		select {
		case <-w.ctx.Done():
			return
		case <-w.kick:
		case <-tick:
		}
		// A live stream brings the position, but for what it sent before
		// anyone waited (see publish).
		if w.nwait.Load() == 0 || w.txLive.Load() && w.streamTX.Load() <= w.txid.Load() {
			continue
		}
		id, err := w.pos.read()
		if err != nil {
			w.fail(err)
			continue
		}
		w.advance(id)
	}
}

// source holds a Connector's watcher, made on first use: its connections,
// WaitTXID, CurrentTXID and NodeStatus share it.
type source struct {
	once sync.Once
	w    *watcher // nil: the Connector is closed, or has no database file
}

// WithLiteFSAPI sets the address of LiteFS's HTTP API (litefs.yml's
// http.addr: "host:port", ":port" for loopback, or an http URL), whose event
// stream tells the driver this node's role and position without a file
// read. "" turns the stream off: every write then reads the mount files.
// The default is the DSN parameter _litefs_api if set, else
// [DefaultLiteFSAPI], used only when the database is on a FUSE mount. The
// stream is trusted only while it agrees with the mount files.
func WithLiteFSAPI(addr string) Option {
	return func(c *config) { c.liteFSAPI, c.liteFSAPISet = addr, true }
}

// WithMaxWaiters bounds how many [WaitTXID] calls may wait at once for this
// database; the default is [DefaultMaxWaiters].
func WithMaxWaiters(n int) Option {
	return func(c *config) { c.maxWaiters = n }
}

// WithRoleCheckInterval sets how often the driver compares a trusted event
// stream with the mount files, which bounds how long a stalled or wrong
// stream can go unnoticed; the default is [DefaultRoleCheckInterval]. Each
// check reads .primary or .lag and <db>-pos once (0.1-0.6 ms over FUSE).
func WithRoleCheckInterval(d time.Duration) Option {
	return func(c *config) { c.roleEvery = d }
}

// checkSource validates the source's options.
func (c *config) checkSource() error {
	if c.maxWaiters < 1 {
		return fmt.Errorf("litefs: WithMaxWaiters(%d): want at least 1", c.maxWaiters)
	}
	if c.roleEvery <= 0 {
		return fmt.Errorf("litefs: WithRoleCheckInterval(%v): want a positive duration", c.roleEvery)
	}
	if c.liteFSAPISet {
		if _, err := apiURL(c.liteFSAPI); err != nil {
			return fmt.Errorf("litefs: WithLiteFSAPI: %w", err)
		}
	}
	return nil
}

// watcher returns c's shared source, making it on first use; nil once c is
// closed or when c has no mount.
func (c *Connector) watcher() *watcher {
	c.src.once.Do(func() {
		dir := c.mountDir()
		if dir == "" {
			return
		}
		path := ""
		if !c.info.memory {
			path = c.realPath()
		}
		api, explicit := c.api()
		w := newWatcher(dir, path, api, &c.cfg, &c.sawLiteFS)
		w.probe.epoch = &c.epoch
		if !explicit && !w.probe.liteFS {
			w.api = "" // the default address only serves a LiteFS mount
		}
		c.src.w = w
	})
	return c.src.w
}

// api returns the base URL of LiteFS's API to follow ("" for none), and
// whether it was configured rather than the default.
func (c *Connector) api() (string, bool) {
	addr, explicit := DefaultLiteFSAPI, false
	switch {
	case c.cfg.liteFSAPISet:
		addr, explicit = c.cfg.liteFSAPI, true
	case c.info.apiSet:
		addr, explicit = c.info.api, true
	}
	u, err := apiURL(addr)
	if err != nil {
		return "", explicit
	}
	return u, explicit
}

// attach gives a new connection the Connector's shared source: its prober
// answers from the source while it is trusted, and its commits report the
// shared position file. file is the database's path ("" in memory).
func (c *Connector) attach(conn *Conn, file string) {
	w := c.watcher()
	if conn.probe != nil {
		conn.probe.watch = w
	}
	switch {
	case w != nil && w.pos != nil:
		conn.pos = w.pos
	case file != "" && conn.probe != nil:
		conn.pos = newPosFile(filepath.Join(conn.probe.dir, filepath.Base(file)+"-pos"), false)
	}
	if conn.pos != nil {
		conn.halt.key = c.holdKey(conn.pos.path)
	}
	w.run()
}

// Close stops the Connector's shared source (its event stream and poller)
// and wakes its WaitTXID calls; sql.DB.Close calls it. Connections still
// open read the mount files from then on.
func (c *Connector) Close() error {
	c.src.once.Do(func() {})
	c.src.w.close()
	return nil
}
