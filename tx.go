package litefs

import (
	"context"
	"database/sql/driver"
)

// Tx is a transaction of the litefs driver. It reports a commit that wrote
// to the [Tracker] of the context the transaction began with, or if that
// had none, of the first statement run in it with one.
type Tx struct {
	c        *Conn
	parent   driver.Tx // nil for a read-only transaction, which the driver began itself
	readOnly bool
	tracker  *Tracker
	// abandoned: rolled back by the release of the WithHalt hold it was
	// begun under, after WithHalt returned (halt_conn.go).
	abandoned bool
}

var _ driver.Tx = (*Tx)(nil)

// Commit commits the transaction. One written under a HALT lock that has
// expired or been released rolls back instead (halt_conn.go).
func (tx *Tx) Commit() error {
	tx.c.halt.mu.Lock()
	defer tx.c.halt.mu.Unlock()
	defer tx.c.endTx(tx)
	if tx.abandoned {
		err := &HaltError{Reason: HaltReleased, Refusal: tx.c.probe.check()}
		tx.tracker.ReportRefusal(err)
		return err
	}
	if tx.readOnly {
		return tx.c.endReadOnly("COMMIT")
	}
	// The transaction's hold, if any, ends with it.
	defer tx.c.haltEnd()
	if err := tx.c.haltCommit(); err != nil {
		tx.parent.Rollback()
		tx.tracker.ReportRefusal(err)
		return err
	}
	if tx.c.probe.movedNow() {
		// The directory moved since the transaction wrote: its commit
		// would land in a file the path no longer shows.
		tx.parent.Rollback()
		err := tx.c.probe.checkMoved()
		tx.tracker.ReportRefusal(err)
		return err
	}
	// The Tracker of the transaction's context gets the commit, or the
	// refusal when LiteFS refuses or fails to forward it.
	ctx := context.Background()
	if tx.tracker != nil {
		ctx = WithTracker(ctx, tx.tracker)
	}
	r := run{c: tx.c, ctx: ctx, tracker: tx.tracker}
	if tx.tracker != nil {
		tx.c.hookCommits()
		tx.c.prefetch = tx.c.prefetchFor(tx.tracker)
	}
	return r.end(tx.parent.Commit())
}

// Rollback aborts the transaction; it returns nil for one already rolled
// back when its WithHalt hold was released.
func (tx *Tx) Rollback() error {
	tx.c.halt.mu.Lock()
	defer tx.c.halt.mu.Unlock()
	defer tx.c.endTx(tx)
	if tx.abandoned {
		return nil
	}
	if tx.readOnly {
		return tx.c.endReadOnly("ROLLBACK")
	}
	defer tx.c.haltEnd()
	return tx.parent.Rollback()
}

// endTx forgets tx as the connection's open transaction.
func (c *Conn) endTx(tx *Tx) {
	if c.tx == tx {
		c.tx = nil
	}
}

// abandon rolls back a transaction left open under a WithHalt hold being
// released; the caller holds the connection's halt.mu.
func (tx *Tx) abandon() {
	if err := tx.parent.Rollback(); err != nil {
		tx.c.log.Warn("litefs: rolling back a transaction left open under the HALT lock", "err", err)
	}
	tx.abandoned = true
	tx.c.endTx(tx)
	tx.c.haltEnd()
}
