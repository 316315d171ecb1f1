package litefs

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
)

// snapshot is the connection state that statements of a string may change
// before a later statement of the same string is refused: the settings its
// PRAGMA statements set (PRAGMA foreign_keys = OFF; ALTER TABLE ...) and the
// databases it attaches or detaches. end puts them back after a refusal.
// It is taken only for strings that name them.
type snapshot struct {
	settings map[string]string // pragma reference ([schema.]name) -> value as "PRAGMA ref" read it
	attached map[string]string // schema name -> file ("" for in-memory); nil when not taken
}

// takeSnapshot returns the state query may change, or nil when it names
// nothing to restore. A setting that cannot be read back
// (case_sensitive_like) is recorded as the DSN set it, or SQLite's default.
func (c *Conn) takeSnapshot(ctx context.Context, query string) *snapshot {
	refs, attach := statePragmas(query)
	if len(refs) == 0 && !attach {
		return nil
	}
	s := &snapshot{settings: map[string]string{}}
	for _, ref := range refs {
		switch rows := c.readRows(ctx, "PRAGMA "+ref.sql(), 0); {
		case len(rows) == 1:
			s.settings[ref.sql()] = rows[0]
		case ref.name == "case_sensitive_like":
			s.settings[ref.sql()] = c.info.caseSensitiveLike
		}
	}
	if attach {
		s.attached = map[string]string{}
		names := c.readRows(ctx, "PRAGMA database_list", 1)
		files := c.readRows(ctx, "PRAGMA database_list", 2)
		for i := range min(len(names), len(files)) {
			s.attached[names[i]] = files[i]
		}
	}
	return s
}

// restore puts back what s recorded, best effort: the connection is already
// refusing the statement that failed, and nothing here can write.
func (c *Conn) restore(ctx context.Context, s *snapshot) {
	for ref, v := range s.settings {
		c.sc.ExecContext(ctx, fmt.Sprintf("PRAGMA %s = %s", ref, quoteLiteral(v)), nil)
	}
	if s.attached == nil {
		return
	}
	now := map[string]bool{}
	for _, name := range c.readRows(ctx, "PRAGMA database_list", 1) {
		now[name] = true
		if _, ok := s.attached[name]; !ok {
			c.sc.ExecContext(ctx, "DETACH "+quoteIdent(name), nil)
		}
	}
	for name, file := range s.attached {
		if !now[name] {
			c.sc.ExecContext(ctx, fmt.Sprintf("ATTACH %s AS %s", quoteLiteral(file), quoteIdent(name)), nil)
		}
	}
}

// readRows returns column col of every row query returns, as text.
func (c *Conn) readRows(ctx context.Context, query string, col int) []string {
	rows, err := c.sc.QueryContext(ctx, query, nil)
	if err != nil {
		return nil
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	var out []string
	for col < len(dest) && rows.Next(dest) == nil {
		switch v := dest[col].(type) {
		case []byte:
			out = append(out, string(v))
		case nil:
			out = append(out, "")
		default:
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

// pragmaRef names a setting in one schema, or in the default one.
type pragmaRef struct{ schema, name string }

// sql is ref as it follows PRAGMA.
func (ref pragmaRef) sql() string {
	if ref.schema == "" {
		return ref.name
	}
	return quoteIdent(ref.schema) + "." + ref.name
}

// statePragmas returns the connection settings query's PRAGMA statements set
// (see pragmaSettings), each in the schema it names, and whether it attaches
// or detaches a database.
func statePragmas(query string) (refs []pragmaRef, attach bool) {
	eachStatement(query, func(sc *scanner) bool {
		switch {
		case strings.EqualFold(sc.tok, "ATTACH") || strings.EqualFold(sc.tok, "DETACH"):
			attach = true
		case strings.EqualFold(sc.tok, "PRAGMA"):
			ref := pragmaRef{name: sc.name()}
			if sc.punct('.') {
				ref = pragmaRef{schema: ref.name, name: sc.name()}
			}
			ref.name = strings.ToLower(ref.name)
			if pragmaSettings[ref.name] && (sc.punct('=') || sc.punct('(')) {
				refs = append(refs, ref)
			}
		}
		return true
	})
	return refs, attach
}

// detaches reports whether some statement of query starts with DETACH.
func detaches(query string) bool {
	return eachStatement(query, func(sc *scanner) bool {
		return !strings.EqualFold(sc.tok, "DETACH")
	})
}

// eachStatement calls f with sc's token the first word of each statement of
// query (f may scan on), until f returns false; it reports whether f did.
func eachStatement(query string, f func(sc *scanner) bool) (stopped bool) {
	sc := scanner{s: query}
	start := true
	for k := sc.next(); k != tokEOF; k = sc.next() {
		if k == tokWord && start && !f(&sc) {
			return true
		}
		start = k == tokSemi
	}
	return false
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// stringSavepoints returns the savepoints query's statements open, in order,
// and whether the driver can undo them after a refusal by rolling back to
// and releasing each, newest first: false when a statement ends or begins a
// transaction or a savepoint (RELEASE, ROLLBACK, COMMIT, END, BEGIN), after
// which the driver cannot tell which savepoints are the string's.
func stringSavepoints(query string) (names []string, exact bool) {
	stopped := eachStatement(query, func(sc *scanner) bool {
		if strings.EqualFold(sc.tok, "SAVEPOINT") {
			name := sc.name()
			names = append(names, name)
			return name != ""
		}
		return !endsTransaction[strings.ToLower(sc.tok)]
	})
	if stopped {
		return nil, false
	}
	return names, true
}

var endsTransaction = set("release", "rollback", "commit", "end", "begin")

// undoSavepoints rolls back to and releases names, newest first: the
// savepoints a refused string opened inside the caller's transaction.
func (c *Conn) undoSavepoints(ctx context.Context, names []string) {
	for i := len(names) - 1; i >= 0; i-- {
		c.sc.ExecContext(ctx, "ROLLBACK TO "+quoteIdent(names[i]), nil)
		c.sc.ExecContext(ctx, "RELEASE "+quoteIdent(names[i]), nil)
	}
}
