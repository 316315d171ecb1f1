package litefs

import (
	"database/sql/driver"
	"io"

	"github.com/mattn/go-sqlite3"
)

// Rows are the rows of a query that may write (INSERT ... RETURNING). It
// embeds go-sqlite3's rows, so it has exactly their methods, and reports the
// commit SQLite makes when they run out or close, or the refusal if that
// commit fails, to the query's context.
type Rows struct {
	*sqlite3.SQLiteRows
	r    run // the query's run, for its end once the rows end
	done bool
}

// Next reads the next row.
func (r *Rows) Next(dest []driver.Value) error {
	r.r.c.halt.mu.Lock()
	defer r.r.c.halt.mu.Unlock()
	err := r.SQLiteRows.Next(dest)
	switch {
	case err == io.EOF:
		r.end(nil)
	case err != nil:
		return r.end(err)
	}
	return err
}

// Close closes the rows.
func (r *Rows) Close() error {
	r.r.c.halt.mu.Lock()
	defer r.r.c.halt.mu.Unlock()
	return r.closeLocked()
}

// closeLocked is Close for a caller holding the connection's halt.mu.
func (r *Rows) closeLocked() error {
	return r.end(r.SQLiteRows.Close())
}

func (r *Rows) end(err error) error {
	if r.done {
		return err
	}
	defer r.r.c.haltStatementDone() // the statement's HALT hold ends with its rows (halt_conn.go)
	r.done = err == nil
	return r.r.end(err)
}
