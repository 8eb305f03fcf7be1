//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regward/regward/internal/regwardtest"
)

// openPTY opens a pseudo-terminal pair: the test holds the master, the
// child gets the slave as its controlling terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ptyOutput collects what the child writes to its terminal.
type ptyOutput struct {
	mu   sync.Mutex
	b    bytes.Buffer
	done chan struct{}
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func (o *ptyOutput) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(o.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%s", s, o.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoginPromptsWithoutEcho drives `regward login` through a terminal:
// the username is asked (and echoed), the password is asked and not
// echoed, and the sign-in works.
func TestLoginPromptsWithoutEcho(t *testing.T) {
	cp := startControlPlane(t)
	m := newMachine(t, "acme")
	master, slave := openPTY(t)

	cmd := exec.Command(regwardtest.Binary(t), "login", "--server", cp.base, "--org", "acme")
	cmd.Env = m.environ("TERM=dumb")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close() // the child holds it; EOF on the master comes when it exits
	out := &ptyOutput{done: make(chan struct{})}
	go func() {
		defer close(out.done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.mu.Lock()
			out.b.Write(buf[:n])
			out.mu.Unlock()
			if err != nil { // EIO once the child is gone
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	out.waitFor(t, "Username: ")
	if _, err := master.WriteString("alice\n"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "Password for alice: ")
	before := len(out.String())
	if _, err := master.WriteString(alicePW + "\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			var ee *exec.ExitError
			errors.As(err, &ee)
			t.Fatalf("login through the terminal: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("login did not finish; the terminal shows:\n%s", out.String())
	}
	<-out.done
	got := out.String()
	if !strings.Contains(got, "alice\r\n") {
		t.Errorf("the username was not echoed (the terminal should echo it):\n%q", got)
	}
	if strings.Contains(got, alicePW) || strings.Contains(got, alicePW[:8]) {
		t.Fatalf("the password was echoed on the terminal:\n%q", got)
	}
	if !strings.Contains(got[before:], "Signed in to organization acme as alice (member)") {
		t.Errorf("no sign-in confirmation after the password:\n%q", got)
	}
}

// TestLoginRefusesWithoutTerminal: no terminal and no --password-stdin is
// a clear error, not a hang or an echoed prompt.
func TestLoginRefusesWithoutTerminal(t *testing.T) {
	cp := startControlPlane(t)
	m := newMachine(t, "acme")
	out, code := m.regward("", "login", "--server", cp.base, "--org", "acme", "--username", "alice")
	if code != 1 || !strings.Contains(out, "--password-stdin") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
