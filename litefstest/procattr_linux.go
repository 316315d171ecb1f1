package litefstest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the process in its own process group, so that killing
// it also kills what it started (the exec: app), and has the kernel send it
// SIGINT if the test process dies first, so LiteFS stops and tries to
// unmount; that fails with EBUSY, leaving the mount behind, while files of
// the dying process in the mount are not yet released (see the package
// documentation).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
}

// killGroup kills the process group that setProcAttr created.
func killGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
