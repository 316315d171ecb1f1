package litefs

import (
	"context"
	"errors"
	"sync"

	"github.com/mattn/go-sqlite3"
)

// connHalt is a connection's part in write forwarding. Invariants: tx and
// stmt, when set, are holds on this connection's database; admitted is true
// exactly while a statement or transaction let through under a hold is
// running (from admit to the end of its run, or to Commit or Rollback),
// which is the only time a replica connection runs without query_only; a
// hold the connection took itself (stmt, or tx with txOwned) is released
// when that statement or transaction ends, or with the connection.
type connHalt struct {
	forward  bool      // WithForwardWrites: writes on a replica take the lock themselves
	tx       *haltHold // the hold the current transaction writes under
	txOwned  bool      // tx was taken by BeginTx for this transaction
	stmt     *haltHold // taken for one autocommit write
	admitted bool
	cfg      *config

	// engaged is the WithHalt hold (from a context, not taken by this
	// connection) that the open transaction, txw, or the open write rows,
	// rows, run under; the hold lists the connection until haltEnd. mu
	// serializes the connection's statements and transaction ends with
	// haltAbandon, which WithHalt's release runs from another goroutine.
	key     string // <db>-pos with symlinks resolved (Connector.holdKey); "" outside a mount
	engaged *haltHold
	txw     *Tx
	rows    *Rows
	mu      sync.Mutex
}

// admitHalted is admit's decision on a write that the role check refused
// on this node: under a hold on this database (the transaction's, or one in
// ctx, or one taken now for a handle that forwards its writes), it lets the
// write through and reports admitted; begin then runs it with query_only
// off, as on the primary. It returns an error when a hold exists but cannot
// be written under, and false, nil when there is no hold: admit refuses as
// usual.
func (c *Conn) admitHalted(ctx context.Context, refusal error) (admitted bool, err error) {
	h := c.halt.tx
	if h == nil {
		h = c.halt.stmt
	}
	fromCtx := false
	if h == nil {
		h = holdFrom(ctx, c.posPath())
		fromCtx = h != nil
	}
	if h == nil && c.halt.forward {
		if h, err = c.takeOwnHold(ctx, refusal); err != nil || h == nil {
			return false, err
		}
		c.halt.stmt = h
	}
	if h == nil {
		return false, nil
	}
	if err = h.check(refusal); err != nil {
		c.haltStatementDone() // gives back a hold taken for this statement
		return false, err
	}
	c.halt.admitted = true
	if fromCtx {
		c.engage(h)
	}
	return true, nil
}

// engage lists c in h, a WithHalt hold it runs a transaction or statement
// under, so that h's release can end what is left open.
func (c *Conn) engage(h *haltHold) {
	if c.halt.engaged == h {
		return
	}
	c.halt.engaged = h
	h.engage(c)
}

// haltAbandon ends what c has open under h, which is being released: it
// closes write rows (SQLite commits their statement, under the hold still)
// or rolls back the transaction, and returns what it ended ("" for
// nothing). The user's *sql.Tx then fails to Commit with a [*HaltError]
// (HaltReleased), and its Rollback returns nil: database/sql's objects stay
// the user's, and the driver only keeps them from touching SQLite.
func (c *Conn) haltAbandon(h *haltHold) string {
	c.halt.mu.Lock()
	defer c.halt.mu.Unlock()
	if c.halt.engaged != h {
		return ""
	}
	switch {
	case c.halt.rows != nil:
		c.halt.rows.closeLocked()
		return "rows"
	case c.halt.txw != nil:
		c.halt.txw.abandon()
		return "transaction"
	}
	c.haltEnd()
	return ""
}

// takeOwnHold takes the lock for a handle that forwards its writes, bounded
// by ctx and DefaultHaltWait.
func (c *Conn) takeOwnHold(ctx context.Context, refusal error) (*haltHold, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultHaltWait)
	defer cancel()
	return takeHold(ctx, c.posPath(), refusal, c.halt.cfg.haltLimit, c.halt.cfg.log)
}

// haltStatementDone ends what a statement started under a hold, unless a
// transaction is still open: query_only goes back on, and a hold taken for
// the statement is released. It runs after every run (for rows that may
// write, when they end) and after every admission that runs nothing (a
// prepare).
func (c *Conn) haltStatementDone() {
	if !c.halt.admitted && c.halt.stmt == nil || c.halt.tx != nil || !c.sc.AutoCommit() {
		return
	}
	c.haltEnd()
}

// haltBegin runs before BEGIN of a transaction that is not read-only: the
// transaction writes under ctx's hold on this database, or, for a handle
// that forwards its writes, under a hold taken now on a replica and kept to
// Commit or Rollback. Taking it at the first write instead would be too
// late: LiteFS brings the replica up to the primary's position when it
// grants the lock, which a transaction's snapshot must not straddle.
func (c *Conn) haltBegin(ctx context.Context) error {
	if h := holdFrom(ctx, c.posPath()); h != nil {
		c.halt.tx = h
		c.engage(h)
		return nil
	}
	if !c.halt.forward {
		return nil
	}
	refusal := c.probe.check()
	if refusal == nil {
		return nil
	}
	h, err := c.takeOwnHold(ctx, refusal)
	if err != nil {
		TrackerFrom(ctx).ReportRefusal(err)
		return err
	}
	c.halt.tx, c.halt.txOwned = h, h != nil
	return nil
}

// haltCommit returns why a transaction written under a hold must not
// commit (the hold expired or was released), or nil.
func (c *Conn) haltCommit() error {
	if c.halt.tx == nil || !c.halt.admitted {
		return nil
	}
	return c.halt.tx.check(c.probe.check())
}

// haltEnd ends the connection's holds, at the end of a transaction, of an
// autocommit statement, or with the connection: query_only goes back on if
// a write was let through, and a hold the connection took is released.
func (c *Conn) haltEnd() {
	tx, owned, stmt := c.halt.tx, c.halt.txOwned, c.halt.stmt
	c.halt.tx, c.halt.txOwned, c.halt.stmt = nil, false, nil
	if e := c.halt.engaged; e != nil {
		c.halt.engaged, c.halt.txw, c.halt.rows = nil, nil, nil
		e.disengage(c)
	}
	if c.halt.admitted {
		c.halt.admitted = false
		if err := c.setQueryOnly(true); err != nil {
			c.halt.cfg.log.Warn("litefs: restoring query_only after a forwarded write", "err", err)
		}
	}
	if owned {
		tx.release()
	}
	if stmt != nil {
		stmt.release()
	}
}

// haltFailed turns an I/O error of a write let through under a hold into a
// [*HaltError]: LiteFS failed to send the commit to the primary. It returns
// nil for other errors.
func (c *Conn) haltFailed(err error) error {
	var se sqlite3.Error
	if !c.halt.admitted || !errors.As(err, &se) || se.Code != sqlite3.ErrIoErr {
		return nil
	}
	// From the mount files, as for any write that failed as a replica's do.
	refusal := c.probe.recheck(err)
	if refusal == nil {
		return nil
	}
	return &HaltError{Reason: HaltForwardFailed, Refusal: refusal, Err: err}
}

// posPath returns <db>-pos, with its directory's symlinks resolved, which
// names the database's HALT lock and state in this process; "" for a
// database outside a mount.
func (c *Conn) posPath() string { return c.halt.key }
