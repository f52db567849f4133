package haproxytest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes haproxy exit when the test process does, even when it dies
// without running its cleanups (a test timeout panics).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
