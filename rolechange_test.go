package litefs

import (
	"database/sql"
	"errors"
	"net"
	"net/url"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// gate is a TCP proxy in front of a LiteFS HTTP API that can stall the
// bytes it forwards or drop its connections, as a stuck or broken event
// stream would.
type gate struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
}

func newGate(t *testing.T, targetURL string) *gate {
	t.Helper()
	u, err := url.Parse(targetURL)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &gate{ln: ln, target: u.Host}
	t.Cleanup(func() { ln.Close(); g.drop() })
	go g.serve()
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", g.target)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		g.conns = append(g.conns, c, up)
		g.mu.Unlock()
		go g.pipe(up, c)
		go g.pipe(c, up)
	}
}

// pipe copies src to dst, holding each chunk while the gate is stalled.
func (g *gate) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		for g.stalled.Load() {
			time.Sleep(time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !g.stalled.Load() {
				dst.Close()
			}
			return
		}
	}
}

// drop closes every connection through the gate.
func (g *gate) drop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// openWatched opens n's database with its event stream at api.
func openWatched(t *testing.T, n *litefstest.Node, api string) (*sql.DB, *Connector) {
	t.Helper()
	c, err := NewConnector(n.DSN(), WithLogger(discard), WithLiteFSAPI(api))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db, c
}

func waitTrusted(t *testing.T, c *Connector, want bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		c.watcher().run()
		return (c.watcher().trusted() != nil) == want
	}, 10*time.Second, time.Millisecond, "trusted = %v", want)
}

// writer writes to db until stop is closed, and records every outcome.
type writer struct {
	name string
	db   *sql.DB
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	oks  int
	errs []error
}

func startWriter(name string, db *sql.DB) *writer {
	w := &writer{name: name, db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		_, err := w.db.Exec("INSERT INTO t(v) VALUES (?)", i)
		w.mu.Lock()
		if err == nil {
			w.oks++
		} else {
			w.errs = append(w.errs, err)
		}
		w.mu.Unlock()
		time.Sleep(200 * time.Microsecond) // pace, not synchronization
	}
}

// halt stops the writer and waits until its last write has returned.
func (w *writer) halt() {
	close(w.stop)
	<-w.done
}

// waitOutcomes waits until n more writes have returned.
func (w *writer) waitOutcomes(t *testing.T, n int) {
	t.Helper()
	w.mu.Lock()
	want := w.oks + len(w.errs) + n
	w.mu.Unlock()
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.oks+len(w.errs) >= want
	}, 10*time.Second, time.Millisecond, "%d more writes on %s", n, w.name)
}

// refusedNoPrimary reports whether the last write was refused for want of
// a primary.
func (w *writer) refusedNoPrimary() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.errs) > 0 && errors.Is(w.errs[len(w.errs)-1], ErrNoPrimary)
}

// assertOutcomes checks that every write w made either succeeded (when
// mayWrite) or was refused.
func (w *writer) assertOutcomes(t *testing.T, mayWrite bool) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !mayWrite {
		assert.Zero(t, w.oks, "%s wrote", w.name)
	}
	for _, err := range w.errs {
		if !assert.ErrorIs(t, err, ErrNotPrimary, "%s: a write neither succeeded nor was refused", w.name) {
			return
		}
	}
}

// TestLiteFSRoleChange changes the role under live writers on a real
// cluster: the event streams drop, then stall, then the primary's LiteFS
// stops. Every write must be a success on the true primary or a refusal:
// never a write on a replica, never another error ("disk I/O error").
//
// The primary's writer pauses while its LiteFS exits: SQLite maps the
// WAL index of a LiteFS mount into memory, and a statement running inside
// SQLite as LiteFS exits dies of SIGBUS, whatever the driver does (which is
// why an app runs as LiteFS's exec child). The writes after the exit are the
// driver's to refuse before SQLite runs.
func TestLiteFSRoleChange(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stall bool // stall the streams before the primary stops
	}{
		{name: "live streams"},
		{name: "stalled streams", stall: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := litefstest.StartCluster(t, 2)
			p, r := cluster.Primary(), cluster.Replicas()[0]
			pg, rg := newGate(t, p.URL()), newGate(t, r.URL())
			pdb, pc := openWatched(t, p, pg.addr())
			_, err := pdb.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
			require.NoError(t, err)
			cluster.WaitReplicated(t)
			rdb, rc := openWatched(t, r, rg.addr())
			waitTrusted(t, pc, true)
			waitTrusted(t, rc, true)
			pw, rw := startWriter("the primary", pdb), startWriter("the replica", rdb)
			pw.waitOutcomes(t, 20)
			rw.waitOutcomes(t, 20)

			// The streams drop: the driver reconnects and trusts them again.
			pg.drop()
			rg.drop()
			waitTrusted(t, pc, true)
			waitTrusted(t, rc, true)
			pw.waitOutcomes(t, 20)
			if tc.stall {
				// The primary's writes move both positions past what the
				// stalled streams report: both are found out.
				pg.stalled.Store(true)
				rg.stalled.Store(true)
				waitTrusted(t, pc, false)
				waitTrusted(t, rc, false)
				pw.waitOutcomes(t, 20)
			}
			pw.halt()
			pw.assertOutcomes(t, true)
			require.NoError(t, syscall.Kill(p.Process().Pid(), syscall.SIGINT))
			select {
			case <-p.Process().Done():
			case <-time.After(10 * time.Second):
				require.FailNow(t, "the primary's LiteFS did not exit")
			}
			// At once after the exit, on the old primary: refusals.
			after := startWriter("the stopped primary", pdb)
			after.waitOutcomes(t, 20)
			require.Eventually(t, rw.refusedNoPrimary, 10*time.Second, time.Millisecond,
				"the replica never saw its primary go")
			rw.waitOutcomes(t, 20)
			after.halt()
			rw.halt()
			pdb.Close()
			rdb.Close()
			_ = exec.Command("fusermount3", "-u", p.MountDir()).Run()

			after.assertOutcomes(t, false)
			rw.assertOutcomes(t, false)
		})
	}
}
