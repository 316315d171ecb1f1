//go:build unix

package litefstest_test

import (
	"context"
	"errors"
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

	t.Run("roles", func(t *testing.T) {
		if got, want := primary.Hostname(), "node-0"; got != want {
			t.Errorf("primary hostname: got %q, want %q", got, want)
		}
		if _, err := os.Stat(filepath.Join(primary.MountDir(), litefstest.PrimaryFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("primary: stat .primary: got %v, want not exist", err)
		}
		b, err := os.ReadFile(filepath.Join(replica.MountDir(), litefstest.PrimaryFile))
		if err != nil || string(b) != "node-0\n" {
			t.Errorf("replica .primary: got %q, %v; want %q", b, err, "node-0\n")
		}
		before := time.Now()
		fi, err := os.Stat(filepath.Join(primary.MountDir(), litefstest.LagFile))
		if err != nil || fi.ModTime().Before(before.Add(-10*time.Millisecond)) {
			t.Errorf("primary .lag: mtime %v, %v; want not before %v", fi.ModTime(), err, before)
		}
		for _, tc := range []struct {
			node        *litefstest.Node
			wantPrimary bool
		}{{primary, true}, {replica, false}} {
			info, err := tc.node.Info()
			if err != nil {
				t.Fatal(err)
			}
			if info.IsPrimary != tc.wantPrimary || info.Primary.Hostname != "node-0" {
				t.Errorf("%s /info: got %+v, want isPrimary %v and primary node-0", tc.node.Hostname(), info, tc.wantPrimary)
			}
		}
	})

	pdb := openDB(t, primary.DSN())
	mustExec(t, pdb, `CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL)`)
	mustExec(t, pdb, `INSERT INTO posts (title) VALUES ('hello')`)
	c.WaitReplicated(t)

	t.Run("replicated", func(t *testing.T) {
		ppos, err := primary.Pos()
		if err != nil {
			t.Fatal(err)
		}
		rpos, err := replica.Pos()
		if err != nil {
			t.Fatal(err)
		}
		if rpos != ppos {
			t.Errorf("replica position: got %v, want %v", rpos, ppos)
		}
		var title string
		if err := openDB(t, replica.DSN()).QueryRow(`SELECT title FROM posts WHERE id = 1`).Scan(&title); err != nil || title != "hello" {
			t.Errorf("replica row: got %q, %v; want %q", title, err, "hello")
		}
	})

	t.Run("replica refuses writes", func(t *testing.T) {
		_, err := openDB(t, replica.DSN()).Exec(`INSERT INTO posts (title) VALUES ('nope')`)
		if err == nil {
			t.Fatal("INSERT on the replica succeeded")
		}
		t.Logf("INSERT on the replica: %v", err)
	})

	t.Run("POST replayed to the primary", func(t *testing.T) {
		apps := map[string]string{}
		for _, n := range c.Nodes() {
			apps[n.Hostname()] = startPostsApp(t, n)
		}
		proxy, err := litefstest.NewFlyProxy(litefstest.FlyProxyConfig{Instances: apps, Target: replica.Hostname()})
		if err != nil {
			t.Fatal(err)
		}
		url := proxy.Start(t)
		resp, err := http.Post(url+"/posts", "text/plain", strings.NewReader("second"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: got %s %q, want 201", resp.Status, body)
		}
		replays := proxy.Replays()
		if len(replays) != 1 || replays[0].From != replica.Hostname() || replays[0].To != primary.Hostname() || replays[0].Err != "" {
			t.Errorf("replays: got %+v, want one from %s to %s", replays, replica.Hostname(), primary.Hostname())
		}
		c.WaitReplicated(t)
		var n int
		if err := openDB(t, replica.DSN()).QueryRow(`SELECT count(*) FROM posts WHERE title = 'second'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("replica: got %d rows titled second, %v; want 1", n, err)
		}
	})
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
			if !isMounted(t, n.MountDir()) {
				t.Errorf("%s: %s is not mounted while the cluster runs", n.Hostname(), n.MountDir())
			}
		}
	})
	if len(mounts) == 0 {
		t.Skip("the cluster did not start")
	}
	for _, m := range mounts {
		if isMounted(t, m) {
			t.Errorf("%s is still mounted after the subtest", m)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d: kill -0: got %v, want ESRCH (gone)", pid, err)
		}
	}
}

// isMounted reports whether dir is a mount point in /proc/self/mountinfo.
func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 5 && strings.ReplaceAll(f[4], `\040`, " ") == dir {
			return true
		}
	}
	return false
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
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
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
		if want := filepath.Join(filepath.Dir(path), "mnt"); mount != want {
			t.Errorf("MountDir: got %q, want %q", mount, want)
		}
		if _, err := os.Stat(filepath.Join(mount, litefstest.LagFile)); err != nil {
			t.Errorf("stat .lag in the mount: %v", err)
		}
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		select {
		case <-p.Done():
		default:
			t.Error("Done not closed after Stop")
		}
		if err := p.ExitErr(); err != nil {
			t.Errorf("ExitErr: %v, want a clean exit", err)
		}
		if !strings.Contains(p.Log(), "litefs shut down complete") {
			t.Errorf("log does not show a clean shutdown:\n%s", p.Log())
		}
	})
	if mount == "" {
		return
	}
	if isMounted(t, mount) {
		t.Errorf("%s is still mounted", mount)
	}
}

// TestStartLiteFSFails gives LiteFS a config it rejects: StartLiteFS fails
// the test at once, and the output is printed.
func TestStartLiteFSFails(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "litefs.yml")
	if err := os.WriteFile(path, []byte("fuse: {dir: \"\"}\ndata: {dir: /tmp/x}\nlease: {type: static}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var tb *fatalTB
	t.Run("start", func(t *testing.T) {
		tb = runFatal(t, func(tb testing.TB) { litefstest.StartLiteFS(tb, path, nil) })
	})
	if !strings.Contains(tb.msg, "exited (exit status 2) while waiting") {
		t.Errorf("got %q, want a failure naming the exit", tb.msg)
	}
	if logs := strings.Join(tb.logs, "\n"); !strings.Contains(logs, "fuse directory required") {
		t.Errorf("printed %q, want LiteFS's output", logs)
	}
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
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
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
	if d := time.Since(start); d > litefstest.DefaultStopTimeout/2 {
		t.Errorf("start and stop took %v", d)
	}
	if !strings.Contains(tb.msg, "stopped waiting (context canceled)") {
		t.Errorf("got %q, want a failure for the canceled wait", tb.msg)
	}
	if isMounted(t, filepath.Join(dir, "mnt")) {
		t.Error("the mount is left")
	}
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
			if strings.Contains(logs, want) != fail {
				t.Errorf("fail=%v: printed output holds %q: %v, want %v", fail, want, !fail, fail)
			}
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
