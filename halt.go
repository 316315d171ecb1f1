package litefs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxHaltHold is how long a HALT lock may be written under after it was
// asked for. LiteFS's primary drops a halt 30 to 35 s after granting it
// (a 30 s TTL checked every 5 s) and would then take a replica's commit
// without halting its own writes; the driver stops 5 s earlier, so a write
// in flight at the limit still ends before the primary drops the halt.
// Writes under an older hold fail with [ErrHaltExpired].
const MaxHaltHold = 25 * time.Second

// DefaultHaltWait bounds how long a write of a handle opened with
// [WithForwardWrites] waits for the HALT lock when its context has no
// earlier deadline: as long as LiteFS itself waits for the primary to halt.
const DefaultHaltWait = 10 * time.Second

// ErrHaltExpired reports a write under a HALT lock held longer than
// [MaxHaltHold]: it was refused rather than sent to a primary that may no
// longer be halted. Keep a hold to one job step or one migration.
var ErrHaltExpired = errors.New("litefs: HALT lock held too long")

// A HaltReason says why a write could not be forwarded through the HALT lock.
type HaltReason uint8

const (
	// HaltNoPrimary: no primary is known, so there is none to forward to.
	HaltNoPrimary HaltReason = iota + 1
	// HaltTimeout: the lock was not granted before the context ended.
	HaltTimeout
	// HaltRefused: LiteFS did not grant the lock: the primary did not halt,
	// or this replica did not catch up with it, within LiteFS's 10 s (EIO,
	// or EAGAIN), the primary went away (EIO), or <db>-lock could not be
	// opened. Every request failing after 10 s is also what LiteFS v0.5.14
	// does once a replica's replication has deadlocked (see the package
	// documentation): restart LiteFS on that node.
	HaltRefused
	// HaltExpired: the hold is older than MaxHaltHold (see ErrHaltExpired).
	HaltExpired
	// HaltReleased: the write came with the context of a WithHalt call that
	// has returned.
	HaltReleased
	// HaltForwardFailed: the write ran under the lock, but LiteFS could not
	// apply it on the primary.
	HaltForwardFailed

	numHaltReasons = iota + 1
)

var haltReasonNames = [numHaltReasons]string{
	HaltNoPrimary:     "no primary known",
	HaltTimeout:       "HALT lock not granted in time",
	HaltRefused:       "LiteFS did not grant the HALT lock",
	HaltExpired:       "HALT lock held too long",
	HaltReleased:      "HALT lock already released",
	HaltForwardFailed: "LiteFS could not forward the write",
}

func (r HaltReason) String() string {
	if int(r) < len(haltReasonNames) && haltReasonNames[r] != "" {
		return haltReasonNames[r]
	}
	return "HaltReason(" + strconv.Itoa(int(r)) + ")"
}

// HaltError reports a write on a replica that could not be forwarded to the
// primary through LiteFS's HALT lock, and why. It matches [ErrNotPrimary],
// so net/http middleware still replays a request that hits it, and, with
// HaltExpired, [ErrHaltExpired]. errors.As finds the [*NotPrimaryError] in
// Refusal when the primary is known.
type HaltError struct {
	Reason HaltReason
	// Refusal is the refusal the write would get without the lock: a
	// *NotPrimaryError or an error matching ErrNoPrimary.
	Refusal error
	// Err is the cause, when there is one: the context's error, LiteFS's
	// errno, SQLite's error.
	Err error
}

func (e *HaltError) Error() string {
	msg := "litefs: write not forwarded: " + e.Reason.String()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns Refusal and Err.
func (e *HaltError) Unwrap() []error { return []error{e.Refusal, e.Err} }

// Is reports whether target is ErrNotPrimary, or ErrHaltExpired for an
// expired hold.
func (e *HaltError) Is(target error) bool {
	return target == ErrNotPrimary || target == ErrHaltExpired && e.Reason == HaltExpired
}

// haltSems holds one *haltDB per <db>-lock path. It is process-wide
// because the lock is node-wide: LiteFS halts the primary for one replica
// handle at a time, and a second handle of this process would only queue
// inside LiteFS, where a wait cannot be given a deadline. It is the
// package's only state besides the driver's registration; entries are
// never removed (one per database).
var haltSems sync.Map

// haltDB is this process's state for one database's HALT lock.
type haltDB struct {
	sem chan struct{} // capacity 1: held by the hold in force
	// releasedPos is <db>-pos's mtime (ns) when this process last released
	// the lock, when this replica was exactly at the primary's position.
	releasedPos atomic.Int64
}

func haltState(lockPath string) *haltDB {
	if s, ok := haltSems.Load(lockPath); ok {
		return s.(*haltDB)
	}
	s, _ := haltSems.LoadOrStore(lockPath, &haltDB{sem: make(chan struct{}, 1)})
	return s.(*haltDB)
}

// haltSem returns the semaphore of the database whose lock is lockPath.
func haltSem(lockPath string) chan struct{} { return haltState(lockPath).sem }

// haltHold is one granted HALT lock on one database. Invariant: while
// released is false, this process holds the lock and its semaphore; release
// gives back both, once. Every other field is set before the hold is
// shared and never changes, so a hold is safe for concurrent use.
type haltHold struct {
	posPath string // <db>-pos: the database's key, as Conn.posPath
	lf      *lockFile
	db      *haltDB
	start   time.Time     // when the lock was asked for, before LiteFS's TTL began
	limit   time.Duration // MaxHaltHold, shorter in tests
	log     *slog.Logger
	parent  *haltHold // a hold on another database, from an enclosing WithHalt

	released atomic.Bool

	// conns are the connections with a transaction or write rows open
	// under this hold, begun with WithHalt's context (halt_conn.go): what
	// fn leaves open is ended before the lock is released, since LiteFS
	// releases it only once every transaction on the node has ended.
	mu    sync.Mutex
	conns map[*Conn]struct{}
}

// haltUnlockWait bounds how long WithHalt, or the end of a transaction or
// statement that took its own hold, waits for LiteFS to release the lock.
// LiteFS releases it only once every transaction open on this node has
// ended, a reader's included; past the bound the release goes on in the
// background, keeping the database's semaphore until LiteFS answers.
const haltUnlockWait = time.Second

// engage records that c has a transaction or rows open under h.
func (h *haltHold) engage(c *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns == nil {
		h.conns = make(map[*Conn]struct{})
	}
	h.conns[c] = struct{}{}
}

// disengage records that c's transaction or rows under h have ended.
func (h *haltHold) disengage(c *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

// endLeaked ends what fn left open under h: it rolls back a transaction,
// and closes write rows, which commits their statement.
func (h *haltHold) endLeaked() {
	h.mu.Lock()
	conns := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		if left := c.haltAbandon(h); left != "" {
			h.log.Warn("litefs: WithHalt's fn returned with work open under the HALT lock; ended it", "left", left)
		}
	}
}

type haltKey struct{}

// withHold returns a copy of ctx that lets writes through under h.
func withHold(ctx context.Context, h *haltHold) context.Context {
	h.parent, _ = ctx.Value(haltKey{}).(*haltHold)
	return context.WithValue(ctx, haltKey{}, h)
}

// holdFrom returns ctx's hold on the database whose position file is
// posPath, or nil.
func holdFrom(ctx context.Context, posPath string) *haltHold {
	if posPath == "" {
		return nil
	}
	h, _ := ctx.Value(haltKey{}).(*haltHold)
	for ; h != nil; h = h.parent {
		if h.posPath == posPath {
			return h
		}
	}
	return nil
}

// check returns nil if a write may run under h now, else why not.
// refusal is what the node's role check answered.
func (h *haltHold) check(refusal error) error {
	switch {
	case h.released.Load():
		return &HaltError{Reason: HaltReleased, Refusal: refusal}
	case time.Since(h.start) > h.limit:
		return &HaltError{Reason: HaltExpired, Refusal: refusal,
			Err: errors.New("held for " + time.Since(h.start).Round(time.Millisecond).String() +
				", limit " + h.limit.String())}
	case errors.Is(refusal, ErrNoPrimary):
		return &HaltError{Reason: HaltNoPrimary, Refusal: refusal}
	}
	return nil
}

// release gives the lock back to LiteFS and the semaphore to the next
// holder; it is safe to call more than once. It first ends what was left
// open under the hold, then asks LiteFS to release the lock, which LiteFS
// does only once every transaction and open rows on this node have ended.
// It waits for that at most haltUnlockWait, even when the caller's context
// has ended (LiteFS usually answers within milliseconds, and a caller
// should find the lock released when it can be); the release then goes on
// in the background, and the next hold on this database waits for it.
func (h *haltHold) release() {
	if !h.released.CompareAndSwap(false, true) {
		return
	}
	if held := time.Since(h.start); held > h.limit {
		h.log.Warn("litefs: HALT lock held longer than LiteFS allows; writes after the limit were refused",
			"held", held, "limit", h.limit)
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.endLeaked()
		// Still halted: this replica is exactly at the primary's position.
		if exists, at, err := statMtime(h.posPath); err == nil && exists {
			h.db.releasedPos.Store(at.UnixNano())
		}
		if err := h.lf.unlock(); err != nil {
			// Closing the file releases it all the same.
			h.log.Warn("litefs: releasing the HALT lock", "err", err)
		}
		h.lf.close()
		<-h.db.sem
	}()
	t := time.NewTimer(haltUnlockWait)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	h.log.Warn("litefs: releasing the HALT lock waits for a transaction still open on this node; "+
		"the primary stays halted and the next hold on this database waits until it ends",
		"waited", time.Since(start))
}

// lockPathOf returns <db>-lock for the position file <db>-pos.
func lockPathOf(posPath string) string {
	return strings.TrimSuffix(posPath, "-pos") + "-lock"
}

// takeHold takes the HALT lock on the database whose position file is
// posPath, for a write that refusal (the node's role check) refused. With
// no primary known it first waits for one, as WaitPrimary does. It returns
// nil and no error when this node became the primary meanwhile. ctx bounds
// every wait; the lock is never held past a failed call.
func takeHold(ctx context.Context, posPath string, refusal error, limit time.Duration, log *slog.Logger) (*haltHold, error) {
	var np *NotPrimaryError
	if !errors.As(refusal, &np) {
		primary, err := WaitPrimary(ctx, refusal)
		if err != nil {
			return nil, &HaltError{Reason: HaltNoPrimary, Refusal: refusal, Err: err}
		}
		if primary == "" {
			return nil, nil
		}
		refusal = &NotPrimaryError{PrimaryID: primary}
	}
	if posPath == "" {
		return nil, &HaltError{Reason: HaltRefused, Refusal: refusal, Err: ErrNoPosition}
	}
	lockPath := lockPathOf(posPath)
	db := haltState(lockPath)
	sem := db.sem
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &HaltError{Reason: HaltTimeout, Refusal: refusal, Err: context.Cause(ctx)}
	}
	if err := waitCaughtUp(ctx, posPath, db.releasedPos.Load()); err != nil {
		<-sem
		return nil, &HaltError{Reason: HaltTimeout, Refusal: refusal,
			Err: fmt.Errorf("this replica did not catch up with the primary: %w", err)}
	}
	lf, start, err := grant(ctx, lockPath, sem, refusal)
	if err != nil {
		return nil, err
	}
	return &haltHold{posPath: posPath, lf: lf, db: db, start: start, limit: limit, log: log}, nil
}

// waitCaughtUp waits until this replica has applied every transaction the
// primary committed before the last heartbeat it received, as far as LiteFS
// shows: <db>-pos is stamped with the commit time of the last transaction
// applied, and .lag with the time of the last heartbeat, which the primary
// sends only once it has streamed every transaction, both on the primary's
// clock. LiteFS v0.5.14 deadlocks a replica that receives a transaction
// from the primary after granting it the lock (its stream processor waits
// for a lock it holds), so asking while transactions are still on their way
// is what this avoids. It cannot see a transaction the primary commits
// after its last heartbeat: the primary has to be quiet for a moment (a
// heartbeat comes every second) before the lock is asked for. A replica
// that has applied nothing since this process released the lock (its
// <db>-pos still stamped releasedPos) was then exactly at the primary's
// position and need not wait: the transactions it forwarded itself come
// back to it, but LiteFS skips those. Outside LiteFS (no .lag or no
// <db>-pos) there is nothing to wait for.
func waitCaughtUp(ctx context.Context, posPath string, releasedPos int64) error {
	lagPath := filepath.Join(filepath.Dir(posPath), lagFile)
	return poll(ctx, 10*time.Millisecond, func() (bool, error) {
		lagExists, lagAt, lerr := statMtime(lagPath)
		posExists, posAt, perr := statMtime(posPath)
		switch {
		case lerr != nil || perr != nil:
			return false, nil // fail closed: wait, bounded by ctx
		case !lagExists || !posExists:
			return true, nil
		}
		return posAt.Before(lagAt) || releasedPos != 0 && posAt.UnixNano() == releasedPos, nil
	})
}

// grant asks LiteFS for the lock, holding sem. On success the caller owns
// the lock and sem. On failure sem is given back, at once or, when ctx ended
// while LiteFS was still deciding, as soon as LiteFS answers the cancelled
// request (releasing the lock if it granted it after all).
func grant(ctx context.Context, lockPath string, sem chan struct{}, refusal error) (*lockFile, time.Time, error) {
	lf, err := openLockFile(lockPath)
	if err != nil {
		<-sem
		return nil, time.Time{}, &HaltError{Reason: HaltRefused, Refusal: refusal, Err: err}
	}
	start := time.Now()
	granted := make(chan error, 1)
	go func() { granted <- lf.lock() }()
	select {
	case err := <-granted:
		if err != nil {
			lf.close()
			<-sem
			return nil, start, &HaltError{Reason: HaltRefused, Refusal: refusal, Err: &lockError{path: lockPath, err: err}}
		}
		return lf, start, nil
	case <-ctx.Done():
		lf.abort()
		go func() {
			<-granted
			lf.close()
			<-sem
		}()
		return nil, start, &HaltError{Reason: HaltTimeout, Refusal: refusal, Err: context.Cause(ctx)}
	}
}

// lockError is LiteFS's answer to a request for the HALT lock.
type lockError struct {
	path string
	err  error
}

func (e *lockError) Error() string { return "lock " + e.path + ": " + e.err.Error() }
func (e *lockError) Unwrap() error { return e.err }

// WithHalt runs fn so that its writes to db's database succeed on a
// replica: it takes LiteFS's HALT lock (write forwarding), calls fn with a
// context under which the driver lets writes through on this node, and
// releases the lock when fn returns or panics. LiteFS sends each
// transaction committed under the lock to the primary before it completes
// here. On the primary, or outside LiteFS, it calls fn(ctx) directly.
//
// Only writes made with fn's context (or a context derived from it) are let
// through; the rest of the process is refused as before, so a request
// served meanwhile is still replayed. ctx bounds the wait for the lock, and
// for a primary when none is known. A failure to take the lock is a
// [*HaltError] matching [ErrNotPrimary] (and [ErrNoPrimary] when no primary
// was found); fn is not called then. Before asking LiteFS, WithHalt waits
// until this replica has applied what the primary committed (up to the
// primary's next heartbeat, 1 s, after it wrote): LiteFS v0.5.14 deadlocks
// a replica that receives one of the primary's transactions after the lock
// is granted. So while the primary writes without pause, WithHalt waits
// until ctx ends. WithHalt calls for one database are
// serialized in the process; a nested call with fn's context reuses the
// lock. Writes after [MaxHaltHold] fail with [ErrHaltExpired]: keep fn to
// one job step or one migration. While the lock is held, the primary's own
// writes wait.
func WithHalt(ctx context.Context, db *sql.DB, fn func(ctx context.Context) error) error {
	ctr, err := connectorOf(db)
	if err != nil {
		return err
	}
	var posPath string
	var refusal error
	if err := withConn(ctx, db, func(c *Conn) error {
		posPath, refusal = c.posPath(), c.probe.check()
		return nil
	}); err != nil {
		return err
	}
	if refusal == nil || holdFrom(ctx, posPath) != nil {
		return fn(ctx)
	}
	h, err := takeHold(ctx, posPath, refusal, ctr.cfg.haltLimit, ctr.cfg.log)
	if err != nil {
		return err
	}
	if h == nil {
		return fn(ctx) // this node became the primary
	}
	defer h.release()
	return fn(withHold(ctx, h))
}
