//go:build linux

package litefstest_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litefs-sql/litefs/litefstest"
)

// envOrphanChild makes TestOrphanChild start a cluster: the test binary runs
// itself as a child process that a test then kills.
const envOrphanChild = "LITEFSTEST_ORPHAN_CHILD"

// TestOrphanChild is the child process of TestParentDeathUnmounts: it starts
// a two-node cluster, prints its mounts and LiteFS's process IDs, and waits
// until its parent kills it or closes its standard input.
func TestOrphanChild(t *testing.T) {
	if os.Getenv(envOrphanChild) != "1" {
		t.Skip("run by TestParentDeathUnmounts")
	}
	c := litefstest.StartCluster(t, 2)
	for _, n := range c.Nodes() {
		fmt.Printf("mount %s\npid %d\n", n.MountDir(), n.Process().Pid())
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// TestParentDeathUnmounts kills a test process that runs a cluster the ways
// a user does (Ctrl-C, a closed terminal, kill, kill -9) and checks that its
// LiteFS nodes unmount and exit all the same: with no parent left to stop
// them, each is sent SIGINT by the kernel, and must survive writing its log
// while it unmounts.
func TestParentDeathUnmounts(t *testing.T) {
	if err := litefstest.CheckFUSE(); err != nil {
		if os.Getenv(litefstest.EnvRequire) == "1" {
			require.NoError(t, err)
		}
		t.Skip(err)
	}
	bin := litefstest.LiteFSBinary(t)
	for _, tc := range []struct {
		name  string
		sig   syscall.Signal
		group bool // sent to the process group, as a terminal does
	}{
		{name: "Ctrl-C", sig: syscall.SIGINT, group: true},
		{name: "terminal closed", sig: syscall.SIGHUP, group: true},
		{name: "kill", sig: syscall.SIGTERM},
		{name: "kill -9", sig: syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mounts, pids := runOrphanChild(t, bin, tc.sig, tc.group)
			litefstest.WaitFor(t, func() error { return leftBehind(mounts, pids) })
		})
	}
}

// runOrphanChild runs TestOrphanChild in a new test process, waits until its
// cluster is up, kills the process with sig and returns the cluster's mounts
// and LiteFS process IDs. What is left when the test ends is cleaned up.
func runOrphanChild(t *testing.T, bin string, sig syscall.Signal, group bool) (mounts []string, pids []int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envOrphanChild+"=1", litefstest.EnvBinary+"="+bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cleanUpOrphans(t, mounts, pids)
	})
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		out.WriteString(sc.Text() + "\n")
		if dir, ok := strings.CutPrefix(sc.Text(), "mount "); ok {
			mounts = append(mounts, dir)
		}
		if s, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, err := strconv.Atoi(s)
			require.NoError(t, err)
			pids = append(pids, pid)
		}
	}
	require.Len(t, mounts, 2, "the child did not start its cluster:\n%s", out.String())
	require.Len(t, pids, 2)
	target := cmd.Process.Pid
	if group {
		target = -target
	}
	require.NoError(t, syscall.Kill(target, sig))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child survived %v", sig)
	return mounts, pids
}

// leftBehind returns an error naming the mounts still mounted and the
// processes still running.
func leftBehind(mounts []string, pids []int) error {
	var errs []error
	for _, m := range mounts {
		if ok, err := litefstest.Mounted(m); ok || err != nil {
			errs = append(errs, fmt.Errorf("%s is still mounted (%v)", m, err))
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("LiteFS (pid %d) is still running", pid))
		}
	}
	return errors.Join(errs...)
}

// cleanUpOrphans kills what a failed run left, detaches its mounts and
// removes the temporary directory of the child, which it could not remove:
// <tmp>/TestOrphanChild…/001/node-0/mnt.
func cleanUpOrphans(t *testing.T, mounts []string, pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, m := range mounts {
		if ok, _ := litefstest.Mounted(m); ok {
			out, err := exec.Command("fusermount3", "-u", "-z", m).CombinedOutput()
			assert.NoError(t, err, "fusermount3 -u -z %s: %s", m, out)
		}
		root := filepath.Dir(filepath.Dir(filepath.Dir(m)))
		if strings.HasPrefix(filepath.Base(root), "TestOrphanChild") {
			assert.NoError(t, os.RemoveAll(root))
		}
	}
}

// TestStopWaitsForOpenFiles holds a file of the mount open while the node
// stops: Stop waits for it to be closed before it stops LiteFS, and if it is
// not closed in time, names it in its error.
func TestStopWaitsForOpenFiles(t *testing.T) {
	t.Parallel()
	t.Run("closed while Stop waits", func(t *testing.T) {
		t.Parallel()
		node := litefstest.StartCluster(t, 1).Primary()
		f, err := os.Open(filepath.Join(node.MountDir(), litefstest.LagFile))
		require.NoError(t, err)
		stopped := make(chan error, 1)
		go func() { stopped <- node.Process().Stop() }()
		select {
		case <-node.Process().Done():
			require.Fail(t, "LiteFS exited while a file of its mount was open")
		case <-time.After(300 * time.Millisecond): // long enough to see it wrongly exit
		}
		_, err = io.ReadAll(f)
		assert.NoError(t, err, "read the open file while Stop waits")
		require.NoError(t, f.Close())
		assert.NoError(t, <-stopped)
	})
	t.Run("left open", func(t *testing.T) {
		t.Parallel()
		// The node's cleanup reports Stop's error again: expected here.
		node := litefstest.StartCluster(&errorRecorder{TB: t}, 1).Primary()
		path := filepath.Join(node.MountDir(), litefstest.LagFile)
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		err = node.Process().Stop()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "files in its mount still open")
		assert.Contains(t, err.Error(), fmt.Sprintf("open %s by pid %d", path, os.Getpid()))
	})
}

// errorRecorder keeps the errors a helper reports with Error or Errorf
// instead of failing the test.
type errorRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *errorRecorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
