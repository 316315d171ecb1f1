package litefs

import (
	"database/sql"
	"errors"
	"io"
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

var _ = io.EOF

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
	db   *sql.DB
	mu   sync.Mutex
	oks  int
	errs []error
	last time.Time // of the last success
}

func (w *writer) run(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		_, err := w.db.Exec("INSERT INTO t(v) VALUES (?)", i)
		w.mu.Lock()
		if err == nil {
			w.oks++
			w.last = time.Now()
		} else {
			w.errs = append(w.errs, err)
		}
		w.mu.Unlock()
		time.Sleep(200 * time.Microsecond)
	}
}

// TestLiteFSRoleChange changes the role under live writers on a real
// cluster: the events streams stall or drop, then the primary's LiteFS
// stops. Every write must be a success on the true primary (before it
// stopped) or a refusal: never a write on a replica, never another error.
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

			pw, rw := &writer{db: pdb}, &writer{db: rdb}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(2)
			go pw.run(stop, &wg)
			go rw.run(stop, &wg)

			// The streams drop: the driver reconnects and trusts them again.
			pg.drop()
			rg.drop()
			waitTrusted(t, pc, true)
			waitTrusted(t, rc, true)
			if tc.stall {
				pg.stalled.Store(true)
				rg.stalled.Store(true)
			}
			require.NoError(t, syscall.Kill(p.Process().Pid(), syscall.SIGINT))
			select {
			case <-p.Process().Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the primary's LiteFS did not exit")
			}
			stoppedAt := time.Now()
			// Writes go on after the primary is gone, and the stalled
			// streams are found out within a few checks.
			waitTrusted(t, pc, false)
			waitTrusted(t, rc, false)
			time.Sleep(50 * time.Millisecond)
			close(stop)
			wg.Wait()
			pdb.Close()
			rdb.Close()
			_ = exec.Command("fusermount3", "-u", p.MountDir()).Run()

			assert.Positive(t, pw.oks, "the primary wrote before it stopped")
			assert.False(t, pw.last.After(stoppedAt), "a write succeeded after the primary's LiteFS exited")
			assert.Zero(t, rw.oks, "a replica wrote")
			for _, w := range []*writer{pw, rw} {
				for _, err := range w.errs {
					if !assert.ErrorIs(t, err, ErrNotPrimary) {
						break
					}
				}
				assert.Positive(t, len(w.errs), "no write was refused")
			}
			var refusedNoPrimary bool
			for _, err := range rw.errs {
				refusedNoPrimary = refusedNoPrimary || errors.Is(err, ErrNoPrimary)
			}
			assert.True(t, refusedNoPrimary, "the replica never saw its primary go")
		})
	}
}
