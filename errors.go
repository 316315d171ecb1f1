package litefs

import (
	"context"
	"errors"
	"strconv"
)

var (
	// ErrNotPrimary matches every write this node refused because it is not
	// the primary: [*NotPrimaryError] (the primary is known) and [ErrNoPrimary]
	// (it is not). Test with errors.Is.
	ErrNotPrimary = errors.New("litefs: not the primary")

	// ErrNoPrimary reports a refused write when no primary is known: LiteFS
	// is disconnected or electing, or .primary could not be read or holds an
	// invalid hostname. Retrying later may succeed. It matches ErrNotPrimary.
	ErrNoPrimary error = &noPrimaryError{}

	// ErrReadOnlyTx reports a write statement inside a transaction begun with
	// sql.TxOptions{ReadOnly: true}.
	ErrReadOnlyTx = errors.New("litefs: write in a read-only transaction")
)

// NotPrimaryError reports a write refused on a replica, with the primary that
// can take it. PrimaryID is the primary's LiteFS hostname (on Fly.io, its
// machine ID): a token of letters, digits, '-', '_' and '.'.
type NotPrimaryError struct {
	PrimaryID string
	// Err is what revealed the refusal when SQLite or LiteFS reported it
	// (a write that raced a demotion); nil when the driver refused up front.
	Err error
}

func (e *NotPrimaryError) Error() string {
	if e.PrimaryID == "" {
		return "litefs: not the primary"
	}
	return "litefs: not the primary; writes go to " + strconv.Quote(e.PrimaryID)
}

// Unwrap returns the underlying error, if any.
func (e *NotPrimaryError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrNotPrimary].
func (e *NotPrimaryError) Is(target error) bool { return target == ErrNotPrimary }

// noPrimaryError carries why no primary is known; it matches both
// ErrNoPrimary and ErrNotPrimary so one errors.Is catches every refusal.
type noPrimaryError struct {
	reason string
	err    error
	probe  *prober // lets WaitPrimary watch the node that refused
}

const noPrimaryMsg = "litefs: no primary known"

func (e *noPrimaryError) Error() string {
	if e.reason == "" {
		return noPrimaryMsg
	}
	return noPrimaryMsg + ": " + e.reason
}

func (e *noPrimaryError) Unwrap() error { return e.err }

func (e *noPrimaryError) Is(target error) bool {
	return target == ErrNoPrimary || target == ErrNotPrimary
}

// refusal turns verdict, the role check's answer (nil, a *NotPrimaryError or
// a *noPrimaryError), into the refusal returned to the caller, wrapping
// cause (the error that revealed the refusal, or nil when the driver refused
// up front), and reports it to ctx's [Tracker]. It returns nil when verdict
// is nil. Every refusal the driver returns is built here.
func refusal(ctx context.Context, verdict, cause error) error {
	r := verdict
	var np *NotPrimaryError
	var nope *noPrimaryError
	switch {
	case verdict == nil:
		return nil
	case cause == nil:
	case errors.As(verdict, &np):
		r = &NotPrimaryError{PrimaryID: np.PrimaryID, Err: cause}
	case errors.As(verdict, &nope):
		r = &noPrimaryError{reason: nope.reason, err: cause, probe: nope.probe}
	}
	TrackerFrom(ctx).ReportRefusal(r)
	return r
}
