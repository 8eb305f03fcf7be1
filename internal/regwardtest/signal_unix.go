//go:build unix

package regwardtest

import (
	"syscall"
	"testing"
)

const sigTerm = syscall.SIGTERM

// Pause stops the process (SIGSTOP) without closing its connections: the
// kernel keeps accepting and acknowledging, nothing answers, as when a host
// freezes or a network drops packets silently. Resume undoes it, and so
// does the end of the test.
func (p *Process) Pause(t testing.TB) {
	t.Helper()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pause %s: %v", p.Name, err)
	}
	t.Cleanup(func() { _ = p.Signal(syscall.SIGCONT) })
}

// Resume continues a paused process (SIGCONT).
func (p *Process) Resume(t testing.TB) {
	t.Helper()
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("resume %s: %v", p.Name, err)
	}
}
