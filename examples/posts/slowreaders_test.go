package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litefs-sql/litefs/litefstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bounds of TestSlowReadersMemory.
const (
	slowReaders   = 100
	maxSlowRSS    = 100 << 20 // peak resident memory of the app
	slowReadersIn = 30 * time.Second
)

// TestSlowReadersMemory runs the app's binary with 100 worst-case posts and
// opens 100 connections that ask for the list and never read the answer.
// The app's peak resident memory (VmHWM) must stay under 100 MB: before the
// list was paged, each such connection pinned a 4.1 MB page and the app
// reached about 1 GB. Linux only (it reads /proc); loopback only.
func TestSlowReadersMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the app's memory in /proc")
	}
	if testing.Short() {
		t.Skip("builds and loads the app for seconds")
	}
	t.Parallel()
	bin := buildApp(t)
	addr := freeAddr(t)
	logs := &litefstest.SyncBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LISTEN_ADDR="+addr, "DATABASE_PATH="+filepath.Join(t.TempDir(), "posts.db"), "LOG_LEVEL=info")
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("app log (last 4 KB):\n%s", tail(logs.String(), 4096))
		}
	})
	base := "http://" + addr
	litefstest.WaitFor(t, func() error { return healthy(base) })
	seedWorstPosts(t, base, 100)
	startRSS := vmKB(t, cmd.Process.Pid, "VmRSS")

	for range slowReaders {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = fmt.Fprintf(c, "GET /posts HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		require.NoError(t, err)
	}
	// Wait until the app has answered them all (it logs a request once
	// answered), or until the deadline if it cannot.
	deadline := time.Now().Add(slowReadersIn)
	served := 0
	for time.Now().Before(deadline) {
		if served = strings.Count(logs.String(), "path=/posts status=200"); served >= slowReaders {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the log: nothing to wait on
	}
	peak := vmKB(t, cmd.Process.Pid, "VmHWM")
	t.Logf("app memory: %d KB resident before the slow readers, peak %d KB with %d of them answered",
		startRSS, peak, served)
	assert.Less(t, peak*1024, int64(maxSlowRSS), "peak resident memory")
	assert.Equal(t, slowReaders, served, "list pages answered within %v", slowReadersIn)
}

// seedWorstPosts posts n worst-case posts to the app at base.
func seedWorstPosts(t *testing.T, base string, n int) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"title": {worstTitle}, "body": {worstBody}}.Encode()
	for range n {
		resp, err := client.Post(base+"/posts/store", "application/x-www-form-urlencoded", strings.NewReader(form))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	}
}

// vmKB returns a field of /proc/<pid>/status, in kB.
func vmKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	require.FailNow(t, "no "+field+" in /proc/<pid>/status")
	return 0
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
