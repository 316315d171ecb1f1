//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// startCluster starts a cluster on free ports in a temporary directory and
// stops it when the test ends. Where LiteFS cannot run, the test is skipped,
// or fails if LITEFS_REQUIRE=1.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	requireFUSE(t)
	bin := litefstest.LiteFSBinary(t)
	c, err := start(t.Context(), options{LiteFS: bin, Dir: t.TempDir(), Output: t.Output()})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, c.Stop(), "stop")
		for _, n := range c.nodes {
			assert.False(t, mounted(n.mountDir()), "%s is still mounted", n.mountDir())
		}
	})
	return c
}

// requireFUSE skips the test where LiteFS cannot run, or fails it if
// LITEFS_REQUIRE=1.
func requireFUSE(t *testing.T) {
	t.Helper()
	if err := checkFUSE(); err != nil {
		if os.Getenv(litefstest.EnvRequire) == "1" {
			require.NoError(t, err, "and %s=1", litefstest.EnvRequire)
		}
		t.Skip(err)
	}
}

// newClient returns a client with a cookie jar that does not follow
// redirects, so that each hop can be checked.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestReplicaWriteIsReplayed posts through the proxy pinned to the
// replica: the replica refuses the INSERT, answers fly-replay, the proxy
// replays the POST on the primary, and the replica shows the post at once
// (read-your-writes).
func TestReplicaWriteIsReplayed(t *testing.T) {
	c := startCluster(t)
	client := newClient(t)
	base := c.URL("node-b")

	resp, body := get(t, client, base+"posts/create")
	require.Equal(t, http.StatusOK, resp.StatusCode, "form:\n%s", body)
	require.Contains(t, body, "Served by <code>node-b</code>", "form")

	title := fmt.Sprintf("Written on a replica at %s", time.Now().Format(time.RFC3339Nano))
	resp, err := client.PostForm(base+"posts/store", url.Values{"title": {title}, "body": {"Replayed on the primary."}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "store")
	require.Equal(t, "/posts", resp.Header.Get("Location"), "store")
	replays := c.Proxy("node-b").Replays()
	require.Len(t, replays, 1)
	r := replays[0]
	assert.Equal(t, litefstest.Replay{
		RequestID: r.RequestID, State: r.State, // the bridge's own
		Method: "POST", Path: "/posts/store", From: "node-b", To: "node-a",
	}, r)

	// The redirect lands on the replica again. The primary's response set
	// the flash cookie and the __txid cookie, so the replica shows the
	// message and, having waited for that transaction, the post.
	assert.NotEmpty(t, findCookie(client, base, "__txid"), "the primary set no __txid cookie")
	resp, body = get(t, client, base+"posts")
	for _, want := range []string{"Post created.", title, "Served by <code>node-b</code>"} {
		assert.Contains(t, body, want, "list: %s", resp.Status)
	}

	resp, body = get(t, client, base+"healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "health: %s", body)
	assert.Contains(t, body, `"role":"replica","primary":"node-a"`, "health: node-b as a replica of node-a")

	// The primary logged the replayed request as coming from node-b, in
	// node-b's region.
	log, err := os.ReadFile(c.Node("node-a").logPath)
	require.NoError(t, err)
	assert.Regexp(t, `path=/posts/store .*replayed_from="instance=node-b;region=sin;`, string(log))
}

// findCookie returns the value of the cookie the client holds for url.
func findCookie(client *http.Client, rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	for _, c := range client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// buildCommands builds the command and the app, as a user's go run does.
func buildCommands(t *testing.T) (cluster, app string) {
	t.Helper()
	dir := t.TempDir()
	cluster, app = filepath.Join(dir, "cluster"), filepath.Join(dir, "posts")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", cluster, ".").CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	require.NoError(t, buildApp(t.Context(), app))
	return cluster, app
}

// TestCommand runs the command as a user would, then stops it the ways a
// user does: Ctrl-C, kill, closing its terminal, kill -9. Each way, both
// apps stop and both mounts go; the first three also end the command with
// status 0.
func TestCommand(t *testing.T) {
	requireFUSE(t)
	litefs := litefstest.LiteFSBinary(t)
	bin, app := buildCommands(t)
	for _, tc := range []struct {
		name  string
		sig   syscall.Signal
		clean bool // the command stops everything and exits with status 0
	}{
		{name: "Ctrl-C", sig: syscall.SIGINT, clean: true},
		{name: "kill", sig: syscall.SIGTERM, clean: true},
		{name: "terminal closed", sig: syscall.SIGHUP, clean: true},
		{name: "kill -9", sig: syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := startCommand(t, bin, t.TempDir(), "-port", "0", "-quiet", "-litefs", litefs, "-app", app)
			client := newClient(t)
			for what, u := range run.proxies {
				resp, body := get(t, client, u+"posts")
				assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: GET %sposts\n%s", what, u, body)
			}
			require.NoError(t, run.cmd.Process.Signal(tc.sig))
			select {
			case <-run.exited:
				if tc.clean {
					assert.NoError(t, run.err, "exit status")
				}
			case <-time.After(2 * stopTimeout):
				require.Fail(t, "the command did not exit", "after %v", tc.sig)
			}
			if tc.clean { // stopped before it exited
				assert.NoError(t, run.leftBehind())
				return
			}
			litefstest.WaitFor(t, run.leftBehind)
		})
	}
}

// commandRun is a running cluster command, as its output describes it.
type commandRun struct {
	cmd     *exec.Cmd
	exited  chan struct{}     // closed when the command has exited
	err     error             // how it exited, set before exited is closed
	proxies map[string]string // "any instance", "node-a only", "node-b only": URL
	apps    map[string]string // node name: the URL of its app, direct
	mounts  []string
}

var (
	proxyLine  = regexp.MustCompile(`^\s+(http://127\.0\.0\.1:\d+/)\s+(any instance|node-a only|node-b only)`)
	directLine = regexp.MustCompile(`^\s+(http://127\.0\.0\.1:\d+/)\s+(node-[ab]) \((ams|sin), (primary|replica)\)`)
)

// startCommand starts the command with its files in dir and the other args,
// and reads its output until it says it is up; it is killed when the test
// ends.
func startCommand(t *testing.T, bin, dir string, args ...string) *commandRun {
	t.Helper()
	run := &commandRun{
		cmd:     exec.Command(bin, append([]string{"-dir", dir}, args...)...),
		exited:  make(chan struct{}),
		proxies: map[string]string{},
		apps:    map[string]string{},
		mounts:  []string{filepath.Join(dir, "node-a", "mnt"), filepath.Join(dir, "node-b", "mnt")},
	}
	stderr, err := run.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, run.cmd.Start())
	lines := make(chan string)
	t.Cleanup(func() {
		_ = run.cmd.Process.Kill()
		go func() {
			for range lines { // unblock the reader if the test stopped reading
			}
		}()
		<-run.exited
		for _, m := range run.mounts { // left by a failure: detach
			if mounted(m) {
				_ = exec.Command("fusermount3", "-u", "-z", m).Run()
			}
		}
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		run.err = run.cmd.Wait()
		close(run.exited)
	}()
	printed := run.readUntilUp(t, lines)
	go func() {
		for range lines { // what it prints from now on
		}
	}()
	require.Len(t, run.proxies, 3, "printed:\n%s", printed)
	require.Len(t, run.apps, 2, "printed:\n%s", printed)
	return run
}

// readUntilUp reads the command's lines until it says it is up, noting the
// URLs it prints, and returns what it printed.
func (run *commandRun) readUntilUp(t *testing.T, lines <-chan string) string {
	t.Helper()
	var printed strings.Builder
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-run.exited
				require.Fail(t, "the command exited before it was up", "%v\n%s", run.err, printed.String())
			}
			printed.WriteString(line + "\n")
			if m := proxyLine.FindStringSubmatch(line); m != nil {
				run.proxies[m[2]] = m[1]
			}
			if m := directLine.FindStringSubmatch(line); m != nil {
				run.apps[m[2]] = m[1]
			}
			if strings.HasPrefix(line, "Press Ctrl-C") {
				return printed.String()
			}
		case <-deadline:
			require.Fail(t, "the command is not up after 2 minutes", "%s", printed.String())
		}
	}
}

// leftBehind returns an error naming the mounts still mounted and the apps
// still answering.
func (run *commandRun) leftBehind() error {
	var errs []error
	for _, m := range run.mounts {
		if mounted(m) {
			errs = append(errs, fmt.Errorf("%s is still mounted", m))
		}
	}
	client := http.Client{Timeout: time.Second}
	for name, u := range run.apps {
		if resp, err := client.Get(u + "healthz"); err == nil {
			resp.Body.Close()
			errs = append(errs, fmt.Errorf("the app of %s still answers at %s", name, u))
		}
	}
	return errors.Join(errs...)
}
