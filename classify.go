package litefs

import "strings"

// class is what the driver knows of a SQL string before running it.
type class uint8

const (
	// classRead: SQLite reports the one statement read-only.
	classRead class = iota + 1
	// classWrite: SQLite reports the one statement may write.
	classWrite
	// classMaybe: the string may or may not write, and only running it tells:
	// several statements (go-sqlite3 does not expose the tail of a prepared
	// statement, so the driver cannot ask SQLite about each ahead of time),
	// CREATE ... IF NOT EXISTS and DROP ... IF EXISTS (no-ops when the schema
	// is already there), PRAGMA journal_mode. On a replica these run under
	// PRAGMA query_only, so SQLite refuses the first write before it takes a
	// lock, and lets the rest through.
	classMaybe
)

// pragmasThatWrite lists pragmas that sqlite3_stmt_readonly reports
// read-only although they may write the database file.
var pragmasThatWrite = map[string]bool{
	"optimize":           true, // may run ANALYZE
	"wal_checkpoint":     true, // copies WAL frames into the database
	"incremental_vacuum": true,
}

// refine corrects SQLite's verdict on a single statement where
// sqlite3_stmt_readonly is known to be wrong or too coarse. It looks at the
// first keywords only, and its result is cached per SQL string.
func refine(query string, readonly bool) class {
	sc := scanner{s: query}
	switch w := sc.word(); {
	case strings.EqualFold(w, "EXPLAIN"):
		return classRead // EXPLAIN never runs the statement it explains
	case strings.EqualFold(w, "PRAGMA"):
		name := sc.word()
		if sc.punct('.') {
			name = sc.word()
		}
		name = strings.ToLower(name)
		if name == "journal_mode" {
			return classMaybe // reading it, or setting the mode it has, writes nothing
		}
		if readonly && pragmasThatWrite[name] {
			return classWrite
		}
	case !readonly && (strings.EqualFold(w, "CREATE") || strings.EqualFold(w, "DROP")):
		if hasIfExists(&sc) {
			return classMaybe
		}
	}
	if readonly {
		return classRead
	}
	return classWrite
}

// hasIfExists reports whether the DDL statement after CREATE or DROP says IF
// [NOT] EXISTS before the object's name, within the few words that may come
// first (UNIQUE, TEMP, VIRTUAL, TABLE, ...).
func hasIfExists(sc *scanner) bool {
	for range 4 {
		w := sc.word()
		if !strings.EqualFold(w, "IF") {
			if w == "" {
				return false
			}
			continue
		}
		w = sc.word()
		if strings.EqualFold(w, "NOT") {
			w = sc.word()
		}
		return strings.EqualFold(w, "EXISTS")
	}
	return false
}

// isMulti reports whether query holds more than one statement: a ';' outside
// literals, identifiers and comments followed by anything but white space,
// comments and more semicolons. It errs toward true, which is safe: such a
// string runs under SQLite's query_only on a replica.
func isMulti(query string) bool {
	sc := scanner{s: query}
	sawSemi := false
	for {
		k := sc.next()
		switch {
		case k == tokEOF:
			return false
		case k == tokSemi:
			sawSemi = true
		case sawSemi:
			return true
		}
	}
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokSemi
	tokWord
	tokOther
)

// scanner splits SQL into the few token kinds the driver cares about, with
// SQLite's rules for quotes and comments.
type scanner struct {
	s   string
	i   int
	tok string
}

// next advances past white space and comments to the next token.
func (sc *scanner) next() tokKind {
	s := sc.s
	for sc.i < len(s) {
		c := s[sc.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			sc.i++
		case c == '-' && sc.i+1 < len(s) && s[sc.i+1] == '-':
			if j := strings.IndexByte(s[sc.i:], '\n'); j >= 0 {
				sc.i += j + 1
			} else {
				sc.i = len(s)
			}
		case c == '/' && sc.i+1 < len(s) && s[sc.i+1] == '*':
			if j := strings.Index(s[sc.i+2:], "*/"); j >= 0 {
				sc.i += j + 4
			} else {
				sc.i = len(s) // SQLite ends an unterminated comment at the end
			}
		case c == ';':
			sc.tok = s[sc.i : sc.i+1]
			sc.i++
			return tokSemi
		case c == '\'' || c == '"' || c == '`':
			start := sc.i
			sc.i = quoteEnd(s, sc.i+1, c)
			sc.tok = s[start:sc.i]
			return tokOther
		case c == '[':
			start := sc.i
			if j := strings.IndexByte(s[sc.i:], ']'); j >= 0 {
				sc.i += j + 1
			} else {
				sc.i = len(s)
			}
			sc.tok = s[start:sc.i]
			return tokOther
		case isWordByte(c):
			start := sc.i
			for sc.i < len(s) && (isWordByte(s[sc.i]) || '0' <= s[sc.i] && s[sc.i] <= '9' || s[sc.i] == '$') {
				sc.i++
			}
			sc.tok = s[start:sc.i]
			return tokWord
		default:
			sc.tok = s[sc.i : sc.i+1]
			sc.i++
			return tokOther
		}
	}
	sc.tok = ""
	return tokEOF
}

// word returns the next token if it is a word, else "".
func (sc *scanner) word() string {
	save := sc.i
	if sc.next() == tokWord {
		return sc.tok
	}
	sc.i = save
	return ""
}

// punct consumes the next token if it is the single byte c.
func (sc *scanner) punct(c byte) bool {
	save := sc.i
	if sc.next() == tokOther && len(sc.tok) == 1 && sc.tok[0] == c {
		return true
	}
	sc.i = save
	return false
}

// quoteEnd returns the index just past the literal or quoted identifier that
// starts before i, where a doubled quote stands for itself.
func quoteEnd(s string, i int, q byte) int {
	for i < len(s) {
		if s[i] != q {
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == q {
			i += 2
			continue
		}
		return i + 1
	}
	return len(s)
}

// isWordByte reports whether c may start a keyword or identifier; SQLite
// treats every byte of a multi-byte UTF-8 sequence as an identifier byte.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}
