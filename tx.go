package litefs

import (
	"context"
	"database/sql/driver"
)

// Tx is a transaction of the litefs driver. It reports a commit that wrote
// to the [Tracker] of the context the transaction began with.
type Tx struct {
	c        *Conn
	parent   driver.Tx // nil for a read-only transaction, which the driver began itself
	readOnly bool
	tracker  *Tracker
}

var _ driver.Tx = (*Tx)(nil)

// Commit commits the transaction. One written under a HALT lock that has
// expired or been released rolls back instead (halt_conn.go).
func (tx *Tx) Commit() error {
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
	// The Tracker of the transaction's context gets the commit, or the
	// refusal when LiteFS refuses or fails to forward it.
	ctx := context.Background()
	if tx.tracker != nil {
		ctx = WithTracker(ctx, tx.tracker)
	}
	r := run{c: tx.c, ctx: ctx, tracker: tx.tracker}
	return r.end(tx.parent.Commit())
}

// Rollback aborts the transaction.
func (tx *Tx) Rollback() error {
	if tx.readOnly {
		return tx.c.endReadOnly("ROLLBACK")
	}
	defer tx.c.haltEnd()
	return tx.parent.Rollback()
}
