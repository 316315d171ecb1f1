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
	// is already there). On a replica these run under PRAGMA query_only, so
	// SQLite refuses the first write before it takes a lock, and lets the
	// rest through; an authorizer closes query_only's gaps meanwhile.
	classMaybe
	// classForbidden: PRAGMA query_only = x, which would undo the driver's
	// protection.
	classForbidden
)

// classBackup: VACUUM INTO a file outside the mount. It writes nothing
// LiteFS replicates, so a replica may run it, with query_only lifted for
// it alone (query_only refuses VACUUM INTO).
const classBackup = classForbidden + 1

// severity orders classes for combining verdicts on parts of one statement.
func severity(cl class) int {
	switch cl {
	case classRead:
		return 0
	case classBackup:
		return 1
	case classMaybe:
		return 2
	case classWrite:
		return 3
	}
	return 4 // classForbidden
}

// worse returns whichever of a and b restricts more.
func worse(a, b class) class {
	if severity(b) > severity(a) {
		return b
	}
	return a
}

// textClass decides, from the text of its first statement, a statement the
// driver must not prepare to classify: PRAGMA (SQLite applies many pragmas
// while compiling them), EXPLAIN of a PRAGMA (compiled just the same), and
// VACUUM INTO, whose target decides. ok is false for every other statement:
// ask SQLite. mountDir is where LiteFS replicates ("" without a mount).
func textClass(query, mountDir string) (cl class, ok bool) {
	sc := scanner{s: query}
	w := sc.word()
	if strings.EqualFold(w, "EXPLAIN") {
		if w = sc.word(); strings.EqualFold(w, "QUERY") {
			sc.word() // PLAN
			w = sc.word()
		}
		if !strings.EqualFold(w, "PRAGMA") {
			return 0, false // EXPLAIN compiles its statement without running it
		}
	}
	switch {
	case strings.EqualFold(w, "PRAGMA"):
		name := sc.name()
		if sc.punct('.') {
			name = sc.name()
		}
		if name == "" {
			return classWrite, true // not a name the driver can read: fail closed
		}
		value := sc.punct('=') || sc.punct('(')
		return pragmaClass(strings.ToLower(name), value), true
	case strings.EqualFold(w, "VACUUM"):
		if target, ok := vacuumInto(&sc); ok && outsideMount(target, mountDir) {
			return classBackup, true
		}
		return classWrite, true
	}
	return 0, false
}

// mayCommit reports whether query's first statement may commit a
// transaction: COMMIT, END, or a RELEASE (of the outermost savepoint). A
// string of several statements is no read, and is checked as a write.
func mayCommit(query string) bool {
	sc := scanner{s: query}
	w := sc.word()
	return strings.EqualFold(w, "COMMIT") || strings.EqualFold(w, "END") || strings.EqualFold(w, "RELEASE")
}

// vacuums reports whether a statement of query is a VACUUM that rebuilds a
// database (not VACUUM INTO, which writes a copy).
func vacuums(query string) bool {
	sc := scanner{s: query}
	for start := true; ; {
		k := sc.next()
		switch {
		case k == tokEOF:
			return false
		case k == tokSemi:
			start = true
			continue
		case start && k == tokWord && strings.EqualFold(sc.tok, "VACUUM"):
			if !vacuumsInto(&sc) {
				return true
			}
		}
		start = false
	}
}

// vacuumsInto reads the rest of VACUUM [schema] after the VACUUM sc has
// consumed, and reports whether INTO follows.
func vacuumsInto(sc *scanner) bool {
	w := sc.word() // INTO, a schema's name, or "" before a quoted name
	switch {
	case strings.EqualFold(w, "INTO"):
		return true
	case w == "" && sc.name() == "":
		return false // VACUUM alone, or before a semicolon
	}
	return strings.EqualFold(sc.word(), "INTO")
}

// refine corrects SQLite's verdict on a single statement where
// sqlite3_stmt_readonly is known to be wrong or too coarse. It looks at the
// first keywords only, and its result is cached per SQL string.
func refine(query string, readonly bool) class {
	sc := scanner{s: query}
	switch w := sc.word(); {
	case strings.EqualFold(w, "EXPLAIN"):
		return classRead // EXPLAIN never runs the statement it explains
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

// writeKeywords start a statement that writes (or takes the write lock).
var writeKeywords = set("insert", "update", "delete", "replace", "create", "drop", "alter",
	"vacuum", "reindex", "analyze", "pragma", "savepoint")

// mayWrite reports whether some statement of query starts with a keyword that
// writes, or is a WITH whose main statement does: the driver's guess when
// SQLite cannot prepare a statement (its schema trails the primary's) and so
// cannot be asked.
func mayWrite(query string) bool {
	sc := scanner{s: query}
	start, with, depth := true, false, 0
	for {
		k := sc.next()
		switch {
		case k == tokEOF:
			return false
		case k == tokSemi:
			start, with, depth = true, false, 0
			continue
		case k == tokOther && sc.tok == "(":
			depth++
		case k == tokOther && sc.tok == ")":
			depth--
		case k == tokWord && (start || with && depth == 0):
			w := strings.ToLower(sc.tok)
			if writeKeywords[w] && (start || w != "create" && w != "drop" && w != "alter") {
				return true
			}
			with = with || start && w == "with"
		}
		start = false
	}
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
	for k := sc.next(); k != tokEOF; k = sc.next() {
		if sawSemi && k != tokSemi {
			return true
		}
		sawSemi = sawSemi || k == tokSemi
	}
	return false
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
		case isSQLSpace(c):
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
		case c == '$' || c == '@' || c == ':' || c == '#':
			sc.i = variableEnd(s, sc.i+1)
			sc.tok = ""
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

// name returns the next token if it is a word or a quoted identifier,
// unquoted, else "".
func (sc *scanner) name() string {
	save := sc.i
	switch sc.next() {
	case tokWord:
		return sc.tok
	case tokOther:
		if t := sc.tok; len(t) >= 2 {
			switch q := t[0]; q {
			case '"', '\'', '`':
				if t[len(t)-1] == q {
					return strings.ReplaceAll(t[1:len(t)-1], string([]byte{q, q}), string(q))
				}
			case '[':
				if t[len(t)-1] == ']' {
					return t[1 : len(t)-1]
				}
			}
		}
	}
	sc.i = save
	return ""
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

// variableEnd returns the index just past a $, @, : or # variable whose name
// starts at i, as SQLite reads one: identifier bytes and "::", then
// optionally a "(...)" suffix that runs to the next white space or ')' and
// so may swallow quotes, comment starts and semicolons.
func variableEnd(s string, i int) int {
	n := 0
	for i < len(s) {
		c := s[i]
		switch {
		case isWordByte(c) || '0' <= c && c <= '9' || c == '$':
			i++
			n++
		case c == '(' && n > 0:
			for i++; i < len(s) && !isSQLSpace(s[i]) && s[i] != ')'; i++ {
			}
			if i < len(s) && s[i] == ')' {
				i++
			}
			return i
		case c == ':' && i+1 < len(s) && s[i+1] == ':':
			i += 2
		default:
			return i
		}
	}
	return i
}

func isSQLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isWordByte reports whether c may start a keyword or identifier; SQLite
// treats every byte of a multi-byte UTF-8 sequence as an identifier byte.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}
