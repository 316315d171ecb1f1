// Package litefs is a database/sql driver for SQLite databases replicated by
// LiteFS. It wraps github.com/mattn/go-sqlite3 and refuses writes on a replica
// before they touch the database, with an error that names the primary.
package litefs
