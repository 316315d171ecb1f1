package litefs

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// dsnInfo is what the driver needs to know of a go-sqlite3 DSN. The DSN
// itself is passed to go-sqlite3 unchanged.
type dsnInfo struct {
	path          string // the file name, without "file:" and parameters
	memory        bool   // surely in memory or temporary (":memory:", no name); connections ask SQLite
	txlockWrites  bool   // _txlock takes the write lock at BEGIN
	queryOnly     bool   // _query_only is set: the driver leaves the pragma alone
	api           string // _litefs_api: LiteFS's HTTP API address ("" or "off": none)
	apiSet        bool
	forwardWrites bool   // _forward_writes (see WithForwardWrites)
	journalMode   string // _journal_mode or _journal as go-sqlite3 reads it, upper case; "" when unset

	// caseSensitiveLike is PRAGMA case_sensitive_like as a connection opens
	// ("0" or "1"): SQLite cannot read it back, so a refused string that set
	// it is undone to this.
	caseSensitiveLike string
}

// parseDSN reads a DSN the way go-sqlite3 does: parameters follow the first
// '?' when it is not the first byte.
func parseDSN(dsn string) (dsnInfo, error) {
	var info dsnInfo
	if strings.IndexByte(dsn, 0) >= 0 {
		return info, fmt.Errorf("litefs: invalid DSN: it contains a NUL byte")
	}
	path, query := dsn, ""
	if pos := strings.IndexByte(dsn, '?'); pos >= 1 {
		path, query = dsn[:pos], dsn[pos+1:]
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return info, fmt.Errorf("litefs: invalid DSN parameters: %w", err)
	}
	if rest, ok := strings.CutPrefix(path, "file:"); ok {
		path = rest
	}
	info.path = path
	info.caseSensitiveLike, info.journalMode = setupPragmas(params)
	// mode=memory is not read: go-sqlite3 ignores it on a plain path, and
	// SQLite takes the last of several in a URI. A connection asks SQLite
	// what it opened (newConn); here a guess errs toward a file.
	info.memory = path == "" || strings.HasPrefix(path, ":memory:")

	switch v := strings.ToLower(params.Get("_txlock")); v {
	case "", "deferred":
	case "immediate", "exclusive":
		info.txlockWrites = true
	default:
		return info, fmt.Errorf("litefs: invalid DSN: _txlock=%q (want deferred, immediate or exclusive)", v)
	}
	if err := boolParam(params, "_query_only", &info.queryOnly); err != nil {
		return info, err
	}
	if params.Has("_litefs_api") {
		info.api, info.apiSet = params.Get("_litefs_api"), true
		if strings.EqualFold(info.api, "off") {
			info.api = ""
		}
		if _, err := apiURL(info.api); err != nil {
			return info, fmt.Errorf("litefs: invalid DSN: _litefs_api: %w", err)
		}
	}
	if err := boolParam(params, "_forward_writes", &info.forwardWrites); err != nil {
		return info, err
	}
	return info, nil
}

// boolParam sets *dst to the boolean DSN parameter key when the DSN sets it.
func boolParam(params url.Values, key string, dst *bool) error {
	v := params.Get(key)
	if v == "" {
		return nil
	}
	on, ok := parseBool(v)
	if !ok {
		return fmt.Errorf("litefs: invalid DSN: %s=%q (want a boolean)", key, v)
	}
	*dst = on
	return nil
}

// setupPragmas returns what the DSN sets PRAGMA case_sensitive_like to ("0"
// or "1", SQLite's default "0" when unset) and the journal mode (upper case,
// "" when unset). go-sqlite3 reads _cslike over _case_sensitive_like, and
// _journal over _journal_mode, when both are there.
func setupPragmas(params url.Values) (caseSensitiveLike, journalMode string) {
	caseSensitiveLike = "0"
	for _, key := range []string{"_case_sensitive_like", "_cslike"} {
		if on, ok := parseBool(params.Get(key)); ok && on {
			caseSensitiveLike = "1"
		} else if ok {
			caseSensitiveLike = "0"
		}
	}
	for _, key := range []string{"_journal_mode", "_journal"} {
		if params.Has(key) {
			journalMode = strings.ToUpper(params.Get(key))
		}
	}
	return caseSensitiveLike, journalMode
}

// parseBool accepts go-sqlite3's spellings of a boolean parameter.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "1", "yes", "true", "on":
		return true, true
	case "0", "no", "false", "off":
		return false, true
	}
	return false, false
}

// errJournalMode refuses a DSN that would change a LiteFS database's journal
// mode at every open.
var errJournalMode = errors.New("litefs: invalid DSN: a database in a LiteFS mount needs _journal_mode=WAL or none " +
	"(go-sqlite3 sets the journal mode at every open, before the driver can refuse it: " +
	"on a replica another mode rewrites the database, or fails the open)")

// checkJournalMode refuses a journal mode other than WAL in the DSN of a
// database in a mount: a LiteFS mount (FUSE), a directory with LiteFS's
// .primary or .lag, or the one WithMountDir names. go-sqlite3 runs PRAGMA
// journal_mode at open, before the driver sees the connection, and a
// change of mode writes the database. Setting WAL on a database already in
// WAL mode writes nothing.
func (c *Connector) checkJournalMode() error {
	if c.info.journalMode == "" || c.info.journalMode == "WAL" {
		return nil
	}
	dir := c.mountDir()
	if dir == "" {
		return nil
	}
	mount := c.cfg.mountDirSet || isFUSE(dir)
	for _, name := range []string{primaryFile, lagFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			mount = true // present, or unknown: fail closed
		}
	}
	if mount {
		return fmt.Errorf("%w: _journal_mode=%s", errJournalMode, c.info.journalMode)
	}
	return nil
}
