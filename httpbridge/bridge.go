package httpbridge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/litefs-sql/litefs"
)

// Defaults for the zero fields of a Config.
const (
	// DefaultMaxHops allows a request a second replay, for a primary that
	// changed while the first was under way.
	DefaultMaxHops = 2
	// DefaultPrimaryWait is how long a request waits for a primary when none
	// is known, as LiteFS's own proxy does.
	DefaultPrimaryWait = 5 * time.Second
	// DefaultRetryAfter is the Retry-After sent with a 503.
	DefaultRetryAfter = time.Second
	// DefaultReplayStatus is the status of a fly-replay response. Fly's proxy
	// ignores it; a client that gets the response anyway (no Fly proxy in
	// front) must not take it for success, which LiteFS's 200 would suggest.
	DefaultReplayStatus = http.StatusConflict
	// DefaultMaxReplayBody is the largest request body fly-replay carries.
	// Fly documents the limit as "1MB" without saying which; the smaller
	// reading is the safe one.
	DefaultMaxReplayBody = 1_000_000
	// DefaultTXIDCookie is the name of the read-your-writes cookie: the one
	// LiteFS's own proxy uses, so the two understand each other.
	DefaultTXIDCookie = "__txid"
	// DefaultTXIDMaxAge is the lifetime of the read-your-writes cookie, as
	// LiteFS's proxy sets it.
	DefaultTXIDMaxAge = 5 * time.Minute
	// DefaultTXIDWait bounds how long a request waits on a replica for the
	// transaction its cookie names. A replica that is healthy trails the
	// primary by milliseconds; one a second behind is stalled, and the
	// request is served sooner by the primary. LiteFS's proxy waits 5 s,
	// then fails; the bridge replays instead.
	DefaultTXIDWait = time.Second
	// DefaultMaxLag is the replication lag over which the status handler
	// answers 503, the bound LiteFS's /litefs/health uses.
	DefaultMaxLag = 10 * time.Second
)

// Config configures a [Bridge]. The zero value of each field selects its
// default.
type Config struct {
	// InstanceID is this node's ID as the primary's ID names it, so the
	// bridge never replays a request to itself. Default: $FLY_MACHINE_ID,
	// else the host name (LiteFS's default lease hostname).
	InstanceID string

	// MaxHops is how many times one request may be replayed; a request that
	// arrives with that many is rejected (503) instead. Default:
	// DefaultMaxHops.
	MaxHops int

	// PrimaryWait bounds the wait for a primary when a write is refused with
	// no primary known; negative means do not wait. Default:
	// DefaultPrimaryWait.
	PrimaryWait time.Duration
	// WaitPrimary waits for a primary; see litefs.WaitPrimary, the default.
	WaitPrimary func(ctx context.Context, refusal error) (primaryID string, err error)

	// RetryAfter is the Retry-After of 503 responses, rounded up to whole
	// seconds. Default: DefaultRetryAfter.
	RetryAfter time.Duration

	// ReplayStatus is the status of fly-replay responses. Default:
	// DefaultReplayStatus.
	ReplayStatus int
	// ReplayTimeout, if positive, is sent as fly-replay's timeout= field:
	// how long Fly's proxy tries to reach the primary.
	ReplayTimeout time.Duration
	// ReplayFallback, if set, is sent as fly-replay's fallback= field
	// ("prefer_self" or "force_self"): a failed replay comes back to this
	// app marked with Fly-Replay-Failed, and the bridge answers it with a
	// 503 and Retry-After instead of Fly's own error.
	ReplayFallback string

	// MaxReplayBody is the largest request body Replay may be given; larger
	// ones go to Forward if set, else get a 413. Negative means no limit.
	// Ignored when Replay is a *Forwarder, whose own bound applies.
	// Default: DefaultMaxReplayBody.
	MaxReplayBody int64

	// Replay sends a refused request to the primary. Default: a fly-replay
	// response. Use a *Forwarder to forward in-process, or a ReplayerFunc.
	Replay Replayer
	// Forward, if set, forwards the requests whose body is over
	// MaxReplayBody, instead of rejecting them.
	Forward *Forwarder
	// Reject answers a refused request that cannot go to the primary.
	// Default: WriteRejection.
	Reject func(w http.ResponseWriter, r *http.Request, d Decision)

	// DB, if set, turns read-your-writes on for this database, opened with
	// the litefs driver: after a request commits a write on the primary its
	// response sets a cookie naming the transaction, and a request that
	// carries the cookie is served on a replica only once the replica has
	// that transaction (see the package documentation). Without DB or
	// Position, read-your-writes is off. [Bridge.StatusHandler] reports on
	// DB.
	DB *sql.DB
	// Position, instead of DB, tells the bridge where this node's copy of
	// the database stands, for read-your-writes.
	Position Position
	// TXIDCookie is the name of the read-your-writes cookie. Default:
	// DefaultTXIDCookie.
	TXIDCookie string
	// TXIDMaxAge is the lifetime of the read-your-writes cookie, rounded up
	// to whole seconds. Default: DefaultTXIDMaxAge.
	TXIDMaxAge time.Duration
	// TXIDWait bounds how long a request on a replica waits for the
	// transaction its cookie names before it is sent to the primary;
	// negative means send it at once. Default: DefaultTXIDWait.
	TXIDWait time.Duration

	// MaxLag is the replication lag over which [Bridge.StatusHandler]
	// answers 503; negative means any lag is healthy. Default:
	// DefaultMaxLag.
	MaxLag time.Duration

	// Logger receives the bridge's log records. Default: slog.Default().
	Logger *slog.Logger
	// OnEvent, if set, is called after each refused write is handled. It is
	// called on the request's goroutine and must be safe for concurrent use.
	OnEvent func(Event)
}

// A Replayer sends a refused request to the primary named by d.Primary, or
// answers with a response that makes it go there.
type Replayer interface {
	Replay(w http.ResponseWriter, r *http.Request, d Decision)
}

// ReplayerFunc adapts a function to a [Replayer].
type ReplayerFunc func(w http.ResponseWriter, r *http.Request, d Decision)

// Replay calls f(w, r, d).
func (f ReplayerFunc) Replay(w http.ResponseWriter, r *http.Request, d Decision) { f(w, r, d) }

var (
	_ Replayer = ReplayerFunc(nil)
	_ Replayer = flyReplay{}
	_ Replayer = (*Forwarder)(nil)
)

// An Event reports a refused write the bridge handled, or a request whose
// read-your-writes cookie this replica could not honour in time
// (ReasonBehind).
type Event struct {
	Decision
	// Request is the refused request.
	Request *http.Request
	// Waited is how long the request waited for a primary, or for the
	// transaction its cookie names.
	Waited time.Duration
}

// A Bridge is net/http middleware that sends requests whose writes were
// refused on a replica to the primary. It is safe for concurrent use.
type Bridge struct {
	cfg     Config
	replay  Replayer
	forward *Forwarder
	body    bodyPolicy
	counts  [numReasons]atomic.Uint64

	// Read-your-writes; pos is nil when it is off.
	pos          Position
	cookieMaxAge int           // seconds
	seen         atomic.Uint64 // highest TXID known applied on this node
}

// New validates c, fills in its defaults and returns a Bridge.
func New(c Config) (*Bridge, error) {
	if err := c.setDefaults(); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("httpbridge: invalid Config: %w", err)
	}
	b := &Bridge{cfg: c, replay: c.Replay, forward: c.Forward, pos: c.Position}
	if c.DB != nil {
		b.pos = DBPosition(c.DB)
	}
	b.cookieMaxAge = int((c.TXIDMaxAge + time.Second - 1) / time.Second)
	if b.replay == nil {
		b.replay = flyReplay{status: c.ReplayStatus, timeout: c.ReplayTimeout, fallback: c.ReplayFallback}
	}
	b.body = newBodyPolicy(b.replay, c.Forward, c.MaxReplayBody)
	return b, nil
}

// setDefaults fills in the zero fields of c.
func (c *Config) setDefaults() error {
	if c.InstanceID == "" {
		c.InstanceID = os.Getenv("FLY_MACHINE_ID")
	}
	if c.InstanceID == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("httpbridge: Config.InstanceID is empty and the host name is unknown: %w", err)
		}
		c.InstanceID = h
	}
	setDefault(&c.MaxHops, DefaultMaxHops)
	setDefault(&c.PrimaryWait, DefaultPrimaryWait)
	setDefault(&c.RetryAfter, DefaultRetryAfter)
	setDefault(&c.ReplayStatus, DefaultReplayStatus)
	setDefault(&c.MaxReplayBody, DefaultMaxReplayBody)
	setDefault(&c.TXIDCookie, DefaultTXIDCookie)
	setDefault(&c.TXIDMaxAge, DefaultTXIDMaxAge)
	setDefault(&c.TXIDWait, DefaultTXIDWait)
	setDefault(&c.MaxLag, DefaultMaxLag)
	if c.WaitPrimary == nil {
		c.WaitPrimary = litefs.WaitPrimary
	}
	if c.Reject == nil {
		c.Reject = WriteRejection
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// setDefault sets *field to def if it is the zero value.
func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// validate reports every field of c, defaults filled in, that is out of
// range, joined.
func (c *Config) validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(!litefs.ValidPrimaryID(c.InstanceID), "Config.InstanceID %q is not a hostname-like ID", c.InstanceID)
	check(c.MaxHops < 0, "Config.MaxHops is negative (%d)", c.MaxHops)
	check(c.RetryAfter < 0, "Config.RetryAfter is negative (%v)", c.RetryAfter)
	check(c.ReplayStatus < 100 || c.ReplayStatus > 599, "Config.ReplayStatus %d is not an HTTP status", c.ReplayStatus)
	check(c.ReplayTimeout < 0, "Config.ReplayTimeout is negative (%v)", c.ReplayTimeout)
	check(c.ReplayFallback != "" && c.ReplayFallback != "prefer_self" && c.ReplayFallback != "force_self",
		`Config.ReplayFallback %q is not "prefer_self" or "force_self"`, c.ReplayFallback)
	check(c.Replay == nil && c.Forward == nil && c.MaxReplayBody < 0,
		"Config.MaxReplayBody: fly-replay cannot carry bodies of any size")
	check(c.DB != nil && c.Position != nil, "Config.DB and Config.Position are both set; set one")
	p, ok := c.Position.(dbPosition)
	check(ok && p.db == nil, "Config.Position is the position of a nil *sql.DB")
	check((&http.Cookie{Name: c.TXIDCookie, Value: "0"}).Valid() != nil, "Config.TXIDCookie %q is not a cookie name", c.TXIDCookie)
	check(c.TXIDMaxAge < 0 || c.TXIDMaxAge > math.MaxInt32*time.Second, "Config.TXIDMaxAge %v is out of range", c.TXIDMaxAge)
	f, ok := c.Replay.(*Forwarder)
	check(ok && f == nil, "Config.Replay is a nil *Forwarder")
	if c.Forward != nil && !ok {
		replayMax := newBodyPolicy(nil, nil, c.MaxReplayBody).replayMax
		check(c.Forward.maxBody <= replayMax, "Config.Forward's MaxBody (%d) must exceed MaxReplayBody (%d)", c.Forward.maxBody, replayMax)
	}
	return errors.Join(errs...)
}

// Middleware wraps next in a new Bridge with the default Config; call it
// once, when building the handler chain. It panics if the defaults cannot be
// set up (the host name is unknown); use [New] to get an error instead.
func Middleware(next http.Handler) http.Handler {
	b, err := New(Config{})
	if err != nil {
		panic(err)
	}
	return b.Handler(next)
}

// MiddlewareFor returns middleware that wraps a handler in a new Bridge
// with read-your-writes on for db, a database opened with the litefs driver,
// and the other fields of Config at their defaults; call it once, when
// building the handler chain. It panics where [Middleware] does.
func MiddlewareFor(db *sql.DB) func(http.Handler) http.Handler {
	b, err := New(Config{DB: db})
	if err != nil {
		panic(err)
	}
	return b.Handler
}

// Handler returns next wrapped by the bridge.
func (b *Bridge) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.serve(w, r, next)
	})
}

// Count returns how many refused writes were handled for reason since the
// Bridge was made.
func (b *Bridge) Count(reason Reason) uint64 {
	if int(reason) >= len(b.counts) {
		return 0
	}
	return b.counts[reason].Load()
}

// exchange is the bridge's state for one request, in one allocation.
type exchange struct {
	ctx    litefs.TrackerContext // holds the request's Tracker
	writer writer
	body   *body // nil unless the body is watched
}

func (b *Bridge) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	x := &exchange{}
	x.ctx.Context = r.Context()
	tracker := &x.ctx.Tracker
	r = r.WithContext(&x.ctx)
	if b.body.watch(r) {
		x.body = b.body.newBody(r)
		r.Body = x.body
	}
	x.writer = writer{w: w, tracker: tracker, bridge: b, req: r}

	if b.pos != nil {
		tracker.PrefetchTXID() // for the cookie, should the handler commit
		// A cookie at or below what this node is known to have applied
		// costs one scan of the Cookie header and no I/O.
		if want, ok := cookieTXID(r.Header, b.cfg.TXIDCookie); ok && uint64(want) > b.seen.Load() {
			if b.catchUp(w, r, x.ctx.Context, want) {
				return
			}
		}
		x.writer.setCookie = true
	}

	panicked := b.run(next, x.writer.wrap(), r, tracker)
	b.afterHandler(r, x, panicked)
}

// afterHandler ends a request whose handler has returned (or panicked with
// a refusal), from the writer's phase and what the Tracker heard.
func (b *Bridge) afterHandler(r *http.Request, x *exchange, panicked bool) {
	refusal := x.writer.tracker.Refusal()
	switch {
	case refusal == nil:
		x.writer.finish()
		if x.writer.setCookie {
			x.writer.lateCommit()
		}
	case x.writer.tracker.Committed():
		b.partial(r, x, refusal, panicked)
	case x.writer.started():
		// The response went out before the refusal. A handler that panicked
		// mid-response is aborted, so the client sees a broken response
		// rather than a truncated one that looks complete.
		b.report(Event{Decision: b.keepDecision(r, ReasonTooLate, primaryOf(refusal), refusal), Request: r})
		if panicked {
			panic(http.ErrAbortHandler)
		}
	default:
		b.handleRefusal(x.writer.w, r, x, refusal)
	}
}

// keepDecision is the Decision of a request whose handler's response
// stands (or, with ReasonBehind, that the handler serves here), for reason;
// err is the refusal, or what the wait for a transaction ended with.
func (b *Bridge) keepDecision(r *http.Request, reason Reason, primary string, err error) Decision {
	d := Decision{
		Verdict:  Keep,
		Reason:   reason,
		Primary:  primary,
		Self:     b.cfg.InstanceID,
		BodySize: r.ContentLength,
		Err:      err,
	}
	d.Hops, _ = replayOrigin(r.Header, "")
	return d
}

// partial answers a request that committed a write here before another was
// refused: replaying it would repeat the first write. A response the handler
// started stands (aborted if it then panicked); one the bridge dropped, or
// never written because the handler panicked, becomes a 500, with the
// cookie of the write that did commit.
func (b *Bridge) partial(r *http.Request, x *exchange, refusal error, panicked bool) {
	b.report(Event{Decision: b.keepDecision(r, ReasonPartial, primaryOf(refusal), refusal), Request: r})
	switch {
	case x.writer.started() && panicked:
		panic(http.ErrAbortHandler)
	case x.writer.phase == dropped || !x.writer.started() && panicked:
		x.writer.rewrite()
		http.Error(&x.writer, "httpbridge: a write of this request was refused after another had committed here; "+
			"it was not retried", http.StatusInternalServerError)
	default:
		x.writer.finish()
	}
}

// run calls next, and recovers a panic whose value is a refusal, reporting
// whether it did. Every other panic, http.ErrAbortHandler included, goes on.
func (b *Bridge) run(next http.Handler, w http.ResponseWriter, r *http.Request, t *litefs.Tracker) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			err, ok := v.(error)
			if !ok || err == http.ErrAbortHandler || !errors.Is(err, litefs.ErrNotPrimary) {
				panic(v)
			}
			t.ReportRefusal(err)
			panicked = true
		}
	}()
	next.ServeHTTP(w, r)
	return false
}

// handleRefusal answers a request whose write was refused before its
// response started: it measures the body, decides, waits for a primary if
// none is known, and sends the verdict.
func (b *Bridge) handleRefusal(w http.ResponseWriter, r *http.Request, x *exchange, refusal error) {
	size, kept := r.ContentLength, true
	if x.body != nil {
		if size < 0 && b.body.measure() {
			size = x.body.size(b.body.replayMax)
		}
		if b.body.keepMax > 0 {
			var rest io.ReadCloser
			if rest, kept = x.body.resend(); kept {
				r.Body = rest
			}
		}
	}
	primary := primaryOf(refusal)
	d := b.decide(r, refusal, primary, size, kept)
	var waited time.Duration
	if d.Reason == ReasonNoPrimary && b.cfg.PrimaryWait > 0 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), b.cfg.PrimaryWait)
		primary, err := b.cfg.WaitPrimary(ctx, refusal)
		cancel()
		waited = time.Since(start)
		if err == nil && litefs.ValidPrimaryID(primary) {
			d = b.decide(r, refusal, primary, size, kept)
		}
	}
	b.send(w, r, d, waited)
}

// send carries out verdict d, which must not be Keep, in place of the
// handler's response, and reports it.
func (b *Bridge) send(w http.ResponseWriter, r *http.Request, d Decision, waited time.Duration) {
	clear(w.Header()) // the handler's headers go with its status and body
	switch d.Verdict {
	case Replay:
		b.replay.Replay(w, r, d)
	case Forward:
		b.forward.Replay(w, r, d)
	default:
		b.cfg.Reject(w, r, d)
	}
	b.report(Event{Decision: d, Request: r, Waited: waited})
}

// report counts, logs and publishes a handled refusal.
func (b *Bridge) report(e Event) {
	b.counts[e.Reason].Add(1)
	if l := b.cfg.Logger; l != nil {
		level, msg := slog.LevelWarn, logMessages[e.Reason]
		switch {
		case e.Reason == ReasonBehind && e.Verdict == Keep:
			msg = behindKeptMessage
		case e.Verdict == Replay || e.Verdict == Forward:
			level = slog.LevelDebug
		case e.Verdict == Keep:
			level = slog.LevelError
		}
		ctx := e.Request.Context()
		if l.Enabled(ctx, level) {
			l.Log(ctx, level, msg,
				"reason", e.Reason.String(), "verdict", e.Verdict.String(),
				"primary", e.Primary, "hops", e.Hops, "method", e.Request.Method,
				"path", e.Request.URL.Path, "waited", e.Waited, "error", e.Err)
		}
	}
	if b.cfg.OnEvent != nil {
		b.cfg.OnEvent(e)
	}
}

var logMessages = [numReasons]string{
	ReasonRefused:      "httpbridge: write refused on a replica; sending the request to the primary",
	ReasonNoPrimary:    "httpbridge: write refused and no primary is known; rejecting the request",
	ReasonLoop:         "httpbridge: write refused, but sending the request on would loop; rejecting it",
	ReasonReplayFailed: "httpbridge: write refused on a request whose replay already failed; rejecting it",
	ReasonTooLarge:     "httpbridge: write refused on a request whose body is too large to replay",
	ReasonTooLate:      "httpbridge: write refused after the response had started; it cannot be replayed",
	ReasonBehind:       "httpbridge: this replica has not applied the transaction the request's cookie names; sending the request to the primary",
	ReasonPartial:      "httpbridge: write refused after the same request had committed a write here; not replaying it, which would repeat that write",
}

const behindKeptMessage = "httpbridge: this replica has not applied the transaction the request's cookie names, and the request cannot go to the primary; serving it here"
