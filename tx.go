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

// Commit commits the transaction.
func (tx *Tx) Commit() error {
	if tx.readOnly {
		return tx.c.endReadOnly("COMMIT")
	}
	r := run{c: tx.c, ctx: context.Background(), tracker: tx.tracker}
	return r.end(tx.parent.Commit())
}

// Rollback aborts the transaction.
func (tx *Tx) Rollback() error {
	if tx.readOnly {
		return tx.c.endReadOnly("ROLLBACK")
	}
	return tx.parent.Rollback()
}
