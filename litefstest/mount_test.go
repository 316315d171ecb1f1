package litefstest_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/litefs-sql/litefs/litefstest"
	_ "github.com/mattn/go-sqlite3"
)

// role applies the driver's rule to a mount directory: .primary present →
// replica of its trimmed content; no .primary and no .lag → primary (not a
// LiteFS mount); no .primary and a .lag → primary only if .lag's mtime is
// not before the check started, else no primary known.
func role(t *testing.T, dir string) string {
	t.Helper()
	start := time.Now()
	if b, err := os.ReadFile(filepath.Join(dir, litefstest.PrimaryFile)); err == nil {
		return "replica of " + strings.TrimSpace(string(b))
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, litefstest.LagFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "primary"
	case err != nil:
		t.Fatal(err)
	case fi.ModTime().Before(start):
		return "no primary"
	}
	return "primary"
}

func TestMountRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(*litefstest.Mount)
		want string
	}{
		{"new", func(*litefstest.Mount) {}, "primary"},
		{"replica", func(m *litefstest.Mount) { m.SetReplica("node-a") }, "replica of node-a"},
		{"no primary", func(m *litefstest.Mount) { m.SetNoPrimary() }, "no primary"},
		{"replica then primary", func(m *litefstest.Mount) { m.SetReplica("node-a"); m.SetPrimary() }, "primary"},
		{"no primary then primary", func(m *litefstest.Mount) { m.SetNoPrimary(); m.SetPrimary() }, "primary"},
		{"no primary then replica", func(m *litefstest.Mount) { m.SetNoPrimary(); m.SetReplica("node-b") }, "replica of node-b"},
		{"replica then no primary", func(m *litefstest.Mount) { m.SetReplica("node-a"); m.SetNoPrimary() }, "no primary"},
		{"primary twice", func(m *litefstest.Mount) { m.SetPrimary(); m.SetPrimary() }, "primary"},
		{"LiteFS primary", func(m *litefstest.Mount) {
			m.WriteLagFile([]byte("+000000000\n"), time.Now().Add(time.Hour))
		}, "primary"},
		{"stale heartbeat", func(m *litefstest.Mount) {
			m.WriteLagFile([]byte("+000001000\n"), time.Now().Add(-time.Second))
		}, "no primary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			tc.set(m)
			if got := role(t, m.Dir()); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMountFiles(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	if got, want := m.DBPath(), filepath.Join(m.Dir(), "app.db"); got != want {
		t.Errorf("DBPath: got %q, want %q", got, want)
	}
	if got, want := m.PosPath(), filepath.Join(m.Dir(), "app.db-pos"); got != want {
		t.Errorf("PosPath: got %q, want %q", got, want)
	}

	m.SetReplica("node-a")
	if b := readFile(t, m.Dir(), litefstest.PrimaryFile); string(b) != "node-a\n" {
		t.Errorf(".primary: got %q, want %q", b, "node-a\n")
	}

	m.SetNoPrimary()
	assertMissing(t, m.Dir(), litefstest.PrimaryFile)
	// As read on a real LiteFS v0.5.14 node waiting for its primary.
	if b := readFile(t, m.Dir(), litefstest.LagFile); string(b) != "+2147483647" {
		t.Errorf(".lag: got %q, want %q", b, "+2147483647")
	}
	fi, err := os.Stat(filepath.Join(m.Dir(), litefstest.LagFile))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(time.Unix(0, 0)) {
		t.Errorf(".lag mtime: got %v, want the Unix epoch", fi.ModTime())
	}

	m.SetPrimary()
	assertMissing(t, m.Dir(), litefstest.PrimaryFile)
	assertMissing(t, m.Dir(), litefstest.LagFile)

	// No temporary file may stay behind.
	entries, err := os.ReadDir(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("directory holds %v, want nothing", entries)
	}
}

func TestMountPos(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	if _, err := litefstest.ReadPos(m.PosPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadPos before SetTXID: got %v, want not exist", err)
	}
	for _, txid := range []uint64{1, 2, 0xdeadbeef, 1<<64 - 1} {
		m.SetTXID(txid)
		b := readFile(t, m.Dir(), "app.db-pos")
		if len(b) != 34 || !strings.HasPrefix(string(b), litefstest.Pos{TXID: txid}.String()[:17]) || b[33] != '\n' {
			t.Errorf("SetTXID(%d): file holds %q", txid, b)
		}
		pos, err := litefstest.ReadPos(m.PosPath())
		if err != nil || pos.TXID != txid {
			t.Errorf("SetTXID(%d): ReadPos got %+v, %v", txid, pos, err)
		}
	}
	want := litefstest.Pos{TXID: 3, Checksum: 0xa2fc350ac7362d33}
	m.SetPos(want)
	if b := readFile(t, m.Dir(), "app.db-pos"); string(b) != "0000000000000003/a2fc350ac7362d33\n" {
		t.Errorf("SetPos: file holds %q", b)
	}
	if got, err := litefstest.ReadPos(m.PosPath()); err != nil || got != want {
		t.Errorf("ReadPos: got %+v, %v; want %+v", got, err, want)
	}
}

func TestWritePrimaryFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"CRLF", []byte("node-a\r\n")},
		{"spaces", []byte("  node-a \t\n")},
		{"no newline", []byte("node-a")},
		{"two lines", []byte("node-a\nnode-b\n")},
		{"binary", []byte{0, 0xff, 'a', 0x80, '\n'}},
		{"1 MiB", bytes.Repeat([]byte("x"), 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			m.WritePrimaryFile(tc.content)
			if got := readFile(t, m.Dir(), litefstest.PrimaryFile); !bytes.Equal(got, tc.content) {
				t.Errorf("got %d bytes %q, want %d bytes", len(got), truncate(got), len(tc.content))
			}
		})
	}
}

// TestMountAtomic checks that a reader racing the writer never sees a
// half-written .primary.
func TestMountAtomic(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	long := bytes.Repeat([]byte("y"), 256<<10)
	short := []byte("node-b\n")
	m.WritePrimaryFile(short)

	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	wg.Go(func() {
		path := filepath.Join(m.Dir(), litefstest.PrimaryFile)
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			if !bytes.Equal(b, long) && !bytes.Equal(b, short) {
				t.Errorf("read %d bytes, neither version", len(b))
				return
			}
			reads++
		}
	})
	for i := range 200 {
		if i%2 == 0 {
			m.WritePrimaryFile(long)
		} else {
			m.WritePrimaryFile(short)
		}
		runtime.Gosched()
	}
	close(done)
	wg.Wait()
	t.Logf("%d reads raced 200 writes", reads)
}

func TestSetReplicaRejects(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "node-a\n", "a\rb"} {
		msg := fatalOf(t, func(tb testing.TB) { litefstest.NewMount(tb).SetReplica(id) })
		if !strings.Contains(msg, "SetReplica") {
			t.Errorf("SetReplica(%q): got fatal %q, want one naming SetReplica", id, msg)
		}
	}
}

func TestDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, want string
	}{
		{"/data/app.db", "file:/data/app.db?_journal_mode=WAL&_busy_timeout=5000"},
		{"/a b/app.db", "file:/a b/app.db?_journal_mode=WAL&_busy_timeout=5000"},
		{"/a%b?c#d/app.db", "file:/a%25b%3Fc%23d/app.db?_journal_mode=WAL&_busy_timeout=5000"},
		{"rel/app.db", "file:rel/app.db?_journal_mode=WAL&_busy_timeout=5000"},
	} {
		if got := litefstest.DSN(tc.path); got != tc.want {
			t.Errorf("DSN(%q): got %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestDSNOpens checks with go-sqlite3 that the DSN opens the very file, in
// WAL mode, with the busy timeout, even where the path holds URI syntax.
func TestDSNOpens(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"plain", "with space", "per%cent", "what?", "hash#tag"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "app.db")
			db := openDB(t, litefstest.DSN(path))
			mustExec(t, db, `CREATE TABLE t (x)`)
			var mode string
			var timeout int
			if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode: got %q, %v; want wal", mode, err)
			}
			if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != litefstest.DefaultBusyTimeout {
				t.Errorf("busy_timeout: got %d, %v; want %d", timeout, err, litefstest.DefaultBusyTimeout)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("database not at %s: %v", path, err)
			}
		})
	}
}

func TestMountDSN(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	if got, want := m.DSN(), litefstest.DSN(m.DBPath()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

func mustExec(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertMissing(t *testing.T, dir, name string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat %s: got %v, want not exist", name, err)
	}
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// fatalTB records the first Fatal or Skip of a helper instead of ending the
// test, and the output the helper logs, so tests can check that helpers fail
// as they should.
type fatalTB struct {
	testing.TB
	ctx    context.Context // if not nil, the test's context
	mu     sync.Mutex
	msg    string
	failed bool
	logs   []string
}

func (tb *fatalTB) Fatal(args ...any)                 { tb.stop(true, fmt.Sprint(args...)) }
func (tb *fatalTB) Fatalf(format string, args ...any) { tb.stop(true, fmt.Sprintf(format, args...)) }
func (tb *fatalTB) FailNow()                          { tb.stop(true, "FailNow") }
func (tb *fatalTB) Skip(args ...any)                  { tb.stop(false, "SKIP: "+fmt.Sprint(args...)) }
func (tb *fatalTB) Skipf(format string, args ...any) {
	tb.stop(false, "SKIP: "+fmt.Sprintf(format, args...))
}
func (tb *fatalTB) SkipNow() { tb.stop(false, "SKIP") }

func (tb *fatalTB) Context() context.Context {
	if tb.ctx != nil {
		return tb.ctx
	}
	return tb.TB.Context()
}

func (tb *fatalTB) Failed() bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.failed || tb.TB.Failed()
}

func (tb *fatalTB) Logf(format string, args ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.logs = append(tb.logs, fmt.Sprintf(format, args...))
}

func (tb *fatalTB) stop(failed bool, msg string) {
	tb.mu.Lock()
	tb.msg, tb.failed = msg, failed
	tb.mu.Unlock()
	runtime.Goexit()
}

// runFatal runs f in a goroutine with a fatalTB wrapping t and returns it
// once f has returned, failed or skipped.
func runFatal(t *testing.T, f func(testing.TB)) *fatalTB {
	t.Helper()
	return runFatalCtx(t, nil, f)
}

// runFatalCtx is runFatal with ctx as the test's context.
func runFatalCtx(t *testing.T, ctx context.Context, f func(testing.TB)) *fatalTB {
	t.Helper()
	tb := &fatalTB{TB: t, ctx: ctx}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	return tb
}

// fatalOf returns the message f failed or skipped with, or "" if it did
// neither.
func fatalOf(t *testing.T, f func(testing.TB)) string {
	t.Helper()
	return runFatal(t, f).msg
}
