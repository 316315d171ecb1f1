package httpbridge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/litefs-sql/litefs"
)

// A Position tells the bridge where this node's copy of the database stands,
// for read-your-writes. [DBPosition] is the Position of a database opened
// with the litefs driver. The bridge calls the methods with a context that
// carries no litefs.Tracker; they must be safe for concurrent use.
type Position interface {
	// CurrentTXID returns the TXID of the last transaction applied on this
	// node.
	CurrentTXID(ctx context.Context) (litefs.TXID, error)
	// WaitTXID waits until this node has applied transaction want and
	// returns the TXID reached, or context.Cause(ctx) when ctx ends first.
	// An error matching litefs.ErrTooManyWaiters says that too many
	// requests wait already: the bridge then sends the request to the
	// primary at once.
	WaitTXID(ctx context.Context, want litefs.TXID) (litefs.TXID, error)
	// CheckPrimary returns nil on the primary, else the refusal a write
	// would get: a *litefs.NotPrimaryError naming the primary, or an error
	// matching litefs.ErrNoPrimary.
	CheckPrimary(ctx context.Context) error
}

// DBPosition returns the Position of db, a database opened with the litefs
// driver: it reads LiteFS's <db>-pos and .primary files beside the database,
// or the driver's event stream when it follows one. With it the bridge also
// takes a replica whose stream is below a cookie for behind, without a read
// (litefs.TXIDHint).
func DBPosition(db *sql.DB) Position { return dbPosition{db} }

type dbPosition struct{ db *sql.DB }

func (p dbPosition) CurrentTXID(ctx context.Context) (litefs.TXID, error) {
	return litefs.CurrentTXID(ctx, p.db)
}

// database returns db, for the bridge to ask a Tracker for the TXID of
// this database rather than of the one written last.
func (p dbPosition) database() *sql.DB { return p.db }

// committedTXID returns the TXID for the cookie of a request whose writes
// t heard: of the Position's database when the bridge knows it (a request
// may write others too, whose TXIDs count on their own), else of the
// database written last.
func (b *Bridge) committedTXID(t *litefs.Tracker) (litefs.TXID, bool, error) {
	if p, ok := b.pos.(interface{ database() *sql.DB }); ok {
		return t.TXIDOf(p.database())
	}
	return t.TXID()
}

// txidHint is litefs.TXIDHint, for the bridge to skip reading the position
// of a replica that the event stream shows behind.
func (p dbPosition) txidHint() (litefs.TXID, bool) { return litefs.TXIDHint(p.db) }

func (p dbPosition) WaitTXID(ctx context.Context, want litefs.TXID) (litefs.TXID, error) {
	return litefs.WaitTXID(ctx, p.db, want)
}

// CheckPrimary hides any Tracker in ctx: litefs.CheckPrimary reports its
// refusal to one, and a bridge further out would take this check for a
// refused write.
func (p dbPosition) CheckPrimary(ctx context.Context) error {
	return litefs.CheckPrimary(litefs.WithTracker(ctx, nil), p.db)
}

var _ Position = dbPosition{}

// errBehind ends a wait for a transaction that took longer than
// Config.TXIDWait.
var errBehind = errors.New("httpbridge: this replica has not applied the transaction the request's cookie names")

// checkTimeout bounds the position and role checks when Config.TXIDWait is
// negative (no waiting), so a busy connection pool cannot hold a request.
const checkTimeout = time.Second

// catchUp runs before the handler of a request whose cookie names
// transaction want, above any this node is known to have applied. On a
// replica it waits, up to Config.TXIDWait, for the transaction to arrive;
// if it does not, the request goes to the primary, which has every
// transaction. It reports whether it answered the request; when it did not,
// the handler serves it here. parent is the request's context without the
// bridge's Tracker.
func (b *Bridge) catchUp(w http.ResponseWriter, r *http.Request, parent context.Context, want litefs.TXID) bool {
	start := time.Now()
	bound := b.cfg.TXIDWait
	if bound < 0 {
		bound = checkTimeout
	}
	ctx, cancel := context.WithTimeoutCause(parent, bound, errBehind)
	defer cancel()

	got, refusal, behind := b.behind(ctx, parent, want)
	if !behind {
		return false
	}
	cause := errBehind
	// A request that may write goes to the primary at once, if it can, as
	// LiteFS's proxy sends it: waiting here would only delay a write that
	// this replica refuses anyway, and the primary has every transaction.
	if !safeMethod(r.Method) {
		d := b.behindDecision(r, fmt.Errorf("%w: want %s, at %s", cause, want, got), primaryOf(refusal))
		if d.Verdict == Replay || d.Verdict == Forward {
			b.send(w, r, d, time.Since(start))
			return true
		}
	}
	if b.cfg.TXIDWait > 0 {
		var caughtUp bool
		if caughtUp, cause = b.waitTXID(ctx, parent, want, got, start); caughtUp {
			return false
		}
	}
	primary := primaryOf(refusal)
	if primary == "" {
		// None was known before the wait; one may be now.
		ctx, cancel := context.WithTimeout(parent, checkTimeout)
		primary = primaryOf(b.pos.CheckPrimary(ctx))
		cancel()
	}
	cause = fmt.Errorf("%w: want %s, at %s", cause, want, got)
	return b.sendBehind(w, r, cause, primary, time.Since(start))
}

// behind reports whether this node is a replica that has not applied
// transaction want, with the TXID it is at and its role check's refusal.
// Where that cannot be told, it logs why and reports false: the request is
// served here.
func (b *Bridge) behind(ctx, parent context.Context, want litefs.TXID) (got litefs.TXID, refusal error, behind bool) {
	log := b.cfg.Logger
	got, hinted := b.hintBehind(want)
	var err error
	if !hinted {
		got, err = b.pos.CurrentTXID(ctx)
	}
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, litefs.ErrNoPosition) {
			level = slog.LevelDebug // not LiteFS: the cookie means nothing here
		}
		log.Log(parent, level, "httpbridge: cannot read this node's TXID; serving the request here",
			"cookie", b.cfg.TXIDCookie, "want", want, "error", err)
		return got, nil, false
	}
	if !hinted {
		// Only a position read from this node's files is known applied:
		// the stream's may be another node's.
		b.saw(got)
	}
	if got >= want {
		return got, nil, false
	}
	refusal = b.pos.CheckPrimary(ctx)
	if refusal == nil && hinted {
		return got, nil, false // the primary has every transaction; its stream trails
	}
	if refusal == nil {
		// The primary has applied every transaction there is: the cookie
		// is forged, or from another cluster or an earlier database.
		log.Log(parent, slog.LevelDebug, "httpbridge: a TXID cookie is ahead of the primary; ignoring it",
			"cookie", b.cfg.TXIDCookie, "want", want, "at", got)
		return got, nil, false
	}
	if !errors.Is(refusal, litefs.ErrNotPrimary) {
		log.Log(parent, slog.LevelWarn, "httpbridge: cannot tell whether this node is the primary; serving the request here",
			"cookie", b.cfg.TXIDCookie, "want", want, "at", got, "error", refusal)
		return got, nil, false
	}
	return got, refusal, true
}

// hintBehind returns the position LiteFS's event stream shows for this
// node, and true, when that is below want: the node is then taken to be
// behind without a read of <db>-pos, which costs most right after a commit
// on the primary, when the replica is busy applying it. The stream may
// trail the node, never lead it, so a wrong guess only sends a request to
// the primary (or into WaitTXID) that the replica could have served.
func (b *Bridge) hintBehind(want litefs.TXID) (litefs.TXID, bool) {
	h, ok := b.pos.(interface{ txidHint() (litefs.TXID, bool) })
	if !ok {
		return 0, false
	}
	got, live := h.txidHint()
	return got, live && got < want
}

// waitTXID waits, within ctx, for this replica to apply transaction want.
// It reports whether the request is to be served here: the transaction
// came, the client left, or the wait failed in a way that says nothing of
// the replica's lag. Otherwise cause says why the request goes to the
// primary: the wait ran out, or too many requests wait already
// (litefs.ErrTooManyWaiters), which costs a forged cookie a replay and no
// wait.
func (b *Bridge) waitTXID(ctx, parent context.Context, want, got litefs.TXID, start time.Time) (here bool, cause error) {
	log := b.cfg.Logger
	reached, err := b.pos.WaitTXID(ctx, want)
	switch {
	case err == nil:
		b.saw(reached)
		log.Log(parent, slog.LevelDebug, "httpbridge: waited for the transaction of a TXID cookie",
			"cookie", b.cfg.TXIDCookie, "want", want, "at", reached, "waited", time.Since(start))
		return true, nil
	case parent.Err() != nil:
		return true, nil // the client is gone; the handler sees its context end
	case errors.Is(err, litefs.ErrTooManyWaiters):
		return false, err
	case context.Cause(ctx) != errBehind:
		log.Log(parent, slog.LevelWarn, "httpbridge: cannot wait for this node's TXID; serving the request here",
			"cookie", b.cfg.TXIDCookie, "want", want, "at", got, "error", err)
		return true, nil
	}
	return false, errBehind
}

// sendBehind sends a request that this replica cannot serve up to date to
// the primary, when the bridge's rules allow it, and reports the event. It
// reports false, for the handler to serve the request here, when they do
// not: a read a little stale beats an error page.
func (b *Bridge) sendBehind(w http.ResponseWriter, r *http.Request, cause error, primary string, waited time.Duration) bool {
	d := b.behindDecision(r, cause, primary)
	if d.Verdict == Replay || d.Verdict == Forward {
		b.send(w, r, d, waited)
		return true
	}
	err := fmt.Errorf("%w; not sent to the primary: %s", cause, d.Reason)
	b.report(Event{Decision: b.keepDecision(r, ReasonBehind, primary, err), Request: r, Waited: waited})
	return false
}

// behindDecision decides whether a request this replica cannot serve up to
// date can go to the primary; a Replay or Forward verdict has ReasonBehind.
func (b *Bridge) behindDecision(r *http.Request, cause error, primary string) Decision {
	size := r.ContentLength
	if size < 0 && r.Body != nil && r.Body != http.NoBody && !b.body.replayForwards {
		size = math.MaxInt64 // unknown: too large for fly-replay, fine to forward
	}
	d := b.decide(r, cause, primary, size, true)
	if d.Verdict == Replay || d.Verdict == Forward {
		d.Reason = ReasonBehind
	}
	return d
}

// safeMethod reports whether method is one that HTTP defines as safe, a
// read: only such requests wait for a replica to catch up.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// saw records that this node has applied transaction id.
func (b *Bridge) saw(id litefs.TXID) {
	for {
		old := b.seen.Load()
		if uint64(id) <= old || b.seen.CompareAndSwap(old, uint64(id)) {
			return
		}
	}
}

// setTXIDCookie adds the cookie naming transaction id to h.
func (b *Bridge) setTXIDCookie(h http.Header, id litefs.TXID, secure bool) {
	c := http.Cookie{
		Name:     b.cfg.TXIDCookie,
		Value:    id.String(),
		Path:     "/",
		MaxAge:   b.cookieMaxAge,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	h.Add("Set-Cookie", c.String())
}

// overTLS reports whether r reached this server, or the proxy in front of it
// (X-Forwarded-Proto, as Fly's edge sets it), over TLS. A client that forges
// the header only gets a Secure cookie its browser will not store over
// plain HTTP.
func overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}
