package litefs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// attachedDB is a database file attached to a connection from a directory
// other than the main database's: a write on the connection also needs that
// directory's role, since the directory may be another LiteFS mount (or the
// mount itself, when the main database is in memory or a local file).
type attachedDB struct {
	file  string
	probe *prober
}

// mentionsAttach reports whether query may attach or detach a database: it
// names ATTACH or DETACH anywhere (a false positive costs one PRAGMA
// database_list after the run).
func mentionsAttach(query string) bool {
	// One pass for "tach" in any case, then the two bytes before it: this
	// runs for every write, so no per-position string comparison.
	for i := 2; i+4 <= len(query); i++ {
		if query[i]|0x20 != 't' || query[i+1]|0x20 != 'a' || query[i+2]|0x20 != 'c' || query[i+3]|0x20 != 'h' {
			continue
		}
		if p, q := query[i-2]|0x20, query[i-1]|0x20; p == 'a' && q == 't' || p == 'd' && q == 'e' {
			return true
		}
	}
	return false
}

// refreshAttached re-reads the databases attached to the connection and
// keeps a prober for each file in a directory other than the main
// database's. It runs after every statement that may have attached or
// detached one. A failure to read the list keeps the probers there are.
func (c *Conn) refreshAttached(ctx context.Context) {
	names := c.readRows(ctx, "PRAGMA database_list", 1)
	files := c.readRows(ctx, "PRAGMA database_list", 2)
	if len(names) == 0 || len(names) != len(files) {
		return
	}
	old := c.attached
	c.attached, c.attachedAny = nil, false
	for i, file := range files {
		if names[i] == "main" || names[i] == "temp" {
			continue
		}
		c.attachedAny = true
		if file == "" {
			continue
		}
		dir := filepath.Dir(file)
		if dir == c.mountDir() {
			continue // the main database's role covers it
		}
		if j := indexAttached(old, file); j >= 0 {
			c.attached = append(c.attached, old[j])
			old[j] = nil
			continue
		}
		p := newProber(dir, c.log, new(atomic.Bool))
		p.remember()
		c.attached = append(c.attached, &attachedDB{file: file, probe: p})
	}
	for _, a := range old {
		if a != nil {
			a.probe.close()
		}
	}
}

func indexAttached(list []*attachedDB, file string) int {
	for i, a := range list {
		if a != nil && a.file == file {
			return i
		}
	}
	return -1
}

// checkAttached returns the first refusal an attached database's directory
// gives a write, or nil when every one may be written (or none is attached).
func (c *Conn) checkAttached() error {
	for _, a := range c.attached {
		if err := a.probe.check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) closeAttached() {
	for _, a := range c.attached {
		a.probe.close()
	}
	c.attached = nil
}

// attachCreates reports whether ATTACH of name (the authorizer's first
// argument: the file name when it is a string literal, else "") may create a
// file: anything but an in-memory database or a file that exists already.
// A parameter or an expression is assumed to create one.
func attachCreates(name string) bool {
	if name == ":memory:" || strings.HasPrefix(name, "file::memory:") {
		return false
	}
	path := name
	if rest, ok := strings.CutPrefix(path, "file:"); ok {
		path, _, _ = strings.Cut(rest, "?")
		path, _, _ = strings.Cut(path, "#")
	}
	if path == "" || strings.HasPrefix(path, "//") || strings.Contains(path, "%") {
		return true // an authority or an escape: the driver does not decode URIs
	}
	fi, err := os.Stat(path)
	return err != nil || !fi.Mode().IsRegular()
}
