package litefs

import (
	"context"
	"database/sql/driver"

	"github.com/mattn/go-sqlite3"
)

// Stmt is a prepared statement of the litefs driver. It keeps SQLite's
// verdict from Prepare and checks the node's role each time a write runs, so
// a statement prepared on the primary is refused after a demotion.
type Stmt struct {
	ss    *sqlite3.SQLiteStmt
	c     *Conn
	cl    class
	query string
}

var (
	_ driver.Stmt             = (*Stmt)(nil)
	_ driver.StmtExecContext  = (*Stmt)(nil)
	_ driver.StmtQueryContext = (*Stmt)(nil)
)

// ExecContext runs the statement, refusing it first if it writes and this
// node may not.
func (s *Stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return runClass(s.c, ctx, s.cl, s.query, func() (driver.Result, error) { return s.ss.ExecContext(ctx, args) })
}

// QueryContext is ExecContext for statements that return rows.
func (s *Stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return queryClass(s.c, ctx, s.cl, s.query, func() (driver.Rows, error) { return s.ss.QueryContext(ctx, args) })
}

// Exec is ExecContext without a context; database/sql does not call it.
func (s *Stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

// Query is QueryContext without a context; database/sql does not call it.
func (s *Stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

// NumInput returns the number of placeholders.
func (s *Stmt) NumInput() int { return s.ss.NumInput() }

// Close closes the statement.
func (s *Stmt) Close() error { return s.ss.Close() }

func named(args []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, v := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv
}
