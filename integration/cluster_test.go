//go:build linux

package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// postsCluster is the example app's local cluster, run as its users run it:
// the command examples/posts/cluster, built from the repository, with the
// URLs and replays it prints read from its standard error.
type postsCluster struct {
	dir  string
	urls map[string]string // "any instance", "node-a only", "node-b only"

	mu      sync.Mutex
	replays []string // "POST /posts/store from node-b to node-a: replayed"
	printed strings.Builder
}

var (
	clusterURLLine    = regexp.MustCompile(`^\s+(http://127\.0\.0\.1:\d+/)\s+(any instance|node-a only|node-b only)`)
	clusterReplayLine = regexp.MustCompile(`^fly-replay: (.*)$`)
)

// startPostsCluster builds and starts the example's cluster command on free
// ports, waits until it says it is up, and stops it with SIGINT when the
// test ends, checking that it exits cleanly and unmounts both nodes.
func startPostsCluster(t *testing.T) *postsCluster {
	t.Helper()
	if err := litefstest.CheckFUSE(); err != nil {
		if os.Getenv(litefstest.EnvRequire) == "1" {
			t.Fatalf("%v (and %s=1)", err, litefstest.EnvRequire)
		}
		t.Skip(err)
	}
	litefs := litefstest.LiteFSBinary(t)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "cluster")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./examples/posts/cluster")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)

	c := &postsCluster{dir: t.TempDir(), urls: map[string]string{}}
	// The command finds the app's source with the go command, from the
	// repository's module.
	cmd := exec.Command(bin, "-port", "0", "-quiet", "-dir", c.dir, "-litefs", litefs)
	cmd.Dir = root
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	up := make(chan struct{})
	go func() {
		c.read(stderr, up)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { c.stop(t, cmd, done) })

	select {
	case <-up:
	case err := <-done:
		done <- err
		t.Fatalf("the cluster command exited (%v) before it was up:\n%s", err, c.output())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the cluster command is not up after 2 minutes:\n%s", c.output())
	}
	require.Len(t, c.urls, 3, "printed URLs:\n%s", c.output())
	return c
}

// read records what the command prints and closes up when it says it is
// up.
func (c *postsCluster) read(stderr io.Reader, up chan struct{}) {
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		c.printed.WriteString(line + "\n")
		if m := clusterURLLine.FindStringSubmatch(line); m != nil && up != nil {
			c.urls[m[2]] = m[1]
		}
		if m := clusterReplayLine.FindStringSubmatch(line); m != nil {
			c.replays = append(c.replays, m[1])
		}
		c.mu.Unlock()
		if strings.HasPrefix(line, "Press Ctrl-C") && up != nil {
			close(up)
			up = nil
		}
	}
}

// URL returns the base URL of the proxy in front of instance ("node-a",
// "node-b"), or of any instance for "".
func (c *postsCluster) URL(instance string) string {
	if instance == "" {
		return c.urls["any instance"]
	}
	return c.urls[instance+" only"]
}

// Replays returns the replays the command has reported so far.
func (c *postsCluster) Replays() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.replays...)
}

func (c *postsCluster) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.printed.String()
}

// stop sends SIGINT, as Ctrl-C does, and checks that the command exits
// with status 0 and leaves no mount behind.
func (c *postsCluster) stop(t *testing.T, cmd *exec.Cmd, done chan error) {
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Errorf("stop the cluster: %v", err)
	}
	select {
	case err := <-done:
		assert.NoError(t, err, "the cluster command's exit:\n%s", c.output())
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Errorf("the cluster command did not exit a minute after SIGINT:\n%s", c.output())
	}
	for _, node := range []string{"node-a", "node-b"} {
		mnt := filepath.Join(c.dir, node, "mnt")
		ok, err := litefstest.Mounted(mnt)
		assert.NoError(t, err)
		assert.False(t, ok, "%s is still mounted", mnt)
	}
}
