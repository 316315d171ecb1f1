package litefs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// A Tracker hears what the driver did on behalf of one context: the first
// write it refused and whether a write was committed. net/http middleware
// (package httpbridge) attaches one to each request context, so a handler
// that passes r.Context() to its database calls needs no other wiring.
//
// The zero value is ready to use; a Tracker is safe for concurrent use.
type Tracker struct {
	// refused and committed let readers skip the lock on the common path.
	refused   atomic.Bool
	committed atomic.Bool
	prefetch  atomic.Bool // PrefetchTXID was called
	mu        sync.Mutex
	refusal   error
	pos       *posFile // <db>-pos of the database last committed to; nil if none
	// reads are the TXID reads begun in the hooks of the commits to pos
	// (prefetch.go); unread is set when one of those commits began none,
	// and TXID must then read pos itself.
	reads  []*txidRead
	unread bool
}

type trackerKey struct{}

// WithTracker returns a copy of ctx that carries t.
func WithTracker(ctx context.Context, t *Tracker) context.Context {
	return context.WithValue(ctx, trackerKey{}, t)
}

// TrackerContext is a context carrying a Tracker of its own: middleware can
// embed one in its per-request state to get the context and the Tracker in
// the same allocation. Set Context to the parent before use, and do not copy
// a TrackerContext once used.
type TrackerContext struct {
	context.Context
	Tracker Tracker
}

// Value returns &c.Tracker for the key [TrackerFrom] looks up, and the
// parent's value for every other key.
func (c *TrackerContext) Value(key any) any {
	if key == (trackerKey{}) {
		return &c.Tracker
	}
	return c.Context.Value(key)
}

// TrackerFrom returns the Tracker carried by ctx, or nil.
func TrackerFrom(ctx context.Context) *Tracker {
	t, _ := ctx.Value(trackerKey{}).(*Tracker)
	return t
}

// ReportRefusal records err if it is a refusal (errors.Is(err,
// [ErrNotPrimary])) and none was recorded before; other errors are ignored.
// The driver calls it for every write it refuses; code that refuses writes by
// other means may call it too.
func (t *Tracker) ReportRefusal(err error) {
	if t == nil || !errors.Is(err, ErrNotPrimary) {
		return
	}
	t.mu.Lock()
	if t.refusal == nil {
		t.refusal = err
		t.refused.Store(true)
	}
	t.mu.Unlock()
}

// Refusal returns the first refusal recorded, or nil.
func (t *Tracker) Refusal() error {
	if t == nil || !t.refused.Load() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refusal
}

// Committed reports whether a write was committed through the driver with
// this tracker's context.
func (t *Tracker) Committed() bool {
	return t != nil && t.committed.Load()
}

// PrefetchTXID tells the driver that [Tracker.TXID] will be called after
// the commits made with this tracker's context. On a LiteFS mount whose event
// stream the driver follows, each commit then begins reading its TXID while
// SQLite writes the transaction, so that TXID rarely has to read <db>-pos
// after the commit, when LiteFS is busiest. httpbridge calls it for every
// request when read-your-writes is on.
func (t *Tracker) PrefetchTXID() {
	if t != nil {
		t.prefetch.Store(true)
	}
}

// saturated reports whether a read begun in a commit hook would be of no
// use: TXID will read <db>-pos after the commits anyway.
func (t *Tracker) saturated() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unread || len(t.reads) >= maxTXIDReads
}

// reportCommit records a committed write to the database whose position file
// is pos (nil for a database in memory), and the read of its TXID that its
// commit hook began, or nil.
func (t *Tracker) reportCommit(pos *posFile, rd *txidRead) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if pos != nil {
		if pos != t.pos {
			// Commits through another pool of the same file may be
			// reported out of their order: only a read after them all
			// covers them.
			t.unread = t.pos != nil
			t.pos, t.reads = pos, nil
		}
		if rd != nil && len(t.reads) < maxTXIDReads {
			t.reads = append(t.reads, rd)
		} else {
			t.unread = true
		}
	}
	t.mu.Unlock()
	t.committed.Store(true)
}
