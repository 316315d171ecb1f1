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
		return tx.end("COMMIT")
	}
	// HALT (halt_conn.go): the transaction's hold ends with it; a
	// transaction written under an expired or released hold rolls back.
	defer tx.c.haltEnd()
	if err := tx.c.haltCommit(); err != nil {
		tx.parent.Rollback()
		return err
	}
	if err := tx.parent.Commit(); err != nil {
		return tx.c.failed(WithTracker(context.Background(), tx.tracker), err)
	}
	tx.c.afterRun(context.Background(), tx.tracker)
	return nil
}

// Rollback aborts the transaction.
func (tx *Tx) Rollback() error {
	if tx.readOnly {
		return tx.end("ROLLBACK")
	}
	tx.c.committed = false
	defer tx.c.haltEnd() // HALT (halt_conn.go)
	return tx.parent.Rollback()
}

// end finishes a read-only transaction. query_only stays on: reads do not
// mind, and the next write sets it as the node's role requires.
func (tx *Tx) end(stmt string) error {
	tx.c.roTx = false
	_, err := tx.c.sc.ExecContext(context.Background(), stmt, nil)
	if err != nil && stmt == "COMMIT" {
		// database/sql treats the transaction as over whatever Commit
		// returns, so do not leave it open in SQLite.
		tx.c.sc.ExecContext(context.Background(), "ROLLBACK", nil)
	}
	return err
}
