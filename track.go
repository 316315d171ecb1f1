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
	last      *trackedDB   // the database last committed to; nil if none
	dbs       []*trackedDB // every database committed to, up to maxTrackedDBs
	// unsure: a commit may have written a database it is not filed under
	// (more databases than dbs holds, or a connection with others
	// attached): TXIDOf reads the position of any database asked for.
	unsure bool
}

// maxTrackedDBs bounds the databases a Tracker tells apart; TXIDOf reads
// the position of one it did not keep.
const maxTrackedDBs = 4

// trackedDB is what a Tracker heard of the commits to one database.
type trackedDB struct {
	key string   // its <db>-pos, symlinks resolved (Connector.holdKey)
	pos *posFile // the position file of the first pool that reported
	// reads are the TXID reads begun in the hooks of its commits
	// (prefetch.go); unread is set when one of those commits began none,
	// or came through another pool, and the TXID must be read from pos.
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
func (t *Tracker) saturated(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.find(key)
	return d != nil && (d.unread || len(d.reads) >= maxTXIDReads) || d == nil && len(t.dbs) >= maxTrackedDBs
}

// find returns the database whose position file is key, or nil; t.mu is
// held.
func (t *Tracker) find(key string) *trackedDB {
	for _, d := range t.dbs {
		if d.key == key {
			return d
		}
	}
	return nil
}

// reportCommit records a committed write to the database whose position file
// is pos (nil for a database in memory), and the read of its TXID that its
// commit hook began, or nil. attached says that the connection has other
// databases attached, which the commit may have written.
func (t *Tracker) reportCommit(pos *posFile, key string, rd *txidRead, attached bool) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if pos != nil {
		d := t.find(key)
		switch {
		case d == nil:
			d = &trackedDB{key: key, pos: pos}
			if len(t.dbs) < maxTrackedDBs {
				t.dbs = append(t.dbs, d)
			} else {
				t.unsure = true
			}
		case d.pos != pos:
			// Commits through another pool of the same file may be
			// reported out of their order: only a read after them all
			// covers them.
			d.unread = true
		}
		if rd != nil && len(d.reads) < maxTXIDReads {
			d.reads = append(d.reads, rd)
		} else {
			d.unread = true
		}
		t.last = d
	}
	t.unsure = t.unsure || attached
	t.mu.Unlock()
	t.committed.Store(true)
}
