package litefstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// portAttempts is how many free ports a node tries: a port found free can
// be taken by another process before LiteFS binds it.
const portAttempts = 3

// Cluster is a set of real LiteFS nodes on 127.0.0.1 with a static lease:
// node 0 is the primary, the others its replicas. See [StartCluster].
type Cluster struct {
	nodes []*Node
}

// Node is one LiteFS node of a [Cluster].
type Node struct {
	proc     *Process
	hostname string
	dir      string // holds mnt/, data/ and litefs.yml
	url      string
	primary  bool
}

// NodeInfo is a node's answer to GET /info on its LiteFS HTTP API.
type NodeInfo struct {
	ClusterID string `json:"clusterID"`
	IsPrimary bool   `json:"isPrimary"`
	Candidate bool   `json:"candidate"`
	Path      string `json:"path"` // the data directory
	Primary   struct {
		Hostname string `json:"hostname"`
	} `json:"primary"`
}

// StartCluster starts n LiteFS nodes (n ≥ 1) in temporary directories of
// tb, named node-0 … node-<n-1>, each with its own HTTP port on 127.0.0.1.
// node-0 is the primary: the only candidate of a static lease, whose
// hostname every replica shows in .primary. StartCluster returns once the
// primary holds the lease and every replica is connected to it. No database
// exists yet: create one on the primary (through its DSN), then the replicas
// show it.
//
// The test is skipped where LiteFS cannot run (see [LiteFSBinary]; no
// /dev/fuse or fusermount3), or fails there when LITEFS_REQUIRE=1. The
// nodes are stopped with SIGINT when the test ends, and their output is
// printed if it failed.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("litefstest: StartCluster(%d): want at least one node", n)
	}
	requireFUSE(tb)
	bin := LiteFSBinary(tb)
	root := tb.TempDir()
	c := &Cluster{}
	for i := range n {
		node := &Node{hostname: "node-" + strconv.Itoa(i), primary: i == 0}
		node.dir = filepath.Join(root, node.hostname)
		for _, d := range []string{node.MountDir(), node.DataDir()} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				tb.Fatalf("litefstest: %v", err)
			}
		}
		var primary *Node
		if i > 0 {
			primary = c.nodes[0]
		}
		node.start(tb, bin, primary)
		c.nodes = append(c.nodes, node)
	}
	// One cleanup stops all nodes at once, replicas first, before each
	// process's own cleanup reports on it.
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, node := range c.nodes[1:] {
			wg.Go(func() { _ = node.proc.Stop() })
		}
		wg.Wait()
		_ = c.nodes[0].proc.Stop()
	})
	return c
}

// start starts the node's process, a replica of primary (nil for the
// primary), and waits until it is ready, retrying with another port if
// its port was taken.
func (n *Node) start(tb testing.TB, bin string, primary *Node) {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("litefstest: %v", err)
		}
		n.url = "http://127.0.0.1:" + strconv.Itoa(port)
		leader := n
		if primary != nil {
			leader = primary
		}
		config := fmt.Sprintf(`fuse: {dir: %s}
data: {dir: %s}
http: {addr: %s}
lease: {type: static, candidate: %t, hostname: %s, advertise-url: %s}
`, strconv.Quote(n.MountDir()), strconv.Quote(n.DataDir()), strconv.Quote("127.0.0.1:"+strconv.Itoa(port)),
			primary == nil, strconv.Quote(leader.hostname), strconv.Quote(leader.url))
		path := filepath.Join(n.dir, "litefs.yml")
		if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
			tb.Fatalf("litefstest: %v", err)
		}
		n.proc = startProcess(tb, "litefs "+n.hostname, bin, n.dir, n.logPath(attempt), nil, "mount", "-config", path)
		n.proc.mu.Lock()
		n.proc.mountDir = n.MountDir()
		n.proc.mu.Unlock()
		err = waitUntil(tb.Context(), DefaultWaitTimeout, func() error { return n.ready(primary) })
		if err == nil {
			return
		}
		_ = n.proc.Stop() // its cleanup then reports only what Stop finds
		if attempt < portAttempts && strings.Contains(n.proc.Log(), logAddrInUse) {
			continue
		}
		tb.Fatalf("litefstest: %s: %v", n.hostname, err)
	}
}

// ready reports whether the node is up: the primary holds the lease and
// shows .lag in its mount; a replica shows .primary naming the primary.
func (n *Node) ready(primary *Node) error {
	if _, err := os.Stat(filepath.Join(n.MountDir(), LagFile)); err != nil {
		return n.proc.exitedErr("no " + LagFile + " in the mount yet")
	}
	info, err := n.Info()
	if err != nil {
		return n.proc.exitedErr(err.Error())
	}
	if primary == nil {
		if !info.IsPrimary {
			return errors.New("not primary yet")
		}
		return nil
	}
	b, err := os.ReadFile(filepath.Join(n.MountDir(), PrimaryFile))
	if err != nil {
		return n.proc.exitedErr("not connected to the primary yet: " + err.Error())
	}
	if got := strings.TrimSpace(string(b)); got != primary.hostname {
		return fmt.Errorf("%s holds %q, want %q", PrimaryFile, got, primary.hostname)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Nodes returns the nodes, the primary first.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Primary returns the primary, node-0.
func (c *Cluster) Primary() *Node { return c.nodes[0] }

// Replicas returns the replicas.
func (c *Cluster) Replicas() []*Node { return c.nodes[1:] }

// WaitReplicated waits until every replica has applied the primary's last
// transaction on the default database, and fails the test if that does not
// happen within DefaultWaitTimeout or the primary has no such database.
func (c *Cluster) WaitReplicated(tb testing.TB) {
	tb.Helper()
	pos, err := c.Primary().Pos()
	if err != nil {
		tb.Fatalf("litefstest: WaitReplicated: %v", err)
	}
	for _, r := range c.Replicas() {
		r.WaitTXID(tb, pos.TXID)
	}
}

// Hostname returns the node's LiteFS hostname, which replicas show in
// .primary when this node is the primary, and which a [FlyProxy] may use as
// the node's instance ID.
func (n *Node) Hostname() string { return n.hostname }

// IsPrimary reports whether the node was started as the primary.
func (n *Node) IsPrimary() bool { return n.primary }

// MountDir returns the directory LiteFS mounts, which holds the databases.
func (n *Node) MountDir() string { return filepath.Join(n.dir, "mnt") }

// DataDir returns LiteFS's data directory (its own files; not for tests to
// write).
func (n *Node) DataDir() string { return filepath.Join(n.dir, "data") }

// DBPath returns the path of the default database in the mount,
// <mount>/app.db.
func (n *Node) DBPath() string { return filepath.Join(n.MountDir(), DefaultDBName) }

// DSN returns a go-sqlite3 DSN for DBPath (see [DSN]).
func (n *Node) DSN() string { return DSN(n.DBPath()) }

// URL returns the base URL of the node's LiteFS HTTP API.
func (n *Node) URL() string { return n.url }

// Process returns the node's LiteFS process, for its output or to stop it.
func (n *Node) Process() *Process { return n.proc }

// Pos returns the position of the default database on this node.
func (n *Node) Pos() (Pos, error) { return ReadPos(n.DBPath() + "-pos") }

// WaitTXID waits until the default database on this node is at txid or
// later, and fails the test if it is not within DefaultWaitTimeout.
func (n *Node) WaitTXID(tb testing.TB, txid uint64) {
	tb.Helper()
	WaitFor(tb, func() error {
		pos, err := n.Pos()
		if err != nil {
			return n.proc.exitedErr(n.hostname + ": " + err.Error())
		}
		if pos.TXID < txid {
			return fmt.Errorf("%s: at TXID %d, want %d", n.hostname, pos.TXID, txid)
		}
		return nil
	})
}

// Info asks the node's HTTP API for its view of the cluster.
func (n *Node) Info() (NodeInfo, error) {
	var info NodeInfo
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(n.url + "/info")
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("GET %s/info: %s", n.url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return info, fmt.Errorf("GET %s/info: %w", n.url, err)
	}
	return info, nil
}

// logPath returns the file that holds the output of the node's LiteFS:
// <dir>/litefs.log, or litefs-<attempt>.log for a retry on another port.
func (n *Node) logPath(attempt int) string {
	if attempt == 1 {
		return filepath.Join(n.dir, "litefs.log")
	}
	return filepath.Join(n.dir, fmt.Sprintf("litefs-%d.log", attempt))
}
