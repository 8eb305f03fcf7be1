package regwardtest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill cmd when this process dies, so that a
// test binary that dies without its cleanups takes its children along.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if cmd.SysProcAttr.Pdeathsig == 0 {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
}
