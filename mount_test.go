package litefs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testMount imitates a LiteFS mount directory in a temp dir.
type testMount struct {
	tb  testing.TB
	dir string
}

func newTestMount(tb testing.TB) *testMount {
	tb.Helper()
	return &testMount{tb: tb, dir: tb.TempDir()}
}

func (m *testMount) DBPath() string { return filepath.Join(m.dir, "app.db") }

func (m *testMount) DSN() string {
	return "file:" + m.DBPath() + "?_journal_mode=WAL&_busy_timeout=5000"
}

func (m *testMount) write(name string, b []byte) {
	m.tb.Helper()
	tmp := filepath.Join(m.dir, name+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		m.tb.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, name)); err != nil {
		m.tb.Fatal(err)
	}
}

func (m *testMount) remove(name string) {
	m.tb.Helper()
	if err := os.Remove(filepath.Join(m.dir, name)); err != nil && !os.IsNotExist(err) {
		m.tb.Fatal(err)
	}
}

func (m *testMount) SetReplica(id string) { m.tb.Helper(); m.write(primaryFile, []byte(id+"\n")) }

func (m *testMount) WritePrimaryFile(b []byte) { m.tb.Helper(); m.write(primaryFile, b) }

func (m *testMount) SetPrimary() { m.tb.Helper(); m.remove(primaryFile); m.remove(lagFile) }

func (m *testMount) SetNoPrimary() {
	m.tb.Helper()
	m.remove(primaryFile)
	m.write(lagFile, []byte("+2147483647\n"))
	if err := os.Chtimes(filepath.Join(m.dir, lagFile), time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		m.tb.Fatal(err)
	}
}
