package httpbridge

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/litefs-sql/litefs"
)

// A Reason says why the bridge handled a refused write the way it did.
type Reason uint8

const (
	// ReasonRefused: a write was refused and the primary is known; the
	// request goes there.
	ReasonRefused Reason = iota + 1
	// ReasonNoPrimary: no primary is known (or this node became the primary
	// while the bridge waited for one).
	ReasonNoPrimary
	// ReasonLoop: sending the request on would loop: the primary is this
	// node or the node the request was replayed from, or the request has
	// made Config.MaxHops replays already.
	ReasonLoop
	// ReasonReplayFailed: the request came back with Fly-Replay-Failed; Fly
	// does not replay such a request again.
	ReasonReplayFailed
	// ReasonTooLarge: the request body is over what the replay can carry.
	ReasonTooLarge
	// ReasonTooLate: the write was refused after the response had started;
	// the handler's response stands.
	ReasonTooLate
	// ReasonBehind: the request carries a read-your-writes cookie naming a
	// transaction this replica had not applied after Config.TXIDWait; the
	// request goes to the primary (Replay or Forward), or, where the loop,
	// hop and body rules that give the Reasons above forbid it, is served
	// here (Keep).
	ReasonBehind
	// ReasonPartial: the write was refused after the same request had
	// committed another write here (the node was demoted in between);
	// replaying it would run that write twice, so the handler's response
	// stands.
	ReasonPartial

	numReasons = iota + 1
)

var reasonNames = [numReasons]string{
	ReasonRefused:      "refused",
	ReasonNoPrimary:    "no primary",
	ReasonLoop:         "loop",
	ReasonReplayFailed: "replay failed",
	ReasonTooLarge:     "too large",
	ReasonTooLate:      "too late",
	ReasonBehind:       "behind",
	ReasonPartial:      "partly committed",
}

// Reasons returns every Reason, in order: what a metrics exporter iterates
// over with [Bridge.Count].
func Reasons() []Reason {
	rs := make([]Reason, 0, numReasons-1)
	for r := ReasonRefused; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// String returns the reason's name, as logs and [Status] show it.
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// A Verdict is what the bridge does with a refused request.
type Verdict uint8

const (
	// Replay sends the request to the primary with Config.Replay.
	Replay Verdict = iota + 1
	// Forward sends the request to the primary with Config.Forward: its body
	// is over Config.MaxReplayBody.
	Forward
	// Reject answers the client with Config.Reject (503 or 413 by default).
	Reject
	// Keep leaves the handler's response as it is: too late to replace it.
	// With ReasonBehind: the handler serves the request here.
	Keep
)

func (v Verdict) String() string {
	switch v {
	case Replay:
		return "replay"
	case Forward:
		return "forward"
	case Reject:
		return "reject"
	case Keep:
		return "keep"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// A Decision is the bridge's answer to a refused write.
type Decision struct {
	Verdict Verdict
	Reason  Reason
	// Primary is the ID of the node that takes writes; "" if none is known.
	Primary string
	// Self is this node's instance ID (Config.InstanceID).
	Self string
	// Hops is how many times the request was replayed before it got here.
	// A replay sends it on with Hops+1.
	Hops int
	// BodySize is the request body's length in bytes; -1 if not known.
	BodySize int64
	// MaxBody is the body limit that applied (for ReasonTooLarge).
	MaxBody int64
	// RetryAfter is how long a rejected client should wait before retrying;
	// 0 when retrying soon would not help.
	RetryAfter time.Duration
	// Err is the refusal; with ReasonBehind, what the wait ended with.
	Err error
}

// Decide returns what the bridge does with r, whose handler saw refusal (an
// error matching litefs.ErrNotPrimary), assuming the response has not
// started. It is pure: it reads r's headers and ContentLength, never its
// body, and does not wait. A Decision with ReasonNoPrimary is final only when
// waiting for a primary is disabled; the Handler waits, then decides again.
// For an error that is not a refusal, Decide returns the zero Decision.
func (b *Bridge) Decide(r *http.Request, refusal error) Decision {
	if !errors.Is(refusal, litefs.ErrNotPrimary) {
		return Decision{}
	}
	return b.decide(r, refusal, primaryOf(refusal), r.ContentLength, true)
}

// primaryOf returns the primary a refusal names, or "".
func primaryOf(refusal error) string {
	var np *litefs.NotPrimaryError
	if errors.As(refusal, &np) && litefs.ValidPrimaryID(np.PrimaryID) {
		return np.PrimaryID
	}
	return ""
}

// decide is Decide with the body facts the Handler knows: size is the body's
// length (-1 if unknown; more than the limit if it is over), and kept
// whether a Forwarder could re-send it.
func (b *Bridge) decide(r *http.Request, refusal error, primary string, size int64, kept bool) Decision {
	hops, fromPrimary := replayOrigin(r.Header, primary)
	d := Decision{
		Primary:  primary,
		Self:     b.cfg.InstanceID,
		Hops:     hops,
		BodySize: size,
		Err:      refusal,
	}
	reject := func(reason Reason, retry time.Duration) Decision {
		d.Verdict, d.Reason, d.RetryAfter = Reject, reason, retry
		return d
	}
	switch {
	case len(r.Header[HeaderReplayFailed]) > 0:
		return reject(ReasonReplayFailed, b.cfg.RetryAfter)
	case hops >= b.cfg.MaxHops:
		return reject(ReasonLoop, b.cfg.RetryAfter)
	case primary == "":
		return reject(ReasonNoPrimary, b.cfg.RetryAfter)
	case primary == b.cfg.InstanceID || fromPrimary:
		return reject(ReasonLoop, b.cfg.RetryAfter)
	}
	p := b.body
	switch {
	case p.replayForwards && kept, !p.replayForwards && size <= p.replayMax:
		d.Verdict, d.Reason = Replay, ReasonRefused
	case p.forwards && kept:
		d.Verdict, d.Reason = Forward, ReasonTooLarge
	default:
		d.Verdict, d.Reason, d.MaxBody = Reject, ReasonTooLarge, p.limit()
	}
	return d
}
