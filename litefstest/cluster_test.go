//go:build unix

package litefstest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// TestCluster checks a two-node cluster end to end: roles as the mount files
// show them, replication of a row written on the primary, a write refused on
// the replica, and a POST replayed to the primary by FlyProxy.
func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := litefstest.StartCluster(t, 2)
	t.Logf("cluster of 2 ready in %v", time.Since(start))
	primary, replica := c.Primary(), c.Replicas()[0]

	t.Run("roles", func(t *testing.T) { checkRoles(t, primary, replica) })

	pdb := openDB(t, primary.DSN())
	mustExec(t, pdb, `CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL)`)
	mustExec(t, pdb, `INSERT INTO posts (title) VALUES ('hello')`)
	c.WaitReplicated(t)

	t.Run("replicated", func(t *testing.T) {
		ppos, err := primary.Pos()
		require.NoError(t, err)
		rpos, err := replica.Pos()
		require.NoError(t, err)
		assert.Equal(t, ppos, rpos, "replica position")
		var title string
		assert.NoError(t, openDB(t, replica.DSN()).QueryRow(`SELECT title FROM posts WHERE id = 1`).Scan(&title), "replica row")
		assert.Equal(t, "hello", title, "replica row")
	})

	t.Run("replica refuses writes", func(t *testing.T) {
		_, err := openDB(t, replica.DSN()).Exec(`INSERT INTO posts (title) VALUES ('nope')`)
		require.Error(t, err, "INSERT on the replica")
		t.Logf("INSERT on the replica: %v", err)
	})

	t.Run("POST replayed to the primary", func(t *testing.T) { checkPostReplayed(t, c) })
}

// checkRoles checks what the mount files and the HTTP API of each node say
// of its role.
func checkRoles(t *testing.T, primary, replica *litefstest.Node) {
	assert.Equal(t, "node-0", primary.Hostname(), "primary hostname")
	_, err := os.Stat(filepath.Join(primary.MountDir(), litefstest.PrimaryFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "primary: stat .primary")
	b, err := os.ReadFile(filepath.Join(replica.MountDir(), litefstest.PrimaryFile))
	assert.NoError(t, err, "replica .primary")
	assert.Equal(t, "node-0\n", string(b), "replica .primary")
	before := time.Now()
	fi, err := os.Stat(filepath.Join(primary.MountDir(), litefstest.LagFile))
	if assert.NoError(t, err, "primary .lag") {
		assert.False(t, fi.ModTime().Before(before.Add(-10*time.Millisecond)), "primary .lag: mtime %v, want not before %v", fi.ModTime(), before)
	}
	for _, tc := range []struct {
		node        *litefstest.Node
		wantPrimary bool
	}{{node: primary, wantPrimary: true}, {node: replica, wantPrimary: false}} {
		info, err := tc.node.Info()
		require.NoError(t, err)
		assert.Equal(t, tc.wantPrimary, info.IsPrimary, "%s /info: isPrimary", tc.node.Hostname())
		assert.Equal(t, "node-0", info.Primary.Hostname, "%s /info: primary", tc.node.Hostname())
	}
}

// checkPostReplayed posts through a FlyProxy pinned to the replica and
// checks that the POST was replayed to the primary, once, and replicated.
func checkPostReplayed(t *testing.T, c *litefstest.Cluster) {
	primary, replica := c.Primary(), c.Replicas()[0]
	apps := map[string]string{}
	for _, n := range c.Nodes() {
		apps[n.Hostname()] = startPostsApp(t, n)
	}
	proxy, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{Instances: apps, Target: replica.Hostname()})
	require.NoError(t, err)
	url := proxy.Start(t)
	resp, err := http.Post(url+"/posts", "text/plain", strings.NewReader("second"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "POST: body %q", body)
	assert.Equal(t, []replayTry{{from: replica.Hostname(), to: primary.Hostname()}}, triesOf(proxy.Replays()))
	c.WaitReplicated(t)
	var n int
	assert.NoError(t, openDB(t, replica.DSN()).QueryRow(`SELECT count(*) FROM posts WHERE title = 'second'`).Scan(&n))
	assert.Equal(t, 1, n, "rows titled second on the replica")
}

// startPostsApp serves a minimal app on node: a POST inserts its body as a
// post on the primary, and answers fly-replay on a replica.
func startPostsApp(t *testing.T, node *litefstest.Node) string {
	t.Helper()
	db := openDB(t, node.DSN())
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, err := os.ReadFile(filepath.Join(node.MountDir(), litefstest.PrimaryFile)); err == nil {
			w.Header().Set(litefstest.HeaderReplay, "instance="+strings.TrimSpace(string(b)))
			return
		}
		title, _ := io.ReadAll(r.Body)
		if _, err := db.ExecContext(r.Context(), `INSERT INTO posts (title) VALUES (?)`, string(title)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	return srv.URL
}

// TestClusterLeavesNothing starts a cluster in a subtest and checks, once
// the subtest has ended, that no LiteFS process or mount is left.
func TestClusterLeavesNothing(t *testing.T) {
	t.Parallel()
	var mounts []string
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		c := litefstest.StartCluster(t, 2)
		for _, n := range c.Nodes() {
			mounts = append(mounts, n.MountDir())
			pids = append(pids, n.Process().Pid())
			assert.True(t, isMounted(t, n.MountDir()), "%s: %s is not mounted while the cluster runs", n.Hostname(), n.MountDir())
		}
	})
	if len(mounts) == 0 {
		t.Skip("the cluster did not start")
	}
	for _, m := range mounts {
		assert.False(t, isMounted(t, m), "%s is still mounted after the subtest", m)
	}
	for _, pid := range pids {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "process %d: kill -0 (gone)", pid)
	}
}

// isMounted reports whether dir is a mount point in /proc/self/mountinfo.
func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	ok, err := litefstest.Mounted(dir)
	require.NoError(t, err)
	return ok
}

// appConfig writes a litefs.yml like an example app's: its paths, port and
// hostname come from the environment, and exec: starts the app. It returns
// the config's path and the environment to run it with.
func appConfig(t *testing.T, exec string) (path string, env []string) {
	t.Helper()
	dir := t.TempDir()
	config := `fuse:
  dir: "${LFS_ROOT}/mnt"
data:
  dir: "${LFS_ROOT}/data"
http:
  addr: "127.0.0.1:${LFS_PORT}"
lease:
  type: static
  candidate: true
  hostname: "${LFS_HOST}"
  advertise-url: "http://127.0.0.1:${LFS_PORT}"
exec: ` + exec + "\n"
	path = filepath.Join(dir, "litefs.yml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	return path, []string{"LFS_ROOT=" + dir, "LFS_PORT=" + fmt.Sprint(freePort(t)), "LFS_HOST=solo"}
}

// TestStartLiteFS runs LiteFS from a config file that takes its paths from
// the environment and starts an app with exec:, as an example app's
// litefs.yml does.
func TestStartLiteFS(t *testing.T) {
	t.Parallel()
	path, env := appConfig(t, `sh -c "echo app up on $LFS_HOST; exec sleep 600"`)
	var mount string
	t.Run("run", func(t *testing.T) {
		p := litefstest.StartLiteFS(t, path, env)
		p.WaitLog(t, "app up on solo")
		mount = p.MountDir()
		assert.Equal(t, filepath.Join(filepath.Dir(path), "mnt"), mount, "MountDir")
		assert.FileExists(t, filepath.Join(mount, litefstest.LagFile), ".lag in the mount")
		assert.NoError(t, p.Stop(), "Stop")
		select {
		case <-p.Done():
		default:
			assert.Fail(t, "Done not closed after Stop")
		}
		assert.NoError(t, p.ExitErr(), "ExitErr: want a clean exit")
		assert.Contains(t, p.Log(), "litefs shut down complete", "the log shows a clean shutdown")
		log, err := os.ReadFile(p.LogPath())
		assert.NoError(t, err, "the log file")
		assert.Equal(t, p.Log(), string(log), "Log and the log file")
	})
	if mount == "" {
		return
	}
	assert.False(t, isMounted(t, mount), "%s is still mounted", mount)
}

// TestStartLiteFSFails gives LiteFS a config it rejects: StartLiteFS fails
// the test at once, and the output is printed.
func TestStartLiteFSFails(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "litefs.yml")
	require.NoError(t, os.WriteFile(path, []byte("fuse: {dir: \"\"}\ndata: {dir: /tmp/x}\nlease: {type: static}\n"), 0o644))
	var tb *fatalTB
	t.Run("start", func(t *testing.T) {
		tb = runFatal(t, func(tb testing.TB) { litefstest.StartLiteFS(tb, path, nil) })
	})
	assert.Contains(t, tb.msg, "exited (exit status 2) while waiting", "a failure naming the exit")
	assert.Contains(t, strings.Join(tb.logs, "\n"), "fuse directory required", "LiteFS's output printed")
}

// TestStopNotReady stops a replica that never reaches its primary: LiteFS
// ignores SIGINT until it is ready, so Stop kills it at once and detaches
// its mount, without an error.
func TestStopNotReady(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := fmt.Sprintf(`fuse: {dir: %q}
data: {dir: %q}
http: {addr: "127.0.0.1:%d"}
lease: {type: static, candidate: false, hostname: gone, advertise-url: "http://127.0.0.1:%d"}
`, filepath.Join(dir, "mnt"), filepath.Join(dir, "data"), freePort(t), freePort(t))
	path := filepath.Join(dir, "litefs.yml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	// Give up waiting as soon as LiteFS has mounted.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := os.Stat(filepath.Join(dir, "mnt", litefstest.LagFile)); err == nil {
					cancel()
					return
				}
			}
		}
	}()
	start := time.Now()
	var tb *fatalTB
	t.Run("start", func(t *testing.T) {
		tb = runFatalCtx(t, ctx, func(tb testing.TB) { litefstest.StartLiteFS(tb, path, nil) })
	})
	assert.Less(t, time.Since(start), litefstest.DefaultStopTimeout/2, "start and stop took too long: SIGINT waited")
	assert.Contains(t, tb.msg, "stopped waiting (context canceled)", "a failure for the canceled wait")
	assert.False(t, isMounted(t, filepath.Join(dir, "mnt")), "the mount is left")
}

// TestProcessPrintsOutput fails a test that runs LiteFS: its output is
// printed when it ends, and only then.
func TestProcessPrintsOutput(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		path, env := appConfig(t, `sh -c "echo hello from the app; exec sleep 600"`)
		var tb *fatalTB
		t.Run(fmt.Sprint("fail=", fail), func(t *testing.T) {
			tb = runFatal(t, func(tb testing.TB) {
				litefstest.StartLiteFS(tb, path, env).WaitLog(tb, "hello from the app")
				if fail {
					tb.Fatal("boom")
				}
			})
		})
		logs := strings.Join(tb.logs, "\n")
		for _, want := range []string{"hello from the app", "litefs shut down complete"} {
			assert.Equal(t, fail, strings.Contains(logs, want), "fail=%v: printed output holds %q", fail, want)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
