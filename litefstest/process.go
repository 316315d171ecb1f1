package litefstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// DefaultStopTimeout is how long a stopping LiteFS process may take to
	// exit after SIGINT before it is killed.
	DefaultStopTimeout = 10 * time.Second
	// DefaultCloseTimeout is how long Stop waits for the files that other
	// processes (the test's own database handles, mostly) hold open in the
	// mount to be closed before it stops LiteFS anyway.
	DefaultCloseTimeout = 5 * time.Second
)

// Lines LiteFS v0.5.14 logs, which the helpers wait for.
const (
	logReady     = "connected to cluster, ready"
	logSkipSync  = "skipping cluster sync, starting immediately"
	logMountedTo = "LiteFS mounted to: "
	logAddrInUse = "address already in use"
)

// Process is a running LiteFS process ("litefs mount") started by a helper.
// Its output (and that of the app it starts with exec:) goes to a file,
// which is printed if the test fails. It is stopped when the test ends, or
// earlier by Stop.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  *logFile
	done chan struct{}
	err  error // the exit error, set before done is closed

	mu       sync.Mutex
	mountDir string
	stopped  bool // Stop was called

	stopOnce sync.Once
	stopErr  error
}

// StartLiteFS runs "litefs mount -config configPath" with the environment
// of the test process plus env ("KEY=value" entries, which LiteFS expands
// in the config as ${KEY}), in the directory holding configPath, and waits
// until LiteFS reports that it is ready (it is the primary or is connected to
// one). The test is skipped where LiteFS cannot run (see [LiteFSBinary]) and
// fails if LiteFS exits or is not ready within DefaultWaitTimeout. The
// process is stopped when the test ends; the test fails if it leaves a mount
// behind.
//
// FLY_APP_NAME and LITEFS_CLOUD_TOKEN are not inherited (they make LiteFS
// call Fly.io), but may be passed in env.
func StartLiteFS(tb testing.TB, configPath string, env []string) *Process {
	tb.Helper()
	requireFUSE(tb)
	bin := LiteFSBinary(tb)
	abs, err := filepath.Abs(configPath)
	if err != nil {
		tb.Fatalf("litefstest: %v", err)
	}
	logPath := filepath.Join(tb.TempDir(), "litefs.log")
	p := startProcess(tb, "litefs "+filepath.Base(configPath), bin, filepath.Dir(abs), logPath, env, "mount", "-config", abs)
	err = waitUntil(tb.Context(), DefaultWaitTimeout, func() error {
		if p.ready() {
			return nil
		}
		return p.exitedErr("not ready")
	})
	if err != nil {
		_ = p.Stop()
		tb.Fatalf("litefstest: %s: %v", p.name, err)
	}
	return p
}

// startProcess starts bin with args, its output to the file logPath, and
// registers its stop with tb.
func startProcess(tb testing.TB, name, bin, dir, logPath string, env []string, args ...string) *Process {
	tb.Helper()
	log, out, err := createLog(logPath)
	if err != nil {
		tb.Fatalf("litefstest: start %s: %v", name, err)
	}
	defer out.Close() // the process has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(inheritedEnv(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("litefstest: start %s: %v", name, err)
	}
	p := &Process{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() { p.cleanup(tb) })
	return p
}

// cleanup stops the process when the test ends and reports on it: an early
// exit, a forced stop, files left open in its mount, and its output if the
// test failed.
func (p *Process) cleanup(tb testing.TB) {
	early := p.exitedEarly()
	if err := p.Stop(); err != nil {
		tb.Errorf("litefstest: %v", err)
	}
	if early != nil {
		tb.Errorf("litefstest: %s exited before the test stopped it: %v", p.name, early)
	}
	if tb.Failed() {
		tb.Logf("litefstest: output of %s (pid %d, in %s):\n%s", p.name, p.Pid(), p.log.path, p.Log())
	}
}

// inheritedEnv returns the test's environment without the variables that
// would make LiteFS talk to Fly.io.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FLY_APP_NAME=") || strings.HasPrefix(kv, "LITEFS_CLOUD_TOKEN=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Log returns the output of the process so far: LiteFS's log and the output
// of the app it started, as written to the file [Process.LogPath] names.
func (p *Process) Log() string { return p.log.String() }

// WaitLog waits until the output of the process contains substr and fails
// the test if it does not within DefaultWaitTimeout or the process exits.
func (p *Process) WaitLog(tb testing.TB, substr string) {
	tb.Helper()
	WaitFor(tb, func() error {
		if strings.Contains(p.Log(), substr) {
			return nil
		}
		return p.exitedErr(fmt.Sprintf("no %q in the output of %s", substr, p.name))
	})
}

// LogPath returns the path of the file holding the process's output. It
// is in a temporary directory of the test, removed when the test ends.
func (p *Process) LogPath() string { return p.log.path }

// Pid returns the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// MountDir returns the directory LiteFS mounted, as it logged it; "" if it
// has not logged one.
func (p *Process) MountDir() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mountDir == "" {
		p.mountDir, _ = mountDirFromLog(p.log.String(), p.cmd.Dir)
	}
	return p.mountDir
}

// Done returns a channel closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr returns how the process exited (nil for status 0), once Done is
// closed; before, it returns nil.
func (p *Process) ExitErr() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Stop stops LiteFS once nothing else uses its mount. It waits up to
// DefaultCloseTimeout for other processes (the test's own database handles,
// mostly) to close the files they hold open or mapped in the mount: LiteFS
// exiting under a SQLite connection that maps the database's -shm file
// kills that process with SIGBUS. Then it sends SIGINT (LiteFS stops its
// app, unmounts and exits), waits up to DefaultStopTimeout, kills the
// process and its app, and detaches a mount left behind. It returns an error
// naming the files still open, if it had to kill, or if a mount was left
// with files open in it. A
// LiteFS that is not ready yet ignores signals, so it is killed at once, and
// its mount detached, without an error. Stop may be called more than once;
// later calls return the first call's result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		p.stopErr = p.stop()
	})
	return p.stopErr
}

func (p *Process) stop() error {
	var errs []error
	killed := false
	select {
	case <-p.done:
	default:
		if !p.ready() {
			// LiteFS v0.5.14 acts on signals only once it is ready (it waits
			// for its cluster first), so SIGINT would wait for nothing.
			_ = killGroup(p.cmd)
			<-p.done
			killed = true
			break
		}
		if err := p.waitClosed(DefaultCloseTimeout); err != nil {
			errs = append(errs, err)
		}
		if err := p.interrupt(DefaultStopTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.detach(!killed); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitClosed waits until no process outside LiteFS's group holds a file of
// the mount open or mapped, and returns an error naming them if some still
// do after timeout.
func (p *Process) waitClosed(timeout time.Duration) error {
	dir := p.MountDir()
	if dir == "" {
		return nil
	}
	var left []openFile
	err := waitUntil(context.Background(), timeout, func() error {
		if left = openUnder(dir, p.Pid()); len(left) > 0 {
			return errors.New("files open")
		}
		return nil
	})
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: files in its mount still open %v after the test: stopping LiteFS anyway, which may kill their process with SIGBUS; close every database opened in the mount first (db.Close in a defer, or in a t.Cleanup registered after the cluster started):%s",
		p.name, timeout, listFiles(left))
}

// interrupt sends SIGINT and waits up to timeout for the process to exit,
// then kills its process group.
func (p *Process) interrupt(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(os.Interrupt)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = killGroup(p.cmd)
		<-p.done
		return fmt.Errorf("%s did not exit within %v of SIGINT; killed it", p.name, timeout)
	}
}

// detach lazily unmounts what is left mounted under the process's mount
// directory. A mount is left when LiteFS was killed, or when its own
// unmount failed because the mount was busy: that is an error, naming the
// files, if report is set and files in it are still open. Files closed a
// moment before LiteFS unmounts can keep the mount busy too, as the kernel
// tells FUSE of a close asynchronously; nothing is wrong then, and nothing is
// reported.
func (p *Process) detach(report bool) error {
	dir := p.MountDir()
	if dir == "" {
		return nil
	}
	left, err := mountedUnder(dir)
	if err != nil || len(left) == 0 {
		return nil
	}
	var errs []error
	if open := openUnder(dir, -1); report && len(open) > 0 {
		errs = append(errs, fmt.Errorf("%s left %s mounted, with files open in it:%s", p.name, dir, listFiles(open)))
	}
	for _, m := range left {
		if err := unmount(m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// listFiles formats files one per line, each on an indented line of its own.
func listFiles(files []openFile) string {
	var b strings.Builder
	for _, o := range files {
		b.WriteString("\n\t" + o.String())
	}
	return b.String()
}

// ready reports whether LiteFS has logged that it is ready.
func (p *Process) ready() bool {
	log := p.Log()
	return strings.Contains(log, logReady) || strings.Contains(log, logSkipSync)
}

// exitedEarly returns why the process exited if it exited with an error
// before Stop was called, else nil.
func (p *Process) exitedEarly() error {
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped {
		return nil
	}
	return p.ExitErr()
}

// exitedErr returns an errStop if the process has exited, else an error
// saying what is still awaited. The output is not in the error: the test
// fails, and the process's cleanup prints it.
func (p *Process) exitedErr(waiting string) error {
	select {
	case <-p.done:
		status := "exit status 0"
		if p.err != nil {
			status = p.err.Error()
		}
		return errStop{fmt.Errorf("%s exited (%s) while waiting: %s", p.name, status, waiting)}
	default:
		return errors.New(waiting)
	}
}

// mountDirFromLog finds the directory in LiteFS's "LiteFS mounted to: <dir>"
// line, whether the log is text (msg="...") or JSON; a relative directory
// is taken relative to cwd, LiteFS's working directory.
func mountDirFromLog(log, cwd string) (string, bool) {
	i := strings.Index(log, logMountedTo)
	if i < 0 {
		return "", false
	}
	rest := log[i+len(logMountedTo):]
	j := strings.IndexAny(rest, "\"\n")
	if j <= 0 {
		return "", false // no end of line yet, or no directory
	}
	dir := rest[:j]
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cwd, dir)
	}
	return filepath.Clean(dir), true
}
