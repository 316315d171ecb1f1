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

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// role applies the driver's rule to a mount directory: .primary present →
// replica of its trimmed content; no .primary and no .lag → primary (not a
// LiteFS mount); no .primary and a .lag → primary only if .lag's mtime is
// not before the check started, else no primary known.
func role(t *testing.T, dir string) string {
	t.Helper()
	start := time.Now()
	b, err := os.ReadFile(filepath.Join(dir, litefstest.PrimaryFile))
	if err == nil {
		return "replica of " + strings.TrimSpace(string(b))
	}
	require.ErrorIs(t, err, fs.ErrNotExist)
	fi, err := os.Stat(filepath.Join(dir, litefstest.LagFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "primary"
	}
	require.NoError(t, err)
	if fi.ModTime().Before(start) {
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
		{name: "new", set: func(*litefstest.Mount) {}, want: "primary"},
		{name: "replica", set: func(m *litefstest.Mount) { m.SetReplica("node-a") }, want: "replica of node-a"},
		{name: "no primary", set: func(m *litefstest.Mount) { m.SetNoPrimary() }, want: "no primary"},
		{name: "replica then primary", set: func(m *litefstest.Mount) { m.SetReplica("node-a"); m.SetPrimary() }, want: "primary"},
		{name: "no primary then primary", set: func(m *litefstest.Mount) { m.SetNoPrimary(); m.SetPrimary() }, want: "primary"},
		{name: "no primary then replica", set: func(m *litefstest.Mount) { m.SetNoPrimary(); m.SetReplica("node-b") }, want: "replica of node-b"},
		{name: "replica then no primary", set: func(m *litefstest.Mount) { m.SetReplica("node-a"); m.SetNoPrimary() }, want: "no primary"},
		{name: "primary twice", set: func(m *litefstest.Mount) { m.SetPrimary(); m.SetPrimary() }, want: "primary"},
		{name: "LiteFS primary", set: func(m *litefstest.Mount) {
			m.WriteLagFile([]byte("+000000000\n"), time.Now().Add(time.Hour))
		}, want: "primary"},
		{name: "stale heartbeat", set: func(m *litefstest.Mount) {
			m.WriteLagFile([]byte("+000001000\n"), time.Now().Add(-time.Second))
		}, want: "no primary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			tc.set(m)
			assert.Equal(t, tc.want, role(t, m.Dir()))
		})
	}
}

func TestMountFiles(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	assert.Equal(t, filepath.Join(m.Dir(), "app.db"), m.DBPath(), "DBPath")
	assert.Equal(t, filepath.Join(m.Dir(), "app.db-pos"), m.PosPath(), "PosPath")

	m.SetReplica("node-a")
	assert.Equal(t, "node-a\n", string(readFile(t, m.Dir(), litefstest.PrimaryFile)), ".primary")

	m.SetNoPrimary()
	assertMissing(t, m.Dir(), litefstest.PrimaryFile)
	// As read on a real LiteFS v0.5.14 node waiting for its primary.
	assert.Equal(t, "+2147483647", string(readFile(t, m.Dir(), litefstest.LagFile)), ".lag")
	fi, err := os.Stat(filepath.Join(m.Dir(), litefstest.LagFile))
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(time.Unix(0, 0)), ".lag mtime: got %v, want the Unix epoch", fi.ModTime())

	m.SetPrimary()
	assertMissing(t, m.Dir(), litefstest.PrimaryFile)
	assertMissing(t, m.Dir(), litefstest.LagFile)

	// No temporary file may stay behind.
	entries, err := os.ReadDir(m.Dir())
	require.NoError(t, err)
	assert.Empty(t, entries, "directory contents")
}

func TestMountPos(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	_, err := litefstest.ReadPos(m.PosPath())
	assert.ErrorIs(t, err, fs.ErrNotExist, "ReadPos before SetTXID")
	for _, txid := range []uint64{1, 2, 0xdeadbeef, 1<<64 - 1} {
		m.SetTXID(txid)
		b := readFile(t, m.Dir(), "app.db-pos")
		assert.Regexp(t, "^"+litefstest.Pos{TXID: txid}.String()[:17]+"[0-9a-f]{16}\n$", string(b), "SetTXID(%d): the file", txid)
		pos, err := litefstest.ReadPos(m.PosPath())
		assert.NoError(t, err, "SetTXID(%d): ReadPos", txid)
		assert.Equal(t, txid, pos.TXID, "SetTXID(%d): ReadPos", txid)
	}
	want := litefstest.Pos{TXID: 3, Checksum: 0xa2fc350ac7362d33}
	m.SetPos(want)
	assert.Equal(t, "0000000000000003/a2fc350ac7362d33\n", string(readFile(t, m.Dir(), "app.db-pos")), "SetPos: the file")
	got, err := litefstest.ReadPos(m.PosPath())
	assert.NoError(t, err)
	assert.Equal(t, want, got, "ReadPos")
}

func TestWritePrimaryFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{name: "empty", content: nil},
		{name: "CRLF", content: []byte("node-a\r\n")},
		{name: "spaces", content: []byte("  node-a \t\n")},
		{name: "no newline", content: []byte("node-a")},
		{name: "two lines", content: []byte("node-a\nnode-b\n")},
		{name: "binary", content: []byte{0, 0xff, 'a', 0x80, '\n'}},
		{name: "1 MiB", content: bytes.Repeat([]byte("x"), 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := litefstest.NewMount(t)
			m.WritePrimaryFile(tc.content)
			got := readFile(t, m.Dir(), litefstest.PrimaryFile)
			assert.True(t, bytes.Equal(got, tc.content), "got %d bytes %q, want %d bytes", len(got), truncate(got), len(tc.content))
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
			if !assert.NoError(t, err, "read") ||
				!assert.True(t, bytes.Equal(b, long) || bytes.Equal(b, short), "read %d bytes, neither version", len(b)) {
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
		assert.Contains(t, msg, "SetReplica", "SetReplica(%q): the fatal message", id)
	}
}

func TestDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, want string
	}{
		{path: "/data/app.db", want: "file:/data/app.db?_journal_mode=WAL&_busy_timeout=5000"},
		{path: "/a b/app.db", want: "file:/a b/app.db?_journal_mode=WAL&_busy_timeout=5000"},
		{path: "/a%b?c#d/app.db", want: "file:/a%25b%3Fc%23d/app.db?_journal_mode=WAL&_busy_timeout=5000"},
		{path: "rel/app.db", want: "file:rel/app.db?_journal_mode=WAL&_busy_timeout=5000"},
	} {
		assert.Equal(t, tc.want, litefstest.DSN(tc.path), "DSN(%q)", tc.path)
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
			require.NoError(t, os.Mkdir(dir, 0o755))
			path := filepath.Join(dir, "app.db")
			db := openDB(t, litefstest.DSN(path))
			mustExec(t, db, `CREATE TABLE t (x)`)
			var mode string
			var timeout int
			if assert.NoError(t, db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)) {
				assert.Equal(t, "wal", mode, "journal_mode")
			}
			if assert.NoError(t, db.QueryRow(`PRAGMA busy_timeout`).Scan(&timeout)) {
				assert.Equal(t, litefstest.DefaultBusyTimeout, timeout, "busy_timeout")
			}
			assert.FileExists(t, path, "the database")
		})
	}
}

func TestMountDSN(t *testing.T) {
	t.Parallel()
	m := litefstest.NewMount(t)
	assert.Equal(t, litefstest.DSN(m.DBPath()), m.DSN())
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Ping())
	return db
}

func mustExec(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	_, err := db.Exec(query)
	require.NoError(t, err, query)
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return b
}

func assertMissing(t *testing.T, dir, name string) {
	t.Helper()
	_, err := os.Stat(filepath.Join(dir, name))
	assert.ErrorIs(t, err, fs.ErrNotExist, "stat %s", name)
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
