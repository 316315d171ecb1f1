//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Timeouts of a node's life.
const (
	readyTimeout = 30 * time.Second // LiteFS joins the cluster; the app creates or waits for the schema
	stopTimeout  = 10 * time.Second // after SIGINT, before the node is killed
)

// node is one LiteFS process and the app it runs.
type node struct {
	name, region string
	dir          string // holds mnt/, data/ and litefs.log
	litefsAddr   string // LiteFS's API, 127.0.0.1:port
	appAddr      string // the app, 127.0.0.1:port

	cmd     *exec.Cmd
	logPath string        // LiteFS's output and the app's: <dir>/litefs.log
	done    chan struct{} // closed when the process has exited
	err     error         // how it exited; set before done is closed
	tail    *tail         // copies the log to the cluster's output; nil if none

	stopOnce sync.Once
	stopErr  error
}

func newNode(name, region, dir string) (*node, error) {
	n := &node{name: name, region: region, dir: dir}
	for _, d := range []string{n.mountDir(), n.dataDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var err error
	if n.litefsAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	if n.appAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *node) mountDir() string { return filepath.Join(n.dir, "mnt") }
func (n *node) dataDir() string  { return filepath.Join(n.dir, "data") }
func (n *node) appURL() string   { return "http://" + n.appAddr }

// role names the node's part: "primary" or "replica".
func (n *node) role(primary *node) string {
	if n == primary {
		return "primary"
	}
	return "replica"
}

// DBPath returns the path of the app's database in the node's mount.
func (n *node) DBPath() string { return filepath.Join(n.mountDir(), "posts.db") }

// start runs "litefs mount" with config, the values it reads from the
// environment set for this node: a static lease naming primary, and the app
// as its exec: command.
func (n *node) start(litefsBin, config, app string, primary *node, out io.Writer) error {
	env := []string{
		"LITEFS_DIR=" + n.mountDir(),
		"LITEFS_DATA_DIR=" + n.dataDir(),
		"LITEFS_HTTP_ADDR=" + n.litefsAddr,
		"LITEFS_LEASE_TYPE=static",
		// A static lease names the primary on every node.
		"LITEFS_HOSTNAME=" + primary.name,
		"LITEFS_ADVERTISE_URL=http://" + primary.litefsAddr,
		// The candidate is the node in the primary region, as on Fly.io.
		"FLY_REGION=" + n.region,
		"PRIMARY_REGION=" + primaryRegion,
		"LITEFS_EXEC=" + shellQuote(app),
		// The app's configuration; FLY_MACHINE_ID is its instance ID, which
		// the replicas' .primary names.
		"LISTEN_ADDR=" + n.appAddr,
		"DATABASE_PATH=" + n.DBPath(),
		"FLY_MACHINE_ID=" + n.name,
	}
	n.logPath = filepath.Join(n.dir, "litefs.log")
	log, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // LiteFS has its own copy
	// The process outlives no ctx: it is stopped by stop, in order.
	cmd := exec.Command(litefsBin, "mount", "-config", config)
	cmd.Dir = n.dir
	cmd.Env = append(cleanEnv(), env...)
	// A file, not a pipe: if the cluster dies, LiteFS must still be able to
	// log while it stops its app and unmounts, where a pipe with no reader
	// would kill it with SIGPIPE. The cluster copies the file to out.
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so that Ctrl-C reaches the cluster only, which
	// then stops the nodes in order; SIGINT if the cluster dies first, so
	// that LiteFS still stops its app and unmounts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() {
		n.err = cmd.Wait()
		close(n.done)
	}()
	if out != io.Discard {
		n.tail = startTail(n.logPath, &prefixWriter{prefix: fmt.Sprintf("%-7s│ ", n.name), w: out})
	}
	return nil
}

// cleanEnv is the environment without the variables the node sets, and
// without those that would make LiteFS or the app act as on Fly.io.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FLY_") || strings.HasPrefix(k, "LITEFS_") ||
			k == "PRIMARY_REGION" || k == "PORT" || k == "LISTEN_ADDR" || k == "DATABASE_PATH" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady waits until LiteFS is part of the cluster: the primary holds
// the lease; a replica shows the primary in .primary.
func (n *node) waitReady(ctx context.Context, primary *node) error {
	return n.waitFor(ctx, "LiteFS to join the cluster", func() error {
		if _, err := os.Stat(filepath.Join(n.mountDir(), ".lag")); err != nil {
			return errors.New("not mounted yet")
		}
		if n == primary {
			return n.checkPrimary()
		}
		b, err := os.ReadFile(filepath.Join(n.mountDir(), ".primary"))
		if err != nil {
			return errors.New("not connected to the primary yet")
		}
		if got := strings.TrimSpace(string(b)); got != primary.name {
			return fmt.Errorf(".primary names %q, want %q", got, primary.name)
		}
		return nil
	})
}

// checkPrimary asks LiteFS's API whether the node holds the lease.
func (n *node) checkPrimary() error {
	var info struct {
		IsPrimary bool `json:"isPrimary"`
	}
	if err := getJSON("http://"+n.litefsAddr+"/info", &info); err != nil {
		return err
	}
	if !info.IsPrimary {
		return errors.New("not primary yet")
	}
	return nil
}

// waitApp waits until the node's app answers its health check.
func (n *node) waitApp(ctx context.Context) error {
	return n.waitFor(ctx, "the app to answer /healthz", func() error {
		var h struct{ Status string }
		if err := getJSON(n.appURL()+"/healthz", &h); err != nil {
			return err
		}
		if h.Status != "ok" {
			return fmt.Errorf("health: %s", h.Status)
		}
		return nil
	})
}

// waitFor polls cond with backoff until it returns nil, the process exits,
// ctx ends or readyTimeout passes.
func (n *node) waitFor(ctx context.Context, what string, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-n.done:
			t.Stop()
			return fmt.Errorf("%s: LiteFS exited (%v) while waiting for %s; its log: %s",
				n.name, n.err, what, n.logPath)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: waiting for %s: %w (last: %v); its log: %s",
				n.name, what, context.Cause(ctx), err, n.logPath)
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// stop sends LiteFS SIGINT (it stops the app, unmounts and exits), kills
// the node's process group if it has not exited within stopTimeout, and
// detaches a mount left behind.
func (n *node) stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stopNow() })
	return n.stopErr
}

func (n *node) stopNow() error {
	if n.cmd == nil {
		return nil
	}
	defer n.tail.stop() // after LiteFS's last line
	var errs []error
	select {
	case <-n.done:
	default:
		_ = n.cmd.Process.Signal(os.Interrupt)
		t := time.NewTimer(stopTimeout)
		select {
		case <-n.done:
			t.Stop()
		case <-t.C:
			// LiteFS ignores signals until it has joined the cluster.
			_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-n.done
			errs = append(errs, fmt.Errorf("%s: no exit within %v of SIGINT: killed", n.name, stopTimeout))
		}
	}
	if mounted(n.mountDir()) {
		out, err := exec.Command("fusermount3", "-u", "-z", n.mountDir()).CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: fusermount3 -u: %v: %s", n.name, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

// mounted reports whether dir is a mount point.
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		// "36 35 98:0 /root /mount/point opts ...": field 5 is the mount
		// point, with spaces escaped as \040.
		if f := strings.Fields(line); len(f) > 4 && strings.ReplaceAll(f[4], `\040`, " ") == dir {
			return true
		}
	}
	return false
}

// getJSON gets url and decodes its JSON body into v.
func getJSON(url string, v any) error {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// shellQuote quotes s for the shell-like parser LiteFS splits exec: with.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// prefixWriter writes complete lines to w, each after prefix. It is safe
// for concurrent use by one process's stdout and stderr.
type prefixWriter struct {
	prefix string
	w      io.Writer

	mu      sync.Mutex
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	var out []byte
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		out = append(out, p.prefix...)
		out = append(out, p.partial[:i+1]...)
		p.partial = p.partial[i+1:]
	}
	if len(out) > 0 {
		p.partial = bytes.Clone(p.partial) // let the written lines go
		// An error (the terminal went away) is not the process's: the log
		// file has everything.
		_, _ = p.w.Write(out)
	}
	return len(b), nil
}
